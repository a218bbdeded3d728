"""`python -m bot.actions`: the action server, on loopback unless `ACTION_HOST` says otherwise.

rasa-sdk has no authentication and allows CORS `*`: it must not face the network, and it
answers only the Rasa server that knows `ACTION_SERVER_TOKEN` (Rasa sends the `token` of
endpoints.yml's `action_endpoint` as the `?token=` query parameter); `/health` stays open, and
`/metrics` (Prometheus: the portal calls) answers this host or the bearer of `METRICS_TOKEN`
(`bot/metrics.py`).
"""

from __future__ import annotations

import hmac
import logging
import os
import sys

from rasa_sdk import endpoint, utils
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.request import Request

from bot import logs
from bot.knowledge import default_knowledge
from bot.metrics import FORBIDDEN, exposition, may_read_metrics

logger = logging.getLogger(__name__)

OPEN_PATHS = ("/health", "/metrics")  # /metrics checks its own access


def require_token(app: Sanic, token: str) -> None:
    """Refuse (401) every request but the health check without the shared token."""

    @app.on_request
    async def check_token(request: Request):
        if request.path in OPEN_PATHS:
            return None
        given = request.args.get("token", "").encode()
        if not hmac.compare_digest(given, token.encode()):
            logger.warning("action server: request without the right token refused")
            return response.json({"error": "unauthorized"}, status=401)
        return None


def add_metrics(app: Sanic) -> None:
    """`GET /metrics`: this process's counters (one Sanic worker, the default, holds them all)."""

    @app.get("/metrics")
    async def prometheus_metrics(request: Request):
        if not may_read_metrics(request.ip, request.headers.get("Authorization")):
            return response.json({"error": FORBIDDEN}, status=403)
        body, media_type = exposition()
        return response.raw(body, content_type=media_type)


def main() -> None:
    logs.configure("actions")
    token = os.environ.get("ACTION_SERVER_TOKEN", "")
    if not token:
        sys.exit(
            "ACTION_SERVER_TOKEN n'est pas défini : le serveur d'actions refuse de démarrer sans "
            "le jeton partagé avec Rasa (./scripts/run en génère un)."
        )
    host = os.environ.get("ACTION_HOST", "127.0.0.1")
    port = int(os.environ.get("ACTION_PORT", "5055"))
    default_knowledge()  # load kb/faq_fr.md before the first request, fail early if invalid
    # rasa_sdk.endpoint.run, with the token check added before the server starts.
    app = endpoint.create_app("bot.actions", cors_origins=[])
    require_token(app, token)
    add_metrics(app)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    app.run(host, port, workers=utils.number_of_sanic_workers(), access_log=False)


if __name__ == "__main__":
    main()
