"""What the assistant's conversations say, for the people who improve it: activity per day and
per channel, containment (conversations with no handoff), fallback and out-of-scope rates, the
most asked topics, the questions it did not understand (grouped), with plots, and those
questions as candidate NLU training examples for review.

Reads the support desk's tables (`support_conversations`, `support_turns`, `support_handoffs`)
and never writes a row nor creates a table. No personal data in any output: texts were redacted
by the gateway and are redacted again here, and conversation ids (a Telegram or Slack sender id
names a person) are never output.

`python -m bot.support.insights [--days N] [--out DIR] [--now ISO]` writes the report
(`./scripts/insights`).
"""

from __future__ import annotations

import argparse
import io
import sys
import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from bot.answers.handoff import REASON_ASKED, REASON_MISUNDERSTOOD
from bot.knowledge import Knowledge
from bot.knowledge.french import french_date
from bot.knowledge.matching import fold_key
from bot.knowledge.models import KbVersion
from bot.knowledge.topics import topic_names
from bot.personal_data.redaction import redact
from bot.support import models
from bot.support.models import USER

FALLBACK_INTENT = "nlu_fallback"  # Rasa's FallbackClassifier: the classifier was unsure
OUT_OF_SCOPE_INTENT = "out_of_scope"
BUTTON_PREFIX = "/"  # a button's payload ("/lost_voter_id"), stored as the user's turn
CANDIDATE_INTENT = "a_classer"
CANDIDATE_OUT_OF_SCOPE_INTENT = "a_classer_hors_perimetre"
# Two not-understood questions are one group when the cosine of their character 3-5-gram
# profiles (accent-free, no IDF, so a score never depends on the other questions of the period)
# reaches this: variants by a typo, a dropped or added word or punctuation score 0.72-1.0
# ("c koi le numen" / "c quoi le numen": 0.72), distinct questions sharing most of their
# words score at most 0.63 ("changer de mot de passe" / "changer d'adresse").
# tests/test_insights.py keeps these pairs.
SAME_QUESTION_SIMILARITY = 0.7
MAX_GROUPS = 200  # groups kept per list, most frequent first
MAX_VARIANTS = 10  # distinct wordings kept per group
REPORT_ROWS = 30  # groups and topics shown in the Markdown report
PLOT_TOPICS = 12
HIDDEN_TEXT = "(message masqué)"
DESK_TABLES = (
    models.Conversation.__tablename__,
    models.Turn.__tablename__,
    models.Handoff.__tablename__,
)

NO_KNOWLEDGE = (
    "La base de l'assistant ne contient pas encore la base de connaissances : démarrez "
    "l'assistant (./scripts/run) ou chargez-la (python -m bot.knowledge load), puis relancez."
)

REPORT_FILE = "rapport.md"
DAILY_PNG = "par_jour.png"
TOPICS_PNG = "sujets.png"
CANDIDATES_FILE = "candidats_nlu.yml"


# ---------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Activity:
    """Figures of one channel, or of all of them (`channel` "total")."""

    channel: str
    conversations: int = 0  # with at least one user message in the period
    messages: int = 0  # user messages, typed or button clicks, to the assistant or an agent
    handled: int = 0  # user messages answered by the assistant (an intent was recorded)
    typed: int = 0  # of those, typed rather than a button click: the rates' denominator
    fallbacks: int = 0  # typed messages classified `nlu_fallback`
    out_of_scope: int = 0  # typed messages classified `out_of_scope`
    handed_off: int = 0  # conversations with a handoff opened in the period
    handoffs: int = 0

    @property
    def containment(self) -> float | None:
        """Share of conversations the assistant handled alone (no handoff)."""
        return _share(self.conversations - self.handed_off, self.conversations)

    @property
    def fallback_rate(self) -> float | None:
        return _share(self.fallbacks, self.typed)

    @property
    def out_of_scope_rate(self) -> float | None:
        return _share(self.out_of_scope, self.typed)

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "conversations": self.conversations,
            "messages": self.messages,
            "handled_messages": self.handled,
            "typed_messages": self.typed,
            "fallbacks": self.fallbacks,
            "out_of_scope": self.out_of_scope,
            "handed_off_conversations": self.handed_off,
            "handoffs": self.handoffs,
            "containment": _rounded(self.containment),
            "fallback_rate": _rounded(self.fallback_rate),
            "out_of_scope_rate": _rounded(self.out_of_scope_rate),
        }


