"""`python -m bot.actions`: the action server, on loopback unless `ACTION_HOST` says otherwise.

rasa-sdk has no authentication and allows CORS `*`: it must not face the network.
"""

from __future__ import annotations

import logging
import os

from rasa_sdk import endpoint

from bot.knowledge import default_knowledge


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    os.environ.setdefault("SANIC_HOST", os.environ.get("ACTION_HOST", "127.0.0.1"))
    default_knowledge()  # load kb/faq_fr.md before the first request, fail early if invalid
    endpoint.run("bot.actions", port=int(os.environ.get("ACTION_PORT", "5055")), cors_origins=[])


if __name__ == "__main__":
    main()
