"""Real things to break: a private Redis, Celery worker processes and a local SMTP server.

The Redis is our own (FAULT_REDIS_PORT, default 6391), never the shared one, so a test may stop
and start it. Workers are `celery worker` subprocesses on the test database, configured through
the environment as a deployment would be.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, connections

from activity_monitor.celery import app, enqueue

from .worker_env import port_for

REDIS_PORT = port_for(int(os.environ.get("FAULT_REDIS_PORT", "6391")))
REDIS_DB = int(os.environ.get("FAULT_REDIS_DB", "6"))
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"
# The Redis that tests needing one use when the run has no REDIS_URL (`make test` in a fresh
# clone): started for them, never stopped under them (fault tests stop REDIS_PORT's).
SPARE_REDIS_PORT = port_for(int(os.environ.get("SPARE_REDIS_PORT", "6394")))
ROOT = Path(settings.BASE_DIR)


def _poll(probe: Callable[[], Any], seconds: float) -> Any:
    """What `probe` returns once it is truthy within `seconds`, else None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    return None


def wait_for(probe: Callable[[], Any], timeout: float = 30.0, what: str = "it") -> Any:
    found = _poll(probe, timeout)
    if not found:
        raise AssertionError(f"no {what} after {timeout} s")
    return found


def _redis_cli(*args: str, port: int = REDIS_PORT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


class PrivateRedis:
    """A redis-server of our own on REDIS_PORT, without persistence, that tests stop and start."""

    def __init__(self, port: int = REDIS_PORT) -> None:
        self.port = port

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server)")
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
            ],
            check=True,
            timeout=10,
        )
        wait_for(lambda: self._cli("ping").stdout.strip() == "PONG", 10, "Redis")

    def stop(self) -> None:
        self._cli("shutdown", "nosave")
        wait_for(lambda: self._cli("ping").returncode != 0, 10, "stopped Redis")

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _redis_cli(*args, port=self.port)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    if _redis_cli("ping").returncode == 0:  # a leftover of a killed run
        redis.stop()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@contextmanager
def redis_url_for_tests() -> Iterator[str]:
    """The run's REDIS_URL (CI sets one); without it a redis-server of our own, so that tests of
    what needs a real Redis run in `make test` from a fresh clone too."""
    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    spare = PrivateRedis(SPARE_REDIS_PORT)
    if spare._cli("ping").returncode == 0:  # a leftover of a killed run
        spare.stop()
    spare.start()
    try:
        yield f"redis://127.0.0.1:{SPARE_REDIS_PORT}/0"
    finally:
        spare.stop()


def redis_empty_if_ours(url: str) -> None:
    """Empty the tests' own Redis (redis_url_for_tests) between tests, as a run's REDIS_URL is
    emptied by the cache clears of the suite; the run's own Redis is left as it is."""
    if url.startswith(f"redis://127.0.0.1:{SPARE_REDIS_PORT}/"):
        import redis

        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
        finally:
            client.close()


def project_settings(**environ: str) -> dict[str, Any]:
    """The settings module's values as a deployment with this environment would get them."""
    saved = dict(os.environ)
    os.environ.update(environ)
    try:
        return runpy.run_path(str(ROOT / "activity_monitor" / "settings.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def app_on_private_redis(django_settings: Any) -> Iterator[None]:
    """This process (the web side) queues to, and caches in, the private Redis; no eager mode."""
    django_settings.CACHES = project_settings(REDIS_URL=REDIS_URL, SECRET_KEY="x")["CACHES"]
    previous = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False)
    # Private, and not in celery-types: drops the connection pools built for the other broker.
    app._after_fork()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        app.conf.update(previous)
        app._after_fork()  # type: ignore[attr-defined]


def enqueue_until_sent(task: Any, *args: Any, timeout: float = 20.0) -> None:
    """Queue through the app's one path; the first publish after an outage may meet a dead
    pooled connection, so try until the broker takes it."""
    wait_for(lambda: enqueue(task, *args), timeout, f"{task.name} queued")


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """A `celery worker --pool=solo` process on the test database and the private Redis."""

    def __init__(self, log: Path, environ: dict[str, str]) -> None:
        self.log = log
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            # A worker runs as the app's role only (README, "Database roles").
            "DATABASE_OWNER_URL": "",
            "REDIS_URL": REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-only",
            "PYTHONPATH": str(ROOT),
            **environ,
        }
        self._handle = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "activity_monitor",
                "worker",
                "--pool=solo",
                "--loglevel=info",
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"fault-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(lambda: b" ready." in log.read_bytes() or not self.alive, 60, "worker ready")
            assert self.alive, self.output()
        except BaseException:  # never left behind holding the test database
            self.stop()
            raise

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_bytes().decode(errors="replace")[-4000:]

    def kill(self) -> None:
        """kill -9: no cleanup, no acknowledgement, as when a machine or container dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._handle.close()


@contextmanager
def workers(log_dir: Path, environ: dict[str, str]) -> Iterator[Callable[[], Worker]]:
    """Start workers on demand; every one is stopped at the end, however the test went."""
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(log_dir / f"worker-{len(started)}.log", environ)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        connections.close_all()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpRecorder:
    """An aiosmtpd handler that keeps what it receives; it can leave the first DATA unanswered,
    so the sender hangs inside its SMTP send until it is killed."""

    def __init__(self, *, hang_first: bool = False) -> None:
        self.messages: list[str] = []
        self._hang = hang_first
        self.hanging = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self._hang:
            self._hang = False
            self.hanging.set()
            await asyncio.sleep(3600)
        self.messages.append(envelope.content.decode(errors="replace"))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(handler: SmtpRecorder) -> Iterator[int]:
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def sweep_until(task: Any, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Queue the sweep through the worker every second or so until `probe` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        enqueue_until_sent(task)
        found = _poll(probe, 1.0)
        if found:
            return found
    raise AssertionError(f"{task.name} did not finish the work in {timeout} s")
