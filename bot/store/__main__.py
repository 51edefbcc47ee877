"""Schema migrations by hand: `python -m bot.store upgrade|downgrade|current|sql|revision`.

`Store.open` upgrades to the latest schema on its own; this is for operators (downgrades, SQL for a DBA)
and for developers writing the next migration.
"""

from __future__ import annotations

import argparse
import sys

from alembic import command

from bot.config import Settings
from bot.store.engine import StoreError, alembic_config, current_revision, head_revision, migrate, normalize_url
from bot.store.store import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.store", description="Aura SICD schema migrations")
    parser.add_argument("--url", help="database URL (default: the settings' AURA_STORE_URL or data dir)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="migrate up (default: to the latest revision)")
    up.add_argument("revision", nargs="?", default="head")
    down = commands.add_parser("downgrade", help="migrate down, e.g. to 'base' (drops every table)")
    down.add_argument("revision")
    commands.add_parser("current", help="print the database's revision and the latest one")
    sql = commands.add_parser("sql", help="print the SQL of an upgrade instead of running it (for a DBA)")
    sql.add_argument("revision", nargs="?", default="head")
    rev = commands.add_parser("revision", help="developers: write the next migration from the table models")
    rev.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)

    url = args.url or Settings().database_url
    try:
        if args.command == "sql":
            command.upgrade(alembic_config(url=normalize_url(url).render_as_string(False)), args.revision, sql=True)
            return 0
        store = Store(url) if args.command in ("downgrade", "current") else Store.open(url)
        with store:
            if args.command == "upgrade" and args.revision != "head":
                migrate(store.engine, args.revision)
            elif args.command == "downgrade":
                migrate(store.engine, args.revision, downgrade=True)
            elif args.command == "revision":
                with store.engine.begin() as connection:
                    config = alembic_config(connection=connection)
                    command.revision(config, message=args.message, autogenerate=True)
            print(f"database: {current_revision(store.engine) or 'empty'}; latest: {head_revision()}")
    except StoreError as exc:
        print(f"python -m bot.store: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
