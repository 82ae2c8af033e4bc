"""Shared set-up for the reviews and checklist tests: an organization with every role, events
recorded at known times, and reviews of known periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Organization, Role, User
from alerts.models import Alert, AlertRule, RuleKind
from alerts.rules import alert_rules_ensure
from audit.context import RequestContext
from audit.geo import GeoLocation
from audit.models import Outcome
from audit.services import EventSpec, events_record
from compliance.models import Review, ReviewSchedule
from compliance.services import review_open, review_schedules_ensure

from .factories import OrganizationFactory, member


@dataclass
class Team:
    org: Organization
    admin: User
    second_admin: User
    analyst: User
    officer: User
    alice: User


def team(name: str = "Acme") -> Team:
    org = OrganizationFactory.create(name=name)
    slug = org.slug
    return Team(
        org=org,
        admin=member(org, Role.ADMINISTRATOR, email=f"admin@{slug}.test"),
        second_admin=member(org, Role.ADMINISTRATOR, email=f"admin2@{slug}.test"),
        analyst=member(org, Role.SECURITY_ANALYST, email=f"analyst@{slug}.test"),
        officer=member(org, Role.COMPLIANCE_OFFICER, email=f"compliance@{slug}.test"),
        alice=member(org, Role.MEMBER, email=f"alice@{slug}.test"),
    )


def midnight(days_ago: int) -> datetime:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def record(
    org: Organization,
    event_type: str,
    at: datetime,
    *,
    actor: User | None = None,
    target: User | None = None,
    outcome: str = Outcome.SUCCESS,
    reason: str = "",
    details: dict[str, Any] | None = None,
    ip: str = "203.0.113.5",
    country: str = "",
) -> None:
    """One event at a chosen time, through the one recording path."""
    context = RequestContext(ip_address=ip, geo=GeoLocation(country=country))
    events_record(
        specs=[
            EventSpec(
                event_type=event_type,
                outcome=outcome,
                reason=reason,
                actor=actor,
                target_user=target,
                organization=org,
                details=details or {},
                occurred_at=at,
            )
        ],
        context=context,
    )


def alert_at(org: Organization, at: datetime, summary: str = "Spraying from 203.0.113.9") -> Alert:
    alert_rules_ensure(organization_id=org.pk)
    rule = AlertRule.objects.get(organization=org, kind=RuleKind.PASSWORD_SPRAYING)
    return Alert.objects.create(
        organization=org,
        rule=rule,
        kind=rule.kind,
        severity="high",
        subject_label="203.0.113.9",
        subject_ip="203.0.113.9",
        subject_key=f"test:{summary}",
        window_key=f"test:{summary}@always",
        summary=summary,
        first_seen_at=at,
        last_seen_at=at,
    )


def schedule_of(org: Organization, role: str) -> ReviewSchedule:
    review_schedules_ensure(organization=org)
    return ReviewSchedule.objects.get(organization=org, assigned_role=role)


def review_of(org: Organization, role: str, *, days_ago: int = 2, days: int = 1) -> Review:
    """A review of the schedule assigned to `role`, over [days_ago, days_ago - days) midnights."""
    return review_open(
        schedule=schedule_of(org, role),
        start=midnight(days_ago),
        end=midnight(days_ago - days),
    )


class FailingEmailBackend:
    """An email backend whose server is down."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send_messages(self, messages: Any) -> int:
        raise ConnectionRefusedError("the mail server is down")
