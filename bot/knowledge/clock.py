"""The assistant's clock: Europe/Paris (from the KB), pinned by `BOT_NOW` when set."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot import config


def now(timezone: str) -> datetime:
    """Current local time in `timezone` (aware); `BOT_NOW` (ISO 8601) overrides it.

    A `BOT_NOW` without offset is read as local time in `timezone`.
    """
    zone = ZoneInfo(timezone)
    pinned = config.pinned_now()
    if pinned is None:
        return datetime.now(zone)
    try:
        instant = datetime.fromisoformat(pinned.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"BOT_NOW={pinned!r} is not an ISO 8601 date-time") from error
    if instant.tzinfo is None:
        return instant.replace(tzinfo=zone)
    return instant.astimezone(zone)
