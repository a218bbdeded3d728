"""The website chat widget in a real browser, against the real assistant.

Debian's Chromium is driven by playwright-core (`tests/browser/widget.spec.mjs`, one scenario
per run); the script reports what the page showed and the assertions live here. axe-core checks
WCAG 2.1 A/AA. Screenshots go to `tests/artifacts/`. `scripts/test` installs Chromium and the npm
packages first (`scripts/browser.sh`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from bot.config import REPO_ROOT
from bot.db import make_engine
from bot.gateway.app import BAD_REQUEST, sender_id
from bot.gateway.relay import TOO_FAST, TOO_LONG, UNAVAILABLE
from bot.local_stack import LocalStack, free_port, wait_for
from bot.personal_data.vault import Vault
from tests.browser_support import ARTIFACTS, BROWSER_DIR, CHROMIUM, require_browser

SPEC = BROWSER_DIR / "widget.spec.mjs"
SCENARIO_TIMEOUT_S = 240

pytestmark = pytest.mark.live


@pytest.fixture(scope="session")
def browser() -> Path:
    """Chromium and the npm packages are there (installed by `ensure_browser`)."""
    require_browser()
    return CHROMIUM


def run_scenario(
    name: str,
    url: str,
    answers: dict[str, Callable[[], None]] | None = None,
    **extra: object,
) -> dict:
    """Run one scenario of widget.spec.mjs in the browser; what it observed."""
    config = {"scenario": name, "url": url, "artifacts": str(ARTIFACTS), "chromium": str(CHROMIUM)}
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            ["node", str(SPEC), json.dumps({**config, **extra})],
            cwd=BROWSER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        watchdog = threading.Timer(SCENARIO_TIMEOUT_S, process.kill)
        watchdog.start()
        outcome: dict = {}
        try:
            for line in process.stdout:
                message = json.loads(line)
                if "ask" in message:  # the script waits while we act on the servers
                    (answers or {})[message["ask"]]()
                    process.stdin.write("done\n")
                    process.stdin.flush()
                else:
                    outcome = message
            process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
        stderr.seek(0)
        if "result" not in outcome:
            pytest.fail(
                f"browser scenario {name} failed: {outcome.get('error')}\n"
                f"screenshot: {outcome.get('screenshot')}\nnode stderr:\n{stderr.read()[-3000:]}"
            )
    return outcome["result"]


def assert_nothing_ran(seen: dict) -> None:
    assert seen["dialogs"] == [], "a dialog opened: some text ran as script"
    assert seen["pageErrors"] == []


def assert_accessible(report: dict, state: str = "") -> None:
    assert report["violations"] == [], f"{state}: {json.dumps(report['violations'], indent=1)}"


def test_the_demo_page_embeds_the_widget_with_one_script_tag(live_bot, browser):
    seen = run_scenario("demo", live_bot.gateway_url)
    assert seen["page"]["lang"] == "fr" and seen["page"]["widgetLang"] == "fr"
    assert seen["page"]["scripts"] == ["/static/widget.js"]
    assert seen["closed"] == {"panelVisible": False, "expanded": "false"}
    opened = seen["open"]
    assert opened["panelVisible"] and opened["expanded"] == "true"
    assert opened["focus"]["className"] == "ae-input"  # focus moves into the panel
    assert opened["logAttributes"]["live"] == "polite" and opened["logAttributes"]["label"]
    assert "Bonjour" in opened["log"]["text"]
    assert [b["text"] for b in opened["log"]["buttons"]][:2] == [
        "Mot de passe oublié",
        "Identifiant électeur perdu",
    ]
    assert opened["animation"] == "none"  # prefers-reduced-motion: reduce
    assert seen["animationWithMotion"] != "none"
    for state, report in seen["axe"].items():
        assert_accessible(report, state)
    assert seen["mobile"]["panel"]["width"] == 390 and seen["mobile"]["panel"]["height"] == 844
    # Keyboard keys are explained with a keyboard only; the password warning everywhere.
    assert "Maj + Entrée" in opened["hint"] and "mot de passe" in opened["hint"]
    assert "Entrée" not in seen["mobile"]["hint"] and "mot de passe" in seen["mobile"]["hint"]
    assert seen["mobile"]["afterClose"]["launcherVisible"]
    assert "ae-launcher" in seen["mobile"]["afterClose"]["focus"]["className"]
    assert_nothing_ran(seen["seen"])


def test_a_voter_picks_lyon_with_a_button_and_finds_the_conversation_after_reload(
    live_bot, browser
):
    seen = run_scenario("conversation", live_bot.gateway_url)
    offered = [b["text"] for b in seen["afterWebmail"]["buttons"]]
    assert "Lyon" in offered and "Nantes" in offered
    assert all(b["type"] == "button" for b in seen["afterWebmail"]["buttons"])
    after = seen["afterLyon"]
    assert after["user"][-1] == "Lyon"  # the button's title, not its payload
    assert "webmail.ac-lyon.fr" in after["text"]
    assert "webmail.ac-lyon.fr (nouvel onglet)" in after["strong"]  # **bold**, and a link
    webmail = next(link for link in after["links"] if link["href"] == "https://webmail.ac-lyon.fr/")
    assert webmail["target"] == "_blank" and webmail["rel"] == "noopener noreferrer"
    assert all(link["href"].startswith(("http://", "https://")) for link in after["links"])
    assert seen["afterWebmail"]["bullets"] >= 2  # "- " lines are a list
    assert "ae-choice" in seen["focusAfterButton"]["className"]  # focus not lost

    history = seen["afterReload"]
    assert history["user"] == [
        "webmail",
        "Lyon",
        "mon NUMEN est [NUMEN masqué]",
        "je suis AESH, je vote pour quoi ?",
    ]
    assert history["masked"] == ["[NUMEN masqué]"]
    assert "01E9501234ABC" not in history["text"] and "NUMEN_MASQUE" not in history["text"]
    assert "webmail.ac-lyon.fr" in history["text"] and "AESH" in history["text"]
    for state, report in seen["axe"].items():
        assert_accessible(report, state)
    assert seen["mobilePanel"]["width"] == 390
    assert_nothing_ran(seen["seen"])
    for screenshot in seen["screenshots"]:
        assert Path(screenshot).stat().st_size > 10_000


def test_html_typed_by_a_voter_or_sent_by_the_bot_is_shown_as_text(live_bot, browser):
    typed = [
        "<img src=x onerror=alert(1)>",
        "<script>alert(1)</script>",
        '<img src=x onerror="window.__xss=1">',
    ]
    trapped = (
        "Réponse <img src=x onerror=alert(1)> avec <script>alert(2)</script> et "
        '<a href="javascript:alert(3)">un lien</a> ; **gras <b>épais</b>** ; '
        "javascript:alert(4) ; https://exemple.fr/?q=<svg/onload=alert(5)>\n"
        '- <iframe src="javascript:alert(6)"></iframe>'
    )
    button = {"title": "<b>Choix</b>", "payload": "bonjour"}
    answer = {"messages": [{"text": trapped, "buttons": [button]}]}
    seen = run_scenario("xss", live_bot.gateway_url, typed=typed, botAnswer=answer)
    for state in ("live", "afterButton", "afterReload"):
        log = seen[state]
        assert log["injected"] == [], state
        assert log["xssFlag"] is None, state
        assert all(link["href"].startswith(("http://", "https://")) for link in log["links"])
        for attempt in typed:
            assert attempt in log["user"], state
    live = seen["live"]
    assert "<script>alert(2)</script>" in live["bot"][-1]
    assert "gras <b>épais</b>" in live["strong"]
    assert '<iframe src="javascript:alert(6)"></iframe>' in live["text"]
    assert seen["afterButton"]["user"][-1] == "<b>Choix</b>"
    assert_nothing_ran(seen["seen"])


def test_the_gateway_french_error_sentences_are_the_bot_explanation(live_bot, browser):
    errors = [
        {"status": 413, "error": TOO_LONG},
        {"status": 429, "error": TOO_FAST},
        {"status": 400, "error": BAD_REQUEST},
        {"status": 503, "error": UNAVAILABLE},
    ]
    seen = run_scenario("errors", live_bot.gateway_url, errors=errors)
    for case, expected in zip(seen["cases"], errors, strict=True):
        assert case["lastError"] == expected["error"]
        assert case["input"] == f"question refusée {expected['status']}"  # kept to send again
        assert case["input"] not in case["user"]  # not shown as sent
    assert_nothing_ran(seen["seen"])


def test_the_widget_works_with_the_keyboard_alone(live_bot, browser):
    seen = run_scenario("keyboard", live_bot.gateway_url)
    assert seen["tabsToLauncher"] is not None
    assert seen["launcherFocus"]["outline"].startswith("solid")  # visible focus
    assert seen["afterOpen"]["panelVisible"]
    assert seen["afterOpen"]["focus"]["className"] == "ae-input"
    assert seen["suggestionFocus"]["className"] == "ae-choice"
    assert seen["afterSuggestion"]["log"]["user"] == [seen["suggestionFocus"]["name"]]
    assert "ae-choice" in seen["afterSuggestion"]["focus"]["className"]
    assert "CTM" in seen["afterTyping"]["log"]["text"]
    assert seen["afterTyping"]["focus"]["className"] == "ae-input"
    escaped = seen["afterEscape"]
    assert not escaped["panelVisible"] and escaped["expanded"] == "false"
    assert "ae-launcher" in escaped["focus"]["className"]  # focus back on the launcher
    assert seen["reopened"]["panelVisible"]
    assert seen["reopened"]["focus"]["className"] == "ae-input"
    assert_nothing_ran(seen["seen"])


def test_on_a_shared_computer_the_voter_clears_the_conversation_with_the_keyboard(
    live_bot, browser
):
    seen = run_scenario("clear", live_bot.gateway_url)
    assert seen["before"]["user"] == ["webmail Lyon", "mon NUMEN est 01E9501234ABC"]
    cookie = seen["cookie"]
    sender = sender_id(cookie)
    assert seen["clearFocus"]["name"] == "Effacer la conversation"
    assert seen["clearFocus"]["outline"].startswith("solid")  # visible focus
    # The question comes with the harmless choice focused; Escape closes only the question.
    assert seen["asked"]["focus"]["name"] == "Annuler" and seen["asked"]["expanded"] == "true"
    escaped = seen["escaped"]
    assert not escaped["questionVisible"] and escaped["panelVisible"]
    assert escaped["focus"]["name"] == "Effacer la conversation"
    assert escaped["log"]["user"] == seen["before"]["user"]  # nothing cleared
    assert seen["yesFocus"]["name"] == "Oui, effacer"
    after = seen["after"]
    assert after["log"]["user"] == [] and "webmail.ac-lyon.fr" not in after["log"]["text"]
    assert after["log"]["notices"][-1].startswith("Conversation effacée")
    assert after["focus"]["className"] == "ae-input" and not after["questionVisible"]
    assert seen["cookieAfter"] is None  # deleted by the gateway (HttpOnly: the page cannot)
    assert seen["afterReload"]["user"] == [] and len(seen["afterReload"]["bot"]) == 1  # welcome
    for state, report in seen["axe"].items():
        assert_accessible(report, state)
    assert_nothing_ran(seen["seen"])
    # On the server: the values typed are forgotten, the old cookie opens nothing.
    env = live_bot.env
    vault = Vault(make_engine(env["BOT_DATABASE_URL"]), env["BOT_VAULT_KEY"].encode())
    assert vault.get(sender, "numen") is None
    replay = requests.get(
        f"{live_bot.gateway_url}/api/history", headers={"Cookie": f"sid={cookie}"}, timeout=10
    )
    assert replay.json()["messages"] == [] and replay.cookies.get("sid") not in (None, cookie)
    assert replay.headers["Cache-Control"] == "no-store"


class HostSite:
    """Another site (another port, so another origin) whose page embeds the widget."""

    def __init__(self, folder: Path, gateway_url: str) -> None:
        (folder / "index.html").write_text(
            '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>Rectorat</title>'
            "<style>html { font-size: 62.5% } body * { font-size: 40px; letter-spacing: 3px }"
            " button { all: unset }</style>"
            "</head><body><main><h1>Site du rectorat</h1><p>Actualités.</p></main>"
            f'<script src="{gateway_url}/static/widget.js" defer></script></body></html>\n',
            encoding="utf-8",
        )

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=folder))
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Gateway:
    """A gateway of our own, on a fixed port, that the test can stop and start again."""

    def __init__(self, live_bot: LocalStack, port: int, logs: Path, **env: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # Its own log file beside the stack's (bot/logs.py: one writer per rotated file).
        self.env = {**live_bot.env, "RASA_URL": live_bot.url, "LOG_SERVICE": "own-gateway", **env}
        self.log = logs / "own-gateway.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.gateway", "--port", str(self.port)],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(f"{self.url}/health", self.process, timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def host_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host-site")


@pytest.fixture(scope="module")
def own_gateway(live_bot: LocalStack, host_folder: Path) -> Iterator[tuple[Gateway, HostSite]]:
    """Our own gateway, which lets the host site embed the widget, and that host site."""
    port = free_port()
    host = HostSite(host_folder, f"http://127.0.0.1:{port}")
    gateway = Gateway(live_bot, port, host_folder, GATEWAY_ALLOWED_ORIGINS=host.origin)
    gateway.start()
    try:
        yield gateway, host
    finally:
        gateway.stop()
        host.server.shutdown()


def test_when_the_gateway_stops_the_widget_says_so_and_recovers(own_gateway, browser):
    gateway, _ = own_gateway
    seen = run_scenario(
        "offline",
        gateway.url,
        answers={"stop-gateway": gateway.stop, "start-gateway": gateway.start},
    )
    down = seen["down"]
    assert down["bannerRole"] == "alert"
    assert "injoignable" in down["banner"] and "zone de saisie" in down["banner"]
    assert down["input"] == "webmail Lyon" and down["inputEditable"]
    assert "webmail Lyon" not in down["log"]["user"]
    assert "Toujours injoignable" in down["afterRetry"]
    assert_accessible(seen["axe"])
    back = seen["back"]
    assert "Connexion rétablie" in back["log"]["notices"][-1]
    assert back["input"] == "webmail Lyon"
    assert "webmail.ac-lyon.fr" in seen["afterResend"]["text"]
    assert_nothing_ran(seen["seen"])


def test_another_site_embeds_the_widget_with_one_script_tag(own_gateway, browser):
    gateway, host = own_gateway
    seen = run_scenario("embedded", gateway.url, hostPage=f"{host.origin}/index.html")
    assert seen["scripts"] == [f"{gateway.url}/static/widget.js"]
    # The host page's CSS does not reach into the widget.
    assert seen["launcher"] == {"background": "rgb(0, 0, 145)", "fontSize": "16px"}
    assert "webmail.ac-lyon.fr" in seen["live"]["text"]
    assert seen["afterReload"]["user"] == ["webmail", "Lyon"]  # the cookie went cross-origin
    assert_nothing_ran(seen["seen"])
