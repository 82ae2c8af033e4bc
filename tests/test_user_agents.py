"""User agents in a dictionary (audit.models.UserAgent, audit migration 0015, issue 15 item 3).

Events name their client's user agent by a small id; every reader shows the same string,
browser, OS and device type as when they were columns of the event.
"""

from __future__ import annotations

import pytest
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.context import RequestContext
from audit.models import AuditEvent, EventType, UserAgent, agent_ids_forget
from audit.services import EventSpec, event_record, events_record

from .db_support import has_owner_role

FIREFOX = RequestContext(
    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    browser="Firefox 128",
    os="Linux",
    device_type="pc",
)


@pytest.mark.django_db
def test_events_of_one_agent_name_one_row_and_read_back_its_fields():
    first = event_record(event_type=EventType.LOGOUT, context=FIREFOX)
    [second, third] = events_record(
        specs=[EventSpec(EventType.LOGOUT), EventSpec(EventType.SESSION_ENDED)], context=FIREFOX
    )
    none = event_record(event_type=EventType.LOGOUT)

    assert first.agent_id == second.agent_id == third.agent_id is not None
    assert UserAgent.objects.count() == 1
    assert none.agent_id is None
    stored = AuditEvent.objects.select_related("agent").get(pk=first.pk)
    assert (stored.user_agent, stored.browser, stored.os, stored.device_type) == (
        FIREFOX.user_agent,
        "Firefox 128",
        "Linux",
        "pc",
    )
    empty = AuditEvent.objects.get(pk=none.pk)
    assert (empty.user_agent, empty.browser, empty.os, empty.device_type) == ("", "", "", "")


@pytest.mark.django_db
def test_another_parse_of_the_same_string_is_a_row_of_its_own():
    """A newer parser never changes what older events show."""
    old = event_record(event_type=EventType.LOGOUT, context=FIREFOX)
    newer = RequestContext(
        user_agent=FIREFOX.user_agent, browser="Firefox 128.0", os="Linux", device_type="pc"
    )
    new = event_record(event_type=EventType.LOGOUT, context=newer)

    assert old.agent_id != new.agent_id
    shown = AuditEvent.objects.select_related("agent").in_bulk([old.pk, new.pk])
    assert (shown[old.pk].browser, shown[new.pk].browser) == ("Firefox 128", "Firefox 128.0")


@pytest.mark.django_db(transaction=True)
def test_an_agent_first_seen_in_a_transaction_that_rolls_back_is_still_named_right():
    """The row is added on the connection that commits on its own, and only then cached: a
    later event never names a row that rolled back."""
    agent_ids_forget()

    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction.atomic():
        event_record(event_type=EventType.LOGOUT, context=FIREFOX)
        raise Refused
    later = event_record(event_type=EventType.LOGOUT, context=FIREFOX)

    assert AuditEvent.objects.count() == 1
    assert UserAgent.objects.filter(pk=later.agent_id).exists()
    assert AuditEvent.objects.select_related("agent").get(pk=later.pk).browser == "Firefox 128"


def _owner_alias() -> str:
    return "owner" if has_owner_role() else "default"


@pytest.mark.django_db(transaction=True, databases=["default", _owner_alias()])
def test_the_migration_moves_every_events_agent_into_the_dictionary():
    alias = _owner_alias()

    def migrate(target: tuple[str, str]) -> None:
        MigrationExecutor(connections[alias]).migrate([target])
        from audit.roles import grant_after_migrate

        grant_after_migrate(using=alias)

    migrate(("audit", "0014_purge_partition"))
    try:
        with connection.cursor() as cursor:
            ids = []
            for agent, browser in [("ua/1", "One 1"), ("ua/1", "One 1"), ("ua/2", ""), ("", "")]:
                cursor.execute(
                    "INSERT INTO audit_auditevent (occurred_at, event_type, outcome, reason, "
                    "actor_label, target_label, user_agent, browser, os, device_type, device_id, "
                    "country, city, session_hash, request_id, details) VALUES (%s, 'logout', "
                    "'success', '', '', '', %s, %s, 'Linux', '', '', '', '', '', '', '{}') "
                    "RETURNING id",
                    [timezone.now(), agent, browser],
                )
                ids.append(cursor.fetchone()[0])
            # An event without any agent field stays without a row.
            cursor.execute(
                "INSERT INTO audit_auditevent (occurred_at, event_type, outcome, reason, "
                "actor_label, target_label, user_agent, browser, os, device_type, device_id, "
                "country, city, session_hash, request_id, details) VALUES (%s, 'logout', "
                "'success', '', '', '', '', '', '', '', '', '', '', '', '', '{}') RETURNING id",
                [timezone.now()],
            )
            ids.append(cursor.fetchone()[0])
    finally:
        migrate(("audit", "0015_user_agents"))
        agent_ids_forget()

    events = AuditEvent.objects.select_related("agent").in_bulk(ids)
    shown = [(events[pk].user_agent, events[pk].browser, events[pk].os) for pk in ids]
    assert shown == [
        ("ua/1", "One 1", "Linux"),
        ("ua/1", "One 1", "Linux"),
        ("ua/2", "", "Linux"),
        ("", "", "Linux"),
        ("", "", ""),
    ]
    assert events[ids[0]].agent_id == events[ids[1]].agent_id
    assert events[ids[4]].agent_id is None
    assert UserAgent.objects.count() == 3
