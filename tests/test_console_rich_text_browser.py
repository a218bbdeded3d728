"""The agents' console in a real browser, without Rasa: the assistant's Markdown is shown formatted
(bold, lists, links) in the transcript and in the copilot's cards, a voter's hostile message is
shown as text and runs nothing, topics and times are in French, and « Modifier » puts plain text
in the reply box. The gateway runs in this process on a fresh SQLite file with the real
knowledge base, and a fake NLU answers the copilot; `tests/browser/console-rich-text.spec.mjs`
drives Debian's Chromium (`scripts/browser.sh` installs it and the npm packages) and reports.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.answers.handoff import REASON_ASKED
from bot.local_stack import free_port
from bot.support import models
from bot.support.store import TurnNlu
from tests.browser_support import ARTIFACTS, BROWSER_DIR, require_browser
from tests.test_console_api import (
    ANSWER,
    PASSWORD,
    XSS_VOTER,
    Bench,
    FakeRasaParse,
    on_console,
    stamp,
)
from tests.test_console_browser import squeezed

SPEC = BROWSER_DIR / "console-rich-text.spec.mjs"
SCENARIO_TIMEOUT_S = 120
QUOTE = f"Je cite votre message : {XSS_VOTER}"  # an agent's reply, rendered like the assistant's


async def run_spec(config: dict) -> dict:
    config = {**config, **require_browser()}
    node = await asyncio.create_subprocess_exec(
        "node",
        str(SPEC),
        json.dumps(config),
        cwd=BROWSER_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(node.communicate(), SCENARIO_TIMEOUT_S)
    except asyncio.TimeoutError:
        node.kill()
        pytest.fail(f"the console scenario took more than {SCENARIO_TIMEOUT_S} s")
    lines = stdout.decode().strip().splitlines()
    outcome = json.loads(lines[-1]) if lines else {}
    if "result" not in outcome:
        pytest.fail(f"console scenario failed: {outcome.get('error')}\n{stderr.decode()[-3000:]}")
    return outcome["result"]


def test_the_console_shows_answers_formatted_and_voters_messages_as_text():
    fake = FakeRasaParse()
    seen: dict = {}

    async def scenario(bench: Bench) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/gateway/parse", fake.parse)
        async with TestServer(app, port=rasa_port):
            await bench.desk.record_exchange(
                "web-md", "webmail lyon", TurnNlu("webmail_access", 0.9), [{"text": ANSWER}]
            )
            await bench.desk.record_exchange(
                "web-md", "un conseiller", TurnNlu("ask_human", 0.97), []
            )
            await bench.desk.request_handoff("web-md", REASON_ASKED)
            await bench.desk.while_paused("web-md", models.WAITING, XSS_VOTER)
            handoff = bench.store.open_handoff_of("web-md")
            await bench.desk.take(handoff.id, bench.agent_id("alice"))
            await bench.desk.reply("web-md", bench.agent_id("alice"), QUOTE)
            stamp(bench, "web-md", datetime(2026, 11, 8, 13, 5))  # 14 h 05 in Paris
            seen.update(
                await run_spec(
                    {"url": str(bench.server.make_url("")), "login": "alice", "password": PASSWORD}
                )
            )

    rasa_port = free_port()
    on_console(scenario, rasa_url=f"http://127.0.0.1:{rasa_port}", kb=True)

    (ARTIFACTS / "console-rich-text.json").write_text(
        json.dumps(seen, indent=1, ensure_ascii=False)
    )
    opened = seen["opened"]
    assert seen["pageErrors"] == [] and seen["dialogs"] == []  # no alert(1) ran
    assert opened["injected"] == [] and opened["xssFlag"] is None
    assert opened["scriptLinks"] == [] and opened["cspViolations"] == []
    assert seen["axe"] == [], json.dumps(seen["axe"], indent=1)

    assert "commencée le 8 novembre 2026 à 14 h 05" in opened["meta"]
    assert XSS_VOTER in opened["queue"][0]  # the preview of the voter's last message, as text
    turns = opened["turns"]
    assert {turn["time"] for turn in turns} == {"14 h 05"}

    # The assistant's answer: bold, a numbered and a bulleted list, links; no marker left.
    answer = next(t["body"] for t in turns if t["role"] == "bot" and "Lyon" in t["body"]["text"])
    assert "**" not in answer["text"]
    assert answer["strong"] == ["Lyon", "webmail.ac-lyon.fr"]
    assert answer["items"] == [
        "ol:Allez sur https://elections2018.education.gouv.fr/portail/identification.htm",
        "ol:Suivez le guide.",
        "ul:une minuscule ;",
        "ul:un chiffre.",
    ]
    assert [(link["text"], link["href"]) for link in answer["links"]] == [
        ("webmail.ac-lyon.fr", "https://webmail.ac-lyon.fr/"),
        (
            "https://elections2018.education.gouv.fr/portail/identification.htm",
            "https://elections2018.education.gouv.fr/portail/identification.htm",
        ),
        ("guide", "https://www.education.gouv.fr/guide"),
    ]
    assert all(
        link["target"] == "_blank" and link["rel"] == "noopener noreferrer"
        for link in answer["links"]
    )
    assert set(answer["tags"]) == {"p", "strong", "a", "ol", "ul", "li"}

    # The voter's message: its text exactly, no element at all; the topics in French.
    voter = next(t for t in turns if t["role"] == "user" and "onerror" in t["body"]["text"])
    assert voter["body"]["text"] == XSS_VOTER and voter["body"]["tags"] == []
    topics = [t["nlu"] for t in turns if t["role"] == "user"]
    assert topics[0].startswith("Sujet détecté : Se connecter à sa messagerie professionnelle")
    assert topics[1].startswith("Sujet détecté : Demande à parler à une personne · confiance")
    # The agent's quote of it: rendered, but the HTML and the javascript: link stay text.
    quote = next(t["body"] for t in turns if t["role"] == "agent")
    assert quote["text"] == QUOTE.replace("**merci**", "merci")
    assert quote["tags"] == ["p", "strong"] and quote["links"] == []

    # The copilot's cards: formatted too; « Modifier » puts plain text in the reply box.
    cards = {card["title"]: card["body"] for card in opened["suggestions"]}
    lyon = cards["Messagerie de l'académie : Lyon"]
    assert lyon["strong"][:2] == ["Lyon", "webmail.ac-lyon.fr"] and "**" not in lyon["text"]
    webmail = cards["Se connecter à sa messagerie professionnelle"]  # for Lyon, like the bot
    assert "**" not in webmail["text"] and webmail["strong"] and webmail["links"]
    edited = seen["edited"]
    assert edited["replyValue"].startswith("Lyon : messagerie professionnelle webmail.ac-lyon.fr")
    assert "**" not in edited["replyValue"]
    assert squeezed(edited["replyValue"]) == squeezed(lyon["text"])  # the card's whole text
    assert seen["focus"] == "reply"
    assert Path(seen["screenshot"]).stat().st_size > 10_000
