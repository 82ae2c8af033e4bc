"""What the smart lockout's familiarity decision costs a sign-in attempt.

accounts.familiarity.attempt_source asks one question of the account's sessions before the
lockout lock is taken: has this device cookie signed in to the account, or has this network
(IPv4 /24, IPv6 /64) within 90 days? It reads the account's own sessions (filtered by user first)
among everyone else's. This times it for accounts with few and with very many sessions, for the
three answers: a known device, a new device on a known network, and an unfamiliar source (no row
matches: every row of the account is looked at, the worst case). Prints the median and 95th
percentile in milliseconds and the plan of the worst case.

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/am_bench_familiarity;
a test database test_<name> is created and dropped):

    SECRET_KEY=x .venv/bin/python bench/familiarity.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import environ_defaults  # noqa: E402

environ_defaults(database_url="postgres://postgres@127.0.0.1:5432/am_bench_familiarity")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import setup_databases, setup_test_environment, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

# Sessions of the measured accounts; everyone else has OTHERS_SESSIONS each.
SIZES = (20, 2_000, 20_000)
OTHERS, OTHERS_SESSIONS = 2_000, 20
NEW_BROWSER = "a-new-browser-cookie-000000"


def _cookie(user, n: int) -> str:
    return f"bench-device-cookie-{user.pk}-{n}"


def _sessions(user, count: int, rng: random.Random) -> list[Any]:
    from accounts.familiarity import network_of
    from accounts.models import UserSession
    from audit.context import short_hash

    now = timezone.now()
    rows = []
    for n in range(count):
        ip = str(ipaddress.IPv4Address(rng.randrange(1 << 24, 200 << 24)))
        rows.append(
            UserSession(
                user=user,
                session_key=f"{user.pk}-{n}",
                session_hash=f"{rng.getrandbits(64):016x}",
                ip_address=ip,
                network=network_of(ip),
                # As audit.context derives it from the browser's cookie.
                device_id=short_hash(_cookie(user, n), purpose="device"),
                started_at=now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60)),
            )
        )
    return rows


def _load(rng: random.Random) -> dict[int, tuple[Any, str, str]]:
    from accounts.models import User, UserSession

    users = User.objects.bulk_create(
        User(email=f"other{n}@example.test", password="!") for n in range(OTHERS)
    )
    rows = [row for user in users for row in _sessions(user, OTHERS_SESSIONS, rng)]
    measured = {}
    for size in SIZES:
        user = User.objects.create(email=f"measured{size}@example.test", password="!")
        mine = _sessions(user, size, rng)
        # The last session names the known device and network.
        newest = mine[-1]
        newest.started_at = timezone.now() - timedelta(days=1)
        rows += mine
        measured[size] = (user, newest.ip_address, _cookie(user, size - 1))
    UserSession.objects.bulk_create(rows, batch_size=5_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_usersession")
    return measured


def _time(user, *, ip: str, cookie: str, familiar: bool, repeat: int) -> list[float]:
    from accounts.familiarity import Source, attempt_source

    factory = RequestFactory()
    samples = []
    for _ in range(repeat):
        request = factory.post("/sign-in/", REMOTE_ADDR=ip)
        request.COOKIES[settings.DEVICE_COOKIE_NAME] = cookie
        start = time.perf_counter()
        source = attempt_source(user=user, request=request)
        samples.append((time.perf_counter() - start) * 1000)
        assert (source is Source.FAMILIAR) == familiar, "the bench measured the wrong answer"
    return samples


def _plan(user) -> str:
    from accounts.models import UserSession

    since = timezone.now() - timedelta(days=90)
    # The statement attempt_source runs for an unfamiliar source.
    seen = Q(device_id="0000000000000000") | Q(network="10.255.255.0/24", started_at__gte=since)
    query = UserSession.objects.filter(user_id=user.pk).filter(seen)
    sql, params = query.values("pk")[:1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", params)
        return "\n".join("    " + row[0] for row in cursor.fetchall())


def main(args: argparse.Namespace) -> None:
    rng = random.Random(14)
    measured = _load(rng)
    print(
        f"Familiarity decision (accounts.familiarity.attempt_source), {connection.vendor} "
        f"{connection.get_database_version()[0]}, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.2f}; {OTHERS} other accounts with {OTHERS_SESSIONS} sessions "
        f"each; {args.repeat} attempts each; milliseconds, median / p95."
    )
    print(f"{'sessions':>9}  {'known device':>14}  {'known network':>14}  {'unfamiliar':>14}")
    for size, (user, ip, cookie) in measured.items():
        neighbour = str(ipaddress.IPv4Address(int(ipaddress.IPv4Address(ip)) ^ 1))
        cases = [
            _time(user, ip="10.255.255.1", cookie=cookie, familiar=True, repeat=args.repeat),
            _time(user, ip=neighbour, cookie=NEW_BROWSER, familiar=True, repeat=args.repeat),
            _time(user, ip="10.255.255.1", cookie=NEW_BROWSER, familiar=False, repeat=args.repeat),
        ]
        figures = [
            f"{statistics.median(c):.3f} / {statistics.quantiles(c, n=20)[-1]:.3f}" for c in cases
        ]
        print(f"{size:>9}  " + "  ".join(f"{f:>14}" for f in figures))
    print(f"Plan of the unfamiliar case, {SIZES[-1]} sessions:")
    print(_plan(measured[SIZES[-1]][0]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=300)
    arguments = parser.parse_args()
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        main(arguments)
    finally:
        connection.close()
        teardown_databases(old, verbosity=0)
