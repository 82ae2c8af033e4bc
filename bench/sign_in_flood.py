"""Sign-in under a flood: legitimate users' latency while an attacker hammers the sign-in page.

A real server on loopback: gunicorn with --workers sync workers (2), DEBUG off, the production
password hasher (settings.PASSWORD_HASHERS: Argon2id), buckets and queued tasks in Redis
(REDIS_URL, default database 12; no worker consumes the tasks, the queue is purged afterwards),
PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/am_bench_flood; a test
database test_<name> is created, migrated and dropped; with DATABASE_OWNER_URL the two roles as in
production). TRUSTED_PROXIES is loopback, so the server takes each request's client from
X-Forwarded-For, as behind a load balancer.

- Legitimate: --users people of one organization, all behind one office address (one NAT),
  each signing in (GET the page, POST the form; the POST is timed) every --user-interval
  seconds, keeping their browser's cookies (device, CSRF) as a browser does.
- Attacker: --attack-rate failed sign-ins a second, spread over --attack-addresses client
  addresses, each for a different unknown address at the organization's verified domain
  (credential stuffing of a list). By wrk (`apt-get install wrk`; bench/sign_in_flood.lua), a C
  program, so the attacker takes little of the machine (its CPU is printed): 64 connections, each
  pausing so that together they send the rate; wrk is closed-loop, so a slow server gets fewer
  requests (the rate it got is printed, and requests in flight when it stops are not counted).
  --attacker asyncio paces requests evenly from this process instead (open-loop, costlier).

Phases of --phase-seconds each: baseline (legitimate users only), then attack. It prints the
legitimate users' p50/p95 in both and the p95 ratio (target <= 2), the attacker's requests sent and
answered by status (429 throttled, 200 the refusal page), 5xx and unanswered (target 0), and the
rows the attack wrote: login.throttled and login.failed. The throttle's limits are the product's
defaults unless --ip-burst / --ip-refill-seconds say otherwise (passed to the server's env).

    SECRET_KEY=x .venv/bin/python bench/sign_in_flood.py [--phase-seconds 20] [--attack-rate 500]
        [--attack-addresses 200] [--users 20] [--user-interval 10] [--port 18210] [--ip-burst N]
        [--unfamiliar-burst N --unfamiliar-refill-seconds S] [--warm-up]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import environ_defaults  # noqa: E402

environ_defaults(database_url="postgres://postgres@127.0.0.1:5432/am_bench_flood")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

PASSWORD = "bench-pass-2026"  # noqa: S105
DOMAIN = "bench-acme.test"
OFFICE_IP = "203.0.113.10"
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
REQUEST_TIMEOUT = 30.0


@dataclass
class Response:
    status: int
    cookies: dict[str, str]
    body: bytes


async def http(
    port: int,
    method: str,
    path: str,
    *,
    client_ip: str,
    cookies: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """One request on its own connection (gunicorn's sync workers close after each answer)."""
    body = urlencode(form).encode() if form is not None else b""
    headers = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"X-Forwarded-For: {client_ip}",
        "Connection: close",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    ]
    if cookies:
        headers.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
    if form is not None:
        headers += [
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(body)}",
        ]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    jar: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"set-cookie":
            pair = value.decode().strip().split(";", 1)[0]
            key, _, val = pair.partition("=")
            jar[key.strip()] = val.strip()
    return Response(status, jar, content)


@dataclass
class Legitimate:
    email: str
    cookies: dict[str, str] = field(default_factory=dict)

    async def sign_in(self, port: int) -> tuple[int, float]:
        """GET the page and POST the form; the POST's status and seconds."""
        self.cookies.pop("sessionid", None)  # a fresh sign-in each time; the device stays
        page = await http(port, "GET", "/sign-in/", client_ip=OFFICE_IP, cookies=self.cookies)
        self.cookies.update(page.cookies)
        token = CSRF_FIELD.search(page.body)
        form = {"email": self.email, "password": PASSWORD, "next": ""}
        form["csrfmiddlewaretoken"] = token.group(1).decode() if token else ""
        started = time.perf_counter()
        answer = await http(
            port, "POST", "/sign-in/", client_ip=OFFICE_IP, cookies=self.cookies, form=form
        )
        elapsed = time.perf_counter() - started
        self.cookies.update(answer.cookies)
        return answer.status, elapsed


