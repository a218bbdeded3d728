"""Support agents' accounts, their console sessions, and the audit trail of what they do.

Passwords are hashed with scrypt (standard library), its parameters and salt stored with the
hash (`scrypt$n$r$p$salt$hash`), so they can be raised later without breaking old hashes. A
session cookie holds a random token; only its SHA-256 is stored, with the session's CSRF token.
Synchronous SQLAlchemy, one short transaction per call: the gateway calls it from a thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.support import models
from bot.support.models import utcnow

AGENT, ANALYST = "agent", "analyst"  # an analyst reads the statistics, not the conversations
ROLES = (AGENT, ANALYST)
PASSWORD_MIN_CHARS = 12
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
SESSION_TTL = timedelta(hours=12)
# last_seen_at is written at most this often per agent (it is refreshed on every request).
SEEN_EVERY = timedelta(seconds=20)

# scrypt cost: 2^15 x 8 x 128 bytes = 32 MiB and about 0.1 s per hash on one core.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES, HASH_BYTES = 16, 32


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message is French, for the user."""


@dataclass(frozen=True)
class AgentAccount:
    id: int
    login: str
    display_name: str
    role: str
    active: bool
    last_seen_at: datetime | None

    @property
    def is_agent(self) -> bool:
        return self.role == AGENT

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "login": self.login, "name": self.display_name, "role": self.role}


@dataclass(frozen=True)
class ConsoleSession:
    agent: AgentAccount
    csrf_token: str
    expires_at: datetime


