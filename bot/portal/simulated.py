"""A simulated election portal: the API of `bot.portal.client`, a voter registry and an outbox.

It stands in for the ministry's portal on a laptop and in tests: the SMS and e-mails it would
send are written to its outbox (`GET /api/v1/outbox`, `python -m bot.portal outbox`). Its
calendar and its limit on reissues come from the knowledge base, so they match what the
assistant tells voters.

`SimulatedPortal` holds the rules as plain (blocking) methods; the aiohttp handlers only
translate HTTP to calls of them, in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import phonenumbers
from aiohttp import web
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.knowledge import Knowledge, default_knowledge
from bot.personal_data.parsing import MASK, mask_email, mask_phone
from bot.portal.models import (
    NumenLock,
    OutboxMessage,
    ResetRequest,
    StoredResponse,
    VerificationFailure,
    Voter,
)
from bot.portal.settings import Limits

logger = logging.getLogger(__name__)

REISSUE_EVENT = "nouvel_identifiant"  # calendar event of the knowledge base
REISSUE_MAX_RULE = "identifiant_demandes_max"  # rule of the knowledge base
RESET_WINDOW_SECONDS = 3600
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_BODY_BYTES = 16 * 1024
NUMEN = re.compile(r"\A\d{2}[A-Z]\d{7}[A-Z]{3}\Z", re.ASCII)
ISO_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z", re.ASCII)
PHONE_E164 = re.compile(r"\A\+\d{8,15}\Z", re.ASCII)
EMAIL = re.compile(r"\A[^@\s]{1,64}@[^@\s]+\.[^@\s]+\Z")
IDEMPOTENCY_KEY = re.compile(r"\A[\x21-\x7e]{1,255}\Z", re.ASCII)
VOTER_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read from an SMS


class InvalidRequest(ValueError):
    """A request body that breaks the API contract (answered 400)."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer of the portal: status code and JSON body."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class ReissueRequest:
    numen: str
    birth_date: date
    phone: str

    @classmethod
    def from_json(cls, payload: Any) -> ReissueRequest:
        if not isinstance(payload, dict):
            raise InvalidRequest
        numen, birth_date, phone = (payload.get(f) for f in ("numen", "birth_date", "phone"))
        if not all(isinstance(value, str) for value in (numen, birth_date, phone)):
            raise InvalidRequest
        if not (NUMEN.match(numen) and ISO_DATE.match(birth_date) and PHONE_E164.match(phone)):
            raise InvalidRequest
        try:
            return cls(numen, date.fromisoformat(birth_date), phone)
        except ValueError:
            raise InvalidRequest from None


def reset_email_from_json(payload: Any) -> str:
    email = payload.get("email") if isinstance(payload, dict) else None
    if not isinstance(email, str) or len(email) > 254 or not EMAIL.match(email.strip()):
        raise InvalidRequest
    return email.strip().lower()


