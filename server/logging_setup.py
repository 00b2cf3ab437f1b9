"""Process-wide logging configuration, shared by every CLI command and the server."""

from __future__ import annotations

import logging

from server.settings import Settings


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
