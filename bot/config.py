"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def kb_path() -> Path:
    """The knowledge base file (`BOT_KB_PATH`, default `kb/faq_fr.md`)."""
    return Path(os.environ.get("BOT_KB_PATH", REPO_ROOT / "kb" / "faq_fr.md"))


def database_url() -> str:
    """SQLAlchemy URL of our database (`BOT_DATABASE_URL`, default a SQLite file in `var/`)."""
    default = f"sqlite:///{REPO_ROOT / 'var' / 'bot.db'}"
    return os.environ.get("BOT_DATABASE_URL", default)


def pinned_now() -> str | None:
    """ISO 8601 instant that pins the clock (`BOT_NOW`), for tests and demos."""
    return os.environ.get("BOT_NOW") or None


def rasa_url() -> str:
    """Where the gateway reaches the Rasa server (`RASA_URL`)."""
    return os.environ.get("RASA_URL", "http://127.0.0.1:5005")
