"""Read the settings module as a fresh process would under a given environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Long and random enough for check --deploy (security.W009); made up for these tests only.
PRODUCTION_SECRET_KEY = "test-3f9c1e7a5b2d8064c1f7e9a3b5d2c8e0f4a6b1d3c5e7f9a2b4d6"

SETTINGS = [
    "DEBUG",
    "EMAIL_BACKEND",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
]

_PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings; "
    f"print(json.dumps({{name: getattr(settings, name) for name in {SETTINGS!r}}}))"
)


def production_env(**overrides: str) -> dict[str, str]:
    """What an operator who set only the required variables runs with, plus overrides.

    Nothing of the test run's own environment (DJANGO_ALLOW_ASYNC_UNSAFE, opt-outs) leaks in.
    """
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(
        {
            "SECRET_KEY": PRODUCTION_SECRET_KEY,
            "ALLOWED_HOSTS": "monitor.example.test",
            "DATABASE_URL": "postgres://activity@db.example.test:5432/activity_monitor",
            "REDIS_URL": "redis://redis.example.test:6379/0",
            # The seals' Ed25519 key (docs/integrity.md): `check` warns without one. A fixed
            # test-only seed (32 bytes of 0x07), never a real key.
            "INTEGRITY_SIGNING_KEY": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            # Passkeys are bound to the site's domain: `check` warns about `localhost` in
            # production.
            "WEBAUTHN_RP_ID": "monitor.example.test",
            "WEBAUTHN_ALLOWED_ORIGINS": "https://monitor.example.test",
            "DJANGO_SETTINGS_MODULE": "activity_monitor.settings",
            # Nor a developer's .env (make run's DEBUG=1): production reads no such file.
            "DOTENV_FILE": "",
        }
    )
    env.update(overrides)
    return env


def run_python(
    *args: str, env: dict[str, str], timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with `args` in the repository's root; capture what it prints."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python("manage.py", *args, env=env)


def printed_json(script: str, env: dict[str, str]) -> dict[str, object]:
    """What `python -c script` prints as JSON under `env`."""
    seen: dict[str, object] = json.loads(run_python("-c", script, env=env, check=True).stdout)
    return seen


def settings_under(overrides: dict[str, str]) -> dict[str, object]:
    """The SETTINGS above as a process started with production_env(**overrides) sees them."""
    return printed_json(_PRINT_SETTINGS, production_env(**overrides))
