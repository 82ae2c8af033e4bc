"""Forms and actions: every POST that succeeds answers 303 See Other, the page after it says what
happened, and reloading that page repeats nothing; destructive actions ask first (GET changes
nothing, POST acts), refused on both to the wrong role and another tenant; field errors sit under
their labelled field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken

from accounts.models import (
    DomainProof,
    LockoutState,
    Membership,
    OrganizationDomain,
    Role,
    Tier,
    UserSession,
)
from alerts.models import WebhookEndpoint
from alerts.webhooks import webhook_endpoint_create
from api.models import ApiToken
from api.services import api_token_create
from audit.models import AuditEvent, EventType
from retention.models import ExportSchedule, Frequency
from retention.schedules import export_schedule_create

from .factories import PASSWORD, OrganizationFactory, member
from .helpers import sign_in
from .mfa_support import backup_codes, totp_device
from .retention_support import (  # noqa: F401 (autouse fixture)
    archive_dir_fixture,
    event_at,
)

pytestmark = pytest.mark.django_db

MIDNIGHT = datetime(2026, 11, 28, tzinfo=UTC)


class World:
    """An Enterprise tenant: its administrator (signed in), a colleague, one of each object."""

    def __init__(self) -> None:
        self.organization = OrganizationFactory.create(tier=Tier.ENTERPRISE)
        self.admin = member(self.organization, role=Role.ADMINISTRATOR)
        self.colleague = member(self.organization)
        self.client = Client()
        sign_in(self.client, self.admin.email)

    def colleague_with_mfa(self) -> int:
        sign_in(Client(), self.colleague.email)
        totp_device(self.colleague)
        return self.colleague.membership.pk

    def promoted_colleague(self) -> int:
        Membership.objects.filter(user=self.colleague).update(role=Role.ADMINISTRATOR)
        return self.colleague.membership.pk

    def locked_colleague(self) -> int:
        now = timezone.now()
        LockoutState.objects.create(
            user=self.colleague,
            locked_at=now,
            locked_until=now + timedelta(minutes=30),
            counter_reset_at=now,
        )
        return self.colleague.membership.pk

    def token(self) -> int:
        return api_token_create(organization=self.organization, user=self.admin, name="SIEM")[0].pk

    def webhook(self) -> int:
        return webhook_endpoint_create(
            organization=self.organization,
            url="https://93.184.215.14/in",
            description="SIEM",
            actor=self.admin,
        ).pk

    def domain(self) -> int:
        return OrganizationDomain.objects.create(
            organization=self.organization,
            domain=f"{self.organization.slug}.test",
            proof=DomainProof.OPERATOR,
            verified_at=timezone.now(),
        ).pk

    def schedule(self) -> int:
        event_at(MIDNIGHT - timedelta(hours=3), self.organization)
        return export_schedule_create(
            organization=self.organization,
            actor=self.admin,
            name="Daily",
            frequency=Frequency.DAILY,
            filters={},
            now=MIDNIGHT - timedelta(days=1),
        ).pk

    def own_device(self) -> dict[str, Any]:
        return {"kind": "totp", "pk": totp_device(self.admin).pk}

    def own_other_session(self) -> str:
        sign_in(Client(), self.admin.email)
        return (
            UserSession.objects.filter(user=self.admin, ended_at__isnull=True)
            .latest("id")
            .session_hash
        )


@dataclass(frozen=True)
class Action:
    name: str  # URL name
    then: str  # URL name the action redirects to
    args: Callable[[World], Any] | None = None  # an object id (or URL kwargs), made first
    data: dict[str, Any] | None = None
    before: Callable[[World], Any] | None = None  # what the action needs besides its object


def _kwargs(world: World, action: Action) -> tuple[list[Any], dict[str, Any]]:
    made = action.args(world) if action.args else None
    if made is None:
        return [], {}
    return ([], made) if isinstance(made, dict) else ([made], {})


def _rule_form() -> dict[str, Any]:
    return {"enabled": "on", "severity": "high", "threshold": 9, "window_minutes": 15}


# Every POST endpoint of the pages (the sign-in flow, Django's password reset and the admin
# aside), each with what makes it really act. Alert triage is tested in test_alerts_views.
ACTIONS = [
    Action("api:tokens", "api:tokens", data={"name": "SIEM"}),
    Action("api:token-revoke", "api:tokens", args=World.token),
    Action("accounts:member-role", "accounts:members", args=lambda w: w.colleague.membership.pk,
           data={"role": Role.SECURITY_ANALYST}),
    Action("accounts:member-role", "accounts:members", args=World.promoted_colleague,
           data={"role": Role.MEMBER, "confirmed": "on"}),
    Action("accounts:member-unlock", "accounts:members", args=World.locked_colleague),
    Action("accounts:member-sign-out", "accounts:members", args=World.colleague_with_mfa),
    Action("accounts:member-mfa-reset", "accounts:members", args=World.colleague_with_mfa),
    Action("accounts:mfa-policy", "accounts:members", data={"policy": "all"}),
    Action("accounts:domains", "accounts:domains", data={"domain": "new-domain.test"}),
    Action("accounts:domain-remove", "accounts:domains", args=World.domain),
    Action("accounts:time-zone", "accounts:profile", data={"time_zone": "Europe/Berlin"}),
    Action("accounts:throttling", "accounts:throttling", data={"ip_burst": "300"}),
    Action("accounts:password-change", "accounts:profile",
           data={"old_password": PASSWORD, "new_password1": "A new pass phrase 42",
                 "new_password2": "A new pass phrase 42"}),
    Action("accounts:mfa-backup-codes-new", "accounts:mfa-backup-codes",
           before=lambda w: totp_device(w.admin)),
    Action("accounts:mfa-device-remove", "accounts:security", args=World.own_device,
           data={"password": PASSWORD}),
    Action("accounts:session-end", "accounts:security",
           args=lambda w: {"session_hash": w.own_other_session()}),
    Action("accounts:sessions-end-others", "accounts:security",
           before=World.own_other_session),
    Action("alerts:rule-edit", "alerts:rule-list", args=lambda w: {"kind": "failed_sign_ins"},
           data=_rule_form()),
    Action("alerts:webhook-list", "alerts:webhook-detail",
           data={"url": "https://93.184.215.14/hooks", "description": "SIEM"}),
    Action("alerts:webhook-delete", "alerts:webhook-list", args=World.webhook),
    Action("retention:retention", "retention:retention",
           data={"frameworks": ["soc2"], "archive_before_purge": "on", "retention_years": "2"}),
    Action("retention:archives", "retention:archives",
           data={"name": "Weekly", "frequency": "weekly", "window_days": "7"}),
    Action("retention:schedule-run", "retention:archives", args=World.schedule),
    Action("retention:schedule-delete", "retention:archives", args=World.schedule),
]  # fmt: skip


def _changes() -> int:
    """State changes so far: every one writes its audit event."""
    return AuditEvent.objects.exclude(event_type=EventType.AUDIT_LOG_VIEWED).count()


@pytest.mark.parametrize("action", ACTIONS, ids=[f"{i}-{a.name}" for i, a in enumerate(ACTIONS)])
def test_a_successful_post_redirects_says_so_and_a_reload_repeats_nothing(action):
    world = World()
    if action.before:
        action.before(world)
    args, kwargs = _kwargs(world, action)
    url = reverse(action.name, args=args, kwargs=kwargs)
    before = _changes()

    response = world.client.post(url, action.data or {})

    assert response.status_code == 303, response.content[:500]
    then_args = [WebhookEndpoint.objects.get().pk] if action.then == "alerts:webhook-detail" else []
    assert response["Location"] == reverse(action.then, args=then_args)
    acted = _changes()
    assert acted > before, "the action changed nothing"
    page = world.client.get(response["Location"])
    assert page.status_code == 200
    assert 'class="flash flash-' in page.content.decode(), "no message after the action"
    world.client.get(response["Location"])  # the reload
    assert _changes() == acted


# --- Confirmation: GET asks and changes nothing, POST acts, only for whom it may -------------

Confirm = tuple[str, Callable[[World], Any], str, dict[str, Any]]

CONFIRMATIONS: list[Confirm] = [
    ("api:token-revoke", World.token, "Revoke the token", {}),
    ("accounts:member-sign-out", World.colleague_with_mfa, "out everywhere?", {}),
    ("accounts:member-mfa-reset", World.colleague_with_mfa, "Reset two-step", {}),
    ("accounts:domain-remove", World.domain, "Remove", {}),
    ("alerts:webhook-delete", World.webhook, "Remove the webhook", {}),
    ("retention:schedule-delete", World.schedule, "Stop the scheduled export", {}),
    ("accounts:member-role", lambda w: w.colleague.membership.pk, "Make", {"role": "member"}),
]


@pytest.mark.parametrize(
    "name,make,question,query", CONFIRMATIONS, ids=[c[0] for c in CONFIRMATIONS]
)
def test_a_destructive_action_asks_first_and_the_question_changes_nothing(
    name, make, question, query
):
    world = World()
    world.promoted_colleague()
    url = reverse(name, args=[make(world)])
    before = _changes()

    page = world.client.get(url, query)

    assert page.status_code == 200
    body = page.content.decode()
    assert question in body and "data-confirm-page" in body
    assert f'<form method="post" action="{url}">' in body
    assert _changes() == before


@pytest.mark.parametrize(
    "name,make,question,query", CONFIRMATIONS, ids=[c[0] for c in CONFIRMATIONS]
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_wrong_role_and_another_tenant_are_refused_the_question_and_the_action(
    name, make, question, query, method
):
    world = World()
    world.promoted_colleague()
    url = reverse(name, args=[make(world)])
    analyst = Client()
    sign_in(analyst, member(world.organization, role=Role.SECURITY_ANALYST).email)
    other = Client()
    sign_in(
        other, member(OrganizationFactory.create(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR).email
    )
    before = _changes()

    assert getattr(analyst, method)(url, query).status_code == 403
    assert getattr(other, method)(url, query).status_code == 404
    assert _changes() == before


def test_signing_out_other_sessions_asks_about_ones_own_sessions_only():
    world = World()
    world.own_other_session()
    colleague = Client()
    sign_in(colleague, world.colleague.email)

    page = colleague.get(reverse("accounts:sessions-end-others"))

    assert page.status_code == 200
    assert "nothing to sign out" in page.content.decode()


# --- One's own: new backup codes and one session ------------------------------------------------


def test_new_backup_codes_ask_first_saying_the_old_ones_stop_working():
    world = World()
    totp_device(world.admin)
    backup_codes(world.admin, ("aaaabbbb", "ccccdddd"))
    url = reverse("accounts:mfa-backup-codes-new")
    before = _changes()

    page = world.client.get(url)

    body = page.content.decode()
    assert page.status_code == 200 and "data-confirm-page" in body
    assert "Make new backup codes?" in body and "2 remaining backup codes stop working" in body
    assert f'<form method="post" action="{url}">' in body
    assert _changes() == before
    assert set(StaticToken.objects.values_list("token", flat=True)) == {"aaaabbbb", "ccccdddd"}
    security = world.client.get(reverse("accounts:security")).content.decode()
    assert f'href="{url}" data-confirm>' in security

    done = world.client.post(url, follow=True)

    assert done.redirect_chain == [(reverse("accounts:mfa-backup-codes"), 303)]
    assert "Your earlier codes no longer work" in done.content.decode()
    assert not StaticToken.objects.filter(token__in=["aaaabbbb", "ccccdddd"]).exists()


def test_new_backup_codes_are_only_ever_ones_own_and_need_an_app_first():
    world = World()
    totp_device(world.colleague)
    backup_codes(world.colleague, ("aaaabbbb",))
    url = reverse("accounts:mfa-backup-codes-new")
    before = _changes()

    # The administrator has no authenticator app: refused, and the colleague's codes untouched.
    assert world.client.get(url).status_code == 400
    assert world.client.post(url).status_code == 400
    assert Client().get(url).status_code == 302  # anonymous: to sign in
    assert _changes() == before
    assert list(StaticToken.objects.values_list("token", flat=True)) == ["aaaabbbb"]


def test_ending_one_session_asks_first_and_only_its_owner_may():
    world = World()
    session_hash = world.own_other_session()
    url = reverse("accounts:session-end", kwargs={"session_hash": session_hash})
    colleague = Client()
    sign_in(colleague, world.colleague.email)
    other_tenant = Client()
    sign_in(
        other_tenant,
        member(OrganizationFactory.create(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR).email,
    )
    before = _changes()

    page = world.client.get(url)

    body = page.content.decode()
    assert page.status_code == 200 and "data-confirm-page" in body
    assert "Sign out this session?" in body and f'<form method="post" action="{url}">' in body
    security = world.client.get(reverse("accounts:security")).content.decode()
    assert f'href="{url}" data-confirm>' in security
    for stranger in (colleague, other_tenant, Client()):
        for method in ("get", "post"):
            assert getattr(stranger, method)(url).status_code in (302, 404)
    assert colleague.get(url).status_code == 404 and other_tenant.post(url).status_code == 404
    assert _changes() == before
    assert UserSession.objects.get(session_hash=session_hash).ended_at is None

    done = world.client.post(url, follow=True)

    assert done.redirect_chain == [(reverse("accounts:security"), 303)]
    assert "That session was signed out." in done.content.decode()
    assert UserSession.objects.get(session_hash=session_hash).ended_at is not None


def test_ending_this_session_asks_first_then_signs_out_here():
    world = World()
    current = UserSession.objects.filter(user=world.admin, ended_at__isnull=True).get()
    url = reverse("accounts:session-end", kwargs={"session_hash": current.session_hash})

    page = world.client.get(url).content.decode()

    assert "Sign out here?" in page and "you will need to sign in again" in page
    done = world.client.post(url)
    assert done.status_code == 303 and done["Location"] == reverse("accounts:login")
    assert world.client.get(reverse("accounts:security")).status_code == 302


def test_making_someone_an_administrator_acts_at_once():
    world = World()
    url = reverse("accounts:member-role", args=[world.colleague.membership.pk])

    response = world.client.post(url, {"role": Role.ADMINISTRATOR})

    assert response.status_code == 303 and response["Location"] == reverse("accounts:members")
    assert Membership.objects.get(user=world.colleague).role == Role.ADMINISTRATOR


def test_taking_a_role_down_asks_first_then_acts_on_the_confirmed_post():
    world = World()
    world.promoted_colleague()
    url = reverse("accounts:member-role", args=[world.colleague.membership.pk])

    asked = world.client.post(url, {"role": Role.MEMBER})

    assert asked.status_code == 303 and asked["Location"] == f"{url}?role=member"
    assert Membership.objects.get(user=world.colleague).role == Role.ADMINISTRATOR
    page = world.client.get(asked["Location"]).content.decode()
    assert f"Make {world.colleague.email} Member?" in page
    assert '<input type="hidden" name="confirmed" value="on">' in page
    done = world.client.post(url, {"role": Role.MEMBER, "confirmed": "on"}, follow=True)
    assert Membership.objects.get(user=world.colleague).role == Role.MEMBER
    assert f"{world.colleague.email} is now Member." in done.content.decode()


def test_destructive_buttons_are_links_to_their_question():
    world = World()
    world.colleague_with_mfa()
    world.token()
    world.webhook()
    world.schedule()
    for page, question in [
        (
            "accounts:members",
            reverse("accounts:member-sign-out", args=[world.colleague.membership.pk]),
        ),
        (
            "accounts:members",
            reverse("accounts:member-mfa-reset", args=[world.colleague.membership.pk]),
        ),
        ("api:tokens", reverse("api:token-revoke", args=[ApiToken.objects.get().pk])),
        (
            "alerts:webhook-list",
            reverse("alerts:webhook-delete", args=[WebhookEndpoint.objects.get().pk]),
        ),
        (
            "retention:archives",
            reverse("retention:schedule-delete", args=[ExportSchedule.objects.get().pk]),
        ),
    ]:
        body = world.client.get(reverse(page)).content.decode()
        assert f'href="{question}" data-confirm>' in body, page


# --- Messages and field errors ------------------------------------------------------------------


def test_a_refused_form_says_so_at_the_top_and_under_the_field():
    world = World()

    page = world.client.post(reverse("alerts:webhook-list"), {"url": "", "description": "x"})

    assert page.status_code == 400
    body = page.content.decode()
    assert 'role="alert">The webhook was not added: see below.' in body
    # The error names the field's purpose and sits under its labelled input, linked to it.
    assert '<label for="id_url">URL (https):</label>' in body
    assert 'aria-describedby="id_url_error"' in body and 'aria-invalid="true"' in body
    assert '<ul class="errorlist" id="id_url_error"><li>Enter the URL alerts are sent to' in body
    assert "This field is required" not in body
    assert not WebhookEndpoint.objects.exists()


def test_a_rejected_schedule_keeps_its_errors_beside_the_fields():
    world = World()

    page = world.client.post(reverse("retention:archives"), {"name": "", "frequency": "weekly"})

    assert page.status_code == 400
    body = page.content.decode()
    assert 'role="alert">The export was not scheduled' in body
    assert 'id="id_name_error"' in body
    assert not ExportSchedule.objects.exists()


def test_revoking_twice_says_it_already_was():
    world = World()
    token_id = world.token()
    url = reverse("api:token-revoke", args=[token_id])
    world.client.post(url)

    again = world.client.post(url, follow=True)

    assert "was already revoked" in again.content.decode()
    assert ApiToken.objects.get().revoked_at is not None


def test_no_secret_reaches_a_url_a_message_or_an_event():
    world = World()
    response = world.client.post(reverse("api:tokens"), {"name": "SIEM"})
    page = world.client.get(response["Location"])
    secret = page.context["created_secret"]

    assert secret not in response["Location"]
    assert all(secret not in str(m) for m in page.context["messages"])
    assert not any(secret in str(e.details) for e in AuditEvent.objects.all())
