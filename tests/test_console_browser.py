"""The agents' console in a real browser, beside a voter's widget, against the whole assistant
(portal, actions, Rasa, gateway) on loopback.

An agent account is created with the command line; the agent logs in; a voter asks for a person
in the widget; the conversation appears in the console's queue by itself (server-sent events);
the agent opens it (topic and confidence of each user message), takes over, uses the copilot,
replies, and the voter's widget shows the reply; the agent hands back and the assistant answers
the voter again. axe-core checks WCAG 2.1 A/AA on each state of the console.
`tests/browser/console.spec.mjs` drives Chromium and reports; the assertions live here.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import REPO_ROOT
from bot.db import make_engine
from bot.gateway import console
from bot.local_stack import LocalStack
from bot.support import models, wording
from tests.browser_support import BROWSER_DIR, require_browser

SPEC = BROWSER_DIR / "console.spec.mjs"
SCREENSHOT_FOR_DOCS = REPO_ROOT / "docs" / "console.png"
SCENARIO_TIMEOUT_S = 150
PASSWORD = "une longue phrase de passe"

pytestmark = pytest.mark.live


def add_agent(stack: LocalStack, login: str, name: str) -> None:
    """An agent account in the stack's database, made as an administrator would."""
    subprocess.run(
        [sys.executable, "-m", "bot.support", "agent", "add", login, "--name", name],
        cwd=REPO_ROOT,
        env={**stack.env, "AGENT_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
        timeout=60,
    )


def run_console_scenario(config: dict) -> dict:
    config = {**config, **require_browser()}
    try:
        done = subprocess.run(
            ["node", str(SPEC), json.dumps(config)],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the console scenario took more than {SCENARIO_TIMEOUT_S} s")
    lines = done.stdout.strip().splitlines()
    outcome = json.loads(lines[-1]) if lines else {}
    if "result" not in outcome:
        pytest.fail(
            f"console scenario failed: {outcome.get('error')}\n"
            f"screenshots: {outcome.get('screenshots')}\nnode stderr:\n{done.stderr[-3000:]}"
        )
    return outcome["result"]


def squeezed(text: str) -> str:
    """A text without its spaces, line breaks and list markers: the reply box's plain text and
    the text of the same answer shown formatted compare equal."""
    return re.sub(r"\s+|•|^\d+\. ", "", text, flags=re.MULTILINE)


def audit_of(stack: LocalStack, login: str) -> list[models.AuditEntry]:
    engine = make_engine(stack.env["BOT_DATABASE_URL"])
    with Session(engine, future=True) as session:
        agent_id = session.scalar(select(models.Agent.id).where(models.Agent.login == login))
        return list(
            session.scalars(
                select(models.AuditEntry)
                .where(models.AuditEntry.agent_id == agent_id)
                .order_by(models.AuditEntry.id)
            )
        )


def test_an_agent_takes_over_a_voter_conversation_in_the_console_and_hands_it_back(live_bot):
    login, name = f"conseil-{secrets.token_hex(3)}", "Camille Durand"
    add_agent(live_bot, login, name)
    # Capitals and digits only: a token mixing cases and digits looks like a password, and the
    # gateway would mask the whole message.
    marker = f"REF-{secrets.randbelow(900_000) + 100_000}"
    agent_reply = f"Bonjour, ici {name} : je regarde votre dossier ({marker})."
    trap = '<img src=x onerror="window.__xss=1">'  # must show as text in the console
    voter_message = f"Ma référence est {marker} {trap} et je n'arrive pas à voter"
    seen = run_console_scenario(
        {
            "url": live_bot.gateway_url,
            "login": login,
            "password": PASSWORD,
            "marker": marker,
            "voterMessage": voter_message,
            "agentReply": agent_reply,
            "botQuestion": "webmail Lyon",
            "docs": str(SCREENSHOT_FOR_DOCS),
        }
    )
    for state, report in seen["axe"].items():
        assert report["violations"] == [], f"{state}: {json.dumps(report['violations'], indent=1)}"
    assert seen["wrongPassword"] == console.BAD_CREDENTIALS
    assert name in seen["afterLogin"]["who"] and seen["afterLogin"]["live"]

    # The voter is told a person will answer: the agent's console counts them as online.
    assert any(wording.WAITING_ONLINE in text for text in seen["voterWaiting"]["bot"])
    assert wording.STILL_WAITING in seen["voterWaiting"]["bot"][-1]

    # The conversation appeared in the queue without reloading the console.
    queued = seen["queued"]
    assert queued["sameDocument"]
    [item] = [entry for entry in queued["queue"] if marker in entry["text"]]
    assert "En attente" in item["text"] and "a demandé un conseiller" in item["text"]
    assert "Site web" in item["text"]

    opened = seen["opened"]
    assert opened["transcriptRole"] == "log" and opened["transcriptLive"] == "polite"
    users = [turn for turn in opened["turns"] if turn["role"] == "user"]
    asked = next(turn for turn in users if turn["text"] == "je veux parler à un conseiller")
    assert re.fullmatch(
        r"Sujet détecté : Demande à parler à une personne · confiance \d{1,3} %", asked["nlu"]
    )
    wrote = users[-1]
    assert wrote["text"] == voter_message  # shown as text, not as HTML
    assert wrote["nlu"] == "Sujet non détecté"  # the assistant was paused: nothing detected

    assert wording.taken(name) in seen["voterTaken"]["bot"]

    suggested = seen["suggested"]
    assert 1 <= len(suggested["suggestions"]) <= 3
    for suggestion in suggested["suggestions"]:
        assert re.match(r"\d{1,3} %", suggestion["detail"]), suggestion
        assert suggestion["buttons"] == ["Envoyer", "Modifier"]
    assert any("webmail.ac-lyon.fr" in s["text"] for s in suggested["suggestions"])
    # « Modifier »: the first suggestion, as plain text (shown formatted, with no marker).
    assert squeezed(suggested["replyValue"]) == squeezed(suggested["suggestions"][0]["text"])
    assert "**" not in suggested["replyValue"]
    assert seen["focusAfterEdit"] == "reply"

    replied = seen["replied"]
    assert replied["turns"][-1]["role"] == "agent" and replied["turns"][-1]["text"] == agent_reply
    assert seen["voterReplied"]["agent"] == [agent_reply]  # on the voter's own page

    released = seen["released"]
    assert "pas de demande ouverte" in released["handoffState"]
    assert not released["take"] and not released["release"] and not released["replyEnabled"]
    after = seen["voterAfter"]
    assert after["user"][-1] == "webmail Lyon"
    answered = after["bot"][after["bot"].index(wording.RELEASED) + 1 :]
    assert any("webmail.ac-lyon.fr" in text for text in answered)  # the assistant is back

    stats = seen["stats"]["stats"]
    requests = next(row for row in stats if row.startswith("Demandes de conseiller"))
    assert int(requests.removeprefix("Demandes de conseiller")) >= 1
    assert seen["plotWidth"] > 0
    assert seen["loggedOut"]["loginVisible"] and not seen["loggedOut"]["deskVisible"]

    for state in ("afterLogin", "queued", "opened", "suggested", "replied", "released", "stats"):
        assert seen[state]["injected"] == [] and seen[state]["xssFlag"] is None, state
        assert seen[state]["cspViolations"] == [], state
    for page in ("agent", "voter"):
        assert seen["seen"][page]["dialogs"] == [] and seen["seen"][page]["pageErrors"] == []
    for screenshot in (Path(seen["screenshot"]), SCREENSHOT_FOR_DOCS):
        assert screenshot.stat().st_size > 10_000

    trail = [entry.action for entry in audit_of(live_bot, login)]
    assert trail[0] == "login_failed"
    done = iter(trail)
    for action in ("login", "read", "take", "suggest", "reply", "release", "logout"):
        assert action in done, f"{action} missing from the audit trail {trail}"
    reply_entry = next(e for e in audit_of(live_bot, login) if e.action == "reply")
    assert json.loads(reply_entry.detail) == {"chars": len(agent_reply)}
