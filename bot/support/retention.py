"""Retention: purge what we no longer need to keep, so a conversation does not live forever.

    python -m bot.support.retention [--days N] [--audit-days N] [--dry-run]

In our database (`BOT_DATABASE_URL`): support conversations idle for more than N days
(`BOT_RETENTION_DAYS`, default 90) with their turns and handoffs, older turns of the others,
closed handoffs closed more than N days ago, audit entries older than the audit period
(`BOT_AUDIT_RETENTION_DAYS`, default 365, never shorter than N), expired console sessions and
expired vault entries. A conversation with an open handoff is never touched: an agent may be
reading it. In Rasa's SQL tracker store (`TRACKER_DATABASE_URL`, when set): the events of
senders idle for more than N days, and the older events of the others that precede their
latest session start (Rasa does not read those back). `--dry-run` counts without deleting.
Each database is purged in one transaction. Run it daily (cron, systemd timer): `scripts/retention`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import MetaData, Table, and_, delete, func, inspect, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from bot import logs
from bot.db import make_engine
from bot.personal_data.vault import VaultEntry
from bot.support import models
from bot.support.models import utcnow

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 90
DEFAULT_AUDIT_DAYS = 365
TRACKER_EVENTS = "events"  # the table of Rasa's SQLTrackerStore
SESSION_STARTED = "session_started"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long things are kept: conversations `days`, the agents' audit trail `audit_days`."""

    days: int = DEFAULT_DAYS
    audit_days: int = DEFAULT_AUDIT_DAYS

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("La durée de conservation doit être d'au moins 1 jour.")
        if self.audit_days < self.days:
            raise ValueError(
                "La conservation du journal d'audit ne peut pas être plus courte que celle des "
                f"conversations ({self.audit_days} < {self.days} jours)."
            )

    @classmethod
    def from_env(cls, days: int | None = None, audit_days: int | None = None) -> RetentionPolicy:
        days = days if days is not None else _env_days("BOT_RETENTION_DAYS", DEFAULT_DAYS)
        audit = _env_days("BOT_AUDIT_RETENTION_DAYS", max(DEFAULT_AUDIT_DAYS, days))
        return cls(days, audit_days if audit_days is not None else audit)


def _env_days(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"{name} doit être un nombre de jours, par exemple 90 (reçu : {raw!r}).")
    return int(raw)


# ---------------------------------------------------------------------- our database


