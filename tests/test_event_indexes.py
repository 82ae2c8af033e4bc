"""The person indexes are partial (rows with the person only): the lookups must still use them."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Organization, User
from audit.selectors import EventFilters, event_list_parts

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres("partial indexes and EXPLAIN are PostgreSQL's"),
]


def _plan(queryset) -> str:
    sql, params = queryset.order_by("-occurred_at", "-id")[:51].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def loaded() -> tuple[Organization, list[User]]:
    call_command("generate_events", events=30000, days=60, orgs=2, users=40, verbosity=0)
    organization = Organization.objects.filter(slug__startswith="gen2026-").order_by("pk")[0]
    people = list(User.objects.filter(membership__organization=organization).order_by("pk"))
    return organization, people


def test_the_activity_log_reads_the_actor_and_target_indexes(loaded):
    _organization, people = loaded

    mine, acted_on = event_list_parts(filters=EventFilters(), user=people[0])

    assert "audit_actor_time" in _plan(mine)
    assert "audit_target_time" in _plan(acted_on)


@pytest.mark.parametrize("how", ["id", "text"])
def test_the_audit_log_user_filter_reads_the_person_indexes(loaded, how):
    organization, people = loaded
    filters = (
        EventFilters(user=str(people[1].pk)) if how == "id" else EventFilters(text=people[1].email)
    )

    parts = event_list_parts(filters=filters, organization=organization)

    plans = [_plan(part) for part in parts]
    assert "audit_actor_time" in plans[0]
    assert "audit_target_time" in plans[1]