@dataclass(frozen=True)
class Day:
    """One local day: conversations and user messages per channel."""

    day: date
    conversations: dict[str, int]
    messages: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "conversations": dict(self.conversations),
            "messages": dict(self.messages),
        }


@dataclass(frozen=True)
class Topic:
    """An intent of user messages; `faq` when it is an answer of the knowledge base."""

    intent: str
    label: str
    count: int
    faq: bool

    def as_json(self) -> dict[str, Any]:
        return {"intent": self.intent, "label": self.label, "count": self.count, "faq": self.faq}


@dataclass(frozen=True)
class QuestionGroup:
    """Near-identical questions: the most frequent wording, how often and in how many
    conversations they were asked, and their distinct wordings (one per normalised text) with
    counts, most frequent first."""

    representative: str
    count: int
    conversations: int
    variants: tuple[tuple[str, int], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "representative": self.representative,
            "count": self.count,
            "conversations": self.conversations,
            "variants": [{"text": text, "count": count} for text, count in self.variants],
        }


@dataclass(frozen=True)
class Insights:
    start: date  # first local day of the period
    end: date  # last local day (today at `generated_at`)
    timezone: str
    generated_at: datetime  # aware, UTC
    total: Activity
    channels: tuple[Activity, ...]
    days: tuple[Day, ...]
    handoff_reasons: dict[str, int]
    topics: tuple[Topic, ...]
    not_understood: tuple[QuestionGroup, ...]
    out_of_scope: tuple[QuestionGroup, ...]

    @property
    def channel_names(self) -> list[str]:
        return [activity.channel for activity in self.channels]

    def as_json(self) -> dict[str, Any]:
        return {
            "period": {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "days": len(self.days),
                "timezone": self.timezone,
                "generated_at": self.generated_at.isoformat(),
                "label": f"Du {_french_date(self.start)} au {_french_date(self.end)}",
            },
            "totals": {**self.total.as_json(), "handoffs_by_reason": dict(self.handoff_reasons)},
            "channels": [activity.as_json() for activity in self.channels],
            "daily": [day.as_json() for day in self.days],
            "topics": [topic.as_json() for topic in self.topics],
            "not_understood": [group.as_json() for group in self.not_understood],
            "out_of_scope": [group.as_json() for group in self.out_of_scope],
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)


# ---------------------------------------------------------------------------- computing


@dataclass
class _Tally:
    conversations: set[str] = field(default_factory=set)
    messages: int = 0
    handled: int = 0
    typed: int = 0
    fallbacks: int = 0
    out_of_scope: int = 0
    handed_off: set[str] = field(default_factory=set)
    handoffs: int = 0

    def activity(self, channel: str) -> Activity:
        return Activity(
            channel=channel,
            conversations=len(self.conversations),
            messages=self.messages,
            handled=self.handled,
            typed=self.typed,
            fallbacks=self.fallbacks,
            out_of_scope=self.out_of_scope,
            handed_off=len(self.handed_off & self.conversations),
            handoffs=self.handoffs,
        )


