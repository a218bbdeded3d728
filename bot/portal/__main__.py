"""The simulated portal from the command line.

    python -m bot.portal serve [--host 127.0.0.1] [--port 8090]   (imports the demo voters
                                                                   if the registry is empty)
    python -m bot.portal import-csv FILE
    python -m bot.portal outbox [--clear]

Its database is `PORTAL_DATABASE_URL`; its token `PORTAL_TOKEN` (`dev-portal-token` when unset,
accepted on loopback only).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from datetime import datetime

from aiohttp import web
from sqlalchemy.engine import Engine

from bot import logs
from bot.db import PORTAL, create_schema
from bot.portal import settings
from bot.portal.models import portal_engine
from bot.portal.registry import (
    DEMO_CSV,
    VoterImportError,
    import_voters,
    read_voters,
    registry_size,
    save_voters,
)
from bot.portal.simulated import clear_outbox, create_app, outbox

logger = logging.getLogger("bot.portal")

CHANNELS = {"sms": "SMS", "email": "E-mail"}


def serve(host: str, port: int) -> int:
    token = settings.simulator_token()
    if token == settings.DEV_TOKEN:
        if not _is_loopback(host):
            print(
                "PORTAL_TOKEN n'est pas défini : le portail simulé n'écoute alors que sur "
                "127.0.0.1. Définissez PORTAL_TOKEN pour l'exposer ailleurs.",
                file=sys.stderr,
            )
            return 2
        logger.warning("PORTAL_TOKEN is not set: using the local development token")
    engine = _portal_database()
    if registry_size(engine) == 0:
        report = import_voters(engine, DEMO_CSV)
        logger.info("empty registry: %d demo voters imported", report.created)
    web.run_app(create_app(engine, token), host=host, port=port, print=None)
    return 0


SEPARATORS = {";": "point-virgule", ",": "virgule", "\t": "tabulation"}


def import_csv(path: str) -> int:
    """Import a registry file; its problems go to the operator's terminal, never to a log."""
    try:
        registry = read_voters(path)
        report = save_voters(_portal_database(), registry.voters)
    except (FileNotFoundError, IsADirectoryError):
        print(f"Fichier introuvable : {path}", file=sys.stderr)
        return 2
    except VoterImportError as error:
        print(
            f"Import impossible, rien n'a été modifié ({len(error.problems)} problème(s)) :",
            file=sys.stderr,
        )
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(
        f"Fichier lu en {registry.encoding}, séparateur {SEPARATORS[registry.delimiter]}. "
        f"Registre importé : {report.created} électeur(s) ajouté(s), "
        f"{report.updated} mis à jour."
    )
    return 0


def show_outbox(clear: bool) -> int:
    engine = _portal_database()
    if clear:
        print(f"Boîte d'envoi vidée : {clear_outbox(engine)} message(s) supprimé(s).")
        return 0
    messages = outbox(engine)
    if not messages:
        print("La boîte d'envoi du portail simulé est vide.")
        return 0
    print(f"Boîte d'envoi du portail simulé : {len(messages)} message(s), du plus ancien au")
    print("plus récent. Les destinataires sont masqués.\n")
    for message in messages:
        sent = datetime.fromisoformat(message["created_at"]).astimezone()
        print(
            f"N° {message['id']} · {CHANNELS.get(message['channel'], message['channel'])} · "
            f"destinataire : {message['to']} · envoyé le {sent:%d/%m/%Y à %H:%M:%S}"
        )
        for line in message["body"].splitlines():
            print(f"    {line}")
        print()
    return 0


def _portal_database() -> Engine:
    """The simulator's database (`PORTAL_DATABASE_URL`), its tables created if missing."""
    engine = portal_engine()
    create_schema(engine, PORTAL)
    return engine


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.portal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="démarrer le portail simulé")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8090)
    import_parser = commands.add_parser("import-csv", help="importer un registre d'électeurs")
    import_parser.add_argument("file")
    outbox_parser = commands.add_parser("outbox", help="afficher les SMS et e-mails envoyés")
    outbox_parser.add_argument("--clear", action="store_true", help="vider la boîte d'envoi")
    args = parser.parse_args()
    if args.command == "serve":
        logs.configure("portal")
        return serve(args.host, args.port)
    # The other commands answer on the terminal (and may run beside a serving portal: they
    # must not write to its log file).
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "import-csv":
        return import_csv(args.file)
    return show_outbox(args.clear)


if __name__ == "__main__":
    sys.exit(main())
