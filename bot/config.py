"""Settings read from the environment, in one place."""

from __future__ import annotations

import functools
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


def rasa_urls() -> list[str]:
    """The Rasa replicas (`RASA_URLS`, comma-separated; default the one `RASA_URL`): the gateway
    sends each conversation always to the same one."""
    raw = os.environ.get("RASA_URLS", "")
    urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    return urls or [rasa_url().rstrip("/")]


def max_turns_per_session() -> int:
    """User messages one conversation may send before it must start over
    (`GATEWAY_MAX_TURNS_PER_SESSION`, default 200; 0: no limit). Rasa replays a conversation's
    events at each turn: an endless conversation slows its replica for everyone."""
    return int(os.environ.get("GATEWAY_MAX_TURNS_PER_SESSION", "200"))


@functools.cache
def session_expiration_minutes() -> float:
    """Rasa's `session_config.session_expiration_time` in domain.yml (written once, there): after
    that many idle minutes a conversation starts a new session, and its turn count with it.
    Read once per process: domain.yml only changes with a new model."""
    import yaml  # here, not at the top: `bot.training --estimate` runs before .venv exists

    with (REPO_ROOT / "domain.yml").open(encoding="utf-8") as file:
        domain = yaml.safe_load(file)
    minutes = (domain.get("session_config") or {}).get("session_expiration_time")
    return float(minutes) if minutes is not None else 60.0


def vault_key() -> bytes:
    """Fernet key of the personal-data vault (`BOT_VAULT_KEY`), shared by gateway and actions.

    `./scripts/run` makes a fresh one at each start when it is not set: the vault only holds
    values for a few minutes, so losing them at a restart costs a question asked again.
    """
    key = os.environ.get("BOT_VAULT_KEY", "")
    if not key:
        raise RuntimeError(
            "BOT_VAULT_KEY n'est pas défini : générez une clé avec `python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        )
    return key.encode()


def vault_ttl_seconds() -> int:
    """How long a personal value typed by a voter is kept (`BOT_VAULT_TTL_SECONDS`, 15 min)."""
    return int(os.environ.get("BOT_VAULT_TTL_SECONDS", "900"))


def rasa_channel_headers() -> dict[str, str]:
    """Headers of the gateway's calls to its Rasa channel (`GATEWAY_RASA_TOKEN`, if set)."""
    token = os.environ.get("GATEWAY_RASA_TOKEN", "")
    return {"Authorization": f"Bearer {token}"} if token else {}


def action_server_urls() -> list[str]:
    """The action servers, for the gateway's readiness probe (`ACTION_SERVER_URLS`,
    comma-separated; default the one on `ACTION_PORT`, 5055)."""
    raw = os.environ.get("ACTION_SERVER_URLS", "")
    urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    return urls or [f"http://127.0.0.1:{os.environ.get('ACTION_PORT', '5055')}"]


def redis_url() -> str | None:
    """The Redis server of the production mode (`REDIS_URL`); None in the local mode."""
    return os.environ.get("REDIS_URL") or None


def metrics_token() -> str:
    """The bearer token that opens `/metrics` to other hosts than this one (`METRICS_TOKEN`;
    empty: loopback only)."""
    return os.environ.get("METRICS_TOKEN", "")
