"""The events table's monthly partitions on PostgreSQL (audit migration 0013, issue 15 item 1).

Partitions are made ahead; an event whose month has none waits in the default partition and
moves into its month when the partition is made; every partition refuses UPDATE, DELETE and
TRUNCATE as the table does; the app's role cannot touch a partition at all; the conversion
migration keeps every row as it was and refuses to run on a table already partitioned; the
purge deletes by primary key, never by a physical address two partitions share; and the API
feed hands out every event once across a month's boundary.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import DatabaseError, ProgrammingError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from accounts.models import Role, Tier
from api.services import api_token_create
from audit.models import AuditEvent, EventType
from audit.partitions import partitions_ensure
from audit.purge import events_purge_batch
from audit.roles import grant_after_migrate
from audit.services import event_record

from .db_support import has_owner_role, owner_connect
from .factories import OrganizationFactory, member
from .test_api import poll_all

pytestmark = [
    pytest.mark.postgres(reason="table partitioning is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]

CONVERSION = importlib.import_module("audit.migrations.0013_partitioned_events")
LATEST = ("audit", "0015_user_agents")


def _owner_alias() -> str:
    return "owner" if has_owner_role() else "default"


# The conversion runs on the owner's Django connection, as `migrate --database owner` does.
WITH_THE_OWNER = pytest.mark.django_db(transaction=True, databases=["default", _owner_alias()])


def _as_owner(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement as the tables' owner, in a transaction of its own."""
    if has_owner_role():
        with owner_connect() as owner:
            found = owner.execute(sql, params)
            return found.fetchall() if found.description else []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _partitions() -> dict[str, str]:
    """Each partition of the events table and its bounds."""
    rows = _as_owner(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'audit_auditevent'::regclass ORDER BY 1"
    )
    return {str(name): str(bound) for name, bound in rows}


def _partition_of(event_id: int) -> str:
    [(name,)] = _as_owner(
        "SELECT tableoid::regclass::text FROM audit_auditevent WHERE id = %s", [event_id]
    )
    return str(name)


def _month_name(moment: datetime) -> str:
    return f"audit_auditevent_p{moment:%Y_%m}"


def _event_at(when: datetime, organization=None, **fields) -> AuditEvent:
    return AuditEvent.objects.create(
        event_type=EventType.LOGOUT,
        occurred_at=when,
        organization=organization,
        actor_label="someone@example.test",
        **fields,
    )


# Text columns that must not be NULL and have no default, before audit 0015 and after it.
_TEXT_COLUMNS = [
    ["reason", "target_label", "user_agent", "browser", "os", "device_type", "device_id",
     "country", "city", "session_hash", "request_id"],
    ["reason", "target_label", "device_id", "country", "city", "session_hash", "request_id"],
]  # fmt: skip


def _event_in_any_schema(
    when: datetime, organization, details: dict[str, Any] | None = None
) -> int:
    """An event written in SQL, for tests that write while the table is migrated from before
    its partitions (audit 0011) to today: the model names today's columns (0015 moved the user
    agent out), so this writes the columns of either state, the other's if one is missing (a
    migration may drop them while the insert waits for its lock). Returns its id."""
    for attempt, text in enumerate([*_TEXT_COLUMNS, *_TEXT_COLUMNS]):
        columns = ", ".join(
            ["occurred_at", "organization_id", "event_type", "outcome", "actor_label", "details"]
            + text
        )
        values = ", ".join(["%s"] * (6 + len(text)))
        params = [
            when,
            organization.pk,
            EventType.LOGOUT,
            "success",
            "someone@example.test",
            json.dumps(details or {}),
            *[""] * len(text),
        ]
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO audit_auditevent ({columns}) VALUES ({values}) RETURNING id",  # noqa: S608
                    params,
                )
                return int(cursor.fetchone()[0])
        except ProgrammingError:  # a column this state does not have
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


# --- Partitions made ahead, and the default partition -------------------------------------------


def test_this_month_and_the_months_ahead_have_their_partitions(settings):
    now = timezone.now().astimezone(UTC)
    partitions_ensure()
    found = _partitions()
    assert found["audit_auditevent_default"] == "DEFAULT"
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(settings.AUDIT_PARTITIONS_AHEAD_MONTHS + 1):
        assert _month_name(month) in found
        month = (month + timedelta(days=32)).replace(day=1)


