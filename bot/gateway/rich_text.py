"""The assistant's Markdown for the agents' console: as the voter's widget shows it
(`static/widget.js`), and as plain text for the reply box.

The assistant writes a small subset of Markdown (`kb/faq_fr.md`, `bot/answers`): paragraphs
separated by a blank line, line breaks, `**bold**`, bulleted (`- `, `* `, `• `) and numbered
(`1. `) lists, links written `[text](https://…)`, and bare addresses (`https://…`, and host
names such as `webmail.ac-lyon.fr`, as the widget links them).

`blocks()` gives that structure as JSON, which the console builds with DOM calls and
`textContent`: no message is ever parsed as HTML, so `<img src=x onerror=…>` in a text stays
text. A link keeps only an `http:`, `https:` or `mailto:` address; any other (`javascript:`,
`data:`, a relative path…) leaves what was written as text. `plain()` is the same text with the
Markdown markers removed (`**Lyon**` → `Lyon`, `- ` → `• `, `[t](u)` → `t (u)`).

    Block = {"type": "paragraph", "lines": [Line, …]}
          | {"type": "list", "ordered": bool, "start": int, "items": [[Line, …], …]}
    Line  = [Run, …]
    Run   = {"text": str, "bold": True (only when bold), "href": str (only for a link)}
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

Run = dict[str, Any]
Line = list[Run]

BULLET = re.compile(r"[ \t]*[-*•][ \t]+(?P<rest>.*)")
NUMBERED = re.compile(r"[ \t]*(?P<number>\d{1,9})[.)][ \t]+(?P<rest>.*)")
BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
LINK = re.compile(
    # [text](address): the address without spaces or parentheses.
    r"\[(?P<label>[^\[\]\n]+)\]\((?P<target>[^()\s]+)\)"
    # a full http(s) address
    r"|(?P<url>https?://[^\s<>\"'\[\]]+)"
    # a bare host name of a common domain, as the widget links it (LINK_SRC of widget.js)
    r"|(?P<host>(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:fr|com|org|net|eu|info|io|education)"
    r"(?::\d+)?(?:/[^\s<>\"']*)?)(?![\w@-])",
    re.IGNORECASE,
)
TRAILING = re.compile(r"[.,;:!?)\]]+$")  # punctuation after an address is not part of it
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})


def safe_href(address: str) -> str | None:
    """`address` when it is an absolute http(s) or mailto address a link may point to."""
    if not address or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in address):
        return None
    try:
        parts = urlsplit(address)
    except ValueError:
        return None
    if parts.scheme.lower() not in SAFE_SCHEMES:
        return None
    if parts.scheme.lower() != "mailto" and not parts.netloc:
        return None
    if parts.scheme.lower() == "mailto" and not parts.path:
        return None
    return address


# ---------------------------------------------------------------------- inline


def runs(text: str) -> Line:
    """One line's runs: bold, links, and the rest as it was written."""
    found: Line = []
    last = 0
    for match in BOLD.finditer(text):
        found += _links(text[last : match.start()])
        found += [{**run, "bold": True} for run in _links(match.group(1))]
        last = match.end()
    found += _links(text[last:])
    return _merged(found)


def _links(text: str) -> Line:
    found: Line = []
    last = 0
    for match in LINK.finditer(text):
        start = match.start()
        if match.group("label") is not None:
            href = safe_href(match.group("target"))
            if href is None:
                continue  # left as written, e.g. [x](javascript:…)
            label, end = match.group("label"), match.end()
        else:
            raw = match.group(0)
            # A host name stuck to a word, an @ (e-mail address) or a path is not a link.
            if match.group("host") and start > 0 and re.match(r"[\w@./-]", text[start - 1]):
                continue
            raw = TRAILING.sub("", raw)
            href = safe_href(raw if match.group("url") else f"https://{raw}")
            if href is None or not raw:
                continue
            label, end = raw, start + len(raw)
        if start > last:
            found.append({"text": text[last:start]})
        found.append({"text": label, "href": href})
        last = end
    if last < len(text):
        found.append({"text": text[last:]})
    return found


def _merged(found: Line) -> Line:
    """Neighbouring runs of plain text joined; empty runs dropped."""
    merged: Line = []
    for run in found:
        if not run["text"]:
            continue
        if merged and "href" not in run and merged[-1].keys() == run.keys():
            merged[-1] = {**run, "text": merged[-1]["text"] + run["text"]}
        else:
            merged.append(run)
    return merged


# ---------------------------------------------------------------------- blocks


def blocks(text: str) -> list[dict[str, Any]]:
    """The paragraphs and lists of a message, each line as runs (see the module's doc)."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None  # the paragraph or list that a line continues
    for line in _lines(text):
        if not line.strip():
            current = None
            continue
        bullet, numbered = BULLET.fullmatch(line), NUMBERED.fullmatch(line)
        item = bullet or numbered
        if item:
            ordered = numbered is not None and bullet is None
            if not (current and current["type"] == "list" and current["ordered"] == ordered):
                start = int(numbered.group("number")) if ordered and numbered else 1
                current = {"type": "list", "ordered": ordered, "start": start, "items": []}
                found.append(current)
            current["items"].append([runs(item.group("rest").strip())])
        elif current and current["type"] == "list" and line[:1] in (" ", "\t"):
            current["items"][-1].append(runs(line.strip()))  # an item's indented next line
        elif current and current["type"] == "paragraph":
            current["lines"].append(runs(line.strip()))
        else:
            current = {"type": "paragraph", "lines": [runs(line.strip())]}
            found.append(current)
    return found


def plain(text: str) -> str:
    """The message as plain text: line by line, the Markdown markers taken out."""
    out = []
    for line in _lines(text):
        bullet, numbered = BULLET.fullmatch(line), NUMBERED.fullmatch(line)
        if bullet:
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            out.append(f"{indent}• {_plain_runs(runs(bullet.group('rest').strip()))}")
        elif numbered:
            head = line[: numbered.start("rest")]
            out.append(head + _plain_runs(runs(numbered.group("rest").strip())))
        else:
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            out.append(indent + _plain_runs(runs(line.strip())))
    return "\n".join(out).strip("\n")


def _plain_runs(line: Line) -> str:
    words = []
    for run in line:
        href = run.get("href")
        # A link written [text](address) keeps its address; a bare address is its own text.
        if href and run["text"] not in href:
            words.append(f"{run['text']} ({href.removeprefix('mailto:')})")
        else:
            words.append(run["text"])
    return "".join(words)


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
