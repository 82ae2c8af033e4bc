"""The load and fault suite's server: started once for the package, stopped and dropped after.

Every test here is marked `system` and `postgres` (stack.SYSTEM): on SQLite they are skipped
saying why; under REQUIRE_POSTGRES (CI) they must run (the root conftest.py).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from .stack import Stack, running_stack


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """A failed test shows the end of every server log of the run."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, Stack):
        report.sections.append(("system logs", stack.log_tails()))
    return report


@pytest.fixture(scope="package")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The running system; its logs are kept (and named in the failure) only if a test failed.

    Not pytest's tmp_path: other pytest runs on the machine prune those while this one runs.
    """
    work_dir = Path(tempfile.mkdtemp(prefix="am-system-"))
    failed_before = request.session.testsfailed
    with running_stack(
        app_url=settings.DATABASE_URL,
        owner_url=getattr(settings, "DATABASE_OWNER_URL", ""),
        work_dir=work_dir,
    ) as started:
        yield started
    if request.session.testsfailed == failed_before:
        shutil.rmtree(work_dir, ignore_errors=True)
