"""The database bootstrap (`bot/db.py`): one engine per URL, every table created by
`create_schema` and only there (stores built on an empty database and the insights report
create none), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from bot import db
from bot.config import REPO_ROOT
from bot.db import ASSISTANT, PORTAL, create_schema, make_engine
from bot.knowledge import Knowledge, load_kb
from bot.knowledge import models as knowledge_models
from bot.personal_data.vault import Vault
from bot.portal.models import portal_engine
from bot.portal.simulated import SimulatedPortal
from bot.support import insights
from bot.support.accounts import Accounts
from bot.support.store import SupportStore
from tests.conftest import KB

# Written out, not read from the models: a table dropped from a schema by mistake fails here.
ASSISTANT_TABLES = {
    "academie", "academie_alias", "categorie", "categorie_alias", "departement", "eligibilite",
    "evenement", "groupe_categories", "kb_version", "regle", "reponse", "scrutin",
    "vault_entries",
    "support_agent_sessions", "support_agents", "support_audit", "support_conversations",
    "support_handoffs", "support_turns",
}  # fmt: skip
PORTAL_TABLES = {
    "portal_idempotency_keys", "portal_numen_locks", "portal_outbox", "portal_reset_requests",
    "portal_verification_failures", "portal_voters",
}  # fmt: skip
NOW = datetime(2018, 11, 30, 18, 0, tzinfo=ZoneInfo("Europe/Paris"))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def test_one_url_has_one_engine_in_the_process(tmp_path, monkeypatch):
    url = sqlite(tmp_path / "bot.db")
    assert make_engine(url) is make_engine(url)
    assert make_engine(sqlite(tmp_path / "other.db")) is not make_engine(url)
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    assert make_engine() is make_engine(url)  # the default is BOT_DATABASE_URL's
    assert portal_engine(url) is make_engine(url)


def test_the_engine_keeps_its_sqlite_settings(tmp_path):
    engine = make_engine(sqlite(tmp_path / "folder" / "made" / "bot.db"))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (tmp_path / "folder" / "made").is_dir()
    assert engine.hide_parameters


def test_create_schema_creates_every_table_of_each_database_and_can_run_again(tmp_path):
    assistant = create_schema(sqlite(tmp_path / "bot.db"))
    assert tables(assistant) == ASSISTANT_TABLES
    portal = make_engine(sqlite(tmp_path / "portal.db"))
    create_schema(portal, PORTAL)
    assert tables(portal) == PORTAL_TABLES  # each database has only its own tables
    assert load_kb(assistant, KB) is True
    create_schema(assistant)  # idempotent: nothing recreated, nothing lost
    create_schema(portal, PORTAL)
    assert tables(assistant) == ASSISTANT_TABLES and tables(portal) == PORTAL_TABLES
    assert Knowledge(assistant).timezone == "Europe/Paris"


def test_the_schemas_are_the_models_of_each_package():
    assistant = {name for metadata in db.schemas(ASSISTANT) for name in metadata.tables}
    portal = {name for metadata in db.schemas(PORTAL) for name in metadata.tables}
    assert (assistant, portal) == (ASSISTANT_TABLES, PORTAL_TABLES)


def test_stores_built_on_an_empty_database_create_no_table(tmp_path, knowledge):
    engine = make_engine(sqlite(tmp_path / "empty.db"))
    Vault(engine, Fernet.generate_key())
    SupportStore(engine)
    Accounts(engine)
    Knowledge(engine)
    SimulatedPortal(portal_engine(sqlite(tmp_path / "empty.db")), knowledge)
    assert tables(engine) == set()


def test_the_insights_report_on_a_fresh_database_creates_no_table(tmp_path, monkeypatch):
    """A desk that never answered: the knowledge base is loaded, the support tables are not
    there; the report is empty and the database is left as it was."""
    engine = make_engine(sqlite(tmp_path / "bot.db"))
    knowledge_models.Base.metadata.create_all(engine)
    load_kb(engine, KB)
    before = tables(engine)
    assert not before & {"support_conversations", "support_turns", "support_handoffs"}

    report = insights.compute(engine, days=7, now=NOW)
    assert report.total.conversations == 0 and report.total.containment is None
    monkeypatch.setenv("BOT_DATABASE_URL", str(engine.url))
    out = tmp_path / "report"
    assert insights.main(["--days", "7", "--out", str(out), "--now", "2018-11-30T18:00"]) == 0
    assert (out / insights.REPORT_FILE).exists()
    assert tables(engine) == before


def test_the_insights_command_on_an_empty_database_says_so_and_writes_nothing(
    tmp_path, monkeypatch, capsys
):
    url = sqlite(tmp_path / "bot.db")
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    assert insights.main(["--out", str(tmp_path / "report")]) == 2
    assert "python -m bot.knowledge load" in capsys.readouterr().err
    assert tables(make_engine(url)) == set()
    assert not (tmp_path / "report").exists()


def test_create_schema_on_postgresql(postgres_url):
    engine = create_schema(postgres_url)
    create_schema(engine, PORTAL)
    assert tables(engine) == ASSISTANT_TABLES | PORTAL_TABLES
    assert load_kb(engine, KB) is True
    create_schema(postgres_url)  # again, through the URL: the same engine, nothing changes
    assert tables(engine) == ASSISTANT_TABLES | PORTAL_TABLES
    assert load_kb(engine, KB) is False
    engine.dispose()


def test_stores_on_an_empty_postgresql_database_create_no_table(postgres_url):
    engine = make_engine(postgres_url)
    Vault(engine, Fernet.generate_key())
    SupportStore(engine)
    Accounts(engine)
    assert tables(engine) == set()
    engine.dispose()


def test_the_ground_and_personal_data_import_no_other_layer():
    """`bot.db` imports nothing of `bot/` but the settings; `bot.personal_data` nothing but
    itself, the settings and `bot.db`."""
    code = (
        "import json, sys\n"
        "import bot.db\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('bot'))))\n"
        "import bot.personal_data.parsing, bot.personal_data.redaction, bot.personal_data.vault\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('bot'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    ground, personal_data = (json.loads(line) for line in result.stdout.splitlines())
    assert ground == ["bot", "bot.config", "bot.db"]
    assert {m for m in personal_data if not m.startswith("bot.personal_data")} == {
        "bot",
        "bot.config",
        "bot.db",
    }