async def legitimate_users(
    port: int,
    users: list[Legitimate],
    interval: float,
    until: float,
    out: list[float],
    statuses: Counter[Any],
) -> None:
    async def one(user: Legitimate, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() < until:
            next_at = time.monotonic() + interval
            try:
                status, seconds = await asyncio.wait_for(user.sign_in(port), REQUEST_TIMEOUT)
            except (TimeoutError, OSError):
                statuses["unanswered"] += 1
                out.append(REQUEST_TIMEOUT)  # at least this long: counted in the percentiles
            else:
                statuses[status] += 1
                if status == 303:
                    out.append(seconds)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(one(u, i * interval / len(users)) for i, u in enumerate(users)))


def attacker_addresses(count: int) -> list[str]:
    return [f"198.18.{n // 250}.{n % 250 + 1}" for n in range(count)]


async def attacker(
    port: int,
    rate: float,
    addresses: list[str],
    until: float,
    statuses: Counter[Any],
    *,
    total: int | None = None,
) -> None:
    """Send failed sign-ins at `rate` a second until `until` (or `total` of them, as fast as
    8 at a time are answered), round-robin over `addresses`."""
    page = await http(port, "GET", "/sign-in/", client_ip="192.0.2.1")
    token = CSRF_FIELD.search(page.body)
    csrf = token.group(1).decode() if token else ""
    cookies = {"csrftoken": page.cookies.get("csrftoken", "")}
    pending: set[asyncio.Task[None]] = set()

    async def one(n: int) -> None:
        form = {
            "email": f"user{random.randrange(10**9)}@{DOMAIN}",
            "password": f"Summer{n}!",
            "csrfmiddlewaretoken": csrf,
        }
        try:
            answer = await asyncio.wait_for(
                http(
                    port,
                    "POST",
                    "/sign-in/",
                    client_ip=addresses[n % len(addresses)],
                    cookies=cookies,
                    form=form,
                ),
                REQUEST_TIMEOUT,
            )
        except (TimeoutError, OSError):
            statuses["unanswered"] += 1
        else:
            statuses[answer.status] += 1

    if total is not None:
        gate = asyncio.Semaphore(8)

        async def gated(n: int) -> None:
            async with gate:
                await one(n)

        await asyncio.gather(*(gated(n) for n in range(total)))
        statuses["sent"] += total
        return
    started, n = time.monotonic(), 0
    while time.monotonic() < until:
        task = asyncio.create_task(one(n))
        pending.add(task)
        task.add_done_callback(pending.discard)
        statuses["sent"] += 1
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
    if pending:
        await asyncio.wait(pending)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seed(users: int) -> list[str]:
    from accounts.models import DomainProof, Membership, Organization, OrganizationDomain, User

    organization = Organization.objects.create(name="Bench Acme", slug="bench-acme")
    OrganizationDomain.objects.create(
        organization=organization,
        domain=DOMAIN,
        proof=DomainProof.OPERATOR,
        verified_at=timezone.now(),
    )
    encoded = make_password(PASSWORD)  # the production hasher (Argon2id), once for all
    emails = [f"person{n}@{DOMAIN}" for n in range(users)]
    for email in emails:
        user = User.objects.create(email=email, password=encoded)
        Membership.objects.create(user=user, organization=organization)
    return emails


def server_url(database: dict[str, Any]) -> str:
    auth = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    host = database["HOST"] or "127.0.0.1"
    return f"postgres://{auth}@{host}:{database['PORT'] or 5432}/{database['NAME']}"


def start_server(args: argparse.Namespace, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DEBUG": "0",
        "DOTENV_FILE": "",
        "DATABASE_URL": server_url(connections["default"].settings_dict),
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "GUNICORN_BIND": f"127.0.0.1:{args.port}",
        "WEB_CONCURRENCY": str(args.workers),
    }
    env.pop("DATABASE_OWNER_URL", None)
    env.pop("PASSWORD_HASHERS", None)  # the production default: Argon2id
    if args.ip_burst is not None:
        env["THROTTLE_IP_BURST"] = str(args.ip_burst)
    if args.ip_refill_seconds is not None:
        env["THROTTLE_IP_REFILL_SECONDS"] = str(args.ip_refill_seconds)
    if args.unfamiliar_burst is not None:
        env["THROTTLE_UNFAMILIAR_BURST"] = str(args.unfamiliar_burst)
        env["THROTTLE_UNFAMILIAR_REFILL_SECONDS"] = str(args.unfamiliar_refill_seconds)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "activity_monitor.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = asyncio.run(http(args.port, "GET", "/health/", client_ip="127.0.0.1")).status
        except OSError:
            status = 0
        if status == 200:
            return process
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.terminate()
    raise SystemExit(f"gunicorn did not answer /health/; see {log}")


