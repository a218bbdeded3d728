"""The load benchmark's accounting: it must notice a message the gateway lost or stored twice,
and its simulated voters must get through their conversations without errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bench import load
from bot.local_stack import LocalStack
from bot.personal_data.parsing import parse_phone
from bot.training import ensure_model

SENT = [
    load.Exchange("bonjour", ("Bonjour ! Je peux vous aider.",)),
    load.Exchange("webmail Lyon", ("La messagerie de Lyon :", "https://webmail.ac-lyon.fr")),
    load.Exchange("merci", ("Avec plaisir.",)),
]


def stored(exchanges: list[load.Exchange]) -> list[dict]:
    """A history as `GET /api/history` returns it."""
    turns, ids = [], iter(range(1, 100))
    for exchange in exchanges:
        turns.append({"id": next(ids), "sender": "user", "text": exchange.user})
        turns += [{"id": next(ids), "sender": "bot", "text": text} for text in exchange.bot]
    return turns


def test_a_complete_history_has_nothing_lost_or_duplicated():
    assert load.check_history(SENT, stored(SENT)) == load.Accounting(0, 0, 0)


def test_a_missing_and_a_duplicated_turn_are_both_counted():
    history = stored([SENT[0], SENT[2], SENT[2]])
    assert load.check_history(SENT, history) == load.Accounting(lost=1, duplicated=1)


def test_a_lost_answer_counts_as_a_lost_exchange():
    history = stored(SENT)
    del history[3]  # the first bot message answering "webmail Lyon"
    accounting = load.check_history(SENT, history)
    assert accounting.lost == 1 and accounting.duplicated == 1  # stored: a different exchange


def test_the_stored_order_is_checked():
    history = stored([SENT[1], SENT[0], SENT[2]])
    assert load.check_history(SENT, history) == load.Accounting(out_of_order=1)


def test_personal_values_are_expected_masked_as_the_gateway_stores_them():
    shown = load.shown_text("  mon numen c'est 01E9501234ABC ")
    assert "01E9501234ABC" not in shown and shown.startswith("mon numen c'est")


def test_every_scenario_is_a_conversation_of_several_turns():
    rng, voters = random.Random(1), load.demo_voters()
    kinds = {load.conversation(rng, voters)[0] for _ in range(200)}
    assert kinds == set(load.SCENARIOS)
    steps = load.reissue_conversation(rng, voters)
    assert len(steps) >= 5 and steps[-2].click == "/affirm"


def test_the_simulated_voters_give_mobile_numbers_the_form_accepts():
    rng, voters = random.Random(2), load.demo_voters()
    phones = [load.reissue_conversation(rng, voters)[1].text for _ in range(300)]
    assert [p for p in phones if parse_phone(p).value is None] == []


def test_a_report_lists_each_configuration_with_its_targets(tmp_path: Path):
    tally = load.Tally(latencies_ms=[40.0, 50.0, 400.0], conversations={"faq": 1})
    tally.accounting = load.Accounting(lost=1)
    result = {
        "when": "2026-11-28T23:00:00+00:00", "stack": "local", "replicas": 1, "voters": 20,
        "think_seconds": [0.3, 1.5], "cpus": 2, "load_average_before": [0.5, 0, 0],
        "load_average_after": [1.9, 0, 0], "client_cpu_seconds": 3.0,
        "processes": {"rasa": {"peak_rss_mb": 1200.0, "cpu_seconds": 30.0}},
        **load.figures_of(tally, 1.0),
    }  # fmt: skip
    load.write_report([result], tmp_path / "load.md")
    report = (tmp_path / "load.md").read_text()
    assert "| rasa: peak RSS, CPU | 1200 MB, 30.0 s |" in report
    (tmp_path / "load.md").write_text(report + "Measured while the machine was busy.\n")
    load.write_report([result], tmp_path / "load.md")
    assert (tmp_path / "load.md").read_text().endswith("\nMeasured while the machine was busy.\n")
    assert "1 lost, 0 duplicated — **not met**" in report
    assert "p95 <= 300 ms at 20 conversations, 1 replica: 400 ms — **not met**" in report


# --- Against the real assistant ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Its own stack: the reissues must not use up the demo voters of the chore tests."""
    bot = LocalStack(tmp_path_factory.mktemp("load"), ensure_model(), {"BOT_NOW": load.BOT_NOW})
    try:
        yield bot.start()
    finally:
        bot.stop()


@pytest.mark.live
def test_concurrent_voters_get_every_answer_once(stack):
    tally, wall = asyncio.run(
        load.drive(stack.gateway_url, voters=4, duration=0, conversations=8, think=(0, 0.1), seed=3)
    )
    figures = load.figures_of(tally, wall)
    assert figures["conversations"] == 8 and figures["messages"] >= 8 * 3
    assert figures["errors_by_kind"] == {}
    assert (figures["lost"], figures["duplicated"], figures["out_of_order"]) == (0, 0, 0)


@pytest.mark.live
def test_the_history_check_sees_a_message_stored_twice_by_the_gateway(stack):
    """A voter who sends the same message twice while the client remembers one: the real
    history then holds one exchange more than expected."""

    async def twice() -> tuple[list[load.Exchange], list[dict]]:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            tally = load.Tally()
            bodies = [await load.chat(session, stack.gateway_url, "merci", tally) for _ in "12"]
            said = tuple(m["text"] for m in bodies[0]["messages"])
            return [load.Exchange("merci", said)], await load.history(session, stack.gateway_url)

    sent, history = asyncio.run(twice())
    accounting = load.check_history(sent, history)
    assert (accounting.lost, accounting.duplicated) == (0, 1)


@pytest.mark.live
def test_a_simulated_reissue_goes_through_the_form_to_the_portal(stack):
    rng, tally = random.Random(5), load.Tally()
    steps = load.reissue_conversation(rng, load.demo_voters())
    asyncio.run(load.hold_conversation(stack.gateway_url, steps, (0, 0), rng, tally))
    assert tally.errors == {} and tally.unexpected == []
    assert tally.turns_per_conversation == [len(steps)] and tally.accounting == load.Accounting()
    assert any(m["channel"] == "sms" for m in stack.portal_outbox())