def test_a_missing_future_partition_is_made_and_asking_again_makes_nothing():
    now = timezone.now().astimezone(UTC)
    far = (now.replace(day=1) + timedelta(days=31 * 7)).replace(day=1)
    assert _month_name(far) not in _partitions()
    assert partitions_ensure(months_ahead=7) >= 1
    assert _month_name(far) in _partitions()
    assert partitions_ensure(months_ahead=7) == 0


def test_the_beat_task_makes_the_months_ahead_the_settings_ask_for(settings):
    from audit.tasks import events_partitions_ensure

    settings.AUDIT_PARTITIONS_AHEAD_MONTHS = 9
    month = timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(9):
        month = (month + timedelta(days=32)).replace(day=1)

    events_partitions_ensure.apply()

    assert _month_name(month) in _partitions()


def test_months_ahead_out_of_bounds_are_refused_with_a_message():
    with pytest.raises(DatabaseError, match="between 0 and 24"), transaction.atomic():
        partitions_ensure(months_ahead=240)


def test_an_event_without_a_partition_waits_in_the_default_one_and_moves_into_its_month():
    when = datetime(2019, 3, 14, 15, 9, 26, tzinfo=UTC)
    event = _event_at(when, details={"kept": "as it was"})
    before = _as_owner(
        "SELECT id, txid, occurred_at, details FROM audit_auditevent WHERE id = %s", [event.pk]
    )
    assert _partition_of(event.pk) == "audit_auditevent_default"

    [(made,)] = _as_owner("SELECT audit_events_partition_ensure(%s::date)", ["2019-03-01"])

    assert made is True
    assert _partition_of(event.pk) == "audit_auditevent_p2019_03"
    after = _as_owner(
        "SELECT id, txid, occurred_at, details FROM audit_auditevent WHERE id = %s", [event.pk]
    )
    assert after == before
    assert _as_owner("SELECT count(*) FROM audit_auditevent_default") == [(0,)]


# --- The guard on every partition ------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {partition} SET reason = 'edited' WHERE id = %s",
        "DELETE FROM {partition} WHERE id = %s",
        "TRUNCATE {partition}",
    ],
)
def test_a_partition_named_directly_refuses_change_even_to_the_owner(statement):
    event = event_record(event_type=EventType.LOGOUT, actor_label="someone@example.test")
    partition = _partition_of(event.pk)
    sql = statement.format(partition=partition)
    with pytest.raises((DatabaseError, psycopg.Error), match="append-only"):
        _as_owner(sql, [event.pk] if "%s" in sql else None)
    assert AuditEvent.objects.filter(pk=event.pk, reason="").exists()


