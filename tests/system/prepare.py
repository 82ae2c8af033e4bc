"""Migrate and seed the system suite's database; print what the tests need as one JSON line.

Run by tests/system/stack.py in the server's own environment (not collected by pytest):
the demo organizations of the brief, a large generated organization to export, a burst of
failed sign-ins to evaluate in one batch, and an API token.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "activity_monitor.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Membership, Organization, Role, User  # noqa: E402
from alerts.evaluation import sweep_mark_to_latest  # noqa: E402
from api.services import api_token_create  # noqa: E402
from audit.models import AuditEvent, EventType, Outcome, Reason  # noqa: E402
from demo.generate import events_generate  # noqa: E402
from demo.seed import seed_demo  # noqa: E402

EXPORT_EVENTS = int(os.environ.get("SYSTEM_EXPORT_EVENTS", "300000"))
BATCH_EVENTS = 600
BATCH_EMAILS = ("batch@acme.test", "batch-second@acme.test")


def failed_sign_ins_to_evaluate(organization: Organization) -> tuple[list[User], list[int]]:
    """600 failed sign-ins, a second apart, two days ago: one evaluation batch. The first half
    are one member's, the second half another's, so that a test holding the second member's
    lock stops the batch exactly half-way (tests/system/test_worker_killed.py).

    Two days back they are older than the sweep's horizon, so only the batch a test sends
    evaluates them.
    """
    users = []
    for email in BATCH_EMAILS:
        user = User.objects.create_user(email, None, full_name="Bea Batch")
        Membership.objects.create(user=user, organization=organization, role=Role.MEMBER)
        users.append(user)
    start = timezone.now() - timedelta(days=2)
    half = BATCH_EVENTS // len(users)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            occurred_at=start + timedelta(seconds=index),
            organization=organization,
            event_type=EventType.LOGIN_FAILED,
            outcome=Outcome.FAILURE,
            reason=Reason.INVALID_CREDENTIALS,
            actor=users[index // half],
            actor_label=users[index // half].email,
            details={"method": "password"},
        )
        for index in range(BATCH_EVENTS)
    )
    ids = list(
        AuditEvent.objects.filter(actor__in=users)
        .order_by("occurred_at")
        .values_list("pk", flat=True)
    )
    return users, ids


def main() -> None:
    # With two database roles (DATABASE_OWNER_URL) the owner migrates; the rest is the app's.
    owner = "owner" if "owner" in settings.DATABASES else "default"
    call_command("migrate", database=owner, interactive=False, verbosity=0)
    seed_demo()
    # Into the indexed table: rebuilding its indexes (generate_events' way for big loads) is the
    # owner's to do.
    events_generate(
        total=EXPORT_EVENTS, days=30, organizations=1, users_per_org=5, rebuild_indexes=False
    )
    batch_users, batch_ids = failed_sign_ins_to_evaluate(Organization.objects.get(slug="acme"))
    initech = Organization.objects.get(slug="initech")
    _, api_token = api_token_create(
        organization=initech, user=User.objects.get(email="admin@initech.test"), name="system"
    )
    # A fresh deployment over a history: the sweep starts from now (README, alerts_sweep).
    sweep_mark_to_latest()
    print(
        json.dumps(
            {
                "api_token": api_token,
                "batch_user_ids": [user.pk for user in batch_users],
                "batch_event_ids": batch_ids,
                "export_organization": "gen2026-000",
                "export_administrator": "user0000@gen2026-000.test",
                "export_events": EXPORT_EVENTS,
            }
        )
    )


if __name__ == "__main__":
    main()
