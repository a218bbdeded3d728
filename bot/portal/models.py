"""Tables and engine of the simulated portal, in their own metadata (prefix `portal_`).

Only the registry holds personal data in clear, as the real portal does; every other table keys
a NUMEN or an address by its SHA-256 and masks the recipients of the messages it sent.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Float, Integer, MetaData, String, Text, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import declarative_base

from bot import db
from bot.portal import settings

metadata = MetaData()
Base = declarative_base(metadata=metadata)


class Voter(Base):
    """One voter of the registry, imported from the académies' CSV file."""

    __tablename__ = "portal_voters"

    id = Column(Integer, primary_key=True)
    numen = Column(String(13), unique=True, nullable=False)
    nom = Column(String(100), nullable=False)
    prenom = Column(String(100), nullable=False)
    date_naissance = Column(Date, nullable=False)
    email = Column(String(254), unique=True, nullable=False)
    academie = Column(String(64), nullable=False)
    categorie = Column(String(100), nullable=False)
    reissues = Column(Integer, nullable=False, default=0, server_default="0")


class StoredResponse(Base):
    """The answer given to an idempotency key, replayed when the key comes again."""

    __tablename__ = "portal_idempotency_keys"

    key_hash = Column(String(64), primary_key=True)
    status_code = Column(Integer)  # NULL only inside the transaction that computes it
    body = Column(Text)
    created_at = Column(Float, nullable=False, index=True)


class VerificationFailure(Base):
    """A reissue request whose NUMEN and birth date did not match (for the lock)."""

    __tablename__ = "portal_verification_failures"

    id = Column(Integer, primary_key=True)
    numen_hash = Column(String(64), nullable=False, index=True)
    created_at = Column(Float, nullable=False)


class NumenLock(Base):
    __tablename__ = "portal_numen_locks"

    numen_hash = Column(String(64), primary_key=True)
    locked_until = Column(Float, nullable=False)


class ResetRequest(Base):
    """A password-reset request, for the per-address rate limit."""

    __tablename__ = "portal_reset_requests"

    id = Column(Integer, primary_key=True)
    email_hash = Column(String(64), nullable=False, index=True)
    created_at = Column(Float, nullable=False)


class OutboxMessage(Base):
    """An SMS or e-mail the portal would have sent."""

    __tablename__ = "portal_outbox"

    id = Column(Integer, primary_key=True)
    channel = Column(String(8), nullable=False)  # "sms" or "email"
    recipient = Column(String(254), nullable=False)  # masked
    body = Column(Text, nullable=False)
    created_at = Column(Float, nullable=False)


def portal_engine(url: str | None = None) -> Engine:
    """Engine of the simulator's database (default `PORTAL_DATABASE_URL`), whose tables
    `bot.db.create_schema(engine, bot.db.PORTAL)` creates.

    On SQLite every transaction starts with BEGIN IMMEDIATE: concurrent requests then queue
    for the write lock (busy timeout) instead of failing when a reader tries to write.
    """
    engine = db.make_engine(url or settings.database_url())
    if engine.dialect.name == "sqlite" and not event.contains(engine, "begin", _begin_immediate):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _begin_immediate)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # pysqlite's own BEGIN would be DEFERRED
    dbapi_connection.execute("PRAGMA busy_timeout=15000")


def _begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
