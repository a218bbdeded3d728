"""Schema migrations of our database (Alembic): `migrate(url)` brings it to the latest revision."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from bot.db import make_engine

logger = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# A table the first revision creates: if it exists without Alembic's record, the database was
# made by `create_all` before migrations existed, with the first revision's schema.
FIRST_REVISION = "0001"
SENTINEL_TABLE = "kb_version"


def alembic_config() -> Config:
    return Config(str(ALEMBIC_INI))


def migrate(url: str | None = None) -> None:
    """Upgrade the database at `url` (default `BOT_DATABASE_URL`) to the latest revision."""
    engine = make_engine(url)
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if SENTINEL_TABLE in tables and "alembic_version" not in tables:
            logger.info(
                "database created before migrations: recorded as revision %s", FIRST_REVISION
            )
            command.stamp(cfg, FIRST_REVISION)
        command.upgrade(cfg, "head")
    engine.dispose()
