"""The portal's contract, `docs/portal-api.yaml`, against both sides of it, over real HTTP.

The simulated portal must answer as the document says (every answer it gives is a documented
status with a body that validates against the documented schema; a request the document refuses
gets 400 and one it allows never does), and the client must call only what the document
describes (paths, headers, bodies), understand every documented answer, and retry and time out
as the document tells the ministry's portal team. Either side drifting from the document fails
here.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import RefResolver
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate_spec
from sqlalchemy import text

from bot.config import REPO_ROOT
from bot.db import PORTAL, create_schema
from bot.knowledge import Knowledge
from bot.portal import client as portal_client
from bot.portal import settings as portal_settings
from bot.portal.client import PortalClient, PortalUnavailable
from bot.portal.models import portal_engine
from bot.portal.registry import DEMO_CSV, import_voters, parse_voters
from bot.portal.settings import Limits
from bot.portal.simulated import IDEMPOTENCY_TTL_SECONDS, create_app

SPEC_PATH = REPO_ROOT / "docs" / "portal-api.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
RESOLVER = RefResolver.from_schema(SPEC)
RESETS, REISSUES = "/api/v1/password-resets", "/api/v1/voter-id-reissues"
# What the client does with each answer, per path (the tables of bot/portal/client.py).
CLIENT_OUTCOMES = {
    RESETS: {code: {status} for code, status in portal_client.RESET_STATUSES.items()},
    REISSUES: portal_client.REISSUE_STATUSES,
}
ERRORS = {400, 401, 500}  # documented, answered by the simulator, never an outcome
TOKEN = "contract-portal-token"
VOTERS = parse_voters(DEMO_CSV.read_text(encoding="utf-8"))
MARIE = VOTERS[0]
PHONE = "+33612345678"


# --- Reading the document ----------------------------------------------------------------------


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = RESOLVER.resolve(node["$ref"])[1]
    return node


def validator(schema: dict[str, Any]) -> OAS30Validator:
    return OAS30Validator(schema, resolver=RESOLVER, format_checker=oas30_format_checker)


def operation(path: str) -> dict[str, Any]:
    return SPEC["paths"][path]["post"]


def documented_response(path: str, status: int) -> dict[str, Any] | None:
    response = operation(path)["responses"].get(str(status))
    return None if response is None else resolve(response)


def response_problems(path: str, status: int, body: Any) -> list[str]:
    """Why an answer of the portal breaks the document (empty when it conforms)."""
    response = documented_response(path, status)
    if response is None:
        return [f"{path}: HTTP {status} is not documented"]
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return [f"{path}: HTTP {status} documents no JSON body"]
    return [f"{path} HTTP {status}: {e.message}" for e in validator(schema).iter_errors(body)]


def request_is_valid(path: str, body: Any, headers: dict[str, str]) -> bool:
    schema = operation(path)["requestBody"]["content"]["application/json"]["schema"]
    if not validator(schema).is_valid(body):
        return False
    for parameter in map(resolve, operation(path)["parameters"]):
        value = headers.get(parameter["name"])
        if value is None:
            if parameter["required"]:
                return False
        elif not validator(parameter["schema"]).is_valid(value):
            return False
    return True


def outcome_codes(path: str) -> set[int]:
    retried = set(SPEC["x-assistant-client"]["retried-statuses"])
    return {int(code) for code in operation(path)["responses"]} - ERRORS - retried


def status_values(path: str, code: int) -> set[str]:
    """The `status` values the document allows in the body of answer `code`."""
    schema = resolve(documented_response(path, code)["content"]["application/json"]["schema"])
    variants = [resolve(s) for s in schema.get("oneOf", [schema])]
    return {value for s in variants for value in s["properties"]["status"]["enum"]}


# --- A simulated portal on loopback, recording what it answered --------------------------------


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    answer: Any


@dataclass
class RunningPortal:
    url: str
    engine: Any
    exchanges: list[Exchange] = field(default_factory=list)

    def post(
        self, path: str, body: Any, key: str | None = "k", token: str | None = TOKEN
    ) -> tuple[int, Any]:
        headers = {} if key is None else {"Idempotency-Key": key}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = requests.post(self.url + path, json=body, headers=headers, timeout=10)
        return response.status_code, response.json()

    def sms_sent(self) -> int:
        response = requests.get(
            self.url + "/api/v1/outbox", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        return sum(m["channel"] == "sms" for m in response.json()["messages"])

    def api_exchanges(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.path in SPEC["paths"]]


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """`app` on 127.0.0.1 in a thread of its own, so tests can call it synchronously."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()

    loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def simulated_portal(
    tmp_path: Path, knowledge: Knowledge, limits: Limits
) -> Iterator[RunningPortal]:
    engine = portal_engine(f"sqlite:///{tmp_path / 'portal.db'}")
    create_schema(engine, PORTAL)
    import_voters(engine, DEMO_CSV)
    app = create_app(engine, TOKEN, knowledge=knowledge, limits=limits)
    exchanges: list[Exchange] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        answer = json.loads(response.body) if isinstance(response, web.Response) else None
        exchanges.append(
            Exchange(
                request.method, request.path, dict(request.headers), body, response.status, answer
            )
        )

    app.on_response_prepare.append(record)
    with serving(app) as url:
        yield RunningPortal(url, engine, exchanges)
    engine.dispose()