def compute(engine: Engine, days: int = 30, now: datetime | None = None) -> Insights:
    """The figures of the last `days` local days, today included (the knowledge base's time
    zone). `now`: aware, or naive in UTC like the stored timestamps; default the real clock
    (not `BOT_NOW`: turns are stamped with the real time)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    # A desk that never answered has no tables yet: an empty report, not an error (nor a write).
    existing = inspect(engine)
    desk_opened = all(existing.has_table(name) for name in DESK_TABLES)
    knowledge = Knowledge(engine)
    zone_name = knowledge.timezone
    zone = ZoneInfo(zone_name)
    now_utc = _as_utc(now or datetime.now(timezone.utc))
    today = now_utc.astimezone(zone).date()
    start = today - timedelta(days=days - 1)
    since = datetime.combine(start, time(), zone).astimezone(timezone.utc).replace(tzinfo=None)
    until = now_utc.replace(tzinfo=None)

    totals, by_channel = _Tally(), defaultdict(_Tally)
    day_conversations: dict[tuple[date, str], set[str]] = defaultdict(set)
    day_messages: Counter[tuple[date, str]] = Counter()
    intents: Counter[str] = Counter()
    # (conversation, text) of each not-understood or out-of-scope typed question
    fallback_texts: list[tuple[str, str]] = []
    out_of_scope_texts: list[tuple[str, str]] = []

    with Session(engine, future=True) as session:
        turns = session.execute(_user_turns(since, until)) if desk_opened else ()
        for conversation, channel, at, text, intent in turns:
            day = at.replace(tzinfo=timezone.utc).astimezone(zone).date()
            day_conversations[day, channel].add(conversation)
            day_messages[day, channel] += 1
            for tally in (totals, by_channel[channel]):
                tally.conversations.add(conversation)
                tally.messages += 1
            if intent is None:  # a message to an agent, or the intent could not be read back
                continue
            intents[intent] += 1
            button = text.startswith(BUTTON_PREFIX)
            for tally in (totals, by_channel[channel]):
                tally.handled += 1
                if not button:
                    tally.typed += 1
                    tally.fallbacks += intent == FALLBACK_INTENT
                    tally.out_of_scope += intent == OUT_OF_SCOPE_INTENT
            if not button and intent == FALLBACK_INTENT:
                fallback_texts.append((conversation, text))
            elif not button and intent == OUT_OF_SCOPE_INTENT:
                out_of_scope_texts.append((conversation, text))

        handoffs = session.execute(_handoffs(since, until)).all() if desk_opened else ()
    reasons = Counter({REASON_ASKED: 0, REASON_MISUNDERSTOOD: 0})
    for conversation, channel, reason in handoffs:
        reasons[reason] += 1
        for tally in (totals, by_channel[channel]):
            tally.handed_off.add(conversation)
            tally.handoffs += 1

    channels = sorted(by_channel, key=lambda name: (-len(by_channel[name].conversations), name))
    return Insights(
        start=start,
        end=today,
        timezone=zone_name,
        generated_at=now_utc,
        total=totals.activity("total"),
        channels=tuple(by_channel[name].activity(name) for name in channels),
        days=tuple(
            Day(
                day,
                {name: len(day_conversations.get((day, name), ())) for name in channels},
                {name: day_messages[day, name] for name in channels},
            )
            for day in (start + timedelta(days=offset) for offset in range(days))
        ),
        handoff_reasons=dict(reasons),
        topics=_topics(intents, dict(knowledge.answer_titles())),
        not_understood=group_questions(fallback_texts, today),
        out_of_scope=group_questions(out_of_scope_texts, today),
    )


def _user_turns(since: datetime, until: datetime) -> Select:
    """The users' turns between `since` and `until`, with their conversation's channel."""
    return (
        select(
            models.Turn.conversation_id,
            models.Conversation.channel,
            models.Turn.at,
            models.Turn.text,
            models.Turn.intent,
        )
        .join(models.Conversation, models.Conversation.id == models.Turn.conversation_id)
        .where(models.Turn.role == USER, models.Turn.at >= since, models.Turn.at <= until)
        .order_by(models.Turn.id)
        .execution_options(yield_per=2000)
    )


def _handoffs(since: datetime, until: datetime) -> Select:
    return (
        select(models.Handoff.conversation_id, models.Handoff.channel, models.Handoff.reason)
        .where(models.Handoff.created_at >= since, models.Handoff.created_at <= until)
        .order_by(models.Handoff.id)
    )


def _as_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        return instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc)


def _topics(intents: Counter[str], titles: dict[str, str]) -> tuple[Topic, ...]:
    """Every intent but the two "not understood" ones, most frequent first, by its French name
    (`bot.knowledge.topics.topic_names`: the knowledge base's title names an answer's intent)."""
    ranked = sorted(intents.items(), key=lambda item: (-item[1], item[0]))
    names = topic_names(titles.items())
    return tuple(
        Topic(intent, names.get(intent, intent), count, intent in titles)
        for intent, count in ranked
        if intent not in (FALLBACK_INTENT, OUT_OF_SCOPE_INTENT)
    )


def safe_text(text: str, today: date) -> str:
    """A stored text as it may be output: redacted once more, in case a value slipped through
    (the redaction of a redacted text leaves it unchanged)."""
    redacted = redact(text, today)
    return HIDDEN_TEXT if redacted.password else redacted.text


def group_questions(
    questions: Iterable[tuple[str, str]], today: date | None = None
) -> tuple[QuestionGroup, ...]:
    """Group (conversation, text) questions: identical once normalised (case, accents,
    punctuation and spaces), then near-identical (`SAME_QUESTION_SIMILARITY`). Largest groups
    first; each group's representative is its most frequent wording."""
    today = today or date.today()
    wordings: dict[str, Counter[str]] = defaultdict(Counter)  # key -> wording -> count
    asked_in: dict[str, set[str]] = defaultdict(set)
    for conversation, text in questions:
        shown = " ".join(safe_text(text, today).split())  # one line, single spaces
        key = fold_key(shown)
        if not key:
            continue
        wordings[key][shown] += 1
        asked_in[key].add(conversation)
    if not wordings:
        return ()
    keys = sorted(wordings, key=lambda k: (-sum(wordings[k].values()), k))
    leader_of = _cluster(keys)
    members: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        members[leader_of[key]].append(key)
    groups = []
    for group_keys in members.values():
        variants: Counter[str] = Counter()
        conversations: set[str] = set()
        for key in group_keys:
            # One wording per normalised question: its most frequent spelling.
            wording = min(wordings[key].items(), key=lambda item: (-item[1], item[0]))[0]
            variants[wording] = sum(wordings[key].values())
            conversations |= asked_in[key]
        ranked = sorted(variants.items(), key=lambda item: (-item[1], len(item[0]), item[0]))
        groups.append(
            QuestionGroup(
                representative=ranked[0][0],
                count=sum(variants.values()),
                conversations=len(conversations),
                variants=tuple(ranked[:MAX_VARIANTS]),
            )
        )
    groups.sort(key=lambda g: (-g.count, -g.conversations, g.representative))
    return tuple(groups[:MAX_GROUPS])