# ---------------------------------------------------------------------- passwords


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`, with a random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=length
    )


_dummy_hash: str | None = None


def _unknown_login_hash() -> str:
    """A hash to check when the login does not exist, so that costs the same time."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_password(password: str) -> None:
    if len(password) < PASSWORD_MIN_CHARS:
        raise AccountError(
            f"Mot de passe trop court : {PASSWORD_MIN_CHARS} caractères au moins "
            "(une phrase de passe fait très bien l'affaire)."
        )


# ---------------------------------------------------------------------- accounts and sessions


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt gave: the account when it may log in; otherwise why not
    (`unknown`, `password`, `disabled`), for the audit only: the user is told the same thing."""

    agent: AgentAccount | None
    refused: str | None = None
    agent_id: int | None = None  # set when the login exists, even if refused


class Accounts:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self._clock = clock
        _unknown_login_hash()  # now, so that the first unknown login costs no extra hash

    def _session(self) -> Session:
        return Session(self.engine, future=True, expire_on_commit=False)

    # -------------------------------------------------------------- agents

    def create_agent(
        self, login: str, display_name: str, password: str, role: str = AGENT
    ) -> AgentAccount:
        login = login.strip().lower()
        display_name = " ".join(display_name.split())
        if not LOGIN_PATTERN.match(login):
            raise AccountError(
                f"Identifiant invalide « {login} » : 2 à 64 caractères parmi a-z, 0-9, « . », "
                "« _ » et « - », commençant par une lettre ou un chiffre."
            )
        if not 1 <= len(display_name) <= 128:
            raise AccountError("Nom affiché obligatoire (128 caractères au plus).")
        if role not in ROLES:
            raise AccountError(f"Rôle inconnu « {role} » : « agent » ou « analyst ».")
        check_new_password(password)
        row = models.Agent(
            login=login,
            display_name=display_name,
            password_hash=hash_password(password),
            role=role,
            active=True,
        )
        try:
            with self._session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise AccountError(f"L'identifiant « {login} » existe déjà.") from None
        return _account(row)

    def set_active(self, login: str, active: bool) -> AgentAccount:
        """Enable or disable an account; disabling ends its sessions at once."""
        with self._session() as session, session.begin():
            row = session.scalars(
                select(models.Agent).where(models.Agent.login == login.strip().lower())
            ).first()
            if row is None:
                raise AccountError(f"Aucun compte « {login} ».")
            row.active = active
            if not active:
                session.execute(
                    delete(models.AgentSession).where(models.AgentSession.agent_id == row.id)
                )
            return _account(row)

    def agents(self) -> list[AgentAccount]:
        with self._session() as session:
            rows = session.scalars(select(models.Agent).order_by(models.Agent.login)).all()
            return [_account(row) for row in rows]

    def authenticate(self, login: str, password: str) -> LoginOutcome:
        """Check a login and password; one scrypt computation whether the login exists or not."""
        with self._session() as session:
            row = session.scalars(
                select(models.Agent).where(models.Agent.login == login.strip().lower())
            ).first()
        if row is None:
            verify_password(password, _unknown_login_hash())
            return LoginOutcome(None, "unknown")
        if not verify_password(password, row.password_hash):
            return LoginOutcome(None, "password", row.id)
        if not row.active:
            return LoginOutcome(None, "disabled", row.id)
        return LoginOutcome(_account(row), None, row.id)

    # -------------------------------------------------------------- sessions

    def open_session(self, agent_id: int) -> tuple[str, ConsoleSession]:
        """A new session: the token for the cookie (never stored) and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._session() as session, session.begin():
            session.execute(delete(models.AgentSession).where(models.AgentSession.expires_at < now))
            row = models.AgentSession(
                token_hash=token_hash(token),
                agent_id=agent_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + SESSION_TTL,
            )
            session.add(row)
            agent = session.get(models.Agent, agent_id)
            agent.last_seen_at = now
            return token, ConsoleSession(_account(agent), row.csrf_token, row.expires_at)

    def session_for(self, token: str, seen: bool = True) -> ConsoleSession | None:
        """The live session of a cookie's token (None if unknown, expired, or its account is
        disabled); `seen`: the agent is active now (for the count of agents online)."""
        if not token or len(token) > 128:
            return None
        now = self._clock()
        with self._session() as session, session.begin():
            found = session.execute(
                select(models.AgentSession, models.Agent)
                .join(models.Agent, models.Agent.id == models.AgentSession.agent_id)
                .where(models.AgentSession.token_hash == token_hash(token))
            ).first()
            if found is None:
                return None
            row, agent = found
            if row.expires_at <= now or not agent.active:
                session.delete(row)
                return None
            if seen and (agent.last_seen_at is None or now - agent.last_seen_at >= SEEN_EVERY):
                agent.last_seen_at = now
            return ConsoleSession(_account(agent), row.csrf_token, row.expires_at)

    def end_session(self, token: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                delete(models.AgentSession).where(
                    models.AgentSession.token_hash == token_hash(token)
                )
            )

    # -------------------------------------------------------------- audit

    def audit(
        self,
        agent_id: int | None,
        action: str,
        conversation_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record an agent action. `detail` holds ids, counts and reasons, never message text
        nor a password."""
        with self._session() as session, session.begin():
            session.add(
                models.AuditEntry(
                    at=self._clock(),
                    agent_id=agent_id,
                    action=action,
                    conversation_id=conversation_id,
                    detail=json.dumps(detail, ensure_ascii=False, sort_keys=True)
                    if detail
                    else None,
                )
            )


def _account(row: models.Agent) -> AgentAccount:
    return AgentAccount(
        id=row.id,
        login=row.login,
        display_name=row.display_name,
        role=row.role,
        active=bool(row.active),
        last_seen_at=row.last_seen_at,
    )


# ---------------------------------------------------------------------- login attempts


class LoginThrottle:
    """Login attempts per (login, client address) and per client address, in memory (one
    gateway process; with several, `bot.gateway.state` keeps them in Redis with these limits and
    rules). An attempt is counted BEFORE its password is checked, so concurrent
    attempts cannot pass the limit; past it, attempts are refused without a check. A login is
    never locked for everyone: a wrong password typed elsewhere does not lock its owner out.
    Each failure of a pair also slows its next answer a little (`slowdown`)."""

    def __init__(
        self,
        per_login: int = 5,
        per_address: int = 20,
        window_seconds: float = 15 * 60,
        max_tracked: int = 10_000,
        slowdown_seconds: float = 0.1,
    ) -> None:
        self.per_login, self.per_address = per_login, per_address
        self.window_seconds, self.slowdown_seconds = window_seconds, slowdown_seconds
        self._limits = {"login": per_login, "address": per_address}
        self._window = window_seconds
        self._max_tracked = max_tracked
        self._slowdown = slowdown_seconds
        self._attempts: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def attempt(self, login: str, address: str, now: float | None = None) -> float:
        """Count one attempt and return 0, or return the seconds to wait (nothing counted)."""
        now = time.monotonic() if now is None else now
        keys = self._keys(login, address)
        wait = 0.0
        for key in keys:
            recent = self._recent(key, now)
            if len(recent) >= self._limits[key[0]]:
                wait = max(wait, recent[0] + self._window - now)
        if wait:
            return wait
        for key in keys:
            self._attempts[key] = [*self._recent(key, now), now]
            self._attempts.move_to_end(key)
        while len(self._attempts) > self._max_tracked:
            self._attempts.popitem(last=False)
        return 0.0

    def slowdown(self, login: str, address: str, now: float | None = None) -> float:
        """Seconds to hold the answer to a failed attempt: more after each failure."""
        now = time.monotonic() if now is None else now
        failures = len(self._recent(self._keys(login, address)[0], now))
        return min(1.0, self._slowdown * failures)

    def succeeded(self, login: str, address: str) -> None:
        """The pair's attempts are forgotten; the successful one no longer counts for the
        address."""
        pair, by_address = self._keys(login, address)
        self._attempts.pop(pair, None)
        if self._attempts.get(by_address):
            self._attempts[by_address].pop()

    def _keys(self, login: str, address: str) -> list[tuple[str, str]]:
        return [("login", f"{login.strip().lower()}\n{address}"), ("address", address)]

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        return [t for t in self._attempts.get(key, []) if t > now - self._window]
