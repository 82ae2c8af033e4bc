"""What finding an unknown address's organization costs a failed sign-in, and whether it tells.

A failed sign-in for an unknown address now looks its domain up among the organizations' verified
domains (accounts.domains.organization_for_address). This prints:

- the lookup alone, with --domains verified domains in the table: the median microseconds of a
  hit and of a miss, and PostgreSQL's plan (it must use the verified-domains unique index);
- failed sign-ins through the real view and test client, three kinds interleaved: a known account
  with a wrong password, an unknown address at a verified domain, an unknown address at a domain
  no one listed. Medians in milliseconds with the MD5 hasher (our code alone) and with the
  production hasher (what an attacker timing the answers sees). An unknown address must not answer
  sooner than a known account: the difference "unknown - known" stays at or above zero minus noise.

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/am_bench_domains; a
test database test_<name> is created and dropped); queued tasks go to Redis (REDIS_URL, default
database 12; no worker consumes them and the queue is purged afterwards), as in production.

    SECRET_KEY=x .venv/bin/python bench/unknown_address.py [--domains 10000] [--rounds 200] \
        [--production-rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import environ_defaults  # noqa: E402

environ_defaults(database_url="postgres://postgres@127.0.0.1:5432/am_bench_domains")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

PASSWORD = "bench-pass-2026"  # noqa: S105
MD5 = ["django.contrib.auth.hashers.MD5PasswordHasher"]
KINDS = {
    "known account, wrong password": "someone@bench-acme.test",
    "unknown at a verified domain": "nobody@bench-acme.test",
    "unknown at an unlisted domain": "nobody@unlisted.test",
}


def _world(domains: int) -> None:
    """Bench Acme with one member and its verified domain, and `domains` other verified ones."""
    from accounts.models import DomainProof, Membership, Organization, OrganizationDomain, User

    acme = Organization.objects.create(name="Bench Acme", slug="bench-acme", lockout_threshold=100)
    user = User.objects.create_user("someone@bench-acme.test", PASSWORD)
    Membership.objects.create(user=user, organization=acme)
    now = timezone.now()
    others = Organization.objects.bulk_create(
        Organization(name=f"Org {n}", slug=f"bench-org-{n}") for n in range(domains)
    )
    OrganizationDomain.objects.bulk_create(
        [
            OrganizationDomain(
                organization=acme,
                domain="bench-acme.test",
                proof=DomainProof.OPERATOR,
                verified_at=now,
            ),
            *(
                OrganizationDomain(
                    organization=org,
                    domain=f"org-{n}.test",
                    proof=DomainProof.OPERATOR,
                    verified_at=now,
                )
                for n, org in enumerate(others)
            ),
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_organizationdomain")


def _lookup(rounds: int) -> None:
    from accounts.domains import organization_for_address

    for address, what in (("nobody@bench-acme.test", "hit"), ("nobody@unlisted.test", "miss")):
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            organization_for_address(address)
            samples.append(time.perf_counter() - start)
        print(f"  {what:<5} median {statistics.median(samples) * 1e6:8.1f} µs over {rounds} calls")
    from accounts.domains import address_domain
    from accounts.models import Organization

    # The selector's query, as it sends it.
    query = (
        Organization.objects.filter(
            email_domains__domain=address_domain("nobody@bench-acme.test"),
            email_domains__verified_at__isnull=False,
        )
        .only("pk")
        .order_by()[:1]
    )
    print("  plan:")
    for line in query.explain().splitlines():
        print(f"    {line}")


def _password_rehash() -> None:
    """Store the account's password with the hasher in force: a hash of a hasher not in force
    is refused without hashing, which would make the known account the quick one."""
    from accounts.models import User

    User.objects.filter(email="someone@bench-acme.test").update(password=make_password(PASSWORD))


def _sign_ins(rounds: int) -> dict[str, list[float]]:
    """`rounds` failed sign-ins of each kind, interleaved; their seconds by kind."""
    from accounts.models import LockoutState

    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for n in range(rounds + 1):
        for kind, address in KINDS.items():
            client = Client()
            start = time.perf_counter()
            response = client.post(
                "/sign-in/",
                {"email": address, "password": "wrong-password"},
                REMOTE_ADDR="203.0.113.10",
            )
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, (kind, response.status_code)
            if n:  # the first round warms caches and connections
                samples[kind].append(elapsed)
        if n % 50 == 0:  # keep the account below its lockout threshold (not timed)
            LockoutState.objects.update(counter_reset_at=timezone.now(), locked_until=None)
    return samples


def _print_sign_ins(label: str, samples: dict[str, list[float]]) -> None:
    known = statistics.median(samples["known account, wrong password"]) * 1000
    print(f"{label} ({len(next(iter(samples.values())))} of each):")
    for kind, seconds in samples.items():
        median = statistics.median(seconds) * 1000
        print(f"  {kind:<32} median {median:8.3f} ms   minus known {median - known:+8.3f} ms")


def main(args: argparse.Namespace) -> None:
    version = connection.get_database_version()[0]
    print(
        f"Unknown addresses at verified domains: {connection.vendor} {version}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}."
    )
    _world(args.domains)
    print(f"\norganization_for_address with {args.domains + 1} verified domains:")
    _lookup(2000)
    print()
    with override_settings(PASSWORD_HASHERS=MD5):
        _password_rehash()
        _print_sign_ins("Failed sign-ins, MD5", _sign_ins(args.rounds))
    hasher = settings.PASSWORD_HASHERS[0].rsplit(".", 1)[-1]
    _password_rehash()
    print()
    _print_sign_ins(f"Failed sign-ins, {hasher}", _sign_ins(args.production_rounds))
    print(f"\nload after: {os.getloadavg()[0]:.1f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--domains", type=int, default=10_000, help="other verified domains")
    parser.add_argument("--rounds", type=int, default=200, help="sign-ins of each kind, MD5")
    parser.add_argument(
        "--production-rounds", type=int, default=20, help="sign-ins of each kind, production hasher"
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        main(arguments)
    finally:
        connection.close()
        teardown_databases(old, verbosity=0)
        from activity_monitor.celery import app

        app.control.purge()
