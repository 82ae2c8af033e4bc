"""The hand-written SQL on the sign-in path gives exactly what the ORM would, on both databases."""

from __future__ import annotations

import pytest
from django.db import DEFAULT_DB_ALIAS, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.models import LockoutState, Organization, User, UserSession
from accounts.selectors import user_for_sign_in
from audit.inserts import rows_insert
from audit.models import AuditEvent, EventType
from audit.services import EventSpec, events_record

from .factories import UserFactory, member
from .helpers import sign_in

pytestmark = pytest.mark.django_db


def _orm_user(email: str) -> User | None:
    return (
        User._default_manager.by_email(email)
        .select_related("membership__organization", "lockout_state")
        .first()
    )


def _values(instance: object | None) -> dict[str, object] | None:
    if instance is None:
        return None
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_sign_in_user_matches_the_orm_and_needs_one_query():
    user = member()
    organization = user.membership.organization
    Organization.objects.filter(pk=organization.pk).update(mfa_required_roles=["administrator"])
    LockoutState.objects.create(user=user, counter_reset_at=timezone.now(), locked_at=None)

    with CaptureQueriesContext(connection) as queries:
        found = user_for_sign_in(user.email.upper())
        assert found is not None
        related = (found.membership, found.membership.organization, found.lockout_state)
    assert len(queries.captured_queries) == 1

    expected = _orm_user(user.email)
    assert _values(found) == _values(expected)
    assert [_values(r) for r in related] == [
        _values(expected.membership),
        _values(expected.membership.organization),
        _values(expected.lockout_state),
    ]
    assert found.membership.organization.mfa_required_roles == ["administrator"]
    assert found.membership.user is found
    assert found._state.adding is False
    assert found.check_password("correct horse battery staple")


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([], False),
        ([(TOTPDevice, False)], False),  # enrolment not finished
        ([(TOTPDevice, True)], True),
        ([(StaticDevice, True)], True),
    ],
)
def test_the_sign_in_user_says_whether_a_second_step_is_due(devices, expected):
    user = member()
    for model, confirmed in devices:
        model.objects.create(user=user, name="d", confirmed=confirmed)
    found = user_for_sign_in(user.email)
    assert found.has_second_factor is expected
    assert mfa.user_has_any_device(user) is expected  # the same question asked on its own


def test_a_user_without_membership_or_lockout_row_reads_as_with_select_related():
    user = UserFactory()
    found = user_for_sign_in(user.email)
    assert _values(found) == _values(_orm_user(user.email))
    assert getattr(found, "membership", None) is None
    with pytest.raises(LockoutState.DoesNotExist):
        found.lockout_state  # noqa: B018 - the access is the assertion
    assert user_for_sign_in("nobody@example.test") is None


def test_rows_insert_stores_what_bulk_create_would():
    user = member()
    ours = UserSession(
        user=user,
        organization_id=user.membership.organization_id,
        session_key="k1",
        session_hash="h1",
        ip_address="2001:db8::1",
        user_agent="<script>",
        country="GB",
    )
    theirs = UserSession(**{**_values(ours), "id": None, "session_key": "k2", "session_hash": "h2"})
    rows_insert([ours], using=DEFAULT_DB_ALIAS)
    UserSession.objects.bulk_create([theirs])
    assert ours.pk is not None and ours._state.adding is False
    stored = _values(UserSession.objects.get(pk=ours.pk))
    other = _values(UserSession.objects.get(session_hash="h2"))
    for key in ("id", "session_key", "session_hash"):
        stored.pop(key), other.pop(key)
    assert stored == other


def test_events_written_in_one_statement_get_their_ids_and_details():
    user = member()
    details = {"method": "password", "note": "a, b: c", "unicode": "Zoë ✓"}
    events = events_record(
        specs=[
            EventSpec(event_type=EventType.LOGIN_SUCCEEDED, actor=user, details=details),
            EventSpec(event_type=EventType.SESSION_STARTED, actor=user),
        ]
    )
    stored = AuditEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("pk")
    assert [e.event_type for e in stored] == [EventType.LOGIN_SUCCEEDED, EventType.SESSION_STARTED]
    assert stored[0].details == details
    assert stored[0].organization_id == user.membership.organization_id
    if connection.vendor == "postgresql":
        assert all(e.txid is not None for e in stored)  # the database's default, not ours


@pytest.mark.postgres("prepared statements are PostgreSQL's")
def test_the_sign_in_statements_are_prepared_once_per_connection(client):
    """After a few sign-ins the account query and the event INSERT run as prepared statements on
    the request's connection; the ORM's own queries (the lockout's among them) are never
    prepared."""
    user = member()
    for _ in range(6):
        assert sign_in(client, user.email, "wrong").status_code == 200
        assert sign_in(client, user.email).status_code == 302
        client.logout()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(sql.startswith('SELECT u."id"') and "LOWER(" in sql for sql in prepared)
    assert any(sql.startswith('INSERT INTO "audit_auditevent"') for sql in prepared)
    assert not any('"django_session"' in sql for sql in prepared)
    # Stored exactly as through Django's cursor: the last six failures and sign-ins are there.
    kinds = AuditEvent.objects.filter(actor=user).values_list("event_type", flat=True)
    assert list(kinds).count(EventType.LOGIN_FAILED) == 6
    assert list(kinds).count(EventType.LOGIN_SUCCEEDED) == 6


def _statements_of_sign_in(client, user: User) -> list[str]:  # type: ignore[no-untyped-def]
    """The SQL a successful sign-in sends on the default connection."""
    statements: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        assert sign_in(client, user.email).status_code == 302
    return statements


def test_a_sign_in_stamps_last_login_once_as_django_would(client):
    """Django's update_last_login is out; the sign-in's own statement stamps the same column."""
    from django.contrib.auth.models import update_last_login
    from django.contrib.auth.signals import user_logged_in

    assert update_last_login not in [entry[1]() for entry in user_logged_in.receivers]

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


def test_rows_written_together_get_their_own_ids_in_order():
    user = member()
    sessions = [
        UserSession(user=user, session_key=f"k{n}", session_hash=f"h{n}", ip_address="192.0.2.1")
        for n in range(2)
    ]
    kinds = [EventType.LOGIN_SUCCEEDED, EventType.SESSION_STARTED, EventType.LOGOUT]

    events = events_record(
        specs=[EventSpec(event_type=kind, actor=user) for kind in kinds], alongside=sessions
    )

    for session in sessions:
        assert session._state.adding is False
        assert UserSession.objects.get(pk=session.pk).session_hash == session.session_hash
    assert [AuditEvent.objects.get(pk=e.pk).event_type for e in events] == kinds


def test_a_sign_in_writes_its_session_and_its_events_in_one_statement(client):
    user = member()
    statements = _statements_of_sign_in(client, user)

    writes = [sql for sql in statements if "accounts_usersession" in sql and "INSERT" in sql]
    assert len(writes) == 1
    if connection.vendor == "postgresql":
        assert 'INSERT INTO "audit_auditevent"' in writes[0]
    session = UserSession.objects.get(user=user)
    started = AuditEvent.objects.get(actor=user, event_type=EventType.SESSION_STARTED)
    assert started.session_hash == session.session_hash


def test_planned_statements_get_postgresqls_numbered_placeholders():
    from audit.inserts import _numbered

    assert _numbered("SELECT %s, '100%%' WHERE a = %s") == "SELECT $1, '100%' WHERE a = $2"
