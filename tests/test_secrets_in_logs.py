"""Reset links and other secrets never reach a log line or the printed mail (issue 12, finding 6).

The server tests start a real gunicorn (with the committed gunicorn.conf.py) and a real runserver
on the test database, request a live password-reset link, and read what the process printed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from audit.logging import RedactSecretsFilter, redact

from .factories import member
from .settings_support import run_python

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_PORT = int(os.environ.get("TEST_GUNICORN_PORT", "8201"))
RUNSERVER_PORT = int(os.environ.get("TEST_RUNSERVER_PORT", "8202"))
TOKEN = "c9x2ab-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
API_TOKEN = "am_Xk3v9Qe0Zr7TtYw2LmNpBc4Hs8Jd6Fg1Ua5Oi0PqRs"


def _filtered(line: str) -> str:
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, "%s", (line,), None)
    assert RedactSecretsFilter().filter(record)
    return record.getMessage()


# --- The filter ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'"GET /password-reset/reset/MQ/{TOKEN}/ HTTP/1.1" 302 0', TOKEN),
        # A token of any shape in the token's place: a mistyped or forged one is still someone's.
        ('"GET /password-reset/reset/MQ/Zm9vYmFyLWJheg/ HTTP/1.1" 200', "Zm9vYmFyLWJheg"),
        (f'"GET /password-reset/reset/MQ/{TOKEN}?utm=mail HTTP/1.1" 200', TOKEN),
        # gunicorn's combined format: the referer of a page's stylesheet carries the page's URL.
        (
            f'127.0.0.1 - - [07/Dec/2026:01:00:00 +0000] "GET /static/css/app.css HTTP/1.1" 200 '
            f'4000 "http://127.0.0.1:8000/password-reset/reset/MQ/{TOKEN}/" "Mozilla/5.0"',
            TOKEN,
        ),
        # Percent-encoded in a ?next= parameter.
        (f'"GET /sign-in/?next=%2Fpassword-reset%2Freset%2FMQ%2F{TOKEN}%2F HTTP/1.1" 200', TOKEN),
        (f'"GET /api/v1/events?access_token={API_TOKEN} HTTP/1.1" 401', API_TOKEN),
        ('"GET /api/v1/events?api_key=s3cr3t-value HTTP/1.1" 401', "s3cr3t-value"),
        (f"Authorization: Bearer {API_TOKEN}", API_TOKEN),
        (f"a client sent {API_TOKEN} in its body", API_TOKEN),
        ("POST body password=hunter2&email=a@b.test", "hunter2"),
        ("new_password1=hunter2&new_password2=hunter2", "hunter2"),
        ("otp=123456 sessionid=abcdefghijklmnop", "abcdefghijklmnop"),
    ],
)
def test_log_lines_are_redacted(line, secret):
    cleaned = _filtered(line)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


@pytest.mark.parametrize(
    "line",
    [
        '"GET /password-reset/reset/MQ/set-password/ HTTP/1.1" 200',
        '"POST /password-reset/reset/MQ/set-password/ HTTP/1.1" 302 0',
        # The API token's prefix, as the tokens page and the events show it.
        '"POST /settings/security/api-tokens/ HTTP/1.1" 302 0 token am_Xk3v9Qe0',
        '"GET /settings/security/audit-log/?outcome=failure&user=alice HTTP/1.1" 200',
    ],
)
def test_lines_without_secrets_are_left_readable(line):
    assert _filtered(line) == line


def test_a_traceback_quoting_a_reset_link_is_redacted():
    try:
        raise ValueError(f"bad path /password-reset/reset/MQ/{TOKEN}/")
    except ValueError:
        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "boom", None, sys.exc_info()
        )
    RedactSecretsFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert TOKEN not in formatted
    assert "Traceback" in formatted
    assert "/password-reset/reset/MQ/[redacted]/" in formatted


def test_the_shared_redaction_keeps_the_rest_of_the_text():
    assert redact(f"see https://x.test/password-reset/reset/MQ/{TOKEN}/ now") == (
        "see https://x.test/password-reset/reset/MQ/[redacted]/ now"
    )


# --- Real servers ---------------------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _server_env(*, debug: bool = False) -> dict[str, str]:
    """The test process's environment, on its test database, serving plain http."""
    return {
        **os.environ,
        "DATABASE_URL": _database_url(),
        # A server runs as the app's role only (README, "Database roles").
        "DATABASE_OWNER_URL": "",
        "SECRET_KEY": settings.SECRET_KEY,  # the reset token is signed with it
        "SECURE_SSL_REDIRECT": "0",
        "DEBUG": "1" if debug else "",
        "PYTHONUNBUFFERED": "1",
    }