def _cluster(keys: list[str]) -> dict[str, str]:
    """Single linkage: questions joined by a chain of near-identical ones are one group,
    whatever their order; each maps to its group's first key."""
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), use_idf=False, sublinear_tf=True
    )
    matrix = vectorizer.fit_transform(keys)  # rows are L2-normalised: dot product = cosine
    parent = list(range(len(keys)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    block = 512  # rows compared with every key at once: bounded memory
    for first in range(0, len(keys), block):
        similar = (matrix[first : first + block] @ matrix.T) >= SAME_QUESTION_SIMILARITY
        for row, column in zip(*similar.nonzero(), strict=True):
            a, b = root(first + int(row)), root(int(column))
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {key: keys[root(index)] for index, key in enumerate(keys)}


# ---------------------------------------------------------------------------- plots


def plot_png(insights: Insights, kind: str) -> bytes:
    """A PNG: "daily" (conversations and messages per day, stacked by channel) or "topics"
    (the most asked knowledge-base topics)."""
    # Imported here: only a plot pays for matplotlib. The object-oriented API without pyplot
    # has no global state, so it is safe in a server's threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if kind == "daily":
        figure = Figure(figsize=(10, 6), dpi=100)
        FigureCanvasAgg(figure)
        _plot_daily(figure, insights)
    elif kind == "topics":
        figure = Figure(figsize=(10, 6), dpi=100)
        FigureCanvasAgg(figure)
        _plot_topics(figure, insights)
    else:
        raise ValueError(f"unknown plot kind {kind!r}: 'daily' or 'topics'")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _plot_daily(figure: Any, insights: Insights) -> None:
    days = [day.day for day in insights.days]
    positions = np.arange(len(days))
    axes = figure.subplots(2, 1, sharex=True)
    for ax, attribute, title in (
        (axes[0], "conversations", "Conversations par jour"),
        (axes[1], "messages", "Messages des utilisateurs par jour"),
    ):
        bottom = np.zeros(len(days))
        for name in insights.channel_names:
            values = np.array([getattr(day, attribute).get(name, 0) for day in insights.days])
            ax.bar(positions, values, bottom=bottom, label=name)
            bottom += values
        ax.set_title(title)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        if not insights.channel_names:
            ax.text(0.5, 0.5, "Aucune conversation", ha="center", transform=ax.transAxes)
    if insights.channel_names:
        axes[0].legend(title="Canal", loc="upper left")
    step = max(1, len(days) // 15)
    axes[1].set_xticks(positions[::step])
    axes[1].set_xticklabels([d.strftime("%d/%m") for d in days[::step]], rotation=45)
    figure.suptitle(
        f"Du {_french_date(insights.start)} au {_french_date(insights.end)} ({insights.timezone})"
    )
    figure.tight_layout()


def _plot_topics(figure: Any, insights: Insights) -> None:
    topics = [topic for topic in insights.topics if topic.faq][:PLOT_TOPICS]
    ax = figure.subplots()
    if not topics:
        ax.text(0.5, 0.5, "Aucune question sur la FAQ", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        labels = [textwrap.shorten(topic.label, 60, placeholder="…") for topic in topics]
        positions = np.arange(len(topics))
        ax.barh(positions, [topic.count for topic in topics], color="#000091")
        ax.set_yticks(positions)
        ax.set_yticklabels(labels)
        ax.invert_yaxis()  # most asked on top
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("Messages")
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    ax.set_title(
        f"Sujets les plus demandés, du {_french_date(insights.start)} "
        f"au {_french_date(insights.end)}"
    )
    figure.tight_layout()


# ---------------------------------------------------------------------------- exports


CANDIDATES_HEADER = """\
# Candidats d'exemples d'entraînement NLU : À RELIRE ET À CLASSER avant tout usage.
# Questions que l'assistant n'a pas comprises ({fallbacks}) ou a classées hors périmètre
# ({out_of_scope}), du {start} au {end}, groupées par ressemblance (metadata : groupe,
# occurrences). Pour chaque exemple utile : le déplacer vers la bonne intention de data/nlu.yml
# ou data/nlu/ (out_of_scope compris), le reformuler si besoin, puis réentraîner ; supprimer
# les autres. Les intentions « {fallback_intent} » et « {out_of_scope_intent} » n'existent pas :
# ce fichier ne doit pas être copié tel quel dans data/. Textes masqués (NUMEN, téléphone,
# dates de naissance, adresses) ; vérifiez qu'aucun nom de personne n'y reste.
"""


def export_candidates(insights: Insights) -> str:
    """The not-understood and out-of-scope questions in Rasa's NLU YAML format, for review."""
    header = CANDIDATES_HEADER.format(
        fallbacks=insights.total.fallbacks,
        out_of_scope=insights.total.out_of_scope,
        start=_french_date(insights.start),
        end=_french_date(insights.end),
        fallback_intent=CANDIDATE_INTENT,
        out_of_scope_intent=CANDIDATE_OUT_OF_SCOPE_INTENT,
    )
    nlu = []
    for intent, groups in (
        (CANDIDATE_INTENT, insights.not_understood),
        (CANDIDATE_OUT_OF_SCOPE_INTENT, insights.out_of_scope),
    ):
        examples = [
            {"text": text, "metadata": {"groupe": number, "occurrences": count}}
            for number, group in enumerate(groups, start=1)
            for text, count in group.variants
        ]
        if examples:
            nlu.append({"intent": intent, "examples": examples})
    body = yaml.safe_dump(
        {"version": "3.1", "nlu": nlu}, allow_unicode=True, sort_keys=False, width=100
    )
    return header + body


def write_report(insights: Insights, out_dir: Path) -> Path:
    """Write the Markdown report, its two plots and the candidates file in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DAILY_PNG).write_bytes(plot_png(insights, "daily"))
    (out_dir / TOPICS_PNG).write_bytes(plot_png(insights, "topics"))
    (out_dir / CANDIDATES_FILE).write_text(export_candidates(insights), encoding="utf-8")
    report = out_dir / REPORT_FILE
    report.write_text(markdown_report(insights), encoding="utf-8")
    return report


def markdown_report(insights: Insights) -> str:
    total = insights.total
    reasons = insights.handoff_reasons
    lines = [
        "# Rapport d'activité de l'assistant",
        "",
        f"Du {_french_date(insights.start)} au {_french_date(insights.end)} "
        f"({len(insights.days)} jours, heure de {insights.timezone}), "
        f"produit le {insights.generated_at.strftime('%d/%m/%Y à %H:%M')} UTC.",
        "",
        "## Chiffres clés",
        "",
        "| | |",
        "|---|---:|",
        f"| Conversations | {total.conversations} |",
        f"| Messages des utilisateurs | {total.messages} |",
        f"| … traités par l'assistant (écrits / boutons) | {total.handled} "
        f"({total.typed} / {total.handled - total.typed}) |",
        f"| Autonomie (conversations sans transfert à un conseiller) | "
        f"{_percent(total.containment)} |",
        f"| Transferts à un conseiller (demandés / après incompréhensions) | {total.handoffs} "
        f"({reasons.get(REASON_ASKED, 0)} / {reasons.get(REASON_MISUNDERSTOOD, 0)}) |",
        f"| Messages écrits non compris | {_percent(total.fallback_rate)} ({total.fallbacks}) |",
        f"| Messages écrits hors périmètre | {_percent(total.out_of_scope_rate)} "
        f"({total.out_of_scope}) |",
        "",
        "Les taux d'incompréhension et de hors-périmètre portent sur les messages écrits "
        "traités par l'assistant (un clic sur un bouton est toujours compris).",
        "",
        "## Par canal",
        "",
        "| Canal | Conversations | Messages | Autonomie | Non compris | Hors périmètre |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for activity in insights.channels:
        lines.append(
            f"| {activity.channel} | {activity.conversations} | {activity.messages} | "
            f"{_percent(activity.containment)} | {_percent(activity.fallback_rate)} | "
            f"{_percent(activity.out_of_scope_rate)} |"
        )
    channels = insights.channel_names
    lines += [
        "",
        "## Par jour",
        "",
        f"![Conversations et messages par jour et par canal]({DAILY_PNG})",
        "",
        "| Jour | "
        + " | ".join(f"Conversations {name} | Messages {name}" for name in channels)
        + " |",
        "|---|" + "---:|---:|" * len(channels),
    ]
    for day in insights.days:
        if any(day.messages.values()):
            cells = " | ".join(f"{day.conversations[n]} | {day.messages[n]}" for n in channels)
            lines.append(f"| {_french_date(day.day)} | {cells} |")
    lines += ["", "Les jours sans message sont omis du tableau.", ""]
    faq = [topic for topic in insights.topics if topic.faq]
    other = [topic for topic in insights.topics if not topic.faq]
    lines += [
        "## Sujets les plus demandés",
        "",
        f"![Sujets les plus demandés]({TOPICS_PNG})",
        "",
        *_topic_table(faq[:REPORT_ROWS]),
        "",
        "Autres intentions (conversation, démarches) :",
        "",
        *_topic_table(other[:REPORT_ROWS]),
        "",
        "## Questions non comprises",
        "",
        *_group_table(insights.not_understood, total.fallbacks),
        "",
        "## Questions hors périmètre",
        "",
        *_group_table(insights.out_of_scope, total.out_of_scope),
        "",
        "## Pour améliorer la compréhension",
        "",
        f"[`{CANDIDATES_FILE}`]({CANDIDATES_FILE}) : ces questions au format NLU de Rasa, "
        "à relire et à classer dans la bonne intention avant de réentraîner.",
        "",
        "Données personnelles : les textes sont masqués (NUMEN, téléphone, date de naissance, "
        "partie locale des adresses) et aucun identifiant de conversation n'apparaît.",
        "",
    ]
    return "\n".join(lines)


def _topic_table(topics: list[Topic]) -> list[str]:
    if not topics:
        return ["Aucun."]
    total = sum(topic.count for topic in topics)
    rows = ["| Sujet | Intention | Messages | Part |", "|---|---|---:|---:|"]
    rows += [
        f"| {_cell(t.label)} | `{t.intent}` | {t.count} | {_percent(t.count / total)} |"
        for t in topics
    ]
    return rows


def _group_table(groups: tuple[QuestionGroup, ...], asked: int) -> list[str]:
    if not groups:
        return ["Aucune."]
    rows = [
        f"{_count(asked, 'message')} en {_count(len(groups), 'groupe')} de questions "
        "semblables, les plus fréquents d'abord.",
        "",
        "| # | Question (formulation la plus fréquente) | Fois | Conversations | Variantes |",
        "|---:|---|---:|---:|---|",
    ]
    for number, group in enumerate(groups[:REPORT_ROWS], start=1):
        others = " ; ".join(_cell(text) for text, _ in group.variants[1:4])
        rows.append(
            f"| {number} | {_cell(group.representative)} | {group.count} | "
            f"{group.conversations} | {others} |"
        )
    if len(groups) > REPORT_ROWS:
        rows += ["", f"… et {len(groups) - REPORT_ROWS} autres groupes ({CANDIDATES_FILE})."]
    return rows


def _cell(text: str) -> str:
    """A text in a Markdown table cell: one line, pipes escaped, bounded."""
    one_line = " ".join(text.split()).replace("|", "\\|")
    return textwrap.shorten(one_line, 120, placeholder="…") if len(one_line) > 120 else one_line


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number > 1 else ''}"


def _percent(rate: float | None) -> str:
    if rate is None:
        return "–"
    return f"{rate * 100:.1f} %".replace(".", ",")


def _french_date(day: date) -> str:
    return french_date(datetime.combine(day, time()), with_time=False)


# ---------------------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> int:
    from bot import config
    from bot.db import make_engine

    parser = argparse.ArgumentParser(
        prog="python -m bot.support.insights",
        description="Rapport d'activité de l'assistant (sans données personnelles).",
    )
    parser.add_argument("--days", type=int, default=30, help="jours couverts (défaut 30)")
    parser.add_argument(
        "--out",
        type=Path,
        default=config.REPO_ROOT / "var" / "insights",
        help="dossier du rapport (défaut var/insights/)",
    )
    parser.add_argument(
        "--now",
        help="fin de la période, ISO 8601 (sans fuseau : heure de la base de connaissances)",
    )
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days doit valoir au moins 1")
    engine = make_engine()
    if not _knowledge_loaded(engine):
        print(NO_KNOWLEDGE, file=sys.stderr)
        return 2
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            parser.error(f"--now {args.now!r} n'est pas une date ISO 8601 (2018-11-30T12:00)")
        if now.tzinfo is None:
            now = now.replace(tzinfo=ZoneInfo(Knowledge(engine).timezone))
    insights = compute(engine, days=args.days, now=now)
    report = write_report(insights, args.out)
    print(headline(insights))
    print(f"Rapport : {report}")
    return 0


def _knowledge_loaded(engine: Engine) -> bool:
    """True when the database holds a knowledge base (its topics name the report's)."""
    if not inspect(engine).has_table(KbVersion.__tablename__):
        return False
    with Session(engine, future=True) as session:
        return session.scalars(select(KbVersion.sha256)).first() is not None


def headline(insights: Insights) -> str:
    """The figures the command prints."""
    total = insights.total
    lines = [
        f"Du {_french_date(insights.start)} au {_french_date(insights.end)} "
        f"({insights.timezone}) :",
        f"  conversations : {total.conversations} ("
        + ", ".join(f"{a.channel} {a.conversations}" for a in insights.channels)
        + ")",
        f"  messages des utilisateurs : {total.messages}",
        f"  autonomie (sans transfert) : {_percent(total.containment)} "
        f"({_count(total.handoffs, 'transfert')})",
        f"  non compris : {_percent(total.fallback_rate)} ({_count(total.fallbacks, 'message')}, "
        f"{_count(len(insights.not_understood), 'groupe')})",
        f"  hors périmètre : {_percent(total.out_of_scope_rate)} "
        f"({_count(total.out_of_scope, 'message')})",
    ]
    faq = [topic for topic in insights.topics if topic.faq][:3]
    if faq:
        lines.append("  sujets en tête : " + " ; ".join(f"{t.label} ({t.count})" for t in faq))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
