"""The suite's processes (pytest-xdist's workers) side by side: Redis, files and ports each.

Loaded with ``-p tests.worker_env`` (pyproject's addopts) so that it runs before pytest-django
reads the settings: a worker's REDIS_URL names the database after the run's by the worker's
number, so one worker's cache clear or stopped queue never reaches another's, and its stored
files (MEDIA_ROOT, EXPORT_ROOT) live in a folder of its own, as the rows naming them live in a
database of its own (pytest-django names it after the worker). The servers and workers a test
starts inherit all of it. The tests' own servers (a Redis to stop, the system suite's gunicorn)
take ports by ``port_for``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def worker_number() -> int:
    """0, 1, … for xdist's gw0, gw1, …; 0 for a run in one process."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def port_for(base: int) -> int:
    """A port of this worker's own, `base` for the first (and for a run in one process)."""
    return base + 100 * worker_number()


def _redis_url_of_this_worker() -> None:
    url = os.environ.get("REDIS_URL", "")
    if not url or worker_number() == 0:
        return
    parts = urlsplit(url)
    database = (int(parts.path.strip("/") or 0) + worker_number()) % 16
    os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{database}"))


def _files_of_this_worker() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return
    root = Path(__file__).resolve().parent.parent / "var" / "tests" / worker
    os.environ.setdefault("MEDIA_ROOT", str(root / "media"))
    os.environ.setdefault("EXPORT_ROOT", str(root / "exports"))


_redis_url_of_this_worker()
_files_of_this_worker()
