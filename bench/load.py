"""Load benchmark: many simulated voters talking to the gateway at once, as browsers would.

`./scripts/benchmark-load` runs it. Each simulated voter holds one conversation at a time (its
own cookie, so its own Rasa sender), of several turns with short think times: FAQ questions in
varied French (SMS style included), a webmail look-up by académie or département, and voter-ID
reissues end to end with the demo voters of the simulated portal. At the end of each
conversation its stored history (`GET /api/history`) is compared with what the voter sent and
received, which finds lost and duplicated messages.

Prints throughput, latency percentiles, errors by kind, lost / duplicated messages and the peak
memory of every process; writes `bench/results/load-*.json` and `bench/report/load.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import REPO_ROOT
from bot.gateway.relay import PASSWORD_HIDDEN, clean_message
from bot.personal_data.redaction import redact

RESULTS = REPO_ROOT / "bench" / "results"
REPORT = REPO_ROOT / "bench" / "report" / "load.md"
DEMO_VOTERS = REPO_ROOT / "bot" / "portal" / "demo_voters.csv"
# Inside the voter-ID reissue window, so that chore runs end to end (as in the live tests).
BOT_NOW = "2018-11-30T12:00"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
# The load targets (one replica, 20 concurrent conversations).
TARGET_P95_MS = 300.0
TARGET_VOTERS = 20
# Text after this line in load.md is written by hand and kept when the report is rewritten.
NOTES = "<!-- notes: kept when the report is rewritten -->"

# --- What the simulated voters say ----------------------------------------------------------

GREETINGS = ("bonjour", "Bonjour !", "bjr", "salut", "bonsoir madame", "hello")
FAQ_QUESTIONS = (
    "je suis AESH, je vote pour quoi ?",
    "quand est-ce qu'on vote ?",
    "c koi les dates du vote",
    "quelles sont les règles du mot de passe ?",
    "mdp il faut combien de caractères",
    "comment créer mon mot de passe ?",
    "jarrive pas a creer mon mdp electeur",
    "c'est quoi la CAPD ?",
    "c quoi le CTA",
    "je n'ai pas reçu le mail de création",
    "jai pas recu le mail pour activer mon compte",
    "où voir les listes de candidats ?",
    "ou sont les listes des syndicats",
    "comment contester la liste électorale ?",
    "je suis pas sur la liste electorale, je fais comment",
    "comment on vote concrètement ?",
    "on vote par internet ou au bureau ?",
    "comment accéder à mon espace électeur ?",
    "lien espace electeur stp",
    "qu'est-ce que je peux faire dans l'espace électeur ?",
    "quand sont publiés les résultats ?",
    "resultats des elections c quand",
    "je suis contractuel, je vote à quels scrutins ?",
    "prof des écoles, je vote pour quelle CAP ?",
    "psyEN je vote ou",
    "qui peut voter aux élections pro ?",
    "est-ce que je peux voter depuis mon téléphone ?",
    "tu es un robot ?",
    "aide",
)
CLOSINGS = (
    "merci",
    "merci beaucoup",
    "super merci !",
    "ok merci bcp",
    "au revoir",
    "bonne journée",
)
WEBMAIL_QUESTIONS = (
    "webmail {academie}",
    "adresse du webmail de {academie}",
    "c'est quoi l'adresse de la messagerie de {academie} ?",
    "comment lire mes mails pro de l'académie de {academie}",
    "je suis dans le {departement}, c'est quoi le webmail ?",
    "messagerie pro, je suis en poste dans le {departement}",
)
ACADEMIES = ("Créteil", "Lyon", "ac-versailles", "Lille", "Aix-Marseille", "la réunion", "nantes")
DEPARTEMENTS = ("93", "69", "Seine-Saint-Denis", "Nord", "Gironde", "13")
REISSUE_STARTS = (
    "j'ai perdu mon identifiant électeur",
    "jai perdu mon id electeur",
    "je veux un nouvel identifiant électeur",
)


@dataclass(frozen=True)
class Step:
    """One message of a scenario: text typed, or the payload of an offered button (`click`);
    `expect`: words the answer must hold (a form that lost its state would not ask them)."""

    text: str = ""
    click: str = ""
    expect: tuple[str, ...] = ()


def demo_voters() -> list[dict[str, str]]:
    with DEMO_VOTERS.open(encoding="utf-8") as rows:
        return list(csv.DictReader(rows))


def faq_conversation(rng: random.Random) -> list[Step]:
    steps = [Step(rng.choice(GREETINGS))] if rng.random() < 0.5 else []
    steps += [Step(q) for q in rng.sample(FAQ_QUESTIONS, rng.randint(2, 5))]
    return [*steps, Step(rng.choice(CLOSINGS))]


def webmail_conversation(rng: random.Random) -> list[Step]:
    question = rng.choice(WEBMAIL_QUESTIONS)
    text = question.format(academie=rng.choice(ACADEMIES), departement=rng.choice(DEPARTEMENTS))
    steps = [Step(rng.choice(GREETINGS))] if rng.random() < 0.3 else []
    steps += [Step(text), Step(rng.choice(FAQ_QUESTIONS))]
    return [*steps, Step(rng.choice(CLOSINGS))]


def reissue_conversation(rng: random.Random, voters: list[dict[str, str]]) -> list[Step]:
    person = rng.choice(voters)
    # 06 40-89 and 07 40-89 are allocated mobile ranges (the form rejects unallocated ones).
    pairs = [rng.randint(40, 89)] + [rng.randint(0, 99) for _ in range(3)]
    phone = rng.choice(("06", "07")) + "".join(f" {pair:02d}" for pair in pairs)
    return [
        Step(rng.choice(REISSUE_STARTS), expect=("portable",)),
        Step(phone, expect=("NUMEN",)),
        Step(f"mon numen c'est {person['numen']}", expect=("date de naissance",)),
        Step(person["date_naissance"], expect=("J'envoie la demande",)),
        # The answer depends on how many reissues this demo voter already had (3 at most).
        Step(click="/affirm"),
        Step(rng.choice(CLOSINGS)),
    ]


SCENARIOS = ("faq", "webmail", "reissue")


def conversation(rng: random.Random, voters: list[dict[str, str]]) -> tuple[str, list[Step]]:
    """A scenario drawn from the mix: 60 % FAQ, 25 % webmail, 15 % reissue."""
    draw = rng.random()
    if draw < 0.60:
        return "faq", faq_conversation(rng)
    if draw < 0.85:
        return "webmail", webmail_conversation(rng)
    return "reissue", reissue_conversation(rng, voters)


# --- Accounting: lost and duplicated messages -----------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One user message as the history should show it, and the bot's texts that answered it."""

    user: str
    bot: tuple[str, ...]