class SimulatedPortal:
    """The portal's rules over its database (tables created by `bot.db.create_schema`). Every
    method is one transaction; `clock` gives the real time (epoch seconds) of locks and rate
    limits, the calendar follows `BOT_NOW`."""

    def __init__(
        self,
        engine: Engine,
        knowledge: Knowledge,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._knowledge = knowledge
        self._limits = limits or Limits()
        self._clock = clock
        self._log_key = secrets.token_bytes(16)  # log tags can be matched within a run only

    # --- The two requests ---------------------------------------------------------------------

    def request_password_reset(self, email: str, idempotency_key: str) -> Reply:
        """Accept any address alike; e-mail a link only to a voter of the registry."""
        portal_url = self._knowledge.rule("portail_url")
        email_hash = _digest(email)
        now = self._clock()

        def decide(session: Session) -> Reply:
            since = now - RESET_WINDOW_SECONDS
            session.execute(delete(ResetRequest).where(ResetRequest.created_at <= since))
            recent = session.scalars(
                select(ResetRequest.created_at)
                .where(ResetRequest.email_hash == email_hash)
                .order_by(ResetRequest.created_at)
            ).all()
            if len(recent) >= self._limits.reset_max_per_hour:
                wait = max(1, math.ceil(recent[0] + RESET_WINDOW_SECONDS - now))
                return Reply(429, {"status": "rate_limited", "retry_after": wait})
            session.add(ResetRequest(email_hash=email_hash, created_at=now))
            voter = session.scalars(select(Voter).filter_by(email=email)).first()
            if voter is not None:
                link = f"{portal_url}?reinitialisation={secrets.token_urlsafe(24)}"
                self._send(session, "email", mask_email(voter.email), reset_email(voter, link), now)
            return Reply(202, {"status": "accepted"})

        reply = self._once("password-resets", idempotency_key, now, decide)
        logger.info("password reset: %s (address %s)", reply.body["status"], self._tag(email_hash))
        return reply

    def request_voter_id_reissue(self, request: ReissueRequest, idempotency_key: str) -> Reply:
        """Check the calendar, the lock and the voter's identity, then send a new voter ID by
        SMS and a confirmation e-mail, at most `identifiant_demandes_max` times per voter."""
        period = self._knowledge.period(REISSUE_EVENT)
        calendar = self._knowledge.period_status(REISSUE_EVENT)
        max_reissues = int(self._knowledge.rule(REISSUE_MAX_RULE))
        numen_hash = _digest(request.numen)
        now = self._clock()

        def decide(session: Session) -> Reply:
            if calendar == "before":
                return Reply(410, {"status": "not_open"})
            if calendar == "closed":
                return Reply(410, {"status": "deadline_passed", "deadline": period.end_text})
            lock = self._numen_lock(session, numen_hash)  # one request per NUMEN at a time
            if lock.locked_until > now:
                wait = max(1, math.ceil(lock.locked_until - now))
                return Reply(423, {"status": "locked", "retry_after": wait})
            voter = session.scalars(select(Voter).filter_by(numen=request.numen)).first()
            if voter is None or voter.date_naissance != request.birth_date:
                self._count_failure(session, lock, now)
                return Reply(422, {"status": "mismatch"})  # never say which field is wrong
            session.execute(
                delete(VerificationFailure).where(VerificationFailure.numen_hash == numen_hash)
            )
            # Atomic on SQLite and PostgreSQL: concurrent requests cannot pass the limit.
            counted = session.execute(
                update(Voter)
                .where(Voter.id == voter.id, Voter.reissues < max_reissues)
                .values(reissues=Voter.reissues + 1)
                .execution_options(synchronize_session=False)
            )
            if counted.rowcount != 1:
                return Reply(409, {"status": "limit_reached"})
            used = session.scalar(select(Voter.reissues).where(Voter.id == voter.id))
            masked_phone = _mask_phone(request.phone)
            self._send(session, "sms", masked_phone, reissue_sms(new_voter_id()), now)
            self._send(
                session,
                "email",
                mask_email(voter.email),
                reissue_confirmation(voter, masked_phone, used, max_reissues),
                now,
            )
            return Reply(
                200,
                {
                    "status": "sent",
                    "masked_email": mask_email(voter.email),
                    "remaining": max(0, max_reissues - used),
                },
            )

        reply = self._once("voter-id-reissues", idempotency_key, now, decide)
        logger.info("voter-ID reissue: %s (NUMEN %s)", reply.body["status"], self._tag(numen_hash))
        return reply

    # --- The outbox ---------------------------------------------------------------------------

    def outbox(self) -> list[dict[str, Any]]:
        return outbox(self._engine)

    def clear_outbox(self) -> int:
        return clear_outbox(self._engine)

    # --- Inside the transactions --------------------------------------------------------------

    def _once(
        self, operation: str, key: str, now: float, decide: Callable[[Session], Reply]
    ) -> Reply:
        """`decide` once per idempotency key; a repeated key gets the stored answer.

        The key's row is written first: a concurrent request with the same key waits on it
        (SQLite's write lock, PostgreSQL's unique index) and then replays the answer.
        """
        key_hash = _digest(f"{operation}\n{key}")
        try:
            with Session(self._engine, future=True) as session, session.begin():
                stored = session.get(StoredResponse, key_hash)
                if stored is not None:
                    logger.info("%s: repeated idempotency key, answer replayed", operation)
                    return Reply(stored.status_code, json.loads(stored.body))
                session.execute(
                    delete(StoredResponse).where(
                        StoredResponse.created_at < now - IDEMPOTENCY_TTL_SECONDS
                    )
                )
                record = StoredResponse(key_hash=key_hash, created_at=now)
                session.add(record)
                session.flush()
                reply = decide(session)
                record.status_code, record.body = reply.status, json.dumps(reply.body)
                return reply
        except IntegrityError:
            with Session(self._engine, future=True) as session:
                stored = session.get(StoredResponse, key_hash)
            if stored is None or stored.status_code is None:
                raise
            logger.info("%s: concurrent idempotency key, answer replayed", operation)
            return Reply(stored.status_code, json.loads(stored.body))

    @staticmethod
    def _numen_lock(session: Session, numen_hash: str) -> NumenLock:
        """The NUMEN's lock row, created if missing and held until the transaction ends
        (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises):
        concurrent mismatches for one NUMEN are counted one after the other, so the lock falls
        at exactly the limit."""
        dialect = session.get_bind().dialect.name
        insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[dialect]
        session.execute(
            insert(NumenLock)
            .values(numen_hash=numen_hash, locked_until=0.0)
            .on_conflict_do_nothing(index_elements=["numen_hash"])
        )
        return session.get(NumenLock, numen_hash, with_for_update=True, populate_existing=True)

    def _count_failure(self, session: Session, lock: NumenLock, now: float) -> None:
        """Lock the NUMEN after too many mismatches within the window (known or not)."""
        numen_hash = lock.numen_hash
        since = now - self._limits.failure_window_minutes * 60
        session.execute(delete(VerificationFailure).where(VerificationFailure.created_at < since))
        session.add(VerificationFailure(numen_hash=numen_hash, created_at=now))
        session.flush()
        failures = session.scalar(
            select(func.count())
            .select_from(VerificationFailure)
            .where(VerificationFailure.numen_hash == numen_hash)
        )
        if failures >= self._limits.lock_after_failures:
            lock.locked_until = now + self._limits.lock_minutes * 60
            session.execute(
                delete(VerificationFailure).where(VerificationFailure.numen_hash == numen_hash)
            )
            logger.warning("NUMEN %s locked after %d mismatches", self._tag(numen_hash), failures)

    @staticmethod
    def _send(session: Session, channel: str, recipient: str, body: str, now: float) -> None:
        session.add(OutboxMessage(channel=channel, recipient=recipient, body=body, created_at=now))

    def _tag(self, value: str) -> str:
        """A short keyed hash to follow one voter through the logs without naming them."""
        return "#" + hmac.new(self._log_key, value.encode(), hashlib.sha256).hexdigest()[:8]


def outbox(engine: Engine) -> list[dict[str, Any]]:
    """The messages the portal sent so far, oldest first (recipients masked)."""
    with Session(engine, future=True) as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [
            {
                "id": row.id,
                "channel": row.channel,
                "to": row.recipient,
                "body": row.body,
                "created_at": _iso(row.created_at),
            }
            for row in rows
        ]


def clear_outbox(engine: Engine) -> int:
    """Empty the outbox; the number of messages removed."""
    with Session(engine, future=True) as session, session.begin():
        return session.execute(delete(OutboxMessage)).rowcount


# --- What the portal writes (French: the voter reads it) ---------------------------------------


def new_voter_id() -> str:
    """A synthetic voter ID (the real portal's format is not public)."""
    return "".join(secrets.choice(VOTER_ID_ALPHABET) for _ in range(10))


def reissue_sms(voter_id: str) -> str:
    return (
        f"Élections professionnelles : votre nouvel identifiant électeur est {voter_id}. "
        "Il remplace le précédent. Ne le communiquez à personne."
    )


def reissue_confirmation(voter: Voter, masked_phone: str, used: int, max_reissues: int) -> str:
    return (
        f"Bonjour {voter.prenom} {voter.nom},\n\n"
        f"Un nouvel identifiant électeur vient de vous être envoyé par SMS au {masked_phone} "
        f"(demande {used} sur {max_reissues}).\n\n"
        "Si vous n'êtes pas à l'origine de cette demande, contactez votre assistance académique."
    )


def reset_email(voter: Voter, link: str) -> str:
    return (
        f"Bonjour {voter.prenom} {voter.nom},\n\n"
        "Vous avez demandé à réinitialiser votre mot de passe électeur. Cliquez sur ce lien "
        f"pour définir un nouveau mot de passe :\n{link}\n\n"
        "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message : votre mot de "
        "passe actuel reste valable."
    )


def _mask_phone(e164: str) -> str:
    try:
        return mask_phone(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return e164[:3] + MASK * (len(e164) - 5) + e164[-2:]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


# --- HTTP ---------------------------------------------------------------------------------------

PORTAL = web.AppKey("portal", SimulatedPortal)
TOKEN = web.AppKey("token", str)
INVALID = {"status": "invalid_request"}


@web.middleware
async def _internal_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as error:
        # The type only: database errors quote the parameters (NUMEN, address) in their text.
        logger.error(
            "internal error on %s %s: %s", request.method, request.path, type(error).__name__
        )
        return web.json_response({"status": "error"}, status=500)


@web.middleware
async def _bearer_token(request: web.Request, handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {request.app[TOKEN]}".encode()):
            return web.json_response(
                {"status": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
    return await handler(request)


async def _key_and_body(request: web.Request) -> tuple[str, Any]:
    key = request.headers.get("Idempotency-Key", "")
    if not IDEMPOTENCY_KEY.match(key):
        raise InvalidRequest
    try:
        return key, await request.json()
    except ValueError:
        raise InvalidRequest from None


async def password_resets(request: web.Request) -> web.Response:
    try:
        key, payload = await _key_and_body(request)
        email = reset_email_from_json(payload)
    except InvalidRequest:
        return web.json_response(INVALID, status=400)
    reply = await asyncio.to_thread(request.app[PORTAL].request_password_reset, email, key)
    return web.json_response(reply.body, status=reply.status)


async def voter_id_reissues(request: web.Request) -> web.Response:
    try:
        key, payload = await _key_and_body(request)
        reissue = ReissueRequest.from_json(payload)
    except InvalidRequest:
        return web.json_response(INVALID, status=400)
    reply = await asyncio.to_thread(request.app[PORTAL].request_voter_id_reissue, reissue, key)
    return web.json_response(reply.body, status=reply.status)


async def get_outbox(request: web.Request) -> web.Response:
    messages = await asyncio.to_thread(request.app[PORTAL].outbox)
    return web.json_response({"messages": messages})


async def delete_outbox(request: web.Request) -> web.Response:
    deleted = await asyncio.to_thread(request.app[PORTAL].clear_outbox)
    return web.json_response({"deleted": deleted})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(
    engine: Engine,
    token: str,
    *,
    knowledge: Knowledge | None = None,
    limits: Limits | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The simulated portal over `engine` (from `bot.portal.models.portal_engine`), requiring
    `Authorization: Bearer <token>` on `/api/`. Defaults: the assistant's knowledge base and
    the limits of the environment."""
    if not token:
        raise ValueError("the portal needs a token")
    app = web.Application(
        middlewares=[_internal_errors, _bearer_token], client_max_size=MAX_BODY_BYTES
    )
    app[TOKEN] = token
    app[PORTAL] = SimulatedPortal(
        engine, knowledge or default_knowledge(), limits or Limits.from_env(), clock
    )
    app.router.add_get("/health", health)
    app.router.add_post("/api/v1/password-resets", password_resets)
    app.router.add_post("/api/v1/voter-id-reissues", voter_id_reissues)
    app.router.add_get("/api/v1/outbox", get_outbox)
    app.router.add_delete("/api/v1/outbox", delete_outbox)
    return app
