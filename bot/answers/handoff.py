"""Handing a conversation to a person: why, and how the assistant asks for it.

An action asks by sending the custom payload `payload(reason)`; the gateway's relay reads it back
with `reason_of` and opens the handoff. Both sides use this module, so the format is written once.
"""

from __future__ import annotations

from typing import Any

REASON_ASKED = "demande"  # the user asked for a person
REASON_MISUNDERSTOOD = "incompris"  # the assistant failed to understand several times in a row
REASONS = (REASON_ASKED, REASON_MISUNDERSTOOD)

_KEY = "handoff"


def payload(reason: str) -> dict[str, str]:
    """The custom payload an action sends to ask for a person."""
    return {_KEY: reason}


def reason_of(custom: Any) -> str | None:
    """The reason of a custom payload built by `payload`, or None for any other payload."""
    if isinstance(custom, dict) and isinstance(custom.get(_KEY), str):
        return custom[_KEY]
    return None
