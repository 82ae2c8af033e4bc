"""What every benchmark sets before Django starts: settings of its own, not a developer's .env."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def environ_defaults(*, database_url: str) -> None:
    """Default the environment the settings are read from; what the caller set already wins."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activity_monitor.settings")
    # Its settings are its own: make run's .env (DEBUG=1) would time Django's debug cursor.
    os.environ.setdefault("DOTENV_FILE", "")
    # The test client speaks plain http; production's https redirect would answer 301.
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DATABASE_URL", database_url)
