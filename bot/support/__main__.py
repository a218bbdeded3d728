"""Support agents' accounts, from the command line (database: `BOT_DATABASE_URL`).

    python -m bot.support agent add <login> --name "Prénom Nom" [--role agent|analyst]
    python -m bot.support agent list
    python -m bot.support agent disable <login>

The password is asked twice (or read from `AGENT_PASSWORD`, for scripts and tests).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from bot.db import create_schema, make_engine
from bot.support.accounts import AGENT, ROLES, AccountError, Accounts, check_new_password

ROLE_NAMES = {"agent": "conseiller", "analyst": "analyste"}


def _password() -> str:
    from_env = os.environ.get("AGENT_PASSWORD")
    if from_env is not None:
        return from_env
    password = getpass.getpass("Mot de passe : ")
    check_new_password(password)
    if getpass.getpass("Mot de passe (confirmation) : ") != password:
        raise AccountError("Les deux mots de passe diffèrent : rien n'a été créé.")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.support", description="Comptes de la console des conseillers."
    )
    groups = parser.add_subparsers(dest="group", required=True)
    agent = groups.add_parser("agent", help="comptes des conseillers et analystes")
    commands = agent.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="créer un compte")
    add.add_argument("login")
    add.add_argument("--name", required=True, help="nom affiché aux usagers et dans la console")
    add.add_argument("--role", choices=ROLES, default=AGENT)
    commands.add_parser("list", help="lister les comptes")
    disable = commands.add_parser("disable", help="désactiver un compte (ferme ses sessions)")
    disable.add_argument("login")
    args = parser.parse_args(argv)

    engine = make_engine()
    create_schema(engine)
    accounts = Accounts(engine)
    try:
        if args.command == "add":
            created = accounts.create_agent(args.login, args.name, _password(), args.role)
            role = ROLE_NAMES.get(created.role, created.role)
            print(f"Compte « {created.login} » créé ({role}, {created.display_name}).")
        elif args.command == "list":
            rows = accounts.agents()
            if not rows:
                print("Aucun compte. Créez-en un : python -m bot.support agent add <identifiant>")
            for row in rows:
                state = "actif" if row.active else "désactivé"
                seen = row.last_seen_at.strftime("%d/%m/%Y %H:%M UTC") if row.last_seen_at else "—"
                role = ROLE_NAMES.get(row.role, row.role)
                print("\t".join([row.login, row.display_name, role, state, f"vu : {seen}"]))
        elif args.command == "disable":
            accounts.set_active(args.login, False)
            print(f"Compte « {args.login} » désactivé ; ses sessions sont fermées.")
    except AccountError as error:
        print(f"Erreur : {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\nAbandon : rien n'a été créé.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
