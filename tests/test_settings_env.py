"""Settings come from the environment and make run's .env; a value they cannot parse stops start-up.

Issue 13: the README's manage.py commands work after `make run` in a fresh clone (its .env gives
them DEBUG=1 and a SECRET_KEY), and `SECURE_COOKIES=ture` is an error, not a silent False.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from activity_monitor.settings import dotenv_file, envbool, envfloat, envint, envnetworks

from .settings_support import ROOT, printed_json, production_env, run_manage

_PRINT_DEBUG_AND_KEY = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps({'DEBUG': settings.DEBUG, 'SECRET_KEY': settings.SECRET_KEY}))"
)


def _write_dotenv(directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run make run's .env writer (the Makefile's `.env` target) in `directory`."""
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-s",
            "-C",
            str(directory),
            "-f",
            str(ROOT / "Makefile"),
            *extra,
            ".env",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fresh_clone_env(**overrides: str) -> dict[str, str]:
    """A shell in a fresh clone after `make run`: no DEBUG, no SECRET_KEY, only the .env."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env["DJANGO_SETTINGS_MODULE"] = "activity_monitor.settings"
    env.update(overrides)
    return env


def _settings_seen(env: dict[str, str]) -> dict[str, object]:
    return printed_json(_PRINT_DEBUG_AND_KEY, env)


def _dotenv_values(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


# --- make run's .env ---------------------------------------------------------------------------


def test_make_run_writes_a_dotenv_with_debug_and_a_generated_secret_key(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()

    assert _write_dotenv(first).returncode == 0
    assert _write_dotenv(second).returncode == 0

    values = _dotenv_values(first / ".env")
    assert values["DEBUG"] == "1"
    assert len(values["SECRET_KEY"]) >= 50
    assert values["SECRET_KEY"] != _dotenv_values(second / ".env")["SECRET_KEY"]
    # A secret: readable by its owner only.
    assert stat.S_IMODE((first / ".env").stat().st_mode) == 0o600


def test_the_dotenv_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", ".env"], cwd=ROOT, timeout=30
    )

    assert result.returncode == 0


def test_the_image_neither_copies_nor_reads_a_dotenv():
    """No Docker daemon runs where the suite does, so: the two lines that see to it."""
    ignored = (ROOT / ".dockerignore").read_text().splitlines()

    assert ".env" in ignored
    assert 'DOTENV_FILE=""' in (ROOT / "Dockerfile").read_text()


def test_settings_read_the_dotenv_make_run_wrote(tmp_path):
    assert _write_dotenv(tmp_path).returncode == 0
    env = _fresh_clone_env(DOTENV_FILE=str(tmp_path / ".env"))

    seen = _settings_seen(env)
    check = run_manage("check", env=env)

    assert seen == {"DEBUG": True, "SECRET_KEY": _dotenv_values(tmp_path / ".env")["SECRET_KEY"]}
    assert check.returncode == 0, check.stdout + check.stderr


def test_without_the_dotenv_a_command_asks_for_a_secret_key():
    check = run_manage("check", env=_fresh_clone_env(DOTENV_FILE=""))

    assert check.returncode != 0
    assert "Set SECRET_KEY" in check.stderr


def test_the_environment_wins_over_the_dotenv(tmp_path):
    assert _write_dotenv(tmp_path).returncode == 0
    env = _fresh_clone_env(
        DOTENV_FILE=str(tmp_path / ".env"), DEBUG="0", SECRET_KEY="from-the-environment"
    )

    assert _settings_seen(env) == {"DEBUG": False, "SECRET_KEY": "from-the-environment"}


def test_make_run_never_overwrites_an_existing_dotenv(tmp_path):
    operators = "DEBUG=0\nSECRET_KEY=the-operator-chose-this\nDATABASE_URL=postgres:///mine\n"
    (tmp_path / ".env").write_text(operators)

    assert _write_dotenv(tmp_path).returncode == 0
    # Even when make is told to remake it (-B), the writer refuses to replace a file.
    forced = _write_dotenv(tmp_path, "-B")

    assert forced.returncode != 0
    assert "FileExistsError" in forced.stderr
    assert (tmp_path / ".env").read_text() == operators


def test_make_run_serves_on_the_port_it_is_given(tmp_path):
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(ROOT), "run", "PORT=8001"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert planned.returncode == 0, planned.stderr
    assert "manage.py runserver 127.0.0.1:8001" in planned.stdout


def test_the_test_suite_reads_no_dotenv():
    """pytest sets PYTEST_VERSION; the tests and the servers they start state their own env."""
    assert "PYTEST_VERSION" in os.environ
    assert dotenv_file(os.environ) == ""
    assert dotenv_file({}) == str(ROOT / ".env")
    assert dotenv_file({"PYTEST_VERSION": "9.2.0"}) == ""
    assert dotenv_file({"DOTENV_FILE": ""}) == ""


def test_a_named_dotenv_that_does_not_exist_stops_start_up(tmp_path):
    missing = str(tmp_path / "no-such.env")

    with pytest.raises(ImproperlyConfigured, match="DOTENV_FILE=.*no-such.env"):
        dotenv_file({"DOTENV_FILE": missing})


# --- Values the helpers cannot parse -----------------------------------------------------------

BAD_VALUES = [
    (envbool, "SECURE_COOKIES", "ture"),
    (envbool, "DEBUG", "2"),
    (envbool, "EMAIL_USE_TLS", "yes please"),
    (envbool, "SECURE_HSTS_PRELOAD", "enabled"),
    (envint, "EMAIL_PORT", "25a"),
    (envint, "SECURE_HSTS_SECONDS", "1.5"),
    (envint, "SESSION_COOKIE_AGE", "12h"),
    (envint, "RETENTION_PURGE_BATCH_SIZE", "1e5"),
    (envfloat, "RETENTION_PURGE_PAUSE_RATIO", "half"),
    (envfloat, "RETENTION_PURGE_PAUSE_RATIO", "nan"),
    (envfloat, "RETENTION_PURGE_PAUSE_RATIO", "inf"),
    (envfloat, "RETENTION_PURGE_PAUSE_RATIO", "-1"),
    (envnetworks, "TRUSTED_PROXIES", "10.0.0.0/33"),
    (envnetworks, "TRUSTED_PROXIES", "10.0.0.1, proxy.example.test"),
    (envnetworks, "TRUSTED_PROXIES", "300.1.2.3"),
]


def _call(helper, name: str):
    """The helper as settings.py calls it (the defaults are irrelevant to a set value)."""
    if helper is envnetworks:
        return envnetworks(name)
    if helper is envfloat:
        return envfloat(name, 0.0, minimum=0.0)
    if helper is envint:
        return envint(name, 7)
    return envbool(name, False)


@pytest.mark.parametrize(("helper", "name", "value"), BAD_VALUES)
def test_a_value_a_helper_cannot_parse_is_an_error_naming_the_variable(
    monkeypatch, helper, name, value
):
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured) as raised:
        _call(helper, name)

    bad_part = value.split(", ")[-1]
    assert f"{name}={bad_part!r}" in str(raised.value)


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (envbool, " TRUE ", True),
        (envbool, "on", True),
        (envbool, "Off", False),
        (envbool, "0", False),
        (envint, "1_000", 1000),
        (envint, " 42 ", 42),
        (envfloat, "0.5", 0.5),
    ],
)
def test_values_the_helpers_accept(monkeypatch, helper, value, expected):
    monkeypatch.setenv("SOME_SETTING", value)

    assert _call(helper, "SOME_SETTING") == expected


@pytest.mark.parametrize("helper", [envbool, envint, envfloat])
def test_empty_or_unset_is_the_default(monkeypatch, helper):
    monkeypatch.setenv("SOME_SETTING", "  ")
    empty = _call(helper, "SOME_SETTING")
    monkeypatch.delenv("SOME_SETTING")

    assert _call(helper, "SOME_SETTING") == empty


def test_trusted_proxies_are_networks(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,2001:db8::/32")

    assert [str(network) for network in envnetworks("TRUSTED_PROXIES")] == [
        "10.0.0.0/8",
        "192.0.2.7/32",
        "2001:db8::/32",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECURE_COOKIES", "ture"),
        ("EMAIL_TIMEOUT", "ten"),
        ("RETENTION_PURGE_PAUSE_RATIO", "-0.5"),
        ("CACHE_REDIS_TIMEOUT_SECONDS", "250ms"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
    ],
)
def test_an_unparsable_setting_stops_start_up_with_its_name(name, value):
    result = run_manage("check", env=production_env(**{name: value}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name}={value!r}" in result.stderr
