"""The person indexes are partial (rows with the person only), and the organization is only a
filter on a person's rows: the lookups must still walk those indexes newest first."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Organization, User
from accounts.selectors import event_filters_with_members
from alerts.selectors import failed_sign_ins_between, failed_sign_ins_from_networks
from audit.models import AuditEvent, EventType
from audit.selectors import EventFilters, event_list_parts

# Committed rows: only the table's owner may ANALYZE, and with two roles (README, "Database
# roles") that is another connection, which sees no uncommitted row.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres("partial indexes and EXPLAIN are PostgreSQL's"),
]


def _named_as_the_tables(plan: str) -> str:
    """The plan with each partition's index named as the table's index it belongs to (the
    events table is partitioned by month: a plan reads the months' own indexes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname, parent.relname FROM pg_inherits i "
            "JOIN pg_class child ON child.oid = i.inhrelid "
            "JOIN pg_class parent ON parent.oid = i.inhparent "
            "WHERE parent.relkind = 'I' AND child.relname LIKE 'audit_auditevent_%%'"
        )
        for child, parent in cursor.fetchall():
            plan = plan.replace(f" {child} ", f" {parent} ")
    return plan


def _plan(queryset) -> str:
    sql, params = queryset.order_by("-occurred_at", "-id")[:51].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return _named_as_the_tables("\n".join(row[0] for row in cursor.fetchall()))


@pytest.fixture
def loaded(analyze) -> tuple[Organization, list[User]]:
    call_command("generate_events", events=40000, days=60, orgs=50, users=4, verbosity=0)
    analyze("audit_auditevent")
    organization = Organization.objects.filter(slug__startswith="gen2026-").order_by("pk")[0]
    people = list(User.objects.filter(membership__organization=organization).order_by("pk"))
    return organization, people


def test_the_person_indexes_leave_out_rows_without_the_person():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent'"
        )
        definitions = dict(cursor.fetchall())

    assert definitions["audit_actor_time"].endswith("WHERE (actor_id IS NOT NULL)")
    assert definitions["audit_target_time"].endswith("WHERE (target_user_id IS NOT NULL)")
    assert "audit_org_actor_time" not in definitions
    assert len(definitions) == 8  # the primary key and seven secondary indexes


def test_the_activity_log_reads_the_actor_and_target_indexes(loaded):
    _organization, people = loaded

    mine, acted_on = event_list_parts(filters=EventFilters(), user=people[0])

    assert "audit_actor_time" in _plan(mine)
    assert "audit_target_time" in _plan(acted_on)


@pytest.mark.parametrize("how", ["id", "text"])
def test_the_audit_log_user_filter_reads_the_person_indexes(loaded, how):
    organization, people = loaded
    filters = (
        EventFilters(user_id=people[1].pk) if how == "id" else EventFilters(text=people[1].email)
    )

    parts = event_list_parts(
        filters=event_filters_with_members(filters, organization=organization),
        organization=organization,
    )

    plans = [_plan(part) for part in parts]
    assert "audit_actor_time" in plans[0]
    assert "audit_target_time" in plans[1]


def test_the_planner_knows_a_persons_events_belong_to_one_organization(loaded):
    """Without the statistics of audit/migrations/0007 the planner divides a person's rows by
    the number of organizations, and at scale sorts them all instead of walking the index."""
    organization, people = loaded
    rows = AuditEvent.objects.filter(organization=organization, actor=people[0])
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        estimate = cursor.fetchone()[0][0]["Plan"]["Plan Rows"]

    assert rows.count() > 100
    assert estimate > rows.count() / 2


def _explain(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return _named_as_the_tables("\n".join(row[0] for row in cursor.fetchall()))


def test_credential_stuffing_reads_an_address_or_a_network_through_an_index(loaded):
    """A batch reads its window's failures from its addresses (one index range each) and from
    their networks: never the organization's whole history."""
    organization, _people = loaded
    event = (
        AuditEvent.objects.filter(organization=organization, event_type=EventType.LOGIN_FAILED)
        .exclude(ip_address=None)
        .order_by("-id")
        .first()
    )
    assert event is not None
    window = timedelta(minutes=15)
    network = ipaddress.ip_network(f"{event.ip_address}/24", strict=False)
    span = {
        "organization_id": organization.pk,
        "after": event.occurred_at - window,
        "until": event.occurred_at,
    }

    by_address = failed_sign_ins_between(**span).filter(ip_address__in=[event.ip_address])
    by_network = failed_sign_ins_from_networks(**span, networks={network})

    # The address's range of its organization's failures, or the window's range of them: both
    # bounded, never the whole history.
    address_plan = _explain(by_address)
    assert "Seq Scan" not in address_plan
    assert "audit_org_ip_time" in address_plan or "audit_org_type_time" in address_plan
    network_plan = _explain(by_network)
    assert "Seq Scan" not in network_plan
    assert "audit_org_ip_time" in network_plan or "audit_org_type_time" in network_plan
