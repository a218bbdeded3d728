"""The portal's settings, read from the environment in one place (client and simulator).

The client reads `PORTAL_URL`, `PORTAL_TOKEN` and `PORTAL_TIMEOUT_SECONDS`; the simulated portal
reads `PORTAL_TOKEN`, `PORTAL_DATABASE_URL` and its limits. The limit on voter-ID reissues is not
here: it is a fact of the knowledge base (`identifiant_demandes_max`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bot.config import REPO_ROOT

# Only the simulator on loopback may fall back to this token; the client never does.
DEV_TOKEN = "dev-portal-token"


def portal_url() -> str:
    """Where the bot reaches the election portal (`PORTAL_URL`)."""
    return os.environ.get("PORTAL_URL", "http://127.0.0.1:8090")


def portal_token() -> str:
    """The bearer token shared with the portal (`PORTAL_TOKEN`); required by the client."""
    token = os.environ.get("PORTAL_TOKEN", "")
    if not token:
        raise RuntimeError(
            "PORTAL_TOKEN n'est pas défini : indiquez le jeton d'accès au portail électoral "
            "(./scripts/run en crée un pour le portail simulé)."
        )
    return token


def timeout_seconds() -> float:
    """Longest wait for one call to the portal, retries included (`PORTAL_TIMEOUT_SECONDS`)."""
    return float(os.environ.get("PORTAL_TIMEOUT_SECONDS", "4"))


def simulator_token() -> str:
    """The simulator's token: `PORTAL_TOKEN`, or `dev-portal-token` for a local try-out only."""
    return os.environ.get("PORTAL_TOKEN") or DEV_TOKEN


def database_url() -> str:
    """The simulator's database (`PORTAL_DATABASE_URL`, default a SQLite file in `var/`)."""
    default = f"sqlite:///{REPO_ROOT / 'var' / 'portal.db'}"
    return os.environ.get("PORTAL_DATABASE_URL", default)


@dataclass(frozen=True)
class Limits:
    """The simulator's protections against abuse."""

    reset_max_per_hour: int = 3  # password-reset requests per address
    lock_after_failures: int = 5  # identity mismatches for one NUMEN within `failure_window`
    failure_window_minutes: int = 30
    lock_minutes: int = 30

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            reset_max_per_hour=int(os.environ.get("PORTAL_RESET_MAX_PER_HOUR", "3")),
            lock_after_failures=int(os.environ.get("PORTAL_LOCK_AFTER_FAILURES", "5")),
            lock_minutes=int(os.environ.get("PORTAL_LOCK_MINUTES", "30")),
        )