@pytest.fixture()
def during_window(knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch) -> Knowledge:
    period = knowledge.period("nouvel_identifiant")
    pin_clock(monkeypatch, period.start + (period.end - period.start) / 2)
    return knowledge


def pin_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setenv("BOT_NOW", moment.isoformat())


# --- The document itself -----------------------------------------------------------------------


def test_the_document_is_valid_openapi_and_its_examples_match_their_schemas():
    validate_spec(SPEC)
    checked = 0
    for path in SPEC["paths"]:
        op = operation(path)
        body = op["requestBody"]["content"]["application/json"]
        validator(body["schema"]).validate(body["example"])
        for parameter in map(resolve, op["parameters"]):
            validator(parameter["schema"]).validate(parameter["example"])
        for code, response in op["responses"].items():
            content = resolve(response).get("content", {}).get("application/json")
            if content is None:
                continue
            examples = [content["example"]] if "example" in content else []
            examples += [e["value"] for e in content.get("examples", {}).values()]
            assert examples, f"{path} HTTP {code} has no example"
            for example in examples:
                assert response_problems(path, int(code), example) == []
                checked += 1
    assert checked >= 14  # 6 answers of resets and 10 of reissues carry a body


def test_the_client_calls_exactly_the_documented_paths():
    """Every `/api/` path written in client.py is documented, and every documented one is used."""
    tree = ast.parse(Path(inspect.getfile(portal_client)).read_text(encoding="utf-8"))
    called = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("/api/")
    }
    assert called == set(SPEC["paths"]) == set(CLIENT_OUTCOMES)
    assert all(set(methods) == {"post"} for methods in SPEC["paths"].values())
    scheme = SPEC["components"]["securitySchemes"][next(iter(SPEC["security"][0]))]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_the_outcomes_the_client_reads_are_those_documented():
    for path, outcomes in CLIENT_OUTCOMES.items():
        assert outcome_codes(path) == set(outcomes), path
        for code, statuses in outcomes.items():
            assert status_values(path, code) == {s.value for s in statuses}, (path, code)


def test_the_documented_timeout_retries_and_key_retention_are_the_code_s(monkeypatch):
    monkeypatch.delenv("PORTAL_TIMEOUT_SECONDS", raising=False)
    client = SPEC["x-assistant-client"]
    default = inspect.signature(PortalClient).parameters["timeout"].default
    assert client["timeout-seconds"] == default == portal_settings.timeout_seconds()
    assert client["max-retries"] == portal_client.MAX_RETRIES
    assert client["backoff-seconds"] == list(portal_client.BACKOFF_SECONDS)
    assert set(client["retried-statuses"]) == portal_client.RETRIED_STATUSES
    for path in SPEC["paths"]:
        assert {str(code) for code in client["retried-statuses"]} <= set(
            operation(path)["responses"]
        )
    assert SPEC["x-idempotency-key-retention-hours"] * 3600 == IDEMPOTENCY_TTL_SECONDS


# --- The client's side -------------------------------------------------------------------------