def shown_text(text: str, today: date | None = None) -> str:
    """The user's text as the gateway stores it (cleaned, personal values masked)."""
    redacted = redact(clean_message(text), today or date.today())
    return PASSWORD_HIDDEN if redacted.password else redacted.text


def exchanges_in(history: list[dict[str, Any]]) -> list[Exchange]:
    """The history's turns grouped as a user message and the bot messages after it."""
    grouped: list[tuple[str, list[str]]] = []
    for message in history:
        if message.get("sender") == "user":
            grouped.append((message.get("text", ""), []))
        elif grouped and message.get("sender") == "bot":
            grouped[-1][1].append(message.get("text", ""))
    return [Exchange(user, tuple(bot)) for user, bot in grouped]


@dataclass
class Accounting:
    lost: int = 0  # answered to the voter, missing from the stored history
    duplicated: int = 0  # stored more often than sent
    out_of_order: int = 0  # conversations whose stored order differs from the order sent

    def add(self, other: Accounting) -> None:
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.out_of_order += other.out_of_order


def check_history(sent: list[Exchange], history: list[dict[str, Any]]) -> Accounting:
    """Compare what one voter sent and was answered with the stored conversation."""
    stored = exchanges_in(history)
    expected, found = Counter(sent), Counter(stored)
    lost = sum((expected - found).values())
    duplicated = sum((found - expected).values())
    out_of_order = int(not lost and not duplicated and stored != sent)
    return Accounting(lost, duplicated, out_of_order)


