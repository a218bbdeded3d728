"""The election portal boundary: the client against the simulated portal, over real HTTP.

Each test starts the simulated portal on 127.0.0.1 with its own SQLite file, the knowledge base
loaded into another one, and the assistant's clock pinned inside (or outside) the KB's window
for new voter IDs. Locks and rate limits run on a fake clock the tests move forward.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import REPO_ROOT
from bot.db import PORTAL, create_schema
from bot.knowledge import Knowledge, default_knowledge
from bot.knowledge.store import Period
from bot.local_stack import free_port
from bot.portal.client import (
    PortalClient,
    PortalUnavailable,
    ReissueOutcome,
    ReissueStatus,
    ResetOutcome,
    ResetStatus,
)
from bot.portal.models import portal_engine
from bot.portal.registry import DEMO_CSV, import_voters, parse_voters
from bot.portal.settings import Limits
from bot.portal.simulated import create_app

TOKEN = "test-portal-token"
VOTERS = parse_voters(DEMO_CSV.read_text(encoding="utf-8"))
MARIE, JEAN = VOTERS[0], VOTERS[1]
PHONE = "+33612345678"
MASKED_PHONE = "+33 6 •• •• •• 78"
UNKNOWN_NUMEN = "99Z9999999ZZZ"
UNKNOWN_EMAIL = "personne.inconnue@ac-lyon.fr"


class FakeClock:
    """Real time for locks and rate limits, moved forward by the tests."""

    def __init__(self) -> None:
        self.now = 1_543_579_200.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Portal:
    """A running simulated portal."""

    url: str
    clock: FakeClock
    calls: list[str] = field(default_factory=list)

    def client(self, token: str = TOKEN, timeout: float = 4.0) -> PortalClient:
        return PortalClient(self.url, token, timeout=timeout)

    async def reissue(self, key: str, numen: str = MARIE.numen, born: date | None = None):
        return await self.client().request_voter_id_reissue(
            numen, born or MARIE.date_naissance, PHONE, key
        )

    async def http(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """A raw request, to see exactly what the portal answers."""
        headers = {"Authorization": f"Bearer {TOKEN}", **(headers or {})}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, json=body, headers=headers) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def outbox(self) -> list[dict]:
        status, body = await self.http("GET", "/api/v1/outbox")
        assert status == 200
        return body["messages"]

    async def sms(self) -> list[dict]:
        return [m for m in await self.outbox() if m["channel"] == "sms"]


Scenario = Callable[[Portal], Awaitable[None]]


@pytest.fixture()
def kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Knowledge]:
    """The assistant's knowledge base in a temporary SQLite file, as the portal reads it."""
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    monkeypatch.delenv("BOT_KB_PATH", raising=False)
    default_knowledge.cache_clear()
    yield default_knowledge()
    default_knowledge.cache_clear()


@pytest.fixture()
def window(kb: Knowledge) -> Period:
    """The KB's calendar event during which a voter may ask for a new voter ID."""
    return kb.period("nouvel_identifiant")


@pytest.fixture()
def max_reissues(kb: Knowledge) -> int:
    return int(kb.rule("identifiant_demandes_max"))


@pytest.fixture()
def during_window(window: Period, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_clock(monkeypatch, window.start + (window.end - window.start) / 2)


def pin_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setenv("BOT_NOW", moment.isoformat())


@pytest.fixture()
def with_portal(tmp_path: Path, kb: Knowledge) -> Callable[..., None]:
    """Run a scenario against a simulated portal holding the demo voters (SQLite by default)."""

    def run(scenario: Scenario, limits: Limits | None = None, url: str | None = None) -> None:
        async def main() -> None:
            engine = portal_engine(url or f"sqlite:///{tmp_path / 'portal.db'}")
            create_schema(engine, PORTAL)
            import_voters(engine, DEMO_CSV)
            clock = FakeClock()
            app = create_app(engine, TOKEN, limits=limits or Limits(), clock=clock)
            async with TestServer(app, host="127.0.0.1") as server:
                await scenario(Portal(f"http://127.0.0.1:{server.port}", clock))
            engine.dispose()

        asyncio.run(main())

    return run


def with_fake_portal(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], scenario):
    """Run `scenario(url)` against a tiny app answering every POST with `handler`."""

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", handler)
        async with TestServer(app, host="127.0.0.1") as server:
            await scenario(f"http://127.0.0.1:{server.port}")

    asyncio.run(main())


# --- Voter-ID reissue --------------------------------------------------------------------------


