"""`python -m server [COMMAND]`: serve, migrate, makemigrations, export-schema,
persisted-manifest, create-user, generate, models, backtest.

No command serves the API. The commands live in server/cli.py; docs/cli.md describes them.
"""

from server.cli import main

if __name__ == "__main__":
    main()
