"""`python -m bot.knowledge load [--force]`: create our tables, seed them from kb/faq_fr.md."""

from __future__ import annotations

import argparse
import logging
import sys

from bot import config
from bot.db import create_schema, make_engine
from bot.knowledge.kb_file import KbFormatError
from bot.knowledge.store import load_kb


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.knowledge")
    parser.add_argument("command", choices=["load"])
    parser.add_argument("--force", action="store_true", help="reload even if unchanged")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    engine = make_engine()
    create_schema(engine)
    try:
        changed = load_kb(engine, config.kb_path(), force=args.force)
    except KbFormatError as error:
        print(f"kb/faq_fr.md invalide : {error}", file=sys.stderr)
        return 2
    url = engine.url.render_as_string(hide_password=True)
    print(f"Base de connaissances {'chargée' if changed else 'à jour'} : {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
