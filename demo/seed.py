"""The brief's demo organizations and users, their colleagues, and weeks of their activity."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import (
    DomainProof,
    Membership,
    Organization,
    OrganizationDomain,
    Role,
    Tier,
    User,
)
from api.feed import feed_end
from audit.models import AuditEvent
from audit.selectors import events_for_organization
from streams.models import StreamDestination, Transport

from .activity import generate_demo_activity
from .compliance import seed_compliance
from .policies import seed_access_policies
from .reports import seed_access_review, seed_report
from .scenarios import record_alert_scenarios

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - the brief's published demo password

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


# Colleagues of the named people, so that a chart and a count mean something: members who never
# need to sign in to the demo (they have the demo password all the same).
COLLEAGUES = {
    "acme": 18,
    "globex": 10,
    "initech": 14,
}
FIRST_NAMES = [
    "Amara", "Ben", "Chloe", "Dmitri", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kofi", "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
]  # fmt: skip
LAST_NAMES = [
    "Okafor", "Lindqvist", "Moreau", "Ivanova", "Yilmaz", "Haddad", "Kim", "Tanaka", "Silva",
    "Weber", "Mensah", "Novak", "Garcia", "Rahman", "Berg", "Patel", "Byrne", "Costa",
]  # fmt: skip
# Every second colleague has an authenticator app. The named people have none and no policy
# asks for one: nobody could read their code to sign in to the demo.
MFA_EVERY = 2


def _colleagues(organization: Organization, count: int, password: str) -> list[User]:
    """The organization's demo colleagues, created in bulk (one password hash for all)."""
    names = [
        (FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[(n * 7) % len(LAST_NAMES)])
        for n in range(count)
    ]
    emails = [f"{first.lower()}.{last.lower()}@{organization.slug}.test" for first, last in names]
    existing = set(User.objects.filter(email__in=emails).values_list("email", flat=True))
    new = [
        User(
            email=email,
            full_name=email.split("@")[0].replace(".", " ").title(),
            password=password,
        )
        for email in emails
        if email not in existing
    ]
    User.objects.bulk_create(new)
    users = list(User.objects.filter(email__in=emails).order_by("email"))
    have = set(Membership.objects.filter(user__in=users).values_list("user_id", flat=True))
    Membership.objects.bulk_create(
        Membership(user=user, organization=organization, role=Role.MEMBER)
        for user in users
        if user.pk not in have
    )
    return users


def _authenticators(colleagues: list[User]) -> frozenset[int]:
    """Give every second colleague a confirmed authenticator app; returns their ids."""
    chosen = colleagues[1::MFA_EVERY]
    TOTPDevice.objects.bulk_create(
        TOTPDevice(user=user, name="Authenticator app", confirmed=True) for user in chosen
    )
    return frozenset(user.pk for user in chosen)


def seed_demo(*, days: int = 28) -> list[str]:
    """Create whatever of the demo is missing; returns the sign-ins it made.

    An organization's colleagues, activity and second factors (and the recent attacks) are
    made with the organization's first events: running it again adds nothing.
    """
    created: list[str] = []
    password = make_password(DEMO_PASSWORD)
    with transaction.atomic():
        seeded: list[tuple[Organization, list[User]]] = []
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
                    user = User.objects.create_user(email, full_name=full_name)
                    user.password = password  # one Argon2 hash for all: seconds saved
                    user.save(update_fields=["password"])
                    Membership.objects.create(user=user, organization=organization, role=role)
                    created.append(email)
                users.append(user)
            seeded.append((organization, users))
            if AuditEvent.objects.filter(organization=organization).exists():
                continue
            colleagues = _colleagues(organization, COLLEAGUES.get(slug, 0), password)
            with_mfa = _authenticators(colleagues)
            # The named people last: the brute force of the generated weeks targets the last.
            generate_demo_activity(
                organization=organization,
                users=[*colleagues, *users],
                days=days,
                with_mfa=with_mfa,
            )
            record_alert_scenarios(organization=organization, users={u.email: u for u in users})
            if slug == "acme":
                seed_access_policies(organization=organization, admin=users[0])
        # After every organization's activity: the reviews' queues are made from it. Once each.
        for organization, users in seeded:
            seed_compliance(organization=organization, users={u.email: u for u in users})
        # Acme's compliance officer reviewed access last month and reports on it (reports app).
        acme = Organization.objects.get(slug="acme")
        officer = User.objects.get(email="compliance@acme.test")
        seed_access_review(
            organization=acme, reviewer=officer, second=User.objects.get(email="admin@acme.test")
        )
        seed_report(organization=acme, user=officer)
        _stream_destination(Organization.objects.get(slug="initech"))
    return created


def _stream_destination(organization: Organization) -> None:
    """Initech (Enterprise) streams to a syslog receiver on this machine, paused until one runs:
    Settings → Security → Streams shows it, its health and its buttons."""
    if StreamDestination.objects.filter(organization=organization).exists():
        return
    txid, event_id = feed_end(events_for_organization(organization=organization))
    StreamDestination.objects.create(
        organization=organization,
        name="Local syslog (demo)",
        transport=Transport.SYSLOG,
        host="127.0.0.1",
        port=6514,
        cursor_txid=txid,
        cursor_event_id=event_id,
        paused_at=timezone.now(),
        pause_reason=(
            "Demo: no syslog receiver runs on 127.0.0.1:6514. Start one (TLS), set "
            "STREAMS_ALLOW_PRIVATE=1 in .env, give its CA certificate here, then Resume."
        ),
    )
