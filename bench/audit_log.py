"""How fast the Audit Log, the Activity Log and the events API answer at ten million events.

    SECRET_KEY=x .venv/bin/python bench/audit_log.py [--events 10000000] [--repeat 15]

Fills (once) a PostgreSQL database with generated events (see bench/_events_db.py), then times
requests through Django's test client: middleware, view, queries and template rendering, i.e.
the server's whole work for a request. Prints the median and 90th percentile per case; the
target is a median of at most 50 ms each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _events_db  # noqa: E402

TARGET_MS = 50.0
# Settings → Security's overview (issue 16): every panel for an administrator, 100 ms.
OVERVIEW_TARGET_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    _events_db.setup_django()
    rows = _events_db.ensure_events(args.events)

    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse

    from accounts.models import Organization, User
    from accounts.views.activity import organization_scope, user_scope
    from api.services import api_token_create
    from audit.models import AuditEvent
    from audit.selectors import PAGE_SIZE, cursor_encode

    # An Enterprise organization of the generated set (every third one), so the API answers too.
    organization = Organization.objects.get(slug=f"gen{_events_db.SEED}-002")
    admin = User.objects.get(email=f"user0000@{organization.slug}.test")
    person = User.objects.get(email=f"user0042@{organization.slug}.test")
    org_rows = AuditEvent.objects.filter(organization=organization)
    sample = org_rows.filter(actor=person).exclude(ip_address=None).order_by("-id").first()
    assert sample is not None and sample.ip_address is not None
    ip = sample.ip_address
    org_count = org_rows.count()
    depth = min(1000, (org_count - 1) // PAGE_SIZE)  # pages; 1,000 at full size
    deep = (
        org_rows.order_by("-occurred_at", "-id")
        .only("id", "occurred_at")[PAGE_SIZE * depth - 1 : PAGE_SIZE * depth]
        .get()
    )
    deep_cursor = cursor_encode(deep, scope=organization_scope(organization))
    own = AuditEvent.objects.filter(actor=person).order_by("-occurred_at", "-id")
    own_deep = own.only("id", "occurred_at")[PAGE_SIZE * 10 - 1 : PAGE_SIZE * 10].first()
    own_cursor = cursor_encode(own_deep, scope=user_scope(person)) if own_deep else ""
    middle = sample.occurred_at.date()

    admin_client, person_client, api_client = Client(), Client(), Client()
    admin_client.force_login(admin)
    person_client.force_login(person)
    _, secret = api_token_create(organization=organization, user=admin, name="bench")
    api_headers = {"Authorization": f"Bearer {secret}"}

    audit_url = reverse("accounts:audit-log")
    activity_url = reverse("accounts:activity")
    api_url = reverse("api:events")
    week = {"start": str(middle), "end": str(middle + timedelta(days=6))}
    api_first = api_client.get(api_url, {"limit": 100}, headers=api_headers).json()
    api_deep = api_first
    for _ in range(50):  # 5,000 events into the feed
        api_deep = api_client.get(
            api_url, {"limit": 100, "cursor": api_deep["next_cursor"]}, headers=api_headers
        ).json()

    cases = [
        (
            "Baseline: Profile page (no event query)",
            lambda: admin_client.get(reverse("accounts:profile")),
        ),
        ("Audit Log: first page", lambda: admin_client.get(audit_url)),
        (
            "Audit Log: page 1,000 deep by cursor",
            lambda: admin_client.get(audit_url, {"cursor": deep_cursor}),
        ),
        ("Audit Log: filter user", lambda: admin_client.get(audit_url, {"user": str(person.pk)})),
        (
            "Audit Log: filter user by email",
            lambda: admin_client.get(audit_url, {"user": person.email}),
        ),
        ("Audit Log: filter IP", lambda: admin_client.get(audit_url, {"ip": ip})),
        (
            "Audit Log: filter IP CIDR /24",
            lambda: admin_client.get(audit_url, {"ip": ip.rsplit(".", 1)[0] + ".0/24"}),
        ),
        (
            "Audit Log: filter event type",
            lambda: admin_client.get(audit_url, {"event_type": "mfa.device_added"}),
        ),
        (
            "Audit Log: filter category + outcome",
            lambda: admin_client.get(
                audit_url, {"category": "authentication", "outcome": "failure"}
            ),
        ),
        ("Audit Log: filter date range (a week)", lambda: admin_client.get(audit_url, week)),
        ("Audit Log: filter country", lambda: admin_client.get(audit_url, {"country": "JP"})),
        ("Audit Log: text (name or email)", lambda: admin_client.get(audit_url, {"q": "user0042"})),
        (
            "Audit Log: HTMX swap, filtered",
            lambda: admin_client.get(
                audit_url, {"outcome": "failure"}, headers={"HX-Request": "true"}
            ),
        ),
        (
            "Audit Log: event detail + timeline",
            lambda: admin_client.get(reverse("accounts:audit-log-event", args=[sample.pk])),
        ),
        ("Activity Log: first page", lambda: person_client.get(activity_url)),
        (
            "Activity Log: page 10 deep by cursor",
            lambda: person_client.get(activity_url, {"cursor": own_cursor}),
        ),
        (
            "Activity Log: filter event type",
            lambda: person_client.get(activity_url, {"event_type": "login.failed"}),
        ),
        ("Activity Log: filter date range", lambda: person_client.get(activity_url, week)),
        (
            "API: first page (100)",
            lambda: api_client.get(api_url, {"limit": 100}, headers=api_headers),
        ),
        (
            "API: page 51 by cursor (100)",
            lambda: api_client.get(
                api_url, {"limit": 100, "cursor": api_deep["next_cursor"]}, headers=api_headers
            ),
        ),
        (
            "API: filter user",
            lambda: api_client.get(api_url, {"user": str(person.pk)}, headers=api_headers),
        ),
        (
            "API: filter IP",
            lambda: api_client.get(api_url, {"ip": ip}, headers=api_headers),
        ),
        (
            "API: filter event type",
            lambda: api_client.get(api_url, {"event_type": "login.failed"}, headers=api_headers),
        ),
        ("API: filter date range", lambda: api_client.get(api_url, week, headers=api_headers)),
        ("API: text", lambda: api_client.get(api_url, {"q": "user0042"}, headers=api_headers)),
        *_search_cases(
            admin_client=admin_client,
            person_client=person_client,
            api_client=api_client,
            api_headers=api_headers,
            urls={"audit": audit_url, "activity": activity_url, "api": api_url},
            person=person.email,
            ip=ip,
            week=(str(middle), str(middle + timedelta(days=6))),
        ),
    ]
    cases += overview_cases(admin_client)

    print(f"\n{rows:,} events, {organization.name}: {org_count:,} of them; {_events_db.machine()}")
    print(
        f"{'case':<46} {'median ms':>10} {'p90 ms':>8} {'SQL ms':>7}  rows  "
        f"target {TARGET_MS:.0f} ms"
    )
    sql_seconds = [0.0]

    def timed_sql(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds[0] += time.perf_counter() - started

    with override_settings(DEBUG=False), connection.execute_wrapper(timed_sql):
        for name, request in cases:
            request()  # warm: plan cache, OS page cache
            timings, sql_timings = [], []
            for _ in range(args.repeat):
                sql_seconds[0] = 0.0
                started = time.perf_counter()
                response = request()
                _ = response.content
                timings.append((time.perf_counter() - started) * 1000)
                sql_timings.append(sql_seconds[0] * 1000)
                assert response.status_code == 200, (name, response.status_code)
            shown = _count_rows(response["Content-Type"], response.content)
            median = statistics.median(timings)
            p90 = sorted(timings)[int(len(timings) * 0.9) - 1]
            target = OVERVIEW_TARGET_MS if name.startswith("Overview") else TARGET_MS
            verdict = "ok" if median <= target else "SLOW"
            sql = statistics.median(sql_timings)
            print(f"{name:<46} {median:>10.1f} {p90:>8.1f} {sql:>7.1f} {shown:>5}  {verdict}")


def _search_cases(*, admin_client, person_client, api_client, api_headers, urls, person, ip, week):
    """The same reads written in the search language (q=), and what only it can ask."""
    net = ip.rsplit(".", 1)[0] + ".0/24"
    start, end = week
    audit = [
        ("actor", f"actor:{person}"),
        ("target", f"target:{person}"),
        ("type prefix", "type:mfa.*"),
        ("type + -outcome", "type:login.* -outcome:success"),
        ("negation only", "-type:audit_log.viewed -type:login.succeeded"),
        ("reason", "reason:invalid_credentials"),
        ("ip CIDR + country", f"ip:{net} -country:JP"),
        ("country", "country:JP"),
        ("created range", f"created:{start}..{end}"),
        ("created >= + type", f"created:>={start} type:login.failed"),
        ("actor + type + created", f"actor:{person} type:login.* created:<={end}"),
        ("text + type", "user0042 type:login.failed"),
        ("rare: two types, -outcome", "type:mfa.reset_by_admin type:lockout.* -outcome:failure"),
    ]
    cases = [
        (f"Audit Log q: {name}", lambda q=q: admin_client.get(urls["audit"], {"q": q}))
        for name, q in audit
    ]
    cases += [
        (
            "Audit Log q: HTMX, type + -outcome",
            lambda: admin_client.get(
                urls["audit"],
                {"q": "type:login.* -outcome:success"},
                headers={"HX-Request": "true"},
            ),
        ),
        (
            "Activity Log q: type + -outcome",
            lambda: person_client.get(urls["activity"], {"q": "type:login.* -outcome:success"}),
        ),
        (
            "Activity Log q: ip CIDR",
            lambda: person_client.get(urls["activity"], {"q": f"ip:{net}"}),
        ),
        (
            "API q: actor + type prefix",
            lambda: api_client.get(
                urls["api"], {"q": f"actor:{person} type:login.*"}, headers=api_headers
            ),
        ),
    ]
    return cases


def overview_cases(admin_client: Any) -> list[tuple[str, Callable[[], Any]]]:
    """Settings → Security's overview as an administrator sees it (every panel)."""
    from django.urls import reverse

    url = reverse("accounts:security-settings")
    return [
        ("Overview: Settings → Security (all panels)", lambda: admin_client.get(url)),
    ]


def _count_rows(content_type: str, content: bytes) -> int:
    if content_type.startswith("application/json"):
        return len(json.loads(content)["events"])
    return content.decode().count('<tr class="outcome-')


if __name__ == "__main__":
    main()
