"""Every URL of the project, walked as anonymous, as every role and as another tenant's
administrator: each answers what accounts.access's table says.

ROUTES names, for every URL pattern in the URLconf, what the URL needs (a capability, or only
being signed in, or nothing) and what it answers to someone allowed. From that and the table
(accounts.access.CAPABILITIES) the test works out what each person must get: anonymous visitors
are sent to sign in, a role without the capability gets 403, another tenant's administrator gets
404 for this tenant's objects, a wrong method is 405. A URL added to the project without an entry
here fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import pytest
from django.http import HttpResponseBase
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import mfa
from accounts.access import CAPABILITIES, Capability, access_for, roles_with
from accounts.models import (
    DomainProof,
    OrganizationDomain,
    Role,
    SavedSearch,
    SearchLog,
    Tier,
    User,
    UserSession,
)
from alerts.models import Alert, RuleKind
from alerts.webhooks import webhook_endpoint_create
from api.services import api_token_create
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record
from compliance.models import Review, ReviewSchedule
from compliance.services import review_open, review_prepare, review_schedules_ensure
from exports.services import export_build, export_create
from policies.services import network_list_create
from retention.models import ExportSchedule, Frequency
from retention.schedules import export_schedule_create, export_schedule_run
from streams.models import StreamDestination, Transport

from .alerts_support import sign_in_from
from .factories import OrganizationFactory, member
from .helpers import sign_in
from .mfa_support import backup_codes
from .retention_support import (  # noqa: F401 (autouse fixture)
    archive_dir_fixture,
    event_at,
)

pytestmark = pytest.mark.django_db

C = Capability
PUBLIC = "public"  # no sign-in needed; everyone gets the same answer
SIGNED_IN = "signed in"  # any signed-in person, for their own things
TOKEN = "token"  # the events API: an API token, never a browser session
# /metrics: the platform operator (is_staff, no organization role) or METRICS_TOKEN; asked for
# the token (401) when signed out, refused (403) in every role (tests/test_operations_metrics.py).
OPERATOR = "platform operator"
LOGIN = "302 to sign-in"

IDENTITIES = (
    "anonymous",
    "member",
    "analyst",
    "compliance",
    "administrator",
    "other tenant's administrator",
)
ROLES = {
    "member": Role.MEMBER,
    "analyst": Role.SECURITY_ANALYST,
    "compliance": Role.COMPLIANCE_OFFICER,
    "administrator": Role.ADMINISTRATOR,
    "other tenant's administrator": Role.ADMINISTRATOR,
}
MIDNIGHT = datetime(2026, 11, 28, tzinfo=UTC)


class World:
    """One tenant with a person of every role, a second tenant with an administrator, and one of
    each object (made when a URL first asks for it) belonging to a bystander of the first tenant.
    """

    def __init__(self) -> None:
        self.organization = OrganizationFactory.create(tier=Tier.ENTERPRISE)
        self.users = {
            identity: member(
                self.organization if identity != "other tenant's administrator" else None,
                role=role,
            )
            for identity, role in ROLES.items()
        }
        self.bystander = member(self.organization)
        self.admin = self.users["administrator"]

    @cached_property
    def alert_pk(self) -> int:
        for _ in range(5):  # one failed sign-ins alert about the bystander
            sign_in_from(Client(), self.bystander.email, password="wrong")
        return Alert.objects.get(organization=self.organization).pk

    @cached_property
    def event_pk(self) -> int:
        sign_in(Client(), self.bystander.email)
        return AuditEvent.objects.filter(actor=self.bystander).latest("id").pk

    @cached_property
    def export_id(self) -> str:
        export = export_create(
            request=None, user=self.admin, organization=self.organization, filters={}
        )
        export_build(export_id=str(export.pk))
        return str(export.pk)

    @cached_property
    def schedule_id(self) -> int:
        schedule = export_schedule_create(
            organization=self.organization,
            actor=self.admin,
            name="Daily",
            frequency=Frequency.DAILY,
            filters={},
            now=MIDNIGHT - timedelta(days=1),
        )
        return schedule.pk

    @cached_property
    def stored_file_id(self) -> int:
        event_at(MIDNIGHT - timedelta(hours=3), self.organization)
        schedule = ExportSchedule.objects.get(pk=self.schedule_id)
        return export_schedule_run(schedule=schedule, period_end=MIDNIGHT).pk

    @cached_property
    def token_id(self) -> int:
        token, _ = api_token_create(organization=self.organization, user=self.admin, name="SIEM")
        return token.pk

    @cached_property
    def webhook_id(self) -> int:
        return webhook_endpoint_create(
            organization=self.organization,
            url="https://hooks.example.test/in",
            description="SIEM",
            actor=self.admin,
        ).pk

    @cached_property
    def stream_id(self) -> int:
        return StreamDestination.objects.create(
            organization=self.organization,
            name="SIEM",
            transport=Transport.SYSLOG,
            host="192.0.2.10",  # a documentation address: a test event is refused, saying so
            port=6514,
        ).pk

    @cached_property
    def domain_id(self) -> int:
        """A domain the first tenant has verified (verifying it again looks nothing up)."""
        return OrganizationDomain.objects.create(
            organization=self.organization,
            domain=f"{self.organization.slug}.test",
            proof=DomainProof.OPERATOR,
            verified_at=timezone.now(),
        ).pk

    @cached_property
    def network_list_id(self) -> int:
        return network_list_create(
            admin=self.admin, organization=self.organization, name="Office", cidrs=["192.0.2.0/24"]
        ).pk

    @property
    def member_id(self) -> int:
        return self.bystander.membership.pk

    @cached_property
    def administrators_review(self) -> Review:
        """The administrators' review of two days ago, holding one lockout of the bystander."""
        start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        start -= timedelta(days=2)
        events_record(
            specs=[
                EventSpec(
                    event_type=EventType.LOCKOUT_TRIGGERED,
                    target_user=self.bystander,
                    organization=self.organization,
                    occurred_at=start + timedelta(hours=3),
                )
            ]
        )
        review_schedules_ensure(organization=self.organization)
        schedule = ReviewSchedule.objects.get(
            organization=self.organization, assigned_role=Role.ADMINISTRATOR
        )
        review = review_open(schedule=schedule, start=start, end=start + timedelta(days=1))
        review_prepare(review=review)
        return review

    @property
    def review_pk(self) -> int:
        return self.administrators_review.pk

    @property
    def review_schedule_id(self) -> int:
        return self.administrators_review.schedule_id

    @cached_property
    def access_review_id(self) -> int:
        from reports.services import access_review_start

        return access_review_start(actor=self.admin, organization=self.organization).pk

    @property
    def access_review_item(self) -> dict[str, Any]:
        """The bystander's row of the open access review (nobody decides on their own)."""
        from reports.models import AccessReviewItem

        item = AccessReviewItem.objects.get(review_id=self.access_review_id, user=self.bystander)
        return {"review_id": self.access_review_id, "item_id": item.pk}

    @cached_property
    def decided_review_id(self) -> int:
        """An access review with every member decided: ready to complete."""
        from reports.models import AccessReview
        from reports.services import access_review_decide

        review = AccessReview.objects.get(pk=self.access_review_id)
        for item in review.items.all():
            actor = self.users["compliance"] if item.user_id == self.admin.pk else self.admin
            access_review_decide(actor=actor, item=item, decision="keep")
        return review.pk

    @cached_property
    def report_id(self) -> str:
        from reports.models import ComplianceReport
        from reports.services import report_build

        report = ComplianceReport.objects.create(
            organization=self.organization,
            framework="soc2",
            period_start=MIDNIGHT - timedelta(days=30),
            period_end=MIDNIGHT,
        )
        report_build(report_id=str(report.pk))
        return str(report.pk)


