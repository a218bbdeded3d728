"""A short-lived, encrypted store of the personal values a voter typed.

The gateway puts each value it redacted from a message here, under the conversation's sender id
and the value's kind; the form actions read it back to validate it and to call the portal, then
forget it. Values are encrypted (Fernet, key `BOT_VAULT_KEY`), sender ids are hashed, and every
entry expires after `BOT_VAULT_TTL_SECONDS`: the database file never holds them in clear.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Column, Float, LargeBinary, String, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, declarative_base

from bot import config
from bot.db import make_engine

Base = declarative_base()

KINDS = ("numen", "phone", "birth_date", "email")


class VaultEntry(Base):
    __tablename__ = "vault_entries"

    sender_hash = Column(String(64), primary_key=True)
    kind = Column(String(16), primary_key=True)
    ciphertext = Column(LargeBinary, nullable=False)
    expires_at = Column(Float, nullable=False, index=True)


class Vault:
    """The vault over `engine`, whose table `bot.db.create_schema` created."""

    def __init__(self, engine: Engine, key: bytes, ttl_seconds: int = 900) -> None:
        self._engine = engine
        self._fernet = Fernet(key)
        self._ttl = ttl_seconds

    @property
    def engine(self) -> Engine:
        return self._engine

    @classmethod
    def from_env(cls, engine: Engine) -> Vault:
        return cls(engine, config.vault_key(), config.vault_ttl_seconds())

    def put(self, sender: str, values: dict[str, str]) -> None:
        """Keep `values` (kind -> value) for `sender`, replacing earlier values of those kinds."""
        now = time.time()
        with Session(self._engine, future=True) as session, session.begin():
            session.execute(delete(VaultEntry).where(VaultEntry.expires_at < now))
            for kind, value in values.items():
                if kind not in KINDS:
                    raise ValueError(f"unknown kind {kind!r}")
                session.merge(
                    VaultEntry(
                        sender_hash=_hash(sender),
                        kind=kind,
                        ciphertext=self._fernet.encrypt(value.encode()),
                        expires_at=now + self._ttl,
                    )
                )

    def get(self, sender: str, kind: str) -> str | None:
        """The value of `kind` typed by `sender`, if it has not expired."""
        with Session(self._engine, future=True) as session:
            row = session.scalars(
                select(VaultEntry).filter_by(sender_hash=_hash(sender), kind=kind)
            ).first()
            if row is None or row.expires_at < time.time():
                return None
            try:
                return self._fernet.decrypt(row.ciphertext).decode()
            except InvalidToken:  # the key changed (a restart): as if expired
                return None

    def size(self) -> int:
        """How many values are waiting in the vault (expired ones not counted): a metric."""
        with Session(self._engine, future=True) as session:
            query = select(func.count()).select_from(VaultEntry)
            return session.scalar(query.where(VaultEntry.expires_at >= time.time())) or 0

    def forget(self, sender: str, kinds: Iterable[str] = KINDS) -> None:
        with Session(self._engine, future=True) as session, session.begin():
            session.execute(
                delete(VaultEntry).where(
                    VaultEntry.sender_hash == _hash(sender), VaultEntry.kind.in_(list(kinds))
                )
            )


def _hash(sender: str) -> str:
    return hashlib.sha256(sender.encode()).hexdigest()


@lru_cache(maxsize=1)
def default_vault() -> Vault:
    """The process-wide vault, in our database (`BOT_DATABASE_URL`)."""
    return Vault.from_env(make_engine())
