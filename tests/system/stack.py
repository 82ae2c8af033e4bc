"""The system under test, for real: a database of its own, Redis, gunicorn, a Celery worker and
beat, each a process group of its own with its output in a log file, and a TCP proxy in front of
PostgreSQL that a test can cut.

The tests talk to it the way its users do (HTTP) and read its database with plain SQL: the
server runs in other processes against another database than pytest-django's test database, so
the test process's Django connections cannot see it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests
from celery import Celery
from psycopg import sql

from tests.worker_env import port_for

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# Every system test: `-m system` picks them; on SQLite they are skipped saying why.
SYSTEM = [
    pytest.mark.system,
    # One worker runs the whole suite on its one stack (pytest-xdist's --dist loadgroup).
    pytest.mark.xdist_group("system"),
    pytest.mark.postgres(
        reason="a real gunicorn, Celery worker, beat and Redis on a database of their own"
    ),
]

# The ports given to this suite on the shared development machine; override them where they clash.
HTTP_PORT = port_for(int(os.environ.get("SYSTEM_HTTP_PORT", "8101")))
PROXY_PORT = port_for(int(os.environ.get("SYSTEM_PROXY_PORT", "8111")))
REDIS_PORT = port_for(int(os.environ.get("SYSTEM_REDIS_PORT", "6392")))

# gunicorn as a deployment runs it: several processes, a few threads each (8 requests at once,
# as many as the eight sync workers of the attack).
GUNICORN_WORKERS = 4
GUNICORN_THREADS = 2
WORKER_CONCURRENCY = 2
# Argon2id costs about 165 ms and 100 MiB per check here, too much for bursts of sign-ins on two
# vCPUs; this is a real Django hasher, the one the unit tests use (tests never assert its cost).
PASSWORD_HASHER = "django.contrib.auth.hashers.MD5PasswordHasher"

SECRET_KEY = "system-suite-" + secrets.token_urlsafe(24)
READY_SECONDS = 60.0
STOP_SECONDS = 10.0


# --- As whom each part connects: this one place -------------------------------------------------


def database_url(base_url: str, *, name: str, port: int | None = None) -> str:
    """`base_url` (the run's DATABASE_URL) for another database name, optionally another port."""
    parts = urlsplit(base_url)
    netloc = parts.netloc
    if port is not None:
        host = netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0]
        credentials = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
        netloc = f"{credentials}{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "/" + name, parts.query, ""))


class Roles:
    """The suite's database and who connects to it as whom.

    With DATABASE_OWNER_URL set (two roles, as CI runs), the owner creates, migrates and seeds
    the database and the tests read it as the owner; gunicorn, the worker and beat connect with
    DATABASE_URL's role. Without it, one role does everything.
    """

    def __init__(self, *, app_url: str, owner_url: str, name: str) -> None:
        self.name = name
        self.app_url = database_url(app_url, name=name)
        self.owner_url = database_url(owner_url or app_url, name=name)
        self.two_roles = bool(owner_url)
        self.maintenance_url = database_url(owner_url or app_url, name="postgres")

    def owner_environment(self) -> dict[str, str]:
        """Migrations and seeding (tests/system/prepare.py)."""
        if self.two_roles:
            return {"DATABASE_URL": self.app_url, "DATABASE_OWNER_URL": self.owner_url}
        return {"DATABASE_URL": self.app_url}

    def app_environment(self, *, port: int | None = None) -> dict[str, str]:
        """gunicorn (through the proxy's port), the worker and beat."""
        return {"DATABASE_URL": database_url(self.app_url, name=self.name, port=port)}


# --- Waiting ----------------------------------------------------------------------------------


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Call `probe` until it returns something true; fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None
    while True:
        try:
            found = probe()
        except Exception as exc:  # not up yet
            found, last_error = None, exc
        else:
            last_error = None
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what}: nothing after {timeout:.0f} s (last error: {last_error})"
            )
        time.sleep(every)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


# --- Processes --------------------------------------------------------------------------------