Args = Callable[[World, User | None], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    need: Capability | str
    method: str = "get"
    ok: int | str = 200  # what someone allowed gets
    args: Args | None = None
    # The args name an object of the first tenant (or the person's own): the other tenant's
    # administrator, given this tenant's object, must not find it.
    scoped: bool = False
    methods: frozenset[str] = frozenset({"get"})
    data: dict[str, str] = field(default_factory=dict)


def get(need: Capability | str, **kwargs: Any) -> Route:
    return Route(need, **kwargs)


def post(need: Capability | str, **kwargs: Any) -> Route:
    return Route(need, method="post", methods=frozenset({"post"}), **kwargs)


GET_POST = frozenset({"get", "post"})


def confirmed(need: Capability | str, args: Args, **kwargs: Any) -> tuple[Route, Route]:
    """A destructive action of a tenant's object: its question (GET), then the action (POST)."""
    return (
        Route(need, args=args, scoped=True, methods=GET_POST, **kwargs),
        Route(need, method="post", ok=303, args=args, scoped=True, methods=GET_POST, **kwargs),
    )


def _own_or(world: World, user: User | None) -> User:
    """The acting person if they belong to the first tenant, else the tenant's bystander."""
    if user is None or user.membership.organization_id != world.organization.pk:
        return world.bystander
    return user


def own_event(world: World, user: User | None) -> dict[str, Any]:
    owner = _own_or(world, user)
    if owner == world.bystander:
        return {"event_id": world.event_pk}
    return {"event_id": AuditEvent.objects.filter(actor=owner).latest("id").pk}


def own_device(world: World, user: User | None) -> dict[str, Any]:
    owner = _own_or(world, user)
    device = backup_codes(owner)
    return {"kind": mfa.KIND_BACKUP, "pk": device.pk}


def own_other_session(world: World, user: User | None) -> dict[str, Any]:
    """A session of the owner's other than the one making the request."""
    owner = _own_or(world, user)
    sign_in(Client(), owner.email)
    session = UserSession.objects.filter(user=owner, ended_at__isnull=True).latest("id")
    return {"session_hash": session.session_hash}


def own_sign_in(world: World, user: User | None) -> dict[str, Any]:
    """A sign-in of the owner's, which they may answer "Was this you?" about."""
    owner = _own_or(world, user)
    sign_in(Client(), owner.email)
    event = AuditEvent.objects.filter(actor=owner, event_type=EventType.LOGIN_SUCCEEDED)
    return {"event_id": event.latest("id").pk}


def reset_link(world: World, user: User | None) -> dict[str, Any]:
    uid = urlsafe_base64_encode(force_bytes(world.bystander.pk))
    return {"uidb64": uid, "token": "not-a-valid-token"}


def arg(name: str, attribute: str) -> Args:
    return lambda world, user: {name: getattr(world, attribute)}


def own_saved_search(log: str) -> Args:
    """A saved search of the acting person's (the bystander's for another tenant's people)."""

    def make(world: World, user: User | None) -> dict[str, Any]:
        search = SavedSearch.objects.create(
            organization=world.organization,
            owner=_own_or(world, user),
            log=log,
            name=f"Saved {SavedSearch.objects.count()}",
            query="q=type%3Alogin.%2A",
        )
        return {"search_id": search.pk}

    return make


SAVE_SEARCH = {"name": "Sign-ins", "query": "q=type%3Alogin.%2A"}
A_MEMBER = arg("membership_id", "member_id")
A_REVIEW = arg("pk", "review_pk")


def review_item(world: World, user: User | None) -> dict[str, Any]:
    review = world.administrators_review
    return {"pk": review.pk, "item_pk": review.items.get().pk}


AN_ALERT = arg("pk", "alert_pk")
AN_ACCESS_REVIEW = arg("review_id", "access_review_id")
A_REPORT = arg("report_id", "report_id")
A_STREAM = arg("destination_id", "stream_id")

ROUTES: dict[str, tuple[Route, ...]] = {
    # Nothing needed.
    "health": (get(PUBLIC),),
    "/": (get(PUBLIC, ok=302, methods=GET_POST),),
    "accounts:login": (get(PUBLIC, methods=GET_POST),),
    "accounts:logout": (post(PUBLIC, ok=303),),
    "accounts:mfa-verify": (get(PUBLIC, ok=400, methods=GET_POST),),
    # Passkeys: without a challenge handed out, or the password step, an answer is a 400.
    "accounts:passkey-verify": (post(PUBLIC, ok=400),),
    "accounts:passkey-verify-options": (post(PUBLIC, ok=400),),
    "accounts:passkey-sign-in": (post(PUBLIC, ok=400),),
    "accounts:passkey-sign-in-options": (post(PUBLIC),),
    "accounts:password-reset": (get(PUBLIC, methods=GET_POST),),
    "accounts:password-reset-sent": (get(PUBLIC),),
    "accounts:password-reset-confirm": (get(PUBLIC, args=reset_link, methods=GET_POST),),
    "accounts:password-reset-done": (get(PUBLIC),),
    "api:events": (get(TOKEN, ok=401),),
    "operations:metrics": (get(OPERATOR),),
    # Every signed-in person, for their own account.
    "accounts:profile": (get(SIGNED_IN),),
    "accounts:activity": (get(SIGNED_IN),),
    "accounts:activity-event": (get(SIGNED_IN, args=own_event, scoped=True),),
    "accounts:activity-search-save": (post(SIGNED_IN, ok=303, data=SAVE_SEARCH),),
    "accounts:activity-search-delete": (
        get(SIGNED_IN, args=own_saved_search(SearchLog.ACTIVITY), scoped=True, methods=GET_POST),
        post(SIGNED_IN, ok=303, args=own_saved_search(SearchLog.ACTIVITY), scoped=True),
    ),
    "exports:activity-csv": (get(SIGNED_IN),),
    "alerts:my-alerts": (get(SIGNED_IN),),
    "accounts:password-change": (get(SIGNED_IN, methods=GET_POST),),
    # "Was this you?" about one's own event: "yes" at once, "no" asked first.
    "accounts:activity-confirm": (post(SIGNED_IN, ok=303, args=own_sign_in, scoped=True),),
    "accounts:activity-report": (
        get(SIGNED_IN, args=own_sign_in, scoped=True, methods=GET_POST),
        Route(SIGNED_IN, method="post", ok=303, args=own_sign_in, scoped=True, methods=GET_POST),
    ),
    "accounts:security": (get(SIGNED_IN),),
    "accounts:mfa-enrol": (get(SIGNED_IN, methods=GET_POST),),
    "accounts:passkey-add": (
        get(SIGNED_IN, methods=GET_POST),
        # No passkey answer in the form: refused with the reason.
        Route(SIGNED_IN, method="post", ok=400, methods=GET_POST),
    ),
    "accounts:passkey-add-options": (post(SIGNED_IN),),
    # New codes are shown once, by the GET after the POST; without any, back to Security.
    "accounts:mfa-backup-codes": (get(SIGNED_IN, ok=302),),
    # Refused with a 400 to anyone without an authenticator app, so: reached.
    "accounts:mfa-backup-codes-new": (
        get(SIGNED_IN, ok=400, methods=GET_POST),
        Route(SIGNED_IN, method="post", ok=400, methods=GET_POST),
    ),
    "accounts:mfa-device-remove": (get(SIGNED_IN, args=own_device, scoped=True, methods=GET_POST),),
    "accounts:session-end": confirmed(SIGNED_IN, own_other_session),
    # Destructive actions ask first: the GET shows the question, the POST acts.
    "accounts:sessions-end-others": (
        get(SIGNED_IN, methods=GET_POST),
        Route(SIGNED_IN, method="post", ok=303, methods=GET_POST),
    ),
    "accounts:time-zone": (post(SIGNED_IN, ok=303, data={"time_zone": "Europe/Berlin"}),),
    "accounts:time-zone-detected": (post(SIGNED_IN, data={"time_zone": "Europe/Berlin"}),),
    # Settings → Security.
    "accounts:security-settings": (get(C.VIEW_SECURITY_SETTINGS),),
    "accounts:audit-log": (get(C.VIEW_AUDIT_LOG),),
    "accounts:audit-log-search-save": (post(C.VIEW_AUDIT_LOG, ok=303, data=SAVE_SEARCH),),
    "accounts:audit-log-search-delete": (
        get(
            C.VIEW_AUDIT_LOG,
            args=own_saved_search(SearchLog.AUDIT),
            scoped=True,
            methods=GET_POST,
        ),
        post(C.VIEW_AUDIT_LOG, ok=303, args=own_saved_search(SearchLog.AUDIT), scoped=True),
    ),
    "accounts:audit-log-event": (
        get(C.VIEW_AUDIT_LOG, args=arg("event_id", "event_pk"), scoped=True),
    ),
    "exports:audit-log-csv": (get(C.EXPORT_AUDIT_LOG),),
    "exports:export-list": (get(C.EXPORT_AUDIT_LOG),),
    "exports:export-status": (
        get(C.EXPORT_AUDIT_LOG, args=arg("export_id", "export_id"), scoped=True),
    ),
    "exports:export-download": (
        get(C.EXPORT_AUDIT_LOG, args=arg("export_id", "export_id"), scoped=True),
    ),
    "api:tokens": (get(C.MANAGE_API_TOKENS, methods=GET_POST),),
    "api:token-revoke": confirmed(C.MANAGE_API_TOKENS, arg("token_id", "token_id")),
    "accounts:members": (get(C.MANAGE_MEMBERS),),
    "accounts:mfa-policy": (post(C.MANAGE_MEMBERS, ok=303, data={"policy": "off"}),),
    # A change that takes something away asks first (GET ?role=), then POSTs.
    "accounts:member-role": confirmed(C.MANAGE_MEMBERS, A_MEMBER, data={"role": Role.MEMBER}),
    "accounts:member-unlock": (post(C.MANAGE_MEMBERS, ok=303, args=A_MEMBER, scoped=True),),
    "accounts:member-sign-out": confirmed(C.MANAGE_MEMBERS, A_MEMBER),
    "accounts:member-mfa-reset": confirmed(C.MANAGE_MEMBERS, A_MEMBER),
    "accounts:domains": (
        get(C.MANAGE_DOMAINS, methods=GET_POST),
        # No domain given: a 400 that says so, reached only by those who manage domains.
        Route(C.MANAGE_DOMAINS, method="post", ok=400, methods=GET_POST),
    ),
    "accounts:throttling": (
        get(C.MANAGE_THROTTLING, methods=GET_POST),
        # Every limit empty: the platform's defaults, saved (nothing changed), then the page.
        Route(C.MANAGE_THROTTLING, method="post", ok=303, methods=GET_POST),
    ),
    "accounts:domain-verify": (
        post(C.MANAGE_DOMAINS, ok=303, args=arg("domain_id", "domain_id"), scoped=True),
    ),
    "accounts:domain-remove": (
        get(C.MANAGE_DOMAINS, args=arg("domain_id", "domain_id"), scoped=True, methods=GET_POST),
    ),
    "alerts:alert-list": (get(C.TRIAGE_ALERTS),),
    "alerts:alert-detail": (get(C.TRIAGE_ALERTS, args=AN_ALERT, scoped=True),),
    "alerts:alert-acknowledge": (post(C.TRIAGE_ALERTS, ok=303, args=AN_ALERT, scoped=True),),
    # No assignee chosen: a 400 that says so, reached only by those who may triage.
    "alerts:alert-assign": (post(C.TRIAGE_ALERTS, ok=400, args=AN_ALERT, scoped=True),),
    "alerts:alert-resolve": (
        post(
            C.TRIAGE_ALERTS,
            ok=303,
            args=AN_ALERT,
            scoped=True,
            data={"note": "A test sign-in."},
        ),
    ),
    # The actions on the account an alert is about: asked (GET), then done (POST).
    "alerts:alert-subject-unlock": (
        get(C.MANAGE_MEMBERS, args=AN_ALERT, scoped=True, methods=GET_POST),
        Route(
            C.MANAGE_MEMBERS, method="post", ok=303, args=AN_ALERT, scoped=True, methods=GET_POST
        ),
    ),
    "alerts:alert-subject-sign-out": (
        get(C.MANAGE_MEMBERS, args=AN_ALERT, scoped=True, methods=GET_POST),
        Route(
            C.MANAGE_MEMBERS, method="post", ok=303, args=AN_ALERT, scoped=True, methods=GET_POST
        ),
    ),
    "alerts:rule-list": (get(C.TRIAGE_ALERTS),),
    # A rule kind names the acting person's own organization's rule: not another tenant's.
    "alerts:rule-edit": (
        get(
            C.MANAGE_ALERT_RULES,
            args=lambda world, user: {"kind": RuleKind.FAILED_SIGN_INS},
            methods=GET_POST,
        ),
    ),
    "alerts:webhook-list": (get(C.MANAGE_WEBHOOKS, methods=GET_POST),),
    "alerts:webhook-detail": (get(C.MANAGE_WEBHOOKS, args=arg("pk", "webhook_id"), scoped=True),),
    "alerts:webhook-delete": confirmed(C.MANAGE_WEBHOOKS, arg("pk", "webhook_id")),
    "retention:retention": (
        get(C.VIEW_RETENTION, methods=GET_POST),
        # Reading the page is not changing it.
        Route(C.MANAGE_RETENTION, method="post", ok=303, methods=GET_POST),
    ),
    "retention:archives": (get(C.MANAGE_ARCHIVES, methods=GET_POST),),
    "retention:files-verify": (post(C.MANAGE_ARCHIVES, ok=303),),
    "integrity:integrity": (get(C.VERIFY_INTEGRITY),),
    "integrity:verify": (post(C.VERIFY_INTEGRITY, ok=303),),
    "retention:file-download": (
        get(C.MANAGE_ARCHIVES, args=arg("pk", "stored_file_id"), scoped=True),
    ),
    "retention:schedule-run": (
        post(C.MANAGE_ARCHIVES, ok=303, args=arg("pk", "schedule_id"), scoped=True),
    ),
    "retention:schedule-delete": confirmed(C.MANAGE_ARCHIVES, arg("pk", "schedule_id")),
    # Reviews and the monitoring checklist (compliance app).
    "compliance:reviews": (get(C.VIEW_REVIEWS),),
    "compliance:schedule-add": (
        get(C.MANAGE_REVIEWS, methods=GET_POST),
        # Nothing filled in: a 400 saying what is missing, reached only by administrators.
        Route(C.MANAGE_REVIEWS, method="post", ok=400, methods=GET_POST),
    ),
    "compliance:schedule-edit": (
        get(C.MANAGE_REVIEWS, args=arg("pk", "review_schedule_id"), scoped=True, methods=GET_POST),
    ),
    "compliance:review-open": (
        get(C.MANAGE_REVIEWS, args=arg("pk", "review_schedule_id"), scoped=True, methods=GET_POST),
    ),
    "compliance:review-detail": (get(C.VIEW_REVIEWS, args=A_REVIEW, scoped=True),),
    # The administrators' review is marked and signed by administrators alone (its schedule's
    # role, compliance.selectors.may_sign): analysts and compliance, who may read it, are refused
    # as the roles without MANAGE_REVIEWS are. tests/test_compliance_reviews.py covers the rest.
    "compliance:review-item-mark": (
        post(
            C.MANAGE_REVIEWS, ok=303, args=review_item, scoped=True, data={"decision": "expected"}
        ),
    ),
    "compliance:review-sign-off": (
        get(C.MANAGE_REVIEWS, args=A_REVIEW, scoped=True, methods=GET_POST),
    ),
    "compliance:checklist": (get(C.VIEW_REVIEWS),),
    "compliance:retention-acknowledge": (
        get(C.VIEW_RETENTION, methods=GET_POST),
        # No framework declared: nothing to acknowledge yet, said on the page it redirects to.
        Route(C.VIEW_RETENTION, method="post", ok=303, methods=GET_POST),
    ),
    "compliance:guide": (get(C.VIEW_REVIEWS),),
    "compliance:guide-edit": (get(C.MANAGE_REVIEWS, methods=GET_POST),),
    # No guide written yet: "read it again", said on the page it redirects to.
    "compliance:guide-acknowledge": (post(C.VIEW_REVIEWS, ok=303, data={"version": "1"}),),
    # Access reviews: start one (POST), open it, decide on a member (asked first), complete it.
    "reports:access-reviews": (
        get(C.REVIEW_ACCESS, methods=GET_POST),
        Route(C.REVIEW_ACCESS, method="post", ok=303, methods=GET_POST),
    ),
    "reports:access-review": (get(C.REVIEW_ACCESS, args=AN_ACCESS_REVIEW, scoped=True),),
    "reports:access-review-decide": confirmed(
        C.REVIEW_ACCESS, lambda world, user: world.access_review_item, data={"decision": "keep"}
    ),
    "reports:access-review-complete": confirmed(
        C.REVIEW_ACCESS, arg("review_id", "decided_review_id")
    ),
    "reports:access-review-csv": (get(C.REVIEW_ACCESS, args=AN_ACCESS_REVIEW, scoped=True),),
    # Compliance reports: ask for one (POST), its page, progress and bundle.
    "reports:reports": (
        get(C.COMPLIANCE_REPORTS, methods=GET_POST),
        Route(
            C.COMPLIANCE_REPORTS,
            method="post",
            ok=303,
            methods=GET_POST,
            data={"framework": "soc2", "start": "2026-01-01", "end": "2026-01-31"},
        ),
    ),
    "reports:report": (get(C.COMPLIANCE_REPORTS, args=A_REPORT, scoped=True),),
    "reports:report-status": (get(C.COMPLIANCE_REPORTS, args=A_REPORT, scoped=True),),
    "reports:report-download": (get(C.COMPLIANCE_REPORTS, args=A_REPORT, scoped=True),),
    # Settings → Security → Streams (the first tenant is on the Enterprise tier).
    "streams:stream-list": (get(C.MANAGE_STREAMS),),
    "streams:stream-create": (
        get(C.MANAGE_STREAMS, methods=GET_POST),
        # No transport chosen: a 400 that says so, reached only by those who manage streams.
        Route(C.MANAGE_STREAMS, method="post", ok=400, methods=GET_POST),
    ),
    "streams:stream-edit": (get(C.MANAGE_STREAMS, args=A_STREAM, scoped=True, methods=GET_POST),),
    "streams:stream-test": (post(C.MANAGE_STREAMS, ok=303, args=A_STREAM, scoped=True),),
    "streams:stream-pause": (post(C.MANAGE_STREAMS, ok=303, args=A_STREAM, scoped=True),),
    "streams:stream-replay": (get(C.MANAGE_STREAMS, args=A_STREAM, scoped=True, methods=GET_POST),),
    "streams:stream-delete": confirmed(C.MANAGE_STREAMS, A_STREAM),
    "policies:access-policies": (get(C.MANAGE_ACCESS_POLICIES),),
    "policies:network-list-add": (
        post(C.MANAGE_ACCESS_POLICIES, ok=303, data={"name": "VPN", "cidrs": "192.0.2.0/24"}),
    ),
    "policies:network-list-edit": (
        post(
            C.MANAGE_ACCESS_POLICIES,
            ok=303,
            args=arg("pk", "network_list_id"),
            scoped=True,
            data={"cidrs": "192.0.2.0/25"},
        ),
    ),
    # Reached, and refused for naming no list of the organization's.
    "policies:network-rule-add": (post(C.MANAGE_ACCESS_POLICIES, ok=400),),
    "policies:settings": (
        post(
            C.MANAGE_ACCESS_POLICIES,
            ok=303,
            data={"time_zone": "Europe/Berlin", "session_limit_action": "refuse"},
        ),
    ),
    "policies:time-window-add": (
        post(
            C.MANAGE_ACCESS_POLICIES,
            ok=303,
            data={"days": "1", "starts": "00:00", "ends": "24:00"},
        ),
    ),
    "policies:time-exception-add": (
        post(C.MANAGE_ACCESS_POLICIES, ok=303, data={"on": "2026-12-24", "allowed": "1"}),
    ),
    "policies:sessions": (post(C.MANAGE_ACCESS_POLICIES, ok=303),),
    "policies:remove": confirmed(
        C.MANAGE_ACCESS_POLICIES,
        lambda world, user: {"kind": "network-list", "pk": world.network_list_id},
    ),
}


def _url_patterns(
    patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(name, route) of every URL pattern, with included URLconfs' namespaces."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, [namespace, pattern.namespace or ""]))
            yield from _url_patterns(pattern.url_patterns, route, inner)
        else:
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield name or "/" + route, route


def project_urls() -> dict[str, str]:
    """Every URL pattern of ours; Django's admin is its own (is_staff) and tested apart."""
    return {
        name: route
        for name, route in _url_patterns(get_resolver().url_patterns)
        if not route.startswith("admin/")
    }


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"


def expected(route: Route, identity: str) -> int | str:
    """What the table says this person gets."""
    if route.need in (PUBLIC, TOKEN):  # the same answer for everyone
        return route.ok
    if route.need == OPERATOR:
        return 401 if identity == "anonymous" else 403
    if identity == "anonymous":
        return LOGIN
    if route.need != SIGNED_IN and route.need not in CAPABILITIES[ROLES[identity]]:
        return 403
    if route.scoped and identity == "other tenant's administrator":
        return 404
    return route.ok


def outcome(response: HttpResponseBase) -> int | str:
    if response.status_code == 302 and response["Location"].startswith(reverse("accounts:login")):
        return LOGIN
    return response.status_code


def _as(world: World, identity: str, route: Route, name: str) -> int | str:
    """What the URL answers this person."""
    client = Client()
    user = world.users.get(identity)
    if user is not None:
        assert outcome(sign_in(client, user.email)) != LOGIN
    kwargs = route.args(world, user) if route.args else {}
    url = "/" if name == "/" else reverse(name, kwargs=kwargs)
    return outcome(getattr(client, route.method)(url, route.data))


def test_every_url_of_the_project_has_an_entry():
    assert set(project_urls()) == set(ROUTES)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_each_url_answers_every_person_what_the_table_says(name):
    """Each person gets what the table says; a method the URL does not take is a 405."""
    mismatches = []
    world = World()
    for route in ROUTES[name]:
        for identity in IDENTITIES:
            want, got = expected(route, identity), _as(world, identity, route, name)
            if route.method == "post":  # the next person starts from an unchanged world
                world = World()
            if want != got:
                mismatches.append(f"{route.method.upper()} as {identity}: want {want}, got {got}")
    route = ROUTES[name][0]
    for method in ("get", "post"):
        if method not in route.methods:
            got = _as(
                world, "administrator", Route(route.need, method=method, args=route.args), name
            )
            if got != 405:
                mismatches.append(
                    f"{method.upper()} (not taken) as administrator: want 405, got {got}"
                )
    assert not mismatches, f"{name} ({project_urls()[name]}):\n" + "\n".join(mismatches)


def test_django_admin_is_only_for_platform_staff():
    world = World()
    for identity in IDENTITIES:
        client = Client()
        if identity != "anonymous":
            sign_in(client, world.users[identity].email)
        response = client.get(reverse("admin:index"))
        assert response.status_code == 302, identity
        assert response["Location"].startswith(reverse("admin:login")), identity


# --- The table itself and the navigation that asks it ------------------------------------------


def test_the_table_grants_what_the_product_says():
    """The brief's Views section and the pages' own words, role by role."""
    product = {
        Role.MEMBER: set(),
        Role.SECURITY_ANALYST: {
            C.VIEW_SECURITY_SETTINGS,
            C.VIEW_AUDIT_LOG,
            C.EXPORT_AUDIT_LOG,
            C.TRIAGE_ALERTS,
            C.VIEW_REVIEWS,
        },
        Role.COMPLIANCE_OFFICER: {
            C.VIEW_SECURITY_SETTINGS,
            C.VIEW_AUDIT_LOG,
            C.EXPORT_AUDIT_LOG,
            C.VIEW_RETENTION,
            C.MANAGE_ARCHIVES,
            C.VERIFY_INTEGRITY,
            C.VIEW_REVIEWS,
            # Issue 17: access reviews (SOC 2 CC6, PCI DSS 7.2.4) and compliance reports.
            C.REVIEW_ACCESS,
            C.COMPLIANCE_REPORTS,
        },
        Role.ADMINISTRATOR: set(Capability),
    }
    assert product == CAPABILITIES


def test_roles_with_reads_the_table():
    assert roles_with(C.TRIAGE_ALERTS) == {Role.ADMINISTRATOR, Role.SECURITY_ANALYST}
    assert roles_with(C.MANAGE_ARCHIVES) == {Role.ADMINISTRATOR, Role.COMPLIANCE_OFFICER}


def test_people_without_an_organization_may_do_nothing(db):
    from .factories import UserFactory

    operator = UserFactory.create(is_staff=True)
    assert access_for(operator).capabilities == frozenset()
    assert access_for(operator).organization is None


# Navigation links and the capability each needs.
NAV = {
    reverse("accounts:security-settings"): C.VIEW_SECURITY_SETTINGS,
    reverse("accounts:audit-log"): C.VIEW_AUDIT_LOG,
    reverse("retention:retention"): C.VIEW_RETENTION,
    reverse("integrity:integrity"): C.VERIFY_INTEGRITY,
    reverse("retention:archives"): C.MANAGE_ARCHIVES,
    reverse("alerts:alert-list"): C.TRIAGE_ALERTS,
    reverse("accounts:members"): C.MANAGE_MEMBERS,
    reverse("exports:export-list"): C.EXPORT_AUDIT_LOG,
    reverse("alerts:rule-list"): C.TRIAGE_ALERTS,
    reverse("alerts:webhook-list"): C.MANAGE_WEBHOOKS,
    reverse("accounts:domains"): C.MANAGE_DOMAINS,
    reverse("api:tokens"): C.MANAGE_API_TOKENS,
    reverse("accounts:throttling"): C.MANAGE_THROTTLING,
    reverse("compliance:reviews"): C.VIEW_REVIEWS,
    reverse("compliance:checklist"): C.VIEW_REVIEWS,
    reverse("reports:access-reviews"): C.REVIEW_ACCESS,
    reverse("reports:reports"): C.COMPLIANCE_REPORTS,
    reverse("streams:stream-list"): C.MANAGE_STREAMS,
    reverse("policies:access-policies"): C.MANAGE_ACCESS_POLICIES,
}


@pytest.mark.parametrize("role", list(Role))
def test_the_navigation_shows_the_links_the_table_allows(client, role):
    user = member(role=role)
    sign_in(client, user.email)
    page = client.get(reverse("alerts:my-alerts")).content.decode()
    header = page.split("<main")[0]
    shown = {url for url in NAV if re.search(f'href="{re.escape(url)}[?"]', header)}
    assert shown == {url for url, need in NAV.items() if need in CAPABILITIES[role]}


# Links on Settings → Security and the capability each needs.
SETTINGS_LINKS = {
    reverse("accounts:audit-log"): C.VIEW_AUDIT_LOG,
    reverse("exports:export-list"): C.EXPORT_AUDIT_LOG,
    reverse("api:tokens"): C.MANAGE_API_TOKENS,
    reverse("alerts:alert-list"): C.TRIAGE_ALERTS,
    reverse("alerts:webhook-list"): C.MANAGE_WEBHOOKS,
    reverse("retention:retention"): C.VIEW_RETENTION,
    reverse("retention:archives"): C.MANAGE_ARCHIVES,
    reverse("accounts:members"): C.MANAGE_MEMBERS,
    reverse("compliance:reviews"): C.VIEW_REVIEWS,
}


@pytest.mark.parametrize("role", [r for r in Role if C.VIEW_SECURITY_SETTINGS in CAPABILITIES[r]])
def test_security_settings_links_only_to_what_the_table_allows(client, role):
    user = member(role=role)
    sign_in(client, user.email)
    page = client.get(reverse("accounts:security-settings")).content.decode()
    main = page.split("<main")[1]
    shown = {url for url in SETTINGS_LINKS if f'href="{url}"' in main}
    assert shown == {url for url, need in SETTINGS_LINKS.items() if need in CAPABILITIES[role]}