def throttle_state_clear() -> None:
    import redis

    from accounts.throttling import KEY_PREFIX

    if settings.THROTTLE_REDIS_URL:
        client = redis.Redis.from_url(settings.THROTTLE_REDIS_URL)
        keys = list(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


WRK_CONNECTIONS = 64
WRK_LINE = re.compile(r"^(status|errors|latency) (.*)$")


async def wrk_attacker(
    args: argparse.Namespace, statuses: Counter[Any], extra: dict[str, Any]
) -> None:
    """The attack by wrk (bench/sign_in_flood.lua): a C program, so the attacker's share of the
    machine is small and measured (its CPU seconds and latencies go in `extra`)."""
    page = await http(args.port, "GET", "/sign-in/", client_ip="192.0.2.1")
    token = CSRF_FIELD.search(page.body)
    csrf = token.group(1).decode() if token else ""
    pause_ms = max(0, round(WRK_CONNECTIONS * 1000 / args.attack_rate))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{WRK_CONNECTIONS}",
        f"-d{args.phase_seconds:g}s",
        "--timeout",
        f"{REQUEST_TIMEOUT:g}s",
        "-s",
        str(ROOT / "bench" / "sign_in_flood.lua"),
        f"http://127.0.0.1:{args.port}/sign-in/",
        "--",
        str(pause_ms),
        str(args.attack_addresses),
        DOMAIN,
        csrf,
        page.cookies.get("csrftoken", ""),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra["cpu_seconds"] = round(
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
    )
    for line in output.decode().splitlines():
        found = WRK_LINE.match(line)
        if found is None:
            continue
        kind, rest = found.groups()
        words = rest.split()
        if kind == "status":
            statuses[int(words[0])] += int(words[1])
        elif kind == "errors":
            pairs = dict(zip(words[::2], map(int, words[1::2]), strict=True))
            statuses["unanswered"] += pairs["timeout"] + pairs["connect"] + pairs["read"]
        else:
            extra["latency_ms"] = rest
    statuses["sent"] = (
        sum(v for k, v in statuses.items() if isinstance(k, int)) + statuses["unanswered"]
    )


def server_cpu_seconds(process: subprocess.Popen[bytes] | None) -> float:
    """CPU seconds used so far by the gunicorn master and its workers (its process group)."""
    if process is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == process.pid:  # the process group (field 5 of stat)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def phase(
    args: argparse.Namespace,
    users: list[Legitimate],
    attack: bool,
    server: subprocess.Popen[bytes] | None = None,
) -> dict[str, Any]:
    until = time.monotonic() + args.phase_seconds
    latencies: list[float] = []
    legit: Counter[Any] = Counter()
    hostile: Counter[Any] = Counter()
    extra: dict[str, Any] = {}
    jobs = [legitimate_users(args.port, users, args.user_interval, until, latencies, legit)]
    if attack and args.attacker == "wrk":
        jobs.append(wrk_attacker(args, hostile, extra))
    elif attack:
        addresses = attacker_addresses(args.attack_addresses)
        jobs.append(attacker(args.port, args.attack_rate, addresses, until, hostile))
    began, server_before = time.monotonic(), server_cpu_seconds(server)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*jobs)
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - began
    cpu = {
        "wall": wall,
        "server": server_cpu_seconds(server) - server_before,
        # This process: the legitimate users (and the asyncio attacker, if it is the attacker).
        "bench": (self_after.ru_utime - self_before.ru_utime)
        + (self_after.ru_stime - self_before.ru_stime),
        "attacker": float(extra.get("cpu_seconds", 0.0)),
    }
    return {"latencies": latencies, "legit": legit, "hostile": hostile, "cpu": cpu, **extra}


def cpu_report(result: dict[str, Any]) -> None:
    cpu = result["cpu"]
    wall = cpu["wall"]
    print(
        f"          CPU over {wall:.0f} s: server {cpu['server']:.1f} s "
        f"({cpu['server'] / wall:.2f} CPUs), bench process {cpu['bench']:.1f} s "
        f"({cpu['bench'] / wall:.2f}), wrk attacker {cpu['attacker']:.1f} s "
        f"({cpu['attacker'] / wall:.2f}); {load()}"
    )