def _post(url: str) -> int:
    request = urllib.request.Request(url, data=b"new_password1=x", method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def _get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own test server
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _wait_until_up(process: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()}")
        try:
            _get(f"{base}/health/")
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not answer within 30 s")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    output: str = out + err
    return output


def _reset_link() -> tuple[str, str]:
    """A live reset path for a fresh user, and its token."""
    user = member(email="reset-me@example.test")
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return f"/password-reset/reset/{uidb64}/{token}/", token


# A link cut short by a mail client (no dash left): still most of someone's live token.
TRUNCATED = "c9x2ab5f1e2d3c4b5a69"


def _visit_reset_link(base: str, path: str) -> None:
    # The link itself: a live token, so Django answers with its set-password redirect.
    assert _get(f"{base}{path}") == 302
    # The stylesheet of the link's page names the link as its referer.
    assert _get(f"{base}/health/", Referer=f"{base}{path}") == 200
    assert _get(f"{base}/password-reset/reset/MQ/{TRUNCATED}/") == 200  # "invalid link"


def _assert_redacted(output: str, path: str, token: str) -> None:
    assert token not in output
    assert TRUNCATED not in output
    redacted_path = path.replace(token, "[redacted]")
    assert f'"GET {redacted_path} HTTP/1.1" 302' in output
    assert '"GET /password-reset/reset/MQ/[redacted]/ HTTP/1.1" 200' in output


def _log_of_a_visit(command: list[str], base: str, path: str) -> str:
    """Start the server, follow the reset link as a visitor and a bot would, return its log."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=_server_env(debug=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_up(process, base)
        _visit_reset_link(base, path)
        # Django's warnings quote the path: "Forbidden (CSRF cookie not set.): <path>",
        # "Not Found: <path>".
        assert _post(f"{base}{path}") == 403
        assert _get(f"{base}{path}no-such-page/") == 404
    finally:
        output = _stop(process)
    return output


@pytest.mark.postgres(reason="a second process (the server) opens the test database")
@pytest.mark.django_db(transaction=True)
def test_gunicorn_access_log_never_shows_a_reset_token():
    path, token = _reset_link()
    base = f"http://127.0.0.1:{GUNICORN_PORT}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{GUNICORN_PORT}",
        "--workers",
        "1",
        "--no-control-socket",  # its default path is shared by every gunicorn of this user
        # An operator's flag from an older command line: the config's handlers still apply.
        "--access-logfile",
        "-",
        "activity_monitor.wsgi",
    ]
    output = _log_of_a_visit(command, base, path)
    _assert_redacted(output, path, token)
    assert "Forbidden (CSRF cookie not set.): /password-reset/reset/" in output
    assert "Not Found: /password-reset/reset/" in output
    assert f'"{base}{path.replace(token, "[redacted]")}"' in output  # the referer


def test_docker_compose_and_the_image_run_gunicorn_with_its_config():
    assert (
        "gunicorn -c gunicorn.conf.py activity_monitor.wsgi"
        in (ROOT / "docker-compose.yml").read_text()
    )
    assert '"gunicorn", "-c", "gunicorn.conf.py"' in (ROOT / "Dockerfile").read_text()


@pytest.mark.postgres(reason="a second process (the server) opens the test database")
@pytest.mark.django_db(transaction=True)
def test_runserver_log_never_shows_a_reset_token_in_development():
    """As `make run` runs it (DEBUG=1), where Django's own console handler prints too."""
    path, token = _reset_link()
    base = f"http://127.0.0.1:{RUNSERVER_PORT}"
    command = [
        sys.executable,
        "manage.py",
        "runserver",
        f"127.0.0.1:{RUNSERVER_PORT}",
        "--noreload",
        "--skip-checks",
    ]
    output = _log_of_a_visit(command, base, path)
    _assert_redacted(output, path, token)
    assert "Forbidden (CSRF cookie not set.): /password-reset/reset/" in output
    assert "Not Found: /password-reset/reset/" in output


# --- Celery worker -------------------------------------------------------------------------------


def test_a_celery_workers_log_lines_are_redacted():
    """The worker sets up its logging as `celery worker` does (app.log.setup); a task's log line
    quoting a reset link must still pass through the redacting filter."""
    script = (
        "import logging, django; django.setup()\n"
        "from activity_monitor.celery import app\n"
        "app.log.setup(loglevel=logging.INFO)\n"
        "logging.getLogger('celery.app.trace').warning(\n"
        f"    'failed for /password-reset/reset/MQ/{TOKEN}/')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "activity_monitor.settings"}
    finished = run_python("-c", script, env=env, timeout=60)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    assert "/password-reset/reset/MQ/[redacted]/" in output
    assert TOKEN not in output