def purge_support(
    engine: Engine, policy: RetentionPolicy, now: datetime | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Purge (or count, `dry_run`) the support desk's old rows and expired secrets in our
    database; returns the number of rows per kind."""
    now = now or utcnow()
    cutoff = now - timedelta(days=policy.days)
    audit_cutoff = now - timedelta(days=policy.audit_days)
    conversations, turns, handoffs = models.Conversation, models.Turn, models.Handoff
    open_handoff = select(handoffs.conversation_id).where(handoffs.closed_at.is_(None))
    idle = select(conversations.id).where(
        conversations.last_at < cutoff, conversations.id.not_in(open_handoff)
    )
    # In order: children before parents (foreign keys), whatever the engine enforces.
    steps: list[tuple[str, Table, ColumnElement[bool]]] = [
        (
            "tours de conversation",
            turns.__table__,
            or_(
                turns.conversation_id.in_(idle),
                and_(turns.at < cutoff, turns.conversation_id.not_in(open_handoff)),
            ),
        ),
        (
            "demandes de conseiller closes",
            handoffs.__table__,
            or_(
                and_(handoffs.closed_at.is_not(None), handoffs.closed_at < cutoff),
                and_(handoffs.closed_at.is_not(None), handoffs.conversation_id.in_(idle)),
            ),
        ),
        ("conversations", conversations.__table__, conversations.id.in_(idle)),
        ("journal d'audit", models.AuditEntry.__table__, models.AuditEntry.at < audit_cutoff),
        (
            "sessions de la console expirées",
            models.AgentSession.__table__,
            models.AgentSession.expires_at < now,
        ),
    ]
    with engine.begin() as connection:
        existing = inspect(connection)
        counts = {
            label: _purge(connection, table, where, dry_run)
            for label, table, where in steps
            if existing.has_table(table.name)
        }
        if existing.has_table(VaultEntry.__tablename__):
            vault = VaultEntry.__table__
            counts["coffre (valeurs expirées)"] = _purge(
                connection, vault, vault.c.expires_at < time.time(), dry_run
            )
    return counts


# ---------------------------------------------------------------------- Rasa's tracker store


def purge_tracker(
    engine: Engine, policy: RetentionPolicy, now: datetime | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Purge (or count) old events of Rasa's SQL tracker store (table `events`)."""
    now = now or utcnow()
    cutoff = _epoch(now - timedelta(days=policy.days))
    with engine.begin() as connection:
        if not inspect(connection).has_table(TRACKER_EVENTS):
            return {}
        events = Table(TRACKER_EVENTS, MetaData(), autoload_with=connection)
        latest = (
            select(events.c.sender_id)
            .group_by(events.c.sender_id)
            .having(func.max(events.c.timestamp) < cutoff)
        )
        later = events.alias("later")
        session_after = (
            select(later.c.id)
            .where(
                later.c.sender_id == events.c.sender_id,
                later.c.type_name == SESSION_STARTED,
                later.c.id > events.c.id,
            )
            .exists()
        )
        where = or_(
            events.c.sender_id.in_(latest),
            and_(events.c.timestamp < cutoff, session_after),
        )
        return {"événements du suivi Rasa": _purge(connection, events, where, dry_run)}


def _epoch(moment: datetime) -> float:
    """A Unix timestamp (Rasa's events use them); a naive `moment` is UTC, as in our tables."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _purge(connection: Connection, table: Table, where: ColumnElement[bool], dry_run: bool) -> int:
    if dry_run:
        return connection.execute(select(func.count()).select_from(table).where(where)).scalar()
    return connection.execute(delete(table).where(where)).rowcount


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.support.retention",
        description="Supprime les conversations, tours, demandes closes, entrées d'audit, "
        "sessions et valeurs du coffre trop anciens (et les événements du suivi Rasa si "
        "TRACKER_DATABASE_URL est défini).",
    )
    parser.add_argument("--days", type=int, help="conservation des conversations, en jours")
    parser.add_argument("--audit-days", type=int, help="conservation du journal d'audit")
    parser.add_argument("--dry-run", action="store_true", help="compter sans supprimer")
    args = parser.parse_args(argv)
    logs.configure("retention")
    try:
        policy = RetentionPolicy.from_env(args.days, args.audit_days)
    except ValueError as error:
        print(f"retention : {error}", file=sys.stderr)
        return 2
    verb = "à supprimer" if args.dry_run else "supprimé(e)s"
    print(
        f"Conservation : conversations {policy.days} jours, audit {policy.audit_days} jours"
        + (" (simulation : rien n'est supprimé)" if args.dry_run else "")
    )
    databases = [("base de l'assistant", make_engine(), purge_support)]
    tracker_url = os.environ.get("TRACKER_DATABASE_URL", "").strip()
    if tracker_url:
        databases.append(("suivi Rasa", make_engine(tracker_url), purge_tracker))
    status = 0
    for name, engine, purge in databases:
        try:
            counts = purge(engine, policy, dry_run=args.dry_run)
        except SQLAlchemyError as error:
            logger.error("retention failed on %s: %s", name, type(error).__name__)
            print(f"{name} : échec ({type(error).__name__}), rien n'a été supprimé.")
            status = 1
            continue
        finally:
            engine.dispose()
        if not counts:
            print(f"{name} : aucune table à purger")
        for label, count in counts.items():
            print(f"{name} : {count} {label} {verb}")
    return status


if __name__ == "__main__":
    sys.exit(main())