# --- The simulated voters -------------------------------------------------------------------


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    accounting: Accounting = field(default_factory=Accounting)
    conversations: Counter = field(default_factory=Counter)
    turns_per_conversation: list[int] = field(default_factory=list)
    unexpected: list[dict[str, str]] = field(default_factory=list)  # a few, to read
    client_cpu_seconds: float = 0.0  # the load client's own CPU time during the load


async def chat(
    session: aiohttp.ClientSession, gateway: str, text: str, tally: Tally
) -> dict[str, Any] | None:
    """Send one message; its latency, or the kind of error, go into `tally`."""
    begin = time.perf_counter()
    try:
        async with session.post(f"{gateway}/api/chat", json={"message": text}) as reply:
            body = await reply.json(content_type=None)
            status = reply.status
    except asyncio.TimeoutError:
        tally.errors["timeout"] += 1
        return None
    except aiohttp.ClientError as error:
        tally.errors[f"connection: {type(error).__name__}"] += 1
        return None
    except json.JSONDecodeError:
        tally.errors["body not JSON"] += 1
        return None
    if status != 200:
        tally.errors[f"HTTP {status}"] += 1
        return None
    tally.latencies_ms.append((time.perf_counter() - begin) * 1000)
    if not body.get("messages"):
        tally.errors["empty answer"] += 1
    return body


async def history(session: aiohttp.ClientSession, gateway: str) -> list[dict[str, Any]]:
    """Every stored turn of this voter's conversation, page after page."""
    turns: list[dict[str, Any]] = []
    after = 0
    while True:
        async with session.get(f"{gateway}/api/history", params={"after": str(after)}) as reply:
            reply.raise_for_status()
            page = (await reply.json())["messages"]
        if not page:
            return turns
        turns += page
        after = page[-1]["id"]


async def hold_conversation(
    gateway: str, steps: list[Step], think: tuple[float, float], rng: random.Random, tally: Tally
) -> None:
    """One voter's conversation in a fresh browser session, then the check of its history."""
    sent: list[Exchange] = []
    offered: dict[str, str] = {}  # payload -> title of the buttons the bot showed
    jar = aiohttp.CookieJar(unsafe=True)  # keep the cookie of a gateway on 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=REQUEST_TIMEOUT) as session:
        for step in steps:
            await asyncio.sleep(rng.uniform(*think))
            if step.click and step.click not in offered:
                tally.errors["expected button not offered"] += 1
                if len(tally.unexpected) < 10:
                    tally.unexpected.append({"step": step.click, "offered": " ".join(offered)})
                break
            text = step.click or step.text
            body = await chat(session, gateway, text, tally)
            if body is None:
                break  # a person would reload the page; the conversation is not checked further
            said = tuple(m.get("text", "") for m in body["messages"])
            if step.expect and not all(word in "\n".join(said) for word in step.expect):
                tally.errors["unexpected answer in a form"] += 1
                if len(tally.unexpected) < 10:
                    tally.unexpected.append({"sent": sent[-1].user if sent else "", "step": text,
                                             "expected": " ".join(step.expect),
                                             "answer": " | ".join(said)})  # fmt: skip
            offered.update(
                (b["payload"], b["title"]) for m in body["messages"] for b in m.get("buttons", ())
            )
            sent.append(Exchange(offered[text] if step.click else shown_text(text), said))
        try:
            stored = await history(session, gateway)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            tally.errors["history unreadable"] += 1
            return
    tally.accounting.add(check_history(sent, stored))
    tally.turns_per_conversation.append(len(sent))


async def voter(
    gateway: str,
    rng: random.Random,
    think: tuple[float, float],
    deadline: float,
    budget: list[int],
    tally: Tally,
) -> None:
    """Conversations one after another until the deadline or the shared budget runs out."""
    voters = demo_voters()
    await asyncio.sleep(rng.uniform(0, max(think[1], 0.2)))  # do not all start at once
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        kind, steps = conversation(rng, voters)
        tally.conversations[kind] += 1
        await hold_conversation(gateway, steps, think, rng, tally)


