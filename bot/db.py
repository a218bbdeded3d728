"""Our databases, at the ground: one engine per URL, and the one place where tables are created.

There are two databases, each with the tables of a few packages:

- the assistant's (`BOT_DATABASE_URL`): the knowledge base, the vault, the support desk. In
  production its schema belongs to the migrations (`bot/production/migrations/`), which read
  the same list (`schemas(ASSISTANT)`);
- the simulated portal's (`PORTAL_DATABASE_URL`), a stand-in with a database of its own.

`create_schema` is called by the commands that start a process (`python -m bot.knowledge load`,
the gateway, the simulated portal, the action server through `default_knowledge()`,
`python -m bot.support`). Stores never create tables when they are built, and a report never
writes: a missing table is a deployment mistake to see, not something to patch in passing.

Why this module names the modules that declare the tables, rather than holding a registry they
fill when imported: a registry only knows the modules someone happened to import first, so what
`create_schema` creates would depend on import order. The names below are imported only when
`schemas()` runs, never when this module is imported: importing `bot.db` imports nothing of
`bot/` but `bot.config`, so every package can import it without a cycle.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from bot import config

ASSISTANT = "assistant"
PORTAL = "portal"
# Each database's tables: the modules that declare them, each with its declarative `Base`.
TABLE_MODULES = {
    ASSISTANT: ("bot.knowledge.models", "bot.personal_data.vault", "bot.support.models"),
    PORTAL: ("bot.portal.models",),
}

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str | None = None) -> Engine:
    """The engine of `url` (default: `BOT_DATABASE_URL`), the same object for the same URL in
    the whole process; creates the SQLite file's folder if needed."""
    url = url or config.database_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _new_engine(url)
    return engine


def _new_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failing statement's error (and its log line) never quotes the values,
    # which may be what a user typed (a message, a masked value, an address).
    engine = create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
    return engine


def schemas(database: str = ASSISTANT) -> list[MetaData]:
    """The `MetaData` of every group of tables of `database` (`ASSISTANT` or `PORTAL`)."""
    return [importlib.import_module(name).Base.metadata for name in TABLE_MODULES[database]]


def create_schema(bind: Engine | str | None = None, database: str = ASSISTANT) -> Engine:
    """Create the tables of `database` that are missing, on `bind` (an engine or a URL; default
    `BOT_DATABASE_URL`), and return its engine. Idempotent, and tolerates another process
    creating them at the same moment (the processes of a stack start together)."""
    engine = bind if isinstance(bind, Engine) else make_engine(bind)
    for metadata in schemas(database):
        try:
            metadata.create_all(engine)
        except (OperationalError, ProgrammingError, IntegrityError):
            existing = inspect(engine)
            if not all(existing.has_table(name) for name in metadata.tables):
                raise
    return engine
