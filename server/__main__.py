"""`python -m server [serve|migrate|makemigrations|export-schema|create-user]` (default: serve)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from server.logging_setup import configure_logging
from server.settings import get_settings


def serve() -> None:
    import uvicorn

    from server.app import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        # In-flight generations get this long to finish; past it they are logged as FAILURE
        # (uvicorn annotates an int but waits with asyncio, so fractions work).
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # type: ignore[arg-type]
    )


def migrate() -> None:
    from server.db import migrate as apply

    applied = asyncio.run(apply(get_settings().database_url))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))


def makemigrations(name: str, check: bool) -> int:
    from server.db import pending_model_changes, write_migrations

    if check:
        pending = pending_model_changes()
        for dialect, changed in pending.items():
            print(f"{dialect}: {'MODEL CHANGES WITHOUT A MIGRATION' if changed else 'up to date'}")
        return 1 if any(pending.values()) else 0
    for dialect, version in write_migrations(name).items():
        print(f"{dialect}: {version or 'no changes'}")
    return 0


def create_user(email: str, staff: bool, password_stdin: bool) -> int:
    from tortoise import Tortoise

    from server.db import tortoise_config
    from services import accounts
    from services.errors import ServiceError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat password: "):
            print("error: the passwords differ", file=sys.stderr)
            return 2

    async def run() -> None:
        await Tortoise.init(config=tortoise_config(get_settings().database_url))
        try:
            user = await accounts.register(email, password, is_staff=staff)
        finally:
            await Tortoise.close_connections()
        print(f"created {'staff ' if user.is_staff else ''}user {user.email} ({user.id})")

    try:
        asyncio.run(run())
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def export_schema() -> None:
    from schema import print_schema

    sys.stdout.write(print_schema())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the API (default)")
    commands.add_parser("migrate", help="apply pending migrations to DATABASE_URL")
    make = commands.add_parser("makemigrations", help="write migrations for model changes")
    make.add_argument("--name", default="update")
    make.add_argument("--check", action="store_true", help="exit 1 if a migration is missing")
    commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    user = commands.add_parser("create-user", help="create an account (e.g. the first staff user)")
    user.add_argument("--email", required=True)
    user.add_argument("--staff", action="store_true", help="may use the admin view (allUsers)")
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    args = parser.parse_args(argv)

    configure_logging(get_settings())
    if args.command in (None, "serve"):
        serve()
    elif args.command == "migrate":
        migrate()
    elif args.command == "makemigrations":
        return makemigrations(args.name, args.check)
    elif args.command == "export-schema":
        export_schema()
    elif args.command == "create-user":
        return create_user(args.email, args.staff, args.password_stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