async def drive(
    gateway: str,
    voters: int,
    duration: float,
    conversations: int,
    think: tuple[float, float],
    seed: int,
) -> tuple[Tally, float]:
    """Run the voters; the tally and the wall time."""
    tally = Tally()
    # Warm-up (not measured): the first answers of a fresh Rasa are slow.
    warm = Tally()
    await hold_conversation(
        gateway, faq_conversation(random.Random(seed)), (0, 0), random.Random(), warm
    )
    deadline = time.monotonic() + duration if duration else math.inf
    budget = [conversations or sys.maxsize]
    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(
        *(
            voter(gateway, random.Random(seed * 1000 + i), think, deadline, budget, tally)
            for i in range(voters)
        )
    )
    tally.client_cpu_seconds = time.process_time() - cpu
    return tally, time.monotonic() - started


# --- The stack under load -------------------------------------------------------------------


def production_available() -> bool:
    return importlib.util.find_spec("bot.production.stack") is not None


def make_stack(kind: str, replicas: int, workdir: Path, model: Path):
    from bot.local_stack import TEST_LIMITS

    # Simulated voters all come from 127.0.0.1: the per-address limits are not under test.
    env = {"BOT_NOW": BOT_NOW, **TEST_LIMITS}
    if kind == "local":
        from bot.local_stack import LocalStack

        return LocalStack(workdir, model, env)
    from sqlalchemy.engine import make_url

    from bot.production.stack import ProductionStack, production_settings

    # Databases of their own on the same server: the benchmark's reissues and conversations
    # must not use up the demo voters or fill the conversations of anyone else.
    settings = production_settings()
    for name in ("BOT_DATABASE_URL", "TRACKER_DATABASE_URL", "PORTAL_DATABASE_URL"):
        url = make_url(settings[name])
        env[name] = url.set(database=f"{url.database}_load").render_as_string(hide_password=False)
    return ProductionStack(workdir, model, replicas=replicas, env=env)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else math.nan