def report(name: str, result: dict[str, Any]) -> None:
    lat = result["latencies"]
    print(
        f"{name:<9} legitimate sign-ins: statuses {dict(result['legit'])} (unanswered within "
        f"{REQUEST_TIMEOUT:g} s count as {REQUEST_TIMEOUT:g} s); "
        f"p50 {percentile(lat, 0.5) * 1000:.0f} ms, p95 {percentile(lat, 0.95) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--phase-seconds", type=float, default=20)
    parser.add_argument("--attack-rate", type=float, default=500)
    parser.add_argument("--attack-addresses", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--user-interval", type=float, default=10)
    parser.add_argument("--port", type=int, default=18210)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ip-burst", type=int, default=None)
    parser.add_argument("--ip-refill-seconds", type=int, default=None)
    parser.add_argument(
        "--unfamiliar-burst",
        type=int,
        default=None,
        help="THROTTLE_UNFAMILIAR_BURST: the organization's budget of unfamiliar checks",
    )
    parser.add_argument("--unfamiliar-refill-seconds", type=float, default=1.0)
    parser.add_argument(
        "--attacker",
        choices=["wrk", "asyncio"],
        default="wrk" if shutil.which("wrk") else "asyncio",
        help="wrk (apt-get install wrk; bench/sign_in_flood.lua) or this process's asyncio",
    )
    parser.add_argument(
        "--warm-up",
        action="store_true",
        help="before the timed attack, let every attacker address spend its burst (untimed)",
    )
    args = parser.parse_args()

    from activity_monitor.celery import app
    from audit.models import AuditEvent, EventType

    print(f"machine: {load()}; hasher {settings.PASSWORD_HASHERS[0].rsplit('.', 1)[-1]}")
    config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    process = None
    try:
        emails = seed(args.users)
        connection.close()
        throttle_state_clear()
        log = Path(tempfile.gettempdir()) / f"sign_in_flood_{args.port}.log"
        process = start_server(args, log)
        users = [Legitimate(email) for email in emails]
        # Each person signs in once first: their browser becomes familiar, as on any morning.
        asyncio.run(legitimate_users(args.port, users, 0.2, time.monotonic() + 0.1, [], Counter()))
        print(
            f"server: gunicorn {args.workers} workers on 127.0.0.1:{args.port}; "
            f"{args.users} people behind {OFFICE_IP}, one sign-in each every "
            f"{args.user_interval:g} s; attack {args.attack_rate:g}/s from "
            f"{args.attack_addresses} addresses; {args.phase_seconds:g} s a phase"
        )
        baseline = asyncio.run(phase(args, users, attack=False, server=process))
        report("baseline", baseline)
        cpu_report(baseline)
        attack_started = timezone.now()
        if args.warm_up:
            # The attack's first part: every address spends its burst (each attempt a password
            # check, as the throttle allows), as fast as the server answers; not timed.
            burst = args.ip_burst if args.ip_burst is not None else settings.THROTTLE_IP_BURST
            spent: Counter[Any] = Counter()
            began = time.monotonic()
            asyncio.run(
                attacker(
                    args.port,
                    0,
                    attacker_addresses(args.attack_addresses),
                    0,
                    spent,
                    total=burst * args.attack_addresses,
                )
            )
            print(
                f"warm-up   the attacker spent its {args.attack_addresses} addresses' bursts "
                f"({burst} each) in {time.monotonic() - began:.0f} s: "
                f"{dict(sorted((k, v) for k, v in spent.items() if isinstance(k, int)))}"
            )
        attacked = asyncio.run(phase(args, users, attack=True, server=process))
        report("attack", attacked)
        cpu_report(attacked)
        print(f"machine after: {load()}")
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    try:
        ratio = percentile(attacked["latencies"], 0.95) / percentile(baseline["latencies"], 0.95)
        print(f"legitimate p95 ratio (attack / baseline): {ratio:.2f} (target <= 2)")
        hostile = attacked["hostile"]
        answered = {k: v for k, v in hostile.items() if isinstance(k, int)}
        errors = sum(v for k, v in answered.items() if k >= 500)
        print(
            f"attacker ({args.attacker}): {hostile['sent']} sent "
            f"({hostile['sent'] / args.phase_seconds:.0f}/s), answered {sum(answered.values())} "
            f"by status {dict(sorted(answered.items()))}, unanswered {hostile['unanswered']}; "
            f"5xx {errors} (target 0)"
            + (f"; its latency ms {attacked['latency_ms']}" if "latency_ms" in attacked else "")
        )
        rows = Counter(
            AuditEvent.objects.filter(
                occurred_at__gte=attack_started,
                event_type__in=[EventType.LOGIN_THROTTLED, EventType.LOGIN_FAILED],
            ).values_list("event_type", flat=True)
        )
        in_org = AuditEvent.objects.filter(
            occurred_at__gte=attack_started, event_type=EventType.LOGIN_THROTTLED
        ).exclude(organization=None)
        print(
            f"rows the attack wrote: login.throttled {rows[EventType.LOGIN_THROTTLED]} "
            f"({in_org.count()} in the organization's Audit Log), "
            f"login.failed {rows[EventType.LOGIN_FAILED]}"
        )
    finally:
        app.control.purge()
        connections.close_all()
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
