"""On PostgreSQL: two organizations verifying one domain at once, two additions at the bound at
once, and no transaction held open while DNS is asked."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import OrganizationDomain, Role
from audit.models import EventType

from .dns_support import DnsServer
from .factories import OrganizationFactory, member
from .helpers import all_at_once, client_as, events

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def verified_changes() -> list[dict[str, Any]]:
    return [
        event.details
        for event in events(EventType.SETTINGS_CHANGED)
        if (event.details.get("new") or {}).get("status") == "verified"
    ]


def test_two_organizations_verifying_one_domain_at_once_leave_one_owner(settings):
    clients: list[Client] = []
    rows: list[OrganizationDomain] = []
    with DnsServer() as dns_server:
        settings.DOMAIN_VERIFICATION_NAMESERVERS = [dns_server.address]
        for _ in range(2):
            organization = OrganizationFactory.create()
            row = OrganizationDomain.objects.create(organization=organization, domain="acme.test")
            dns_server.publish(
                "_activity-monitor.acme.test",
                f"activity-monitor-verification={row.verification_token}",
            )
            clients.append(client_as(member(organization, Role.ADMINISTRATOR)))
            rows.append(row)

        def verify(client: Client, row: OrganizationDomain) -> int:
            url = reverse("accounts:domain-verify", kwargs={"domain_id": row.pk})
            return client.post(url).status_code

        statuses = all_at_once(
            lambda: verify(clients[0], rows[0]), lambda: verify(clients[1], rows[1])
        )

    assert sorted(statuses) == [303, 409]
    assert OrganizationDomain.objects.filter(verified_at__isnull=False).count() == 1
    assert len(verified_changes()) == 1


def test_two_additions_at_the_bound_at_once_add_one(settings):
    settings.ORGANIZATION_DOMAINS_MAX = 1
    organization = OrganizationFactory.create()
    admin = member(organization, Role.ADMINISTRATOR)
    first, second = client_as(admin), client_as(admin)
    url = reverse("accounts:domains")

    statuses = all_at_once(
        lambda: first.post(url, {"domain": "one.test"}).status_code,
        lambda: second.post(url, {"domain": "two.test"}).status_code,
    )

    assert sorted(statuses) == [303, 409]
    assert OrganizationDomain.objects.filter(organization=organization).count() == 1
    assert len(events(EventType.SETTINGS_CHANGED)) == 1


def test_no_transaction_is_open_while_dns_is_asked(settings):
    """The lookup may take the whole timeout: the request holds no transaction meanwhile."""
    organization = OrganizationFactory.create()
    row = OrganizationDomain.objects.create(organization=organization, domain="acme.test")
    seen: list[int] = []

    def count_open_transactions() -> None:  # in the DNS server's thread: its own connection
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
                )
                seen.append(cursor.fetchone()[0])
        finally:
            connection.close()

    with DnsServer(on_query=count_open_transactions) as dns_server:
        settings.DOMAIN_VERIFICATION_NAMESERVERS = [dns_server.address]
        dns_server.publish("acme.test", f"activity-monitor-verification={row.verification_token}")
        client = client_as(member(organization, Role.ADMINISTRATOR))
        url = reverse("accounts:domain-verify", kwargs={"domain_id": row.pk})
        assert client.post(url).status_code == 303

    assert seen == [0, 0]  # asked at _activity-monitor.acme.test, then at acme.test