def test_the_client_sends_what_the_document_describes(tmp_path, during_window):
    with simulated_portal(tmp_path, during_window, Limits()) as portal:

        async def calls() -> None:
            client = PortalClient(portal.url, TOKEN)
            await client.request_password_reset(MARIE.email, "key-reset")
            await client.request_voter_id_reissue(
                MARIE.numen, MARIE.date_naissance, PHONE, "key-reissue"
            )
            await client.request_voter_id_reissue(MARIE.numen, date(2001, 1, 1), PHONE, "key-2")

        asyncio.run(calls())
    sent = portal.api_exchanges()
    assert [(e.method, e.path, e.status) for e in sent] == [
        ("POST", RESETS, 202),
        ("POST", REISSUES, 200),
        ("POST", REISSUES, 422),
    ]
    for exchange in sent:
        assert exchange.headers["Authorization"] == f"Bearer {TOKEN}"
        assert exchange.headers["Content-Type"].startswith("application/json")
        assert request_is_valid(exchange.path, exchange.body, exchange.headers), exchange
        assert response_problems(exchange.path, exchange.status, exchange.answer) == []


def stub_answering(status: int, body: Any) -> web.Application:
    """A portal that gives one answer to everything, as a document example says."""

    async def answer(request: web.Request) -> web.Response:
        if body is None:
            return web.Response(status=status, text="maintenance")
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    return app


def documented_answers() -> list[tuple[str, int, Any]]:
    """(path, code, example body or None) for every documented answer of every path."""
    answers = []
    for path in SPEC["paths"]:
        for code, response in operation(path)["responses"].items():
            content = resolve(response).get("content", {}).get("application/json")
            if content is None:
                answers.append((path, int(code), None))
                continue
            examples = [content["example"]] if "example" in content else []
            examples += [e["value"] for e in content.get("examples", {}).values()]
            answers += [(path, int(code), example) for example in examples]
    return answers


@pytest.mark.parametrize("path, code, example", documented_answers())
def test_the_client_understands_every_documented_answer(path, code, example):
    async def call(url: str) -> Any:
        client = PortalClient(url, TOKEN, timeout=2.0)
        if path == RESETS:
            return await client.request_password_reset(MARIE.email, "k")
        return await client.request_voter_id_reissue(MARIE.numen, MARIE.date_naissance, PHONE, "k")

    with serving(stub_answering(code, example)) as url:
        if code not in outcome_codes(path):
            with pytest.raises(PortalUnavailable):
                asyncio.run(call(url))
            return
        outcome = asyncio.run(call(url))
    assert outcome.status.value == example["status"]
    for name in ("retry_after", "masked_email", "remaining", "deadline"):
        if name in example:
            assert getattr(outcome, name) == example[name], name


# --- The simulated portal's side ---------------------------------------------------------------


def test_the_simulated_portal_gives_every_documented_answer_and_only_those(
    tmp_path, knowledge, monkeypatch
):
    period = knowledge.period("nouvel_identifiant")
    limits = Limits(reset_max_per_hour=1, lock_after_failures=2)
    good = {"numen": MARIE.numen, "birth_date": MARIE.date_naissance.isoformat(), "phone": PHONE}
    with simulated_portal(tmp_path, knowledge, limits) as portal:
        assert portal.post(RESETS, {"email": MARIE.email}, "r1")[0] == 202
        assert portal.post(RESETS, {"email": MARIE.email}, "r2")[0] == 429
        assert portal.post(RESETS, {"email": "pas-une-adresse"})[0] == 400
        assert portal.post(RESETS, {"email": MARIE.email}, token=None)[0] == 401
        assert portal.post(RESETS, {"email": MARIE.email}, token="faux")[0] == 401

        pin_clock(monkeypatch, period.start - (period.end - period.start))
        assert portal.post(REISSUES, good, "before") == (410, {"status": "not_open"})
        pin_clock(monkeypatch, period.end + (period.end - period.start))
        assert portal.post(REISSUES, good, "after")[1]["status"] == "deadline_passed"
        pin_clock(monkeypatch, period.start + (period.end - period.start) / 2)
        max_reissues = int(knowledge.rule("identifiant_demandes_max"))
        first = portal.post(REISSUES, good, "sent-0")
        for n in range(1, max_reissues):
            assert portal.post(REISSUES, good, f"sent-{n}")[0] == 200
        sms = portal.sms_sent()
        assert (first[0], sms) == (200, max_reissues)
        assert portal.post(REISSUES, good, "one-too-many")[0] == 409
        # The same key again: the same answer, and no second SMS.
        assert portal.post(REISSUES, good, "sent-0") == first
        assert portal.sms_sent() == sms
        wrong = {**good, "birth_date": "2001-01-01"}
        assert [portal.post(REISSUES, wrong, f"w{n}")[0] for n in range(3)] == [422, 422, 423]
        assert portal.post(REISSUES, {**good, "phone": "0612345678"})[0] == 400
        assert portal.post(REISSUES, good, key=None)[0] == 400
        assert portal.post(REISSUES, good, token=None)[0] == 401

        with portal.engine.begin() as connection:  # a broken database: the portal's own error
            connection.execute(text("DROP TABLE portal_reset_requests"))
            connection.execute(text("DROP TABLE portal_numen_locks"))
        assert portal.post(RESETS, {"email": MARIE.email}, "r3")[0] == 500
        assert portal.post(REISSUES, good, "broken")[0] == 500

    answered = portal.api_exchanges()
    for exchange in answered:
        assert response_problems(exchange.path, exchange.status, exchange.answer) == []
    for path in SPEC["paths"]:
        seen = {e.status for e in answered if e.path == path}
        undocumented_only = {int(c) for c in operation(path)["responses"]} - seen
        assert undocumented_only == set(SPEC["x-assistant-client"]["retried-statuses"]), path


