"""What capture costs a sign-in: our sign-in view against bare Django's LoginView.

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/am_bench_login; a
test database test_<name> is created and dropped) with queued tasks going to Redis (REDIS_URL,
default database 12), MD5 hasher on both sides, one process, the two modes alternating in blocks
of BLOCK sign-ins of each kind (see main). Prints the median time of a successful and of a failed
sign-in through the test client with capture on and off, and their ratio.

    make bench-login            # or: SECRET_KEY=x .venv/bin/python bench/login_overhead.py [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activity_monitor.settings")
# Its settings are its own: make run's .env (DEBUG=1) would time Django's debug cursor.
os.environ.setdefault("DOTENV_FILE", "")
# The test client speaks plain http; production's https redirect would answer 301.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/am_bench_login")
# As in production, work a sign-in hands off (alert evaluation, emails) is queued to Redis, not
# run inside the request; no worker consumes it here and the queue is purged afterwards.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.signals import (  # noqa: E402
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)
from django.utils import timezone  # noqa: E402

PASSWORD = "bench-pass-2026"  # noqa: S105
BLOCK = 10  # timed sign-ins of each kind per block
CAPTURE_RECEIVERS = [
    (user_login_failed, "accounts.login_failed"),
    (user_logged_in, "accounts.logged_in"),
    (user_logged_out, "accounts.logged_out"),
]


def _bare_settings() -> override_settings:
    middleware = [m for m in settings.MIDDLEWARE if not m.startswith("audit.")]
    templates = [dict(settings.TEMPLATES[0])]
    templates[0]["DIRS"] = [*templates[0]["DIRS"], ROOT / "bench" / "templates"]
    return override_settings(
        MIDDLEWARE=middleware,
        AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"],
        ROOT_URLCONF="bench.urls_bare",
        TEMPLATES=templates,
    )


def _capture(enabled: bool) -> None:
    """Our receivers on, or none of them (Django's own update_last_login stays on both sides)."""
    from accounts import receivers

    handlers = {
        "accounts.login_failed": receivers.on_login_failed,
        "accounts.logged_in": receivers.on_logged_in,
        "accounts.logged_out": receivers.on_logged_out,
    }
    for signal, uid in CAPTURE_RECEIVERS:
        if enabled:
            signal.connect(handlers[uid], dispatch_uid=uid)
        else:
            signal.disconnect(dispatch_uid=uid)


def _timed_post(client: Client, url: str, data: dict[str, str]) -> float:
    start = time.perf_counter()
    response = client.post(url, data, REMOTE_ADDR="203.0.113.10", HTTP_USER_AGENT=AGENT)
    elapsed = time.perf_counter() - start
    assert response.status_code in (200, 302), response.status_code
    return elapsed


AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


def main(rounds: int) -> None:
    from accounts.models import LockoutState, Membership, Organization, User

    organization = Organization.objects.create(
        name="Bench", slug="bench", lockout_threshold=100, lockout_window_minutes=15
    )
    user = User.objects.create_user("bench@example.test", PASSWORD)
    Membership.objects.create(user=user, organization=organization)
    bare = _bare_settings()
    samples: dict[tuple[str, str], list[float]] = {
        (mode, kind): [] for mode in ("on", "off") for kind in ("success", "failure")
    }
    # The same samples by block, to compare each block with its neighbour of the other mode.
    blocked: dict[tuple[str, str], list[list[float]]] = {key: [] for key in samples}

    def one(mode: str, kind: str) -> float:
        client = Client()
        if mode == "off":
            url, data = "/bare-sign-in/", {"username": user.email}
        else:
            url, data = "/sign-in/", {"email": user.email}
        data["password"] = PASSWORD if kind == "success" else "wrong-password"
        return _timed_post(client, url, data)

    # The modes alternate in blocks: entering and leaving override_settings clears Django's URL,
    # template and middleware caches, so switching on every request would time cache rebuilds
    # (on either side) instead of sign-ins. Each block's first pair is a warm-up, not timed.
    blocks = -(-rounds // BLOCK)
    for i in range(blocks + 2):
        for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
            if mode == "off":
                _capture(False)
                bare.enable()
            if i >= 2:  # the first blocks warm caches and connections
                for kind in ("success", "failure"):
                    blocked[(mode, kind)].append([])
            try:
                for j in range(BLOCK + 1):
                    for kind in ("success", "failure"):
                        elapsed = one(mode, kind)
                        if i >= 2 and j >= 1:
                            samples[(mode, kind)].append(elapsed)
                            blocked[(mode, kind)][-1].append(elapsed)
            finally:
                if mode == "off":
                    bare.disable()
                    _capture(True)
        # Keep the account below its lockout threshold (not timed).
        LockoutState.objects.update(counter_reset_at=timezone.now(), locked_until=None)

    print(
        f"sign-in overhead on {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
        f"{rounds} rounds each, MD5 hasher, median milliseconds"
    )
    for kind in ("success", "failure"):
        on = statistics.median(samples[("on", kind)]) * 1000
        off = statistics.median(samples[("off", kind)]) * 1000
        print(f"  {kind:<8} capture on {on:7.3f} ms   off {off:7.3f} ms   ratio {on / off:5.2f}x")
    # On a shared machine the speed drifts within a run; the ratio of neighbouring blocks
    # (taken a fraction of a second apart) is what drift moves least.
    print("ratio of neighbouring blocks' medians: median [quartiles]")
    for kind in ("success", "failure"):
        ratios = [
            statistics.median(on) / statistics.median(off)
            for on, off in zip(blocked[("on", kind)], blocked[("off", kind)], strict=True)
        ]
        low, mid, high = statistics.quantiles(ratios, n=4)
        print(f"  {kind:<8} {mid:5.2f}x  [{low:.2f} {high:.2f}]  over {len(ratios)} pairs")


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    setup_test_environment()
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        old = setup_databases(verbosity=0, interactive=False)
        try:
            main(rounds)
        finally:
            teardown_databases(old, verbosity=0)
            from activity_monitor.celery import app

            app.control.purge()