def figures_of(tally: Tally, wall: float) -> dict[str, Any]:
    latencies = tally.latencies_ms
    return {
        "messages": len(latencies),
        "conversations": sum(tally.conversations.values()),
        "conversations_by_kind": dict(tally.conversations),
        "wall_seconds": round(wall, 1),
        "throughput_msg_per_s": round(len(latencies) / wall, 2) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=math.nan), 1),
        "errors": sum(tally.errors.values()),
        "errors_by_kind": dict(tally.errors),
        "lost": tally.accounting.lost,
        "duplicated": tally.accounting.duplicated,
        "out_of_order": tally.accounting.out_of_order,
        "unexpected_answers": tally.unexpected,
        "client_cpu_seconds": round(tally.client_cpu_seconds, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    think = (args.think_min, args.think_max)
    coroutine_args = (args.voters, args.duration, args.conversations, think, args.seed)
    load_before = os.getloadavg()
    if args.gateway:  # a stack started elsewhere: no process figures
        tally, wall = asyncio.run(drive(args.gateway.rstrip("/"), *coroutine_args))
        processes: dict[str, dict[str, float]] = {}
        stack_kind, model_name = "external", ""
    else:
        from bot.training import ensure_model

        model = ensure_model()
        model_name = model.name
        stack_kind = args.stack
        with tempfile.TemporaryDirectory() as folder:
            stack = make_stack(args.stack, args.replicas, Path(folder), model)
            print(f"Starting the {args.stack} stack ({args.replicas} replica(s))…", file=sys.stderr)
            stack.start()
            try:
                cpu_before = {n: cpu_seconds(p.pid) for n, p in stack.processes.items()}
                print(f"Load: {args.voters} voters…", file=sys.stderr)
                tally, wall = asyncio.run(drive(stack.gateway_url, *coroutine_args))
                processes = {
                    name: {
                        "peak_rss_mb": round(stack.peak_memory_mb(name), 1),
                        "cpu_seconds": round(cpu_seconds(p.pid) - cpu_before[name], 1),
                    }
                    for name, p in stack.processes.items()
                }
            finally:
                stack.stop()
    return {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stack": stack_kind,
        "replicas": args.replicas,
        "voters": args.voters,
        "think_seconds": list(think),
        "seed": args.seed,
        "model": model_name,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **figures_of(tally, wall),
        "turns_per_conversation_mean": round(
            sum(tally.turns_per_conversation) / max(len(tally.turns_per_conversation), 1), 1
        ),
        "processes": processes,
    }


# --- Output ---------------------------------------------------------------------------------


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met); met is None when this run does not measure it."""
    # The latency target is for people who read and type (think time), not for a saturation run.
    single = result["replicas"] == 1 and result["voters"] == TARGET_VOTERS
    single = single and result["think_seconds"][1] > 0
    return [
        ("0 errors", str(result["errors"]), result["errors"] == 0),
        (
            "0 lost or duplicated messages",
            f"{result['lost']} lost, {result['duplicated']} duplicated",
            result["lost"] == 0 and result["duplicated"] == 0,
        ),
        (
            f"p95 <= {TARGET_P95_MS:.0f} ms at {TARGET_VOTERS} conversations, 1 replica",
            f"{result['p95_ms']:.0f} ms",
            result["p95_ms"] <= TARGET_P95_MS if single else None,
        ),
    ]


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"{result['stack']} stack, {result['replicas']} replica(s), {result['voters']} voters, "
        f"think {result['think_seconds'][0]}-{result['think_seconds'][1]} s, "
        f"{result['wall_seconds']} s, load average {result['load_average_before'][0]} -> "
        f"{result['load_average_after'][0]} on {result['cpus']} CPUs",
        f"conversations {result['conversations']} {result['conversations_by_kind']}, "
        f"messages {result['messages']}",
        f"throughput {result['throughput_msg_per_s']} messages/s",
        f"latency p50 {result['p50_ms']} / p95 {result['p95_ms']} / p99 {result['p99_ms']} / "
        f"max {result['max_ms']} ms",
        f"errors {result['errors']} {result['errors_by_kind'] or ''}".rstrip(),
        f"lost {result['lost']}, duplicated {result['duplicated']}, "
        f"out of order {result['out_of_order']}",
        *(f"  unexpected: {sample}" for sample in result["unexpected_answers"]),
    ]
    for name, figures in result["processes"].items():
        lines.append(
            f"  {name}: peak RSS {figures['peak_rss_mb']:.0f} MB, CPU {figures['cpu_seconds']} s"
        )
    for label, measured, met in targets(result):
        mark = "not measured by this run" if met is None else ("ok" if met else "NOT MET")
        lines.append(f"target {label}: {measured} ({mark})")
    return "\n".join(lines)


def configuration(result: dict[str, Any]) -> tuple:
    return (result["stack"], result["replicas"], result["voters"], tuple(result["think_seconds"]))


def _cells(r: dict[str, Any]) -> dict[str, str]:
    """One column of the report: a run's figures as text."""
    kinds = " / ".join(str(r["conversations_by_kind"].get(k, 0)) for k in SCENARIOS)
    cells = {
        "date (UTC)": r["when"][:16].replace("T", " "),
        "concurrent voters / think time": (
            f"{r['voters']} / {r['think_seconds'][0]}-{r['think_seconds'][1]} s"
        ),
        "duration": f"{r['wall_seconds']:.0f} s",
        "machine load average before -> after": (
            f"{r['load_average_before'][0]} -> {r['load_average_after'][0]} ({r['cpus']} CPUs)"
        ),
        "conversations (faq / webmail / reissue)": f"{r['conversations']} ({kinds})",
        "messages": str(r["messages"]),
        "throughput": f"{r['throughput_msg_per_s']:.1f} messages/s",
        "latency p50 / p95 / p99 / max": (
            f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['p99_ms']:.0f} / {r['max_ms']:.0f} ms"
        ),
        "errors": f"{r['errors']} {r['errors_by_kind'] or ''}".strip(),
        "lost / duplicated / out of order": (
            f"{r['lost']} / {r['duplicated']} / {r['out_of_order']}"
        ),
    }
    used = sum(figures["cpu_seconds"] for figures in r["processes"].values())
    cells["CPU used by the stack / by the load client"] = (
        f"{used / r['wall_seconds']:.2f} / {r['client_cpu_seconds'] / r['wall_seconds']:.2f} cores"
    )
    for name, figures in sorted(r["processes"].items()):
        cells[f"{name}: peak RSS, CPU"] = (
            f"{figures['peak_rss_mb']:.0f} MB, {figures['cpu_seconds']} s"
        )
    return cells


