"""The one boundary with the ministry's election portal.

`client` is what the actions use; `simulated` is a stand-in portal (registry, outbox) for
laptops and tests, started by `python -m bot.portal serve`.
"""

from bot.portal.client import (
    PortalClient,
    PortalUnavailable,
    ReissueOutcome,
    ReissueStatus,
    ResetOutcome,
    ResetStatus,
)

__all__ = [
    "PortalClient",
    "PortalUnavailable",
    "ReissueOutcome",
    "ReissueStatus",
    "ResetOutcome",
    "ResetStatus",
]