def test_a_verified_voter_gets_a_new_id_by_sms_and_a_confirmation_email(
    with_portal, during_window, max_reissues
):
    async def scenario(portal: Portal) -> None:
        outcome = await portal.reissue("first")
        assert outcome == ReissueOutcome(
            ReissueStatus.SENT, masked_email="m•••@ac-lyon.fr", remaining=max_reissues - 1
        )
        sms, email = await portal.outbox()
        assert (sms["channel"], sms["to"]) == ("sms", MASKED_PHONE)
        assert "nouvel identifiant électeur" in sms["body"]
        assert (email["channel"], email["to"]) == ("email", "m•••@ac-lyon.fr")
        assert "Marie Exemple" in email["body"] and MASKED_PHONE in email["body"]
        for message in (sms, email):
            for secret in (MARIE.numen, PHONE, "0612345678", MARIE.email, "1980"):
                assert secret not in str(message), secret
        assert sms["created_at"] <= email["created_at"]

    with_portal(scenario)


def test_a_wrong_birth_date_and_an_unknown_numen_get_the_same_answer(with_portal, during_window):
    async def scenario(portal: Portal) -> None:
        wrong_date = {"numen": MARIE.numen, "birth_date": "1980-03-13", "phone": PHONE}
        unknown = {"numen": UNKNOWN_NUMEN, "birth_date": "1980-03-12", "phone": PHONE}
        answers = [
            await portal.http("POST", "/api/v1/voter-id-reissues", body, {"Idempotency-Key": k})
            for k, body in (("a", wrong_date), ("b", unknown))
        ]
        assert answers == [(422, {"status": "mismatch"})] * 2
        outcome = await portal.reissue("c", born=date(1980, 3, 13))
        assert outcome.status == ReissueStatus.MISMATCH
        assert await portal.outbox() == []

    with_portal(scenario)


def test_a_voter_gets_at_most_the_number_of_reissues_the_kb_states(
    with_portal, during_window, max_reissues
):
    async def scenario(portal: Portal) -> None:
        outcomes = [await portal.reissue(f"key-{n}") for n in range(max_reissues + 1)]
        assert [o.remaining for o in outcomes[:-1]] == list(range(max_reissues - 1, -1, -1))
        assert outcomes[-1] == ReissueOutcome(ReissueStatus.LIMIT_REACHED)
        assert len(await portal.sms()) == max_reissues
        other = await portal.client().request_voter_id_reissue(
            JEAN.numen, JEAN.date_naissance, PHONE, "jean"
        )
        assert other.status == ReissueStatus.SENT  # the limit is per voter

    with_portal(scenario)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_ten_concurrent_requests_for_one_voter_send_exactly_the_allowed_sms(
    database, request, with_portal, during_window, max_reissues
):
    async def scenario(portal: Portal) -> None:
        outcomes = await asyncio.gather(*(portal.reissue(f"click-{n}") for n in range(10)))
        statuses = Counter(o.status for o in outcomes)
        assert statuses == {
            ReissueStatus.SENT: max_reissues,
            ReissueStatus.LIMIT_REACHED: 10 - max_reissues,
        }
        assert sorted(o.remaining for o in outcomes if o.status == ReissueStatus.SENT) == list(
            range(max_reissues)
        )
        assert len(await portal.sms()) == max_reissues
        # Two clicks at once with the same key: one SMS, the same answer.
        together = await asyncio.gather(
            *(portal.client().request_password_reset(JEAN.email, "click") for _ in range(5))
        )
        assert set(together) == {ResetOutcome(ResetStatus.ACCEPTED)}
        assert [m["to"] for m in await portal.outbox()].count("j•••@ac-creteil.fr") == 1

    with_portal(scenario, url=database_url(database, request))


