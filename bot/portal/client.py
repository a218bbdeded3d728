"""The client of the election portal's API (`/api/v1`), the only way the bot reaches it.

Every request carries an idempotency key, so retrying a request the portal may already have
received never sends a second SMS. The client returns outcomes; the actions word them. Each call
is counted by request and outcome (`assistant_portal_calls_total`, on the action server's
`/metrics`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

import aiohttp
from prometheus_client import Counter

from bot.portal import settings

logger = logging.getLogger(__name__)

NUMEN = re.compile(r"\A\d{2}[A-Z]\d{7}[A-Z]{3}\Z", re.ASCII)
PHONE_E164 = re.compile(r"\A\+\d{8,15}\Z", re.ASCII)
MAX_RETRIES = 2
BACKOFF_SECONDS = (0.1, 0.3)
RETRIED_STATUSES = {502, 503, 504}


class PortalUnavailable(Exception):
    """The portal could not give an answer (down, slow, refused our token, answered nonsense).

    Messages never hold personal data: they are logged.
    """


class ResetStatus(str, Enum):
    ACCEPTED = "accepted"
    RATE_LIMITED = "rate_limited"


class ReissueStatus(str, Enum):
    SENT = "sent"
    MISMATCH = "mismatch"
    LIMIT_REACHED = "limit_reached"
    DEADLINE_PASSED = "deadline_passed"
    NOT_OPEN = "not_open"
    LOCKED = "locked"


@dataclass(frozen=True)
class ResetOutcome:
    status: ResetStatus
    retry_after: int | None = None  # seconds, when rate limited


@dataclass(frozen=True)
class ReissueOutcome:
    status: ReissueStatus
    masked_email: str | None = None  # where the confirmation e-mail went, when sent
    remaining: int | None = None  # reissues left, when sent
    retry_after: int | None = None  # seconds, when locked
    deadline: str | None = None  # the portal's deadline in French, when passed


# The HTTP status the contract gives to each outcome: anything else is a broken answer.
RESET_STATUSES = {202: ResetStatus.ACCEPTED, 429: ResetStatus.RATE_LIMITED}
REISSUE_STATUSES = {
    200: {ReissueStatus.SENT},
    422: {ReissueStatus.MISMATCH},
    409: {ReissueStatus.LIMIT_REACHED},
    410: {ReissueStatus.DEADLINE_PASSED, ReissueStatus.NOT_OPEN},
    423: {ReissueStatus.LOCKED},
}


PORTAL_CALLS = Counter(
    "assistant_portal_calls",
    "Appels au portail des élections, par demande et par issue (unavailable : pas de réponse)",
    ["request", "outcome"],
)
UNAVAILABLE = "unavailable"


def _counted(request: str, statuses: type[Enum]):
    """Count each call of the decorated request by its outcome (every series starts at 0)."""
    for outcome in [*(status.value for status in statuses), UNAVAILABLE]:
        PORTAL_CALLS.labels(request, outcome)

    def decorate(method):
        @functools.wraps(method)
        async def counted(*args, **kwargs):
            try:
                outcome = await method(*args, **kwargs)
            except PortalUnavailable:
                PORTAL_CALLS.labels(request, UNAVAILABLE).inc()
                raise
            PORTAL_CALLS.labels(request, outcome.status.value).inc()
            return outcome

        return counted

    return decorate


class PortalClient:
    """Calls to the portal. `timeout` bounds one call in seconds, retries included.

    Without `session`, each call opens and closes its own; an injected session stays open.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 4.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._session = session

    @classmethod
    def from_env(cls) -> PortalClient:
        """`PORTAL_URL`, `PORTAL_TOKEN` (required) and `PORTAL_TIMEOUT_SECONDS`."""
        return cls(settings.portal_url(), settings.portal_token(), settings.timeout_seconds())

    @_counted("password_reset", ResetStatus)
    async def request_password_reset(self, email: str, idempotency_key: str) -> ResetOutcome:
        """Ask the portal to e-mail a reset link to `email` (it says "accepted" for any address)."""
        status, body = await self._post(
            "/api/v1/password-resets", {"email": email}, idempotency_key
        )
        expected = RESET_STATUSES.get(status)
        if expected is None or body.get("status") != expected.value:
            raise _unexpected("password reset", status)
        if expected is ResetStatus.RATE_LIMITED:
            return ResetOutcome(expected, retry_after=_int(body, "retry_after", status))
        return ResetOutcome(expected)

    @_counted("voter_id_reissue", ReissueStatus)
    async def request_voter_id_reissue(
        self, numen: str, birth_date: date, phone_e164: str, idempotency_key: str
    ) -> ReissueOutcome:
        """Ask the portal to send a new voter ID by SMS to `phone_e164`, once the voter's NUMEN
        and birth date match its registry."""
        if not NUMEN.match(numen):
            raise ValueError("numen must be 13 upper-case characters: 2 digits, 1 letter, ...")
        if not PHONE_E164.match(phone_e164):
            raise ValueError("phone_e164 must be an E.164 number such as +33612345678")
        status, body = await self._post(
            "/api/v1/voter-id-reissues",
            {"numen": numen, "birth_date": birth_date.isoformat(), "phone": phone_e164},
            idempotency_key,
        )
        try:
            outcome = ReissueStatus(body.get("status"))
        except ValueError:
            raise _unexpected("voter-ID reissue", status) from None
        if outcome not in REISSUE_STATUSES.get(status, ()):
            raise _unexpected("voter-ID reissue", status)
        if outcome is ReissueStatus.SENT:
            masked_email = body.get("masked_email")
            if not isinstance(masked_email, str):
                raise _unexpected("voter-ID reissue", status)
            return ReissueOutcome(
                outcome, masked_email=masked_email, remaining=_int(body, "remaining", status)
            )
        if outcome is ReissueStatus.LOCKED:
            return ReissueOutcome(outcome, retry_after=_int(body, "retry_after", status))
        if outcome is ReissueStatus.DEADLINE_PASSED:
            deadline = body.get("deadline")
            return ReissueOutcome(outcome, deadline=deadline if isinstance(deadline, str) else None)
        return ReissueOutcome(outcome)

    async def _post(self, path: str, payload: dict[str, Any], key: str) -> tuple[int, dict]:
        if not key:
            raise ValueError("an idempotency key is required")
        if self._session is not None:
            return await self._post_with_retries(self._session, path, payload, key)
        async with aiohttp.ClientSession() as session:
            return await self._post_with_retries(session, path, payload, key)

    async def _post_with_retries(
        self, session: aiohttp.ClientSession, path: str, payload: dict[str, Any], key: str
    ) -> tuple[int, dict]:
        """Retries are safe: the portal answers a repeated idempotency key from its records."""
        headers = {"Authorization": f"Bearer {self._token}", "Idempotency-Key": key}
        deadline = time.monotonic() + self._timeout
        for attempt in range(MAX_RETRIES + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PortalUnavailable(f"portal timed out after {self._timeout:g} s ({path})")
            problem: str
            try:
                async with session.post(
                    self._base_url + path,
                    json=payload,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=remaining),
                ) as response:
                    if response.status not in RETRIED_STATUSES:
                        return response.status, await _json_body(response, path)
                    problem = f"HTTP {response.status}"
            except asyncio.TimeoutError:
                problem = "timeout"
            except aiohttp.ClientConnectionError as error:
                problem = type(error).__name__
            if attempt < MAX_RETRIES:
                logger.info("portal %s: %s, retrying", path, problem)
                await asyncio.sleep(min(BACKOFF_SECONDS[attempt], max(0.0, remaining)))
        raise PortalUnavailable(f"portal unavailable ({path}): {problem}")


async def _json_body(response: aiohttp.ClientResponse, path: str) -> dict:
    if response.status == 401:
        raise PortalUnavailable(f"portal refused our token ({path}): check PORTAL_TOKEN")
    if response.status >= 500:
        raise PortalUnavailable(f"portal error ({path}): HTTP {response.status}")
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientPayloadError):
        body = None
    if not isinstance(body, dict):
        raise PortalUnavailable(f"portal answered a body that is not a JSON object ({path})")
    return body


def _int(body: dict, field: str, status: int) -> int:
    value = body.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PortalUnavailable(f"portal answer HTTP {status} lacks a valid {field!r}")
    return value


def _unexpected(request: str, status: int) -> PortalUnavailable:
    return PortalUnavailable(f"unexpected portal answer to a {request}: HTTP {status}")