def request_fields(path: str) -> dict[str, st.SearchStrategy[str]]:
    """Each request field of `path` and values the document allows for it."""
    schema = resolve(operation(path)["requestBody"]["content"]["application/json"]["schema"])
    return {
        name: st.dates().map(date.isoformat)
        if spec.get("format") == "date"
        else st.from_regex(spec["pattern"], fullmatch=True)
        for name, spec in schema["properties"].items()
    }


ANYTHING = st.one_of(
    st.text(max_size=20), st.none(), st.integers(), st.lists(st.integers(), max_size=2)
)
# Keys HTTP can carry (no control characters); the document and the portal judge the rest.
VALID_KEYS = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
ANY_KEYS = st.none() | st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=300,
)


@st.composite
def requests_to(draw: st.DrawFn, path: str) -> tuple[Any, str | None]:
    """A valid request, the same with one part replaced by anything, or anything at all."""
    fields = request_fields(path)
    body: Any = {name: draw(values) for name, values in fields.items()}
    key = draw(VALID_KEYS)
    spoilt = draw(st.sampled_from(["nothing", "key", "body", *fields, *fields]))
    if spoilt == "key":
        key = draw(ANY_KEYS)
    elif spoilt == "body":
        body = draw(ANYTHING | st.fixed_dictionaries({}, optional=dict.fromkeys(fields, ANYTHING)))
    elif spoilt in fields:
        body[spoilt] = draw(ANYTHING)
        if draw(st.booleans()):
            del body[spoilt]
    return body, key


@settings(
    max_examples=60,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking from_regex text crashed
    deadline=None,
    derandomize=True,  # the same requests at every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_simulated_portal_refuses_exactly_the_requests_the_document_refuses(
    tmp_path_factory, during_window, data
):
    path = data.draw(st.sampled_from(sorted(SPEC["paths"])))
    body, key = data.draw(requests_to(path))
    headers = {} if key is None else {"Idempotency-Key": key.strip(" ")}  # HTTP drops them
    valid = request_is_valid(path, body, headers)
    with simulated_portal(tmp_path_factory.mktemp("portal"), during_window, Limits()) as portal:
        status, answer = portal.post(path, body, key)
    assert (status == 400) == (not valid), (path, body, key, status, answer)
    assert response_problems(path, status, answer) == []


LOOK_ALIKES = ["01E9501234ABC\n", "٠١E9501234ABC", "０１E9501234ABC"]


@pytest.mark.parametrize("numen", LOOK_ALIKES)
def test_look_alike_numens_are_refused_by_the_portal_and_the_client(tmp_path, during_window, numen):
    # Python's `$` matches before a final newline and `\d` takes any script's digits: neither the
    # portal nor the client may read these as the demo voter's NUMEN.
    body = {"numen": numen, "birth_date": "1980-03-12", "phone": "+33612345678"}
    with simulated_portal(tmp_path, during_window, Limits()) as portal:
        status, _ = portal.post("/api/v1/voter-id-reissues", body, "cle-" + str(len(numen)))
        client = PortalClient(portal.url, TOKEN)
        with pytest.raises(ValueError):
            asyncio.run(
                client.request_voter_id_reissue(numen, date(1980, 3, 12), "+33612345678", "k")
            )
    assert status == 400
