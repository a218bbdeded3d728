"""`python -m bot.production`: the assistant in production mode, in the foreground (Ctrl-C stops
everything). `python -m bot.production migrate`: only bring our database to the latest schema.

Settings (environment only; docs/production.md): `BOT_DATABASE_URL`, `TRACKER_DATABASE_URL`,
`PORTAL_DATABASE_URL` (simulated portal), `REDIS_URL`, `BOT_REPLICAS` (default: the number of
cores), `BOT_GATEWAYS` (default 1; more: behind nginx), `GATEWAY_REDIS_URL` (default
`REDIS_URL`), `BOT_VAULT_KEY`, `GATEWAY_RASA_TOKEN`, `ACTION_SERVER_TOKEN`, `GATEWAY_SESSION_KEY`,
the gateway's limits (bot/gateway/limits.py, e.g. `GATEWAY_TRUSTED_PROXIES`), `GATEWAY_HOST`,
`GATEWAY_PORT` (8080),
`RASA_PORT` (5005: replicas 5005, 5006...), `ACTION_PORT` (5055...), `PORTAL_PORT` (8090),
`PORTAL_URL` and `PORTAL_TOKEN` for the real portal, `LOG_FORMAT`, `LOG_LEVEL`, `LOG_DIR`
(bot/logs.py). PostgreSQL, Redis, the portal and the model are checked first
(bot/startup_checks.py): a failure stops the start within seconds with a French sentence.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

from bot import logs, startup_checks
from bot.config import REPO_ROOT
from bot.production.migrations import migrate
from bot.production.stack import ProductionStack, production_settings

logger = logging.getLogger("bot.production")


def run() -> int:
    env = production_settings()
    replicas = int(env.get("BOT_REPLICAS") or os.cpu_count() or 1)
    gateways = int(env.get("BOT_GATEWAYS") or 1)
    shared = ("BOT_VAULT_KEY", "GATEWAY_RASA_TOKEN", "ACTION_SERVER_TOKEN", "GATEWAY_SESSION_KEY")
    for name in shared:
        if not env.get(name):
            # Shared by the processes started here; set it to keep it across restarts.
            logger.warning("%s not set: a fresh one is used until the next restart", name)
    # PostgreSQL, Redis, the portal and the model, before the training and the replicas.
    if startup_checks.report(startup_checks.problems("production", env)):
        return 1
    from bot.training import ensure_model  # trains only if the model's inputs changed

    model = ensure_model()
    workdir = REPO_ROOT / "var" / "production"
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {
        "gateway": int(env.get("GATEWAY_PORT", "8080")),
        "portal": int(env.get("PORTAL_PORT", "8090")),
        "rasa": int(env.get("RASA_PORT", "5005")),
        "actions": int(env.get("ACTION_PORT", "5055")),
    }
    # The processes log to our standard output (bot/logs.py), for the supervisor to collect.
    stack = ProductionStack(
        workdir,
        model,
        replicas,
        env,
        ports,
        gateway_host=env.get("GATEWAY_HOST", "127.0.0.1"),
        capture_logs=False,
        gateways=gateways,
    )
    # Ctrl-C and a supervisor's SIGTERM both stop everything (even when started in the
    # background, where the shell makes processes ignore SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(
        f"Démarrage de {replicas} réplique(s) (environ 30 s)… journaux : {stack.log_place}",
        file=sys.stderr,
    )
    try:
        stack.start()
        print(
            f"\nL'assistant est prêt (mode production, {replicas} réplique(s), "
            f"{gateways} passerelle(s){' derrière nginx' if gateways > 1 else ''}).\n"
            f"  Page de discussion : http://localhost:{stack.gateway_port}/\n"
            f"  Portail électoral  : {stack.portal_url}"
            f"{' (simulé)' if stack.simulated_portal else ''}\n"
            "Ctrl-C pour tout arrêter.",
            file=sys.stderr,
        )
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(1)
        stopped = [name for name, p in stack.processes.items() if p.poll() is not None]
        print(f"Service arrêté : {', '.join(stopped)} ; voir {stack.log_place}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"Échec du démarrage : {error} ; voir {stack.log_place}", file=sys.stderr)
        return 1
    finally:
        print("Arrêt de l'assistant…", file=sys.stderr)
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.production")
    parser.add_argument("command", nargs="?", choices=["run", "migrate"], default="run")
    args = parser.parse_args()
    logs.configure("production")
    if args.command == "migrate":
        migrate()
        return 0
    return run()


if __name__ == "__main__":
    sys.exit(main())
