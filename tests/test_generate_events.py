"""manage.py generate_events: realistic synthetic rows, every event type, over the chosen days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Membership, Organization, Role
from audit.models import AuditEvent, EventType

pytestmark = pytest.mark.django_db


def test_it_inserts_the_requested_number_of_events_across_organizations():
    call_command("generate_events", events=3000, days=30, orgs=3, users=5, verbosity=0)

    assert AuditEvent.objects.count() == 3000
    assert Organization.objects.filter(slug__startswith="gen2026-").count() == 3
    counts = AuditEvent.objects.values("organization_id").distinct().count()
    assert counts == 3


def test_it_spreads_events_over_the_days_and_keeps_ids_in_time_order():
    call_command("generate_events", events=2000, days=10, orgs=1, users=3, verbosity=0)

    times = list(AuditEvent.objects.order_by("id").values_list("occurred_at", flat=True))
    assert times == sorted(times)
    assert times[-1] - times[0] > timedelta(days=9)
    assert times[-1] <= timezone.now()


def test_it_covers_every_event_type_of_the_brief():
    call_command("generate_events", events=20000, days=5, orgs=1, users=3, verbosity=0)

    seen = set(AuditEvent.objects.values_list("event_type", flat=True).distinct())
    assert seen == set(EventType.values)


def test_rows_carry_realistic_context():
    call_command("generate_events", events=500, days=5, orgs=1, users=3, verbosity=0)

    event = AuditEvent.objects.filter(event_type=EventType.LOGIN_SUCCEEDED).first()
    assert event.actor_id is not None and event.actor_label.endswith(".test")
    assert event.ip_address and event.country and event.browser and event.user_agent
    assert len(event.request_id) == 32 and len(event.session_hash) == 16
    assert event.details["method"] in {"password", "password+totp"}


def test_a_second_run_reuses_organizations_and_users():
    call_command("generate_events", events=10, days=1, orgs=2, users=4, verbosity=0)
    call_command("generate_events", events=10, days=1, orgs=2, users=4, verbosity=0)

    assert Organization.objects.filter(slug__startswith="gen2026-").count() == 2
    assert Membership.objects.filter(organization__slug__startswith="gen2026-").count() == 8
    assert Membership.objects.filter(role=Role.ADMINISTRATOR).count() == 2
    assert AuditEvent.objects.count() == 20


def test_it_refuses_nonsense_sizes():
    with pytest.raises(CommandError, match="--days"):
        call_command("generate_events", events=10, days=0, verbosity=0)


# Only the table's owner may drop and build its indexes: with two database roles (README,
# "Database roles") a large load runs as the owner, as `generate_events --database owner` does.
LOADER = "owner" if "owner" in settings.DATABASES else "default"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=sorted({"default", LOADER}))
def test_a_large_load_rebuilds_every_index_it_dropped():
    from django.db import connections

    from demo.generate import events_generate, organizations_ensure

    # The people first, committed by the app's connection, as the app's signals expect.
    organizations_ensure(count=1, users_per_org=2, seed=2026)

    def indexes() -> set[tuple[str, bool]]:
        with connections[LOADER].cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'audit_auditevent'::regclass"
            )
            return set(cursor.fetchall())

    def on_every_partition() -> bool:
        """Each partition has as many indexes as the table (the catalog's view of a
        partitioned index is its children)."""
        with connections[LOADER].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_inherits p "
                "WHERE p.inhparent = 'audit_auditevent'::regclass AND "
                "(SELECT count(*) FROM pg_index i WHERE i.indrelid = p.inhrelid) <> "
                "(SELECT count(*) FROM pg_index i WHERE i.indrelid = 'audit_auditevent'::regclass)"
            )
            return bool(cursor.fetchone()[0] == 0)

    before = indexes()
    assert all(valid for _, valid in before)
    events_generate(
        total=100, days=1, organizations=1, users_per_org=2, rebuild_indexes=True, using=LOADER
    )

    assert indexes() == before
    assert on_every_partition()
    assert AuditEvent.objects.count() == 100


@pytest.mark.postgres
def test_a_large_load_by_the_apps_role_keeps_the_indexes_it_may_not_drop(monkeypatch):
    """With two roles the app's role may not drop indexes: a large load maintains them."""
    from django.db import connection

    from demo import generate

    def indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_auditevent'")
            return {name for (name,) in cursor.fetchall()}

    monkeypatch.setattr(generate, "REBUILD_INDEXES_FROM", 50)
    before = indexes()

    assert generate.events_generate(total=100, days=1, organizations=1, users_per_org=2) == 100
    assert indexes() == before


@pytest.mark.postgres
def test_generated_rows_carry_the_loading_transactions_id_and_stay_append_only():
    from django.db import connection, transaction

    from demo.generate import events_generate

    with transaction.atomic(), connection.cursor() as cursor:
        events_generate(total=300, days=1, organizations=1, users_per_org=2)
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        (txid,) = cursor.fetchone()

    assert set(AuditEvent.objects.values_list("txid", flat=True)) == {txid}
    # With two roles the app's role is refused by its privileges before the guard is asked.
    with pytest.raises(Exception, match="append-only|permission denied"), transaction.atomic():
        AuditEvent.objects.filter(pk=AuditEvent.objects.first().pk).update(reason="x")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=sorted({"default", LOADER}))
def test_history_loaded_by_the_owner_goes_into_its_months():
    from django.db import connections

    from demo.generate import events_generate, organizations_ensure

    organizations_ensure(count=1, users_per_org=2, seed=2026)
    end = datetime(2021, 3, 10, tzinfo=UTC)
    events_generate(total=200, days=60, organizations=1, users_per_org=2, end=end, using=LOADER)

    with connections[LOADER].cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM audit_auditevent GROUP BY 1 ORDER BY 1"
        )
        placed = dict(cursor.fetchall())
    assert set(placed) == {
        "audit_auditevent_p2021_01",
        "audit_auditevent_p2021_02",
        "audit_auditevent_p2021_03",
    }
    assert sum(placed.values()) == 200
