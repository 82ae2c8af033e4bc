"""What the sign-in reads and writes: the account in one query, last_login, session and events."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import Organization, User, UserSession
from accounts.selectors import user_for_sign_in
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record

from .factories import UserFactory, member
from .helpers import sign_in

pytestmark = pytest.mark.django_db


def test_the_sign_in_user_comes_with_membership_and_organization_in_one_query():
    user = member()
    organization = user.membership.organization
    Organization.objects.filter(pk=organization.pk).update(mfa_required_roles=["administrator"])

    with CaptureQueriesContext(connection) as queries:
        found = user_for_sign_in(user.email.upper())
        assert found is not None
        related = (found.membership, found.membership.organization)
    assert len(queries.captured_queries) == 1

    assert found.pk == user.pk
    assert [r.pk for r in related] == [user.membership.pk, organization.pk]
    assert found.membership.organization.mfa_required_roles == ["administrator"]
    assert found._state.adding is False
    assert found.check_password("correct horse battery staple")


def test_a_user_without_membership_reads_without_one():
    found = user_for_sign_in(UserFactory().email)
    assert found is not None
    assert getattr(found, "membership", None) is None
    assert user_for_sign_in("nobody@example.test") is None


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([], False),
        ([(TOTPDevice, False)], False),  # enrolment not finished
        ([(TOTPDevice, True)], True),
        ([(StaticDevice, True)], True),
        ([(TOTPDevice, True), (StaticDevice, True)], True),
    ],
)
def test_a_second_step_is_due_with_a_confirmed_device_of_either_kind(devices, expected):
    user = member()
    for model, confirmed in devices:
        model.objects.create(user=user, name="d", confirmed=confirmed)
    other = member()  # another user's devices are not this user's
    TOTPDevice.objects.create(user=other, name="d", confirmed=True)
    with CaptureQueriesContext(connection) as queries:
        assert mfa.user_has_any_device(user) is expected
    assert len(queries.captured_queries) == 1


def test_events_written_together_get_their_ids_in_order_and_their_details():
    user = member()
    details = {"method": "password", "note": "a, b: c", "unicode": "Zoë ✓"}
    kinds = [EventType.LOGIN_SUCCEEDED, EventType.SESSION_STARTED, EventType.LOGOUT]
    events = events_record(
        specs=[
            EventSpec(event_type=kind, actor=user, details=details if n == 0 else {})
            for n, kind in enumerate(kinds)
        ]
    )
    assert all(e._state.adding is False for e in events)
    stored = AuditEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("pk")
    assert [e.pk for e in stored] == [e.pk for e in events]
    assert [e.event_type for e in stored] == kinds
    assert stored[0].details == details
    assert stored[0].organization_id == user.membership.organization_id
    if connection.vendor == "postgresql":
        assert all(e.txid is not None for e in stored)  # the database's default, not ours


def _statements_of_sign_in(client, user: User) -> list[str]:
    """The SQL a successful sign-in sends on the default connection."""
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert sign_in(client, user.email).status_code == 303
    return statements


def test_a_sign_in_stamps_last_login_once(client):
    user = member()
    assert user.last_login is None
    before = timezone.now()
    statements = _statements_of_sign_in(client, user)
    stamps = [sql for sql in statements if 'UPDATE "accounts_user" SET "last_login"' in sql]
    assert len(stamps) == 1
    user.refresh_from_db()
    assert before <= user.last_login <= timezone.now()


def test_a_sign_in_without_a_session_still_stamps_last_login():
    from django.contrib.auth.signals import user_logged_in

    user = member()
    user_logged_in.send(sender=User, request=None, user=user)

    user.refresh_from_db()
    assert user.last_login is not None
    assert not UserSession.objects.filter(user=user).exists()


def test_a_sign_in_records_its_session_row_and_the_events_that_name_it(client):
    user = member()
    statements = _statements_of_sign_in(client, user)

    writes = [sql for sql in statements if "accounts_usersession" in sql and "INSERT" in sql]
    assert len(writes) == 1
    session = UserSession.objects.get(user=user)
    started = AuditEvent.objects.get(actor=user, event_type=EventType.SESSION_STARTED)
    succeeded = AuditEvent.objects.get(actor=user, event_type=EventType.LOGIN_SUCCEEDED)
    assert started.session_hash == succeeded.session_hash == session.session_hash