@pytest.mark.db_roles
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM {partition}",
        "DELETE FROM {partition}",
        "UPDATE {partition} SET reason = 'edited'",
        "TRUNCATE {partition}",
        "ALTER TABLE audit_auditevent DETACH PARTITION {partition}",
        "DROP TABLE {partition}",
        "SELECT audit_events_partition_ensure('2018-01-01'::date)",
    ],
)
def test_the_apps_role_cannot_touch_a_partition(statement):
    event = event_record(event_type=EventType.LOGOUT, actor_label="someone@example.test")
    partition = _partition_of(event.pk)
    with (
        pytest.raises(DatabaseError, match="permission denied|must be owner"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(partition=partition))
    assert partition in _partitions()
    assert AuditEvent.objects.filter(pk=event.pk, reason="").exists()


# --- The purge across partitions -------------------------------------------------------------


def test_the_purge_deletes_by_key_not_by_an_address_two_partitions_share():
    """The first row of two months sits at the same physical address (page 0, item 1) in each
    partition; deleting one organization's old month must leave the other's row alone."""
    _as_owner("SELECT audit_events_partition_ensure(%s::date)", ["2017-01-01"])
    _as_owner("SELECT audit_events_partition_ensure(%s::date)", ["2017-02-01"])
    expired_org, kept_org = (OrganizationFactory.create(tier=Tier.SMALL_BUSINESS) for _ in range(2))
    expired = _event_at(datetime(2017, 1, 5, tzinfo=UTC), expired_org)
    kept = _event_at(datetime(2017, 2, 5, tzinfo=UTC), kept_org)
    addresses = _as_owner(
        "SELECT ctid::text FROM audit_auditevent WHERE id = ANY(%s)", [[expired.pk, kept.pk]]
    )
    assert addresses == [("(0,1)",), ("(0,1)",)]

    deleted = events_purge_batch(
        organization_id=expired_org.pk, before=timezone.now() - timedelta(days=400)
    )

    assert deleted == 1
    assert list(
        AuditEvent.objects.filter(pk__in=[expired.pk, kept.pk]).values_list("pk", flat=True)
    ) == [kept.pk]


# --- The API feed across a month's boundary ----------------------------------------------------


def test_the_api_feed_hands_out_every_event_once_across_a_months_boundary():
    organization = OrganizationFactory.create(tier=Tier.ENTERPRISE)
    admin = member(organization, Role.ADMINISTRATOR)
    now = timezone.now().astimezone(UTC)
    last_month_end = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    made = []
    for index in range(12):
        # Alternating sides of the boundary, in the order they commit.
        when = last_month_end + (
            timedelta(seconds=index) if index % 2 else -timedelta(seconds=index + 1)
        )
        made.append(_event_at(when, organization, actor=admin).pk)
    assert {_partition_of(pk) for pk in made} >= {_month_name(now)}
    _, secret = api_token_create(organization=organization, user=admin, name="SIEM")
    got = poll_all(Client(), secret, set(made), limit=5)
    assert [pk for pk in got if pk in made] == made
    assert len(got) == len(set(got))


# --- The conversion ----------------------------------------------------------------------------


def _migrate(target: tuple[str, str]) -> None:
    alias = _owner_alias()
    executor = MigrationExecutor(connections[alias])
    executor.migrate([target])
    # What a migrate command does after migrating: grants, policy and partitions.
    grant_after_migrate(using=alias)


@WITH_THE_OWNER
def test_the_conversion_keeps_every_row_and_puts_each_in_its_month():
    organization = OrganizationFactory.create(tier=Tier.ENTERPRISE)
    times = [
        datetime(2020, 1, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2020, 2, 1, 0, 0, tzinfo=UTC),
        datetime(2024, 7, 4, 12, 0, tzinfo=UTC),
        timezone.now(),
    ]
    query = (
        "SELECT id, txid, occurred_at, organization_id, details::text FROM audit_auditevent "
        "ORDER BY id"
    )
    _migrate(("audit", "0011_login_throttled"))
    try:
        assert _as_owner(
            "SELECT relkind FROM pg_class WHERE oid = 'audit_auditevent'::regclass"
        ) == [("r",)]
        made = [
            _event_in_any_schema(when, organization, details={"n": n})
            for n, when in enumerate(times)
        ]
        before = _as_owner(query)
    finally:
        _migrate(LATEST)

    assert _as_owner(query) == before
    assert [_partition_of(pk) for pk in made] == [
        "audit_auditevent_p2020_01",
        "audit_auditevent_p2020_02",
        "audit_auditevent_p2024_07",
        _month_name(timezone.now().astimezone(UTC)),
    ]
    # The sequence goes on after the copied ids, and new rows get their own transaction id.
    later = _event_at(timezone.now(), organization)
    assert later.pk > max(made)
    [(txid,)] = _as_owner("SELECT txid FROM audit_auditevent WHERE id = %s", [later.pk])
    assert txid is not None and txid > max(row[1] for row in before)


@WITH_THE_OWNER
def test_events_written_while_the_conversion_runs_are_all_kept():
    """Sign-ins go on during the conversion: their events land in the old table while it is
    copied, wait for the swap's short lock, then land in the new one. None is lost or doubled."""
    organization = OrganizationFactory.create(tier=Tier.ENTERPRISE)
    _migrate(("audit", "0011_login_throttled"))
    written: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def sign_ins() -> None:
        try:
            while not stop.is_set():
                written.append(_event_in_any_schema(timezone.now(), organization))
                time.sleep(0.005)
        except BaseException as exc:  # the test fails on it below
            failures.append(exc)
        finally:
            connections.close_all()

    for _ in range(2000):
        _event_in_any_schema(timezone.now() - timedelta(days=40), organization)
    writer = threading.Thread(target=sign_ins)
    writer.start()
    try:
        time.sleep(0.2)
        _migrate(LATEST)
        time.sleep(0.2)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert failures == []
    assert len(written) > 20
    stored = list(
        AuditEvent.objects.filter(pk__in=written).order_by("pk").values_list("pk", flat=True)
    )
    assert stored == sorted(written)
    assert AuditEvent.objects.filter(organization=organization).count() == 2000 + len(written)


@WITH_THE_OWNER
def test_the_conversion_refuses_to_run_twice():
    alias = _owner_alias()
    with (
        pytest.raises(RuntimeError, match="already partitioned"),
        connections[alias].schema_editor() as editor,
    ):
        CONVERSION.forward(None, editor)
    assert _as_owner("SELECT relkind FROM pg_class WHERE oid = 'audit_auditevent'::regclass") == [
        ("p",)
    ]
