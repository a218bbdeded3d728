"""French wording of dates, shared by every answer that states one."""

from __future__ import annotations

from datetime import datetime

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def french_date(when: datetime, with_time: bool) -> str:
    """'1er décembre 2018', '29 novembre 2018 à 10h', '6 décembre 2018 à 17h30'."""
    day = "1er" if when.day == 1 else str(when.day)
    text = f"{day} {MONTHS[when.month - 1]} {when.year}"
    if with_time:
        text += f" à {when.hour}h" + (f"{when.minute:02d}" if when.minute else "")
    return text


def clock_time(when: datetime) -> str:
    """'14 h 05', '9 h 00': a time for the people who read the agents' console (the answers to
    voters say '17h30', see `french_date`)."""
    return f"{when.hour} h {when.minute:02d}"