def _title(r: dict[str, Any]) -> str:
    low, high = r["think_seconds"]
    return f"{r['stack']}, {r['replicas']} replica(s), {r['voters']} voters, think {low}-{high} s"


def write_report(results: list[dict[str, Any]], target: Path = REPORT) -> None:
    """bench/report/load.md: the latest run of each configuration found in bench/results/."""
    latest: dict[tuple, dict[str, Any]] = {}
    for result in sorted(results, key=lambda r: r["when"]):
        if result["stack"] != "external":
            latest[configuration(result)] = result
    runs = sorted(
        latest.values(),
        key=lambda r: (r["think_seconds"][1] == 0, r["stack"] != "local", r["replicas"]),
    )
    columns = [_cells(r) for r in runs]
    labels = list(dict.fromkeys(label for cells in columns for label in cells))
    labels.sort(key=lambda label: label.endswith("peak RSS, CPU"))  # processes last
    notes = target.read_text().partition(NOTES)[2] if target.exists() else ""
    lines = [
        "# Load benchmark",
        "",
        "Simulated voters talk to the gateway at the same time, as browsers would (one cookie "
        "each): FAQ questions, a webmail look-up, voter-ID reissues end to end. Each stored "
        "conversation is compared with what was sent and answered (lost / duplicated). "
        "Written by `./scripts/benchmark-load`; raw figures in `bench/results/load-*.json`.",
        "",
        "Mix: 60 % FAQ conversations (greeting, 2 to 5 questions, thanks), 25 % webmail "
        "look-ups by académie or département, 15 % voter-ID reissues with a demo voter "
        "(phone, NUMEN, birth date, confirm button); each voter waits the think time before "
        "each message and starts a new conversation (new cookie) when one ends. Runs with no "
        "think time saturate the stack: their throughput is its capacity, their latency is "
        "mostly queueing. Memory is the peak resident size (VmHWM) of each process, start-up "
        "included; CPU is the time each process used during the load. The load client runs on "
        "the same machine. Stacks: `local` is `bot/local_stack.py` (one Rasa with its tracker "
        "in memory, SQLite for our database); `production` is `bot/production/stack.py` "
        "(PostgreSQL for our database and Rasa's trackers, Redis lock store, N Rasa replicas "
        "each with its action server, the gateway routing each conversation to one replica).",
        "",
        "| | " + " | ".join(_title(r) for r in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(c.get(label, "") for c in columns) + " |")
    lines += ["", "## Targets", ""]
    for r in runs:
        lines += [f"{_title(r)}:", ""]
        for label, measured, met in targets(r):
            if met is not None:
                lines.append(f"- {label}: {measured} — {'ok' if met else '**not met**'}")
        lines.append("")
    lines += [NOTES + notes.rstrip("\n")]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines).rstrip() + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--voters", type=int, default=20, help="concurrent conversations")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (0: no limit)")
    parser.add_argument("--conversations", type=int, default=0, help="stop after this many")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument(
        "--stack", choices=("local", "production"), default=None,
        help="local (one Rasa, default for 1 replica) or production (PostgreSQL + Redis)",
    )  # fmt: skip
    parser.add_argument("--think-min", type=float, default=0.3, help="seconds between turns")
    parser.add_argument("--think-max", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gateway", help="load a gateway already running at this URL")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite load.md")
    args = parser.parse_args(argv)
    if args.stack is None:
        args.stack = "local" if args.replicas == 1 else "production"
    if args.stack == "local" and args.replicas != 1:
        parser.error("the local stack has one replica; use --stack production")
    if not args.duration and not args.conversations:
        parser.error("give --duration or --conversations")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stack == "production" and not args.gateway and not production_available():
        print(
            "bot/production/stack.py is not there yet: the run with several replicas is pending.",
            file=sys.stderr,
        )
        return 2
    result = run(args)
    print(summary(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = result["when"].replace(":", "").replace("+0000", "")
    name = f"load-{result['stack']}-{result['replicas']}r-{result['voters']}v-{stamp}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if not args.no_report and not args.gateway:
        write_report([json.loads(p.read_text()) for p in RESULTS.glob("load-*.json")])
    met = [m for _, _, m in targets(result) if m is not None]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
