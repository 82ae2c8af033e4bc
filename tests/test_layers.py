"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and catch a breach.

audit (the events table and its recording) is the foundation, accounts sits on it, the feature
apps on accounts, and no app imports another app's views. `make lint` runs the same check; the
breaches are tried on a copy of the apps with one module added, through lint-imports itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LAYERS = "Layers: the project over feature apps over exports over accounts over audit"


def lint_imports(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS} KEPT" in result.stdout


def test_the_contracts_cover_every_app():
    apps = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert apps | {"activity_monitor", "outbound"} == set(CONFIG["root_packages"])


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The apps' Python files and pyproject.toml, in a directory of their own."""
    copy = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            ROOT / package,
            copy / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.html", "*.txt"),
        )
    return copy


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # The foundation imports nothing above it (the person search, the log pages).
        ("audit/breach.py", "from accounts.models import User", LAYERS),
        ("audit/breach.py", "from accounts.access import require", LAYERS),
        # Demo data sit above the apps (accounts' old seed_demo command).
        ("accounts/breach.py", "from demo.activity import generate_demo_activity", LAYERS),
        # The metrics registry sits under the apps that fill it: it reads none of them.
        ("operations/breach.py", "from alerts.pending import backlog", LAYERS),
        ("operations/breach.py", "from exports.selectors import export_counts_by_status", LAYERS),
        # Feature apps are independent of one another.
        ("alerts/breach.py", "from api.services import api_token_create", LAYERS),
        ("api/breach.py", "from retention.selectors import retention_settings_of", LAYERS),
        # Another app's views, even one below (api.views once imported audit.views).
        ("api/breach.py", "from accounts.views.activity import user_scope", "An app's views"),
        ("exports/breach.py", "from accounts.views import activity", "An app's views"),
        ("accounts/breach.py", "from alerts.views import alert_list", "alerts' views"),
    ],
)
def test_an_import_against_the_contracts_fails_the_check(project_copy, module, line, broken):
    added = project_copy / module
    added.write_text(line + "\n")
    try:
        result = lint_imports(project_copy)
    finally:
        added.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    # The summary names each contract with its verdict; the details of a broken one follow.
    verdict = next(row for row in result.stdout.splitlines() if row.startswith(broken))
    assert " BROKEN" in verdict, result.stdout


def test_a_service_or_selector_of_an_app_below_is_allowed(project_copy):
    added = project_copy / "api" / "breach.py"
    added.write_text(
        "from accounts.selectors import event_filters_with_members\n"
        "from audit.viewed import audit_log_viewed_record\n"
        "from exports.csv import HEADER\n"
    )
    try:
        result = lint_imports(project_copy)
    finally:
        added.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
