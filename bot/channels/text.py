"""Text helpers shared by the channels."""

from __future__ import annotations


def split_at_lines(text: str, limit: int, escaped: bool = False) -> list[str]:
    """`text` in non-blank pieces of at most `limit` characters, cut between lines when possible.

    With `escaped`, a line that must be cut is never cut inside an HTML escape such as `&amp;`.
    """
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = limit
            amp = line.rfind("&", limit - 5, limit) if escaped else -1
            if amp > 0 and ";" not in line[amp:limit]:
                cut = amp
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            candidate = line
        current = candidate
    pieces.append(current)
    return [piece for piece in pieces if piece.strip()]