def database_url(database: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite (the default file), else a throw-away PostgreSQL database."""
    return None if database == "sqlite" else request.getfixturevalue("postgres_url")


def test_a_repeated_idempotency_key_sends_one_sms_and_replays_the_answer(
    with_portal, during_window
):
    async def scenario(portal: Portal) -> None:
        body = {"numen": MARIE.numen, "birth_date": "1980-03-12", "phone": PHONE}
        headers = {"Idempotency-Key": "slack-retry"}
        first = await portal.http("POST", "/api/v1/voter-id-reissues", body, headers)
        again = await portal.http("POST", "/api/v1/voter-id-reissues", body, headers)
        assert first[0] == 200 and again == first
        assert len(await portal.sms()) == 1
        # A double click: the same key at the same time.
        together = await asyncio.gather(*(portal.reissue("double-click") for _ in range(5)))
        assert len(set(together)) == 1 and together[0].status == ReissueStatus.SENT
        assert len(await portal.sms()) == 2
        # The same key for another operation is another request.
        reset = await portal.client().request_password_reset(MARIE.email, "slack-retry")
        assert reset.status == ResetStatus.ACCEPTED

    with_portal(scenario)


def test_outside_the_kb_window_no_sms_is_sent(with_portal, window, monkeypatch, max_reissues):
    async def scenario(portal: Portal) -> None:
        pin_clock(monkeypatch, window.end + timedelta(minutes=1))
        late = await portal.reissue("late")
        assert late == ReissueOutcome(ReissueStatus.DEADLINE_PASSED, deadline=window.end_text)
        pin_clock(monkeypatch, window.start - timedelta(days=1))
        early = await portal.reissue("early")
        assert early == ReissueOutcome(ReissueStatus.NOT_OPEN)
        assert await portal.outbox() == []
        pin_clock(monkeypatch, window.end - timedelta(minutes=1))
        in_time = await portal.reissue("in-time")
        assert in_time.remaining == max_reissues - 1  # refusals did not count

    with_portal(scenario)


def test_a_numen_is_locked_after_repeated_mismatches_then_released(with_portal, during_window):
    limits = Limits(lock_after_failures=5, lock_minutes=30)

    async def scenario(portal: Portal) -> None:
        for attempt in range(limits.lock_after_failures):
            outcome = await portal.reissue(f"guess-{attempt}", born=date(1980, 1, attempt + 1))
            assert outcome.status == ReissueStatus.MISMATCH
        locked = await portal.reissue("right-data-too-late")
        assert locked == ReissueOutcome(ReissueStatus.LOCKED, retry_after=30 * 60)
        other = await portal.client().request_voter_id_reissue(
            JEAN.numen, JEAN.date_naissance, PHONE, "jean"
        )
        assert other.status == ReissueStatus.SENT  # only that NUMEN is locked
        portal.clock.advance(10 * 60)
        still = await portal.reissue("still-locked")
        assert still.retry_after == 20 * 60
        portal.clock.advance(20 * 60 + 1)
        assert (await portal.reissue("released")).status == ReissueStatus.SENT

    with_portal(scenario, limits)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_concurrent_guesses_at_one_numen_lock_it_at_exactly_the_limit(
    database, request, with_portal, during_window
):
    """Twelve wrong birth dates at once: five are checked, the other seven find it locked (on
    PostgreSQL the NUMEN's row is locked FOR UPDATE, so no two guesses are counted together)."""
    limits = Limits(lock_after_failures=5, lock_minutes=30)

    async def scenario(portal: Portal) -> None:
        guesses = await asyncio.gather(
            *(portal.reissue(f"guess-{n}", born=date(1970, 1, n + 1)) for n in range(12))
        )
        statuses = Counter(o.status for o in guesses)
        assert statuses == {ReissueStatus.MISMATCH: 5, ReissueStatus.LOCKED: 7}
        right = await portal.reissue("right-data-too-late")
        assert right.status == ReissueStatus.LOCKED
        assert await portal.sms() == []

    with_portal(scenario, limits, url=database_url(database, request))


def test_failures_spread_over_more_than_the_window_do_not_lock(with_portal, during_window):
    async def scenario(portal: Portal) -> None:
        for attempt in range(8):
            outcome = await portal.reissue(f"slow-{attempt}", numen=UNKNOWN_NUMEN)
            assert outcome.status == ReissueStatus.MISMATCH
            portal.clock.advance(10 * 60)

    with_portal(scenario, Limits(lock_after_failures=5, failure_window_minutes=30))


# --- Password reset ----------------------------------------------------------------------------


def test_a_reset_is_accepted_alike_for_any_address_but_mailed_only_to_a_voter(with_portal, kb):
    async def scenario(portal: Portal) -> None:
        answers = [
            await portal.http(
                "POST", "/api/v1/password-resets", {"email": address}, {"Idempotency-Key": key}
            )
            for key, address in (("known", MARIE.email.upper()), ("unknown", UNKNOWN_EMAIL))
        ]
        assert answers == [(202, {"status": "accepted"})] * 2
        [mail] = await portal.outbox()
        assert (mail["channel"], mail["to"]) == ("email", "m•••@ac-lyon.fr")
        assert kb.rule("portail_url") in mail["body"]
        outcome = await portal.client().request_password_reset(UNKNOWN_EMAIL, "client")
        assert outcome.status == ResetStatus.ACCEPTED

    with_portal(scenario)


def test_resets_are_rate_limited_per_address_known_or_not(with_portal):
    async def scenario(portal: Portal) -> None:
        for address in (MARIE.email, UNKNOWN_EMAIL):
            client = portal.client()
            outcomes = [
                await client.request_password_reset(address, f"{address}-{n}") for n in range(4)
            ]
            assert [o.status for o in outcomes] == [ResetStatus.ACCEPTED] * 3 + [
                ResetStatus.RATE_LIMITED
            ]
            assert outcomes[-1].retry_after == 3600
        assert len(await portal.outbox()) == 3
        portal.clock.advance(3601)
        again = await portal.client().request_password_reset(MARIE.email, "an-hour-later")
        assert again.status == ResetStatus.ACCEPTED

    with_portal(scenario, Limits(reset_max_per_hour=3))


# --- The contract's errors ---------------------------------------------------------------------


def test_requests_without_token_key_or_valid_body_are_refused(with_portal, during_window):
    async def scenario(portal: Portal) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(portal.url + "/api/v1/outbox") as response:
                assert response.status == 401
                assert await response.json() == {"status": "unauthorized"}
            async with session.get(portal.url + "/health") as response:
                assert (response.status, await response.json()) == (200, {"status": "ok"})
        key = {"Idempotency-Key": "k"}
        good = {"numen": MARIE.numen, "birth_date": "1980-03-12", "phone": PHONE}
        refused = [
            ("/api/v1/voter-id-reissues", good, {}),
            ("/api/v1/voter-id-reissues", {**good, "numen": "01E95012"}, key),
            ("/api/v1/voter-id-reissues", {**good, "numen": MARIE.numen.lower()}, key),
            ("/api/v1/voter-id-reissues", {**good, "birth_date": "12/03/1980"}, key),
            ("/api/v1/voter-id-reissues", {**good, "birth_date": "1980-02-31"}, key),
            ("/api/v1/voter-id-reissues", {**good, "phone": "0612345678"}, key),
            ("/api/v1/voter-id-reissues", {"numen": MARIE.numen}, key),
            ("/api/v1/voter-id-reissues", ["not", "an", "object"], key),
            ("/api/v1/password-resets", {"email": "pas-une-adresse"}, key),
            ("/api/v1/password-resets", {"email": 42}, key),
            ("/api/v1/password-resets", {"email": MARIE.email}, {}),
        ]
        for path, body, headers in refused:
            answer = await portal.http("POST", path, body, headers)
            assert answer == (400, {"status": "invalid_request"}), (path, body, headers)
        assert await portal.outbox() == []
        with pytest.raises(PortalUnavailable, match="token"):
            await portal.client(token="wrong").request_password_reset(MARIE.email, "k")
        status, body = await portal.http("DELETE", "/api/v1/outbox")
        assert (status, body) == (200, {"deleted": 0})

    with_portal(scenario)


def test_the_client_reads_its_settings_from_the_environment(with_portal, monkeypatch):
    monkeypatch.delenv("PORTAL_TOKEN", raising=False)
    with pytest.raises(RuntimeError, match="PORTAL_TOKEN"):
        PortalClient.from_env()

    async def scenario(portal: Portal) -> None:
        monkeypatch.setenv("PORTAL_URL", portal.url)
        monkeypatch.setenv("PORTAL_TOKEN", TOKEN)
        monkeypatch.setenv("PORTAL_TIMEOUT_SECONDS", "2.5")
        outcome = await PortalClient.from_env().request_password_reset(MARIE.email, "env")
        assert outcome.status == ResetStatus.ACCEPTED

    with_portal(scenario)


# --- When the portal fails ---------------------------------------------------------------------


def test_a_portal_that_is_down_is_reported_quickly():
    async def main() -> None:
        client = PortalClient(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=3.0)
        started = time.monotonic()
        with pytest.raises(PortalUnavailable):
            await client.request_password_reset(MARIE.email, "k")
        assert time.monotonic() - started < 1.5

    asyncio.run(main())


def test_a_slow_portal_is_abandoned_after_the_timeout():
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({"status": "accepted"}, status=202)

    async def scenario(url: str) -> None:
        client = PortalClient(url, TOKEN, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(PortalUnavailable):
            await client.request_voter_id_reissue(MARIE.numen, MARIE.date_naissance, PHONE, "k")
        assert 0.45 <= time.monotonic() - started < 1.5

    with_fake_portal(slow, scenario)


def test_a_busy_portal_is_retried_with_the_same_key_but_an_error_is_not():
    seen: list[tuple[str, str]] = []

    async def busy_twice(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers["Idempotency-Key"]))
        if len(seen) in (1, 2):
            return web.Response(status=503, text="maintenance")
        if request.path.endswith("voter-id-reissues"):
            body = {"status": "sent", "masked_email": "m•••@ac-lyon.fr", "remaining": 1}
            return web.json_response(body)
        return web.json_response({"status": "error"}, status=500)

    async def scenario(url: str) -> None:
        client = PortalClient(url, TOKEN)
        outcome = await client.request_voter_id_reissue(
            MARIE.numen, MARIE.date_naissance, PHONE, "once"
        )
        assert outcome.status == ReissueStatus.SENT and outcome.remaining == 1
        assert seen == [("/api/v1/voter-id-reissues", "once")] * 3
        with pytest.raises(PortalUnavailable, match="500"):
            await client.request_password_reset(MARIE.email, "err")
        assert len(seen) == 4  # a 500 is not retried

    with_fake_portal(busy_twice, scenario)


@pytest.mark.parametrize(
    "status, body",
    [
        (200, {"status": "nonsense"}),
        (200, {"status": "sent"}),  # no masked_email, no remaining
        (422, {"status": "sent", "masked_email": "x", "remaining": 1}),  # status/code disagree
        (200, "<html>proxy page</html>"),
        (400, {"status": "invalid_request"}),
    ],
)
def test_an_answer_outside_the_contract_is_an_unavailable_portal(status, body):
    async def odd(request: web.Request) -> web.Response:
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="text/html")
        return web.json_response(body, status=status)

    async def scenario(url: str) -> None:
        with pytest.raises(PortalUnavailable):
            await PortalClient(url, TOKEN).request_voter_id_reissue(
                MARIE.numen, MARIE.date_naissance, PHONE, "k"
            )

    with_fake_portal(odd, scenario)


# --- The registry ------------------------------------------------------------------------------

HEADER = "numen,nom,prenom,date_naissance,email,academie,categorie"
GOOD_ROW = "01E9501234ABC,Exemple,Marie,12/03/1980,marie.exemple@ac-lyon.fr,Lyon,PES"


# Files as spreadsheets write them, and every bad line: tests/test_registry.py


def test_importing_again_updates_voters_and_keeps_their_reissues(
    tmp_path, with_portal, during_window, max_reissues
):
    async def scenario(portal: Portal) -> None:
        assert (await portal.reissue("before-update")).remaining == max_reissues - 1
        moved = DEMO_CSV.read_text(encoding="utf-8").replace(
            "marie.exemple@ac-lyon.fr,Lyon", "marie.exemple@ac-creteil.fr,Créteil"
        )
        (tmp_path / "moved.csv").write_text(moved.replace(",", ";"), encoding="utf-8")
        report = import_voters(
            portal_engine(f"sqlite:///{tmp_path / 'portal.db'}"), tmp_path / "moved.csv"
        )
        assert (report.created, report.updated) == (0, len(VOTERS))
        outcome = await portal.reissue("after-update")
        assert outcome.masked_email == "m•••@ac-creteil.fr"
        assert outcome.remaining == max_reissues - 2

    with_portal(scenario)


def test_the_command_line_imports_a_registry_and_shows_the_outbox(tmp_path):
    env = {"PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}", "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.portal", *args],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\n{GOOD_ROW}\n{GOOD_ROW.replace('12/03', '12-03')}\n", "utf-8")
    refused = cli("import-csv", str(bad))
    assert refused.returncode == 2 and "Ligne 3" in refused.stderr
    imported = cli("import-csv", str(DEMO_CSV))
    assert imported.returncode == 0 and f"{len(VOTERS)} électeur(s) ajouté(s)" in imported.stdout
    shown = cli("outbox")
    assert shown.returncode == 0 and "vide" in shown.stdout


# --- Privacy -----------------------------------------------------------------------------------


def test_the_portal_logs_no_personal_data(with_portal, during_window, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario(portal: Portal) -> None:
        await portal.reissue("ok")
        await portal.reissue("ok")  # replayed
        for attempt in range(6):
            await portal.reissue(f"bad-{attempt}", born=date(1981, 1, 1))
        await portal.reissue("unknown", numen=UNKNOWN_NUMEN)
        for n in range(4):
            await portal.client().request_password_reset(MARIE.email, f"reset-{n}")
            await portal.client().request_password_reset(UNKNOWN_EMAIL, f"other-{n}")

    with_portal(scenario)
    logged = caplog.text
    assert "voter-ID reissue: sent" in logged and "password reset: rate_limited" in logged
    secrets = [MARIE.numen, UNKNOWN_NUMEN, PHONE, "612345678", "1980-03-12", "12/03/1980",
               "1981-01-01", MARIE.email, UNKNOWN_EMAIL, "exemple", "inconnue"]  # fmt: skip
    for secret in secrets:
        assert secret.lower() not in logged.lower(), secret
