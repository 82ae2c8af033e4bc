"""The brief's demo organizations and users, and a few weeks of their activity."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import (
    DomainProof,
    Membership,
    Organization,
    OrganizationDomain,
    Role,
    Tier,
    User,
)
from audit.models import AuditEvent

from .activity import generate_demo_activity
from .scenarios import record_alert_scenarios

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - the brief's published demo password

# Where the attacks of demo.scenarios happen: Acme's analyst sees their alerts.
SCENARIO_ORGANIZATION = "acme"

DEMO = [
    (
        "Acme Corp",
        "acme",
        Tier.MEDIUM_BUSINESS,
        [
            ("admin@acme.test", "Ada Admin", Role.ADMINISTRATOR),
            ("analyst@acme.test", "Sam Analyst", Role.SECURITY_ANALYST),
            ("compliance@acme.test", "Cora Compliance", Role.COMPLIANCE_OFFICER),
            ("alice@acme.test", "Alice Anders", Role.MEMBER),
        ],
    ),
    (
        "Globex",
        "globex",
        Tier.SMALL_BUSINESS,
        [
            ("admin@globex.test", "Gil Admin", Role.ADMINISTRATOR),
            ("bob@globex.test", "Bob Baker", Role.MEMBER),
        ],
    ),
    (
        "Initech",
        "initech",
        Tier.ENTERPRISE,
        [
            ("admin@initech.test", "Ira Admin", Role.ADMINISTRATOR),
            ("carol@initech.test", "Carol Chen", Role.MEMBER),
        ],
    ),
]


def seed_demo(*, days: int = 21) -> list[str]:
    """Create whatever of the demo is missing; returns the sign-ins it made.

    An organization's activity (and Acme's recent attacks) is made with the organization's
    first events: running it again adds nothing.
    """
    created: list[str] = []
    with transaction.atomic():
        for name, slug, tier, people in DEMO:
            organization, _ = Organization.objects.get_or_create(
                slug=slug, defaults={"name": name, "tier": tier}
            )
            # The brief: each demo organization owns its .test domain, set by the operator (a
            # .test name has no DNS to prove it by).
            OrganizationDomain.objects.get_or_create(
                organization=organization,
                domain=f"{slug}.test",
                defaults={"proof": DomainProof.OPERATOR, "verified_at": timezone.now()},
            )
            users = []
            for email, full_name, role in people:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User.objects.create_user(email, DEMO_PASSWORD, full_name=full_name)
                    Membership.objects.create(user=user, organization=organization, role=role)
                    created.append(email)
                users.append(user)
            if not AuditEvent.objects.filter(organization=organization).exists():
                generate_demo_activity(organization=organization, users=users, days=days)
                if slug == SCENARIO_ORGANIZATION:
                    record_alert_scenarios(
                        organization=organization, users={u.email: u for u in users}
                    )
    return created
