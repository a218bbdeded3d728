"""`python -m bot.gateway [--host H] [--port P]`: serve the gateway with its channels.

`create_app` is the web part (widget, chat API, console). The messaging channels are built on
the gateway's relay and keys, so they are added here, where the served application is put
together, rather than imported by `app.py`.
"""

from __future__ import annotations

import argparse
import os

from aiohttp import web

from bot import logs
from bot.channels.slack import setup_slack
from bot.channels.telegram import setup_telegram
from bot.db import create_schema
from bot.gateway.app import create_app


def build_app() -> web.Application:
    """The gateway as it is served: `create_app()` and every channel, each one on only when its
    token is set (its routes answer 404 otherwise)."""
    app = create_app()
    setup_telegram(app)
    setup_slack(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.gateway")
    parser.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8080")))
    args = parser.parse_args(argv)
    logs.configure("gateway")
    create_schema()  # the tables of BOT_DATABASE_URL, if missing
    web.run_app(build_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