class Service:
    """One program in a process group of its own, so that stopping it stops its children too."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- starting {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        """The process ids of the program's direct children (Linux)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except FileNotFoundError:
            return []

    def kill(self) -> None:
        """SIGKILL the whole group at once: no warm shutdown, no acknowledgement, nothing."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever of it is left; safe to call twice."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_SECONDS)
        # Children that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_SECONDS)

    def log_tail(self, lines: int = 40) -> str:
        """The log's last lines, less gunicorn's access lines (the tests keep every answer)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        kept = [line for line in text.splitlines() if not line.startswith("127.0.0.1 - - [")]
        return "\n".join(kept[-lines:])

    def ready(self, probe: Callable[[], Any], *, timeout: float = READY_SECONDS) -> None:
        """Wait until `probe` says the program serves; fail at once if it exited."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"{self.name} exited; its log ends:\n{self.log_tail()}")
            with contextlib.suppress(Exception):  # not serving yet
                if probe():
                    return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.name} not ready after {timeout:.0f} s; its log ends:\n{self.log_tail()}"
                )
            time.sleep(0.1)


# --- The TCP proxy in front of PostgreSQL -----------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`, until a test cuts it.

    `cut("refuse")`: every open connection is closed and nothing listens (connection refused).
    `cut("blackhole")`: every open connection is closed; new ones are accepted and then never
    answered, like a server that stopped responding (only a connect timeout ends the wait).
    `restore()`: forwarding again, on the same port.
    """

    def __init__(self, *, port: int, target: tuple[str, int], log_path: Path) -> None:
        self.port = port
        self.target = target
        self.log_path = log_path
        self._mode = "forward"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._held: set[socket.socket] = set()
        self._listening = threading.Event()
        self._stop_listening = threading.Event()
        self._listener: threading.Thread | None = None

    def start(self) -> None:
        self._stop_listening.clear()
        server = socket.create_server(("127.0.0.1", self.port), backlog=128)
        server.settimeout(0.1)
        self._listener = threading.Thread(
            target=self._accept, args=(server,), name="system-proxy", daemon=True
        )
        self._listener.start()

    def _accept(self, server: socket.socket) -> None:
        with server:
            while not self._stop_listening.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                with self._lock:
                    self._sockets.add(client)
                    mode = self._mode
                    if mode == "blackhole":  # kept open, never read or answered
                        self._held.add(client)
                if mode == "forward":
                    threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _note(self, line: str) -> None:
        with self.log_path.open("a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError as exc:
            self._note(f"could not reach {self.target}: {exc!r}")
            self._close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.add(upstream)
        # A socket's file descriptor -> (that socket, the socket its bytes are copied to).
        peers = {client.fileno(): (client, upstream), upstream.fileno(): (upstream, client)}
        with selectors.DefaultSelector() as selector:
            for sock, _ in peers.values():
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select():
                        source, target = peers[key.fd]
                        data = source.recv(65536)
                        if not data:
                            side = "client" if source is client else "server"
                            self._note(f"{side} closed {client.getpeername()}")
                            return
                        target.sendall(data)
            except (OSError, ValueError) as exc:
                self._note(f"link ended: {exc!r}")
                return
            finally:
                self._close(client)
                self._close(upstream)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            self._held.discard(sock)
        # shutdown() wakes a thread blocked reading the socket; close() alone would not.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _close_all(self) -> None:
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            self._close(sock)

    def _stop_accepting(self) -> None:
        self._stop_listening.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
            self._listener = None

    def cut(self, mode: str) -> None:
        assert mode in {"refuse", "blackhole"}, mode
        self._note(f"cut: {mode}")
        with self._lock:
            self._mode = mode
        if mode == "refuse":
            self._stop_accepting()
        elif self._listener is None:
            self.start()
        self._close_all()

    def restore(self) -> None:
        """Forward again; links made while forwarding are left alone."""
        with self._lock:
            was, self._mode = self._mode, "forward"
            held = list(self._held)
        if was == "forward":
            return
        self._note("restored")
        for sock in held:  # the connections that waited in the blackhole
            self._close(sock)
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self._stop_accepting()
        self._close_all()


# --- The whole stack --------------------------------------------------------------------------


class Stack:
    """PostgreSQL database, Redis, proxy, gunicorn, worker and beat of one system suite run."""

    def __init__(self, *, app_url: str, owner_url: str, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.export_root = work_dir / "exports"
        self.roles = Roles(app_url=app_url, owner_url=owner_url, name=f"am_system_{os.getpid()}")
        database_port = urlsplit(self.roles.app_url).port or 5432
        database_host = urlsplit(self.roles.app_url).hostname or "127.0.0.1"
        self.proxy = TcpProxy(
            port=PROXY_PORT,
            target=(database_host, database_port),
            log_path=self.log_dir / "proxy.log",
        )
        self.base_url = f"http://127.0.0.1:{HTTP_PORT}"
        self.redis_url = f"redis://127.0.0.1:{REDIS_PORT}/0"
        self.seeded: dict[str, Any] = {}
        self.services: dict[str, Service] = {}
        self._db: psycopg.Connection[Any] | None = None
        self.celery = Celery("system-tests", broker=self.redis_url)

    # --- environment --------------------------------------------------------------------

    def environment(self, *, database: dict[str, str]) -> dict[str, str]:
        """A production-like environment: DEBUG off, its own secret, real Redis and PostgreSQL."""
        keep = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TZ") if key in os.environ}
        return {
            **keep,
            "DJANGO_SETTINGS_MODULE": "activity_monitor.settings",
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "0",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain HTTP on the loopback, as docker compose's local stack: no redirect to https,
            # no HSTS, and no Secure cookies (they would never come back over http).
            "SECURE_COOKIES": "0",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_HSTS_SECONDS": "0",
            # Alert emails are sent, into memory: no mail server here, and nothing reads them.
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "REDIS_URL": self.redis_url,
            "PASSWORD_HASHERS": PASSWORD_HASHER,
            "EXPORT_ROOT": str(self.export_root),
            "MEDIA_ROOT": str(self.work_dir / "media"),
            # Every Audit Log export of more than a page of events becomes a background job.
            "EXPORT_STREAM_MAX_ROWS": "100",
            "ALERTS_BASE_URL": self.base_url,
            # Evaluation commits a batch of at most this many events at a time: the seeded
            # 600-event batch is sixty commits, so a worker killed in it dies half-way.
            "ALERTS_EVALUATION_BATCH": "10",
            "LOG_LEVEL": "INFO",
            # Every browser here is 127.0.0.1 and the stack lives through all the system tests:
            # the lockout and the outages are tested here, with the sign-in throttle's limits
            # far above what they send (tests/test_throttling*.py test the throttle).
            "THROTTLE_IP_BURST": "10000",
            "THROTTLE_ACCOUNT_BURST": "10000",
            **database,
        }

    # --- database -----------------------------------------------------------------------

    def _drop_database(self, conn: psycopg.Connection[Any]) -> None:
        name = sql.Identifier(self.roles.name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))

    def create_database(self) -> None:
        with psycopg.connect(self.roles.maintenance_url, autocommit=True) as conn:
            self._drop_database(conn)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.roles.name)))

    def drop_database(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        with psycopg.connect(self.roles.maintenance_url, autocommit=True) as conn:
            self._drop_database(conn)

    def prepare(self) -> None:
        """Migrate and seed, as the deployment would (tests/system/prepare.py)."""
        log = self.log_dir / "prepare.log"
        env = self.environment(database=self.roles.owner_environment())
        with log.open("ab") as err:
            done = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("prepare.py"))],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                timeout=300,
                check=False,
            )
        if done.returncode != 0:
            raise AssertionError(f"prepare.py failed:\n{log.read_text()[-4000:]}")
        self.seeded = json.loads(done.stdout.decode().strip().splitlines()[-1])

    def rows(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Read the server's database directly (PostgreSQL, not through the proxy)."""
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.roles.owner_url, autocommit=True)
        return self._db.execute(sql, params).fetchall()

    def value(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        [[found]] = self.rows(sql, params)
        return found

    # --- services -----------------------------------------------------------------------

    def _service(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        service = Service(name, argv, env=env, log_dir=self.log_dir)
        self.services[name] = service
        service.start()
        return service

    def start_redis(self) -> None:
        redis_server = shutil.which("redis-server")
        assert redis_server, "redis-server not found: apt-get install redis-server"
        service = self._service(
            "redis",
            [
                redis_server,
                "--port", str(REDIS_PORT),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
            ],
            {"PATH": os.environ.get("PATH", "")},
        )  # fmt: skip
        service.ready(lambda: redis.Redis(port=REDIS_PORT, socket_timeout=1).ping())

    def stop_redis(self) -> None:
        self.services["redis"].stop()

    def start_web(self) -> None:
        env = self.environment(database=self.roles.app_environment(port=PROXY_PORT))
        service = self._service(
            "gunicorn",
            [
                sys.executable, "-m", "gunicorn", "activity_monitor.wsgi",
                "--config", str(REPO / "gunicorn.conf.py"),  # its logging, as deployed
                "--bind", f"127.0.0.1:{HTTP_PORT}",
                "--workers", str(GUNICORN_WORKERS),
                "--threads", str(GUNICORN_THREADS),
                "--worker-class", "gthread",
                "--timeout", "30",
                "--graceful-timeout", "5",
            ],
            env,
        )  # fmt: skip
        service.ready(
            lambda: requests.get(f"{self.base_url}/health/", timeout=5).status_code == 200
        )

    def _start_celery(self, command: str, *options: str) -> Service:
        """Start `celery worker` or `celery beat` as the app's role, as the service `command`."""
        argv = [sys.executable, "-m", "celery", "-A", "activity_monitor", command]
        env = self.environment(database=self.roles.app_environment())
        return self._service(command, [*argv, "--loglevel", "INFO", *options], env)

    def start_worker(self) -> None:
        service = self._start_celery(
            "worker",
            "--concurrency", str(WORKER_CONCURRENCY),
            "--hostname", f"system-{os.getpid()}@%h",
        )  # fmt: skip
        service.ready(lambda: self.celery.control.ping(timeout=0.5))

    def start_beat(self) -> None:
        service = self._start_celery(
            "beat",
            "--schedule", str(self.work_dir / "beat-schedule"),
            "--pidfile", str(self.work_dir / "beat.pid"),
        )  # fmt: skip
        service.ready(lambda: "beat: Starting" in service.log_path.read_text(errors="replace"))

    def start(self) -> None:
        for port in (HTTP_PORT, PROXY_PORT, REDIS_PORT):
            assert port_is_free(port), f"port {port} is taken (a leftover server?)"
        self.export_root.mkdir(parents=True, exist_ok=True)
        self.create_database()
        self.prepare()
        self.proxy.start()
        self.start_redis()
        self.start_web()
        self.start_worker()
        self.start_beat()

    def stop(self) -> None:
        for name in ("beat", "worker", "gunicorn", "redis"):
            service = self.services.get(name)
            if service is not None:
                service.stop()
        self.proxy.stop()
        self.celery.close()

    def ensure_running(self) -> list[str]:
        """Bring back what an earlier test left down; returns what had to be restarted."""
        restarted = []
        self.proxy.restore()
        if not self.services["redis"].alive():
            self.start_redis()
            restarted.append("redis")
        for name, start in (
            ("gunicorn", self.start_web),
            ("worker", self.start_worker),
            ("beat", self.start_beat),
        ):
            if not self.services[name].alive():
                start()
                restarted.append(name)
        return restarted

    def log_tails(self, lines: int = 40) -> str:
        return "\n\n".join(
            f"--- {service.log_path}\n{service.log_tail(lines)}"
            for service in self.services.values()
        )


@contextlib.contextmanager
def running_stack(*, app_url: str, owner_url: str, work_dir: Path) -> Iterator[Stack]:
    """Start everything, yield it, and stop and drop everything whatever happened."""
    stack = Stack(app_url=app_url, owner_url=owner_url, work_dir=work_dir)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        stack.drop_database()
        # Export files run to tens of megabytes; the logs stay for whoever reads a failure.
        shutil.rmtree(stack.export_root, ignore_errors=True)
        shutil.rmtree(work_dir / "media", ignore_errors=True)
