"""The CSV PostgreSQL writes (COPY, exports/copy.py) is byte for byte the Python writer's.

Every export on PostgreSQL goes through COPY; the Python writer (exports/csv.py) is what
SQLite's `make run` uses, and the reference here: both read the same rows back from the same
database, so any difference is the writer's.
"""

from __future__ import annotations

import gzip
import math
import random
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.db.models.expressions import RawSQL
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from accounts.selectors import event_filters_with_members
from audit.forms import EventFilterForm
from audit.models import AuditEvent, EventType
from audit.selectors import events_for_user, events_matching
from exports import csv as csv_format
from exports.copy import copy_csv_chunks
from exports.csv import HEADER, python_csv_chunks
from exports.services import csv_chunks

from .factories import OrganizationFactory, member
from .retention_support import use_archive_storage

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's"),
]

# Text cells a spreadsheet, a CSV reader or a database might treat specially.
HOSTILE_TEXT = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\tx",
    "\rx",
    "\nx",
    "'quoted",
    '"',
    'say "hi", then',
    "a,b",
    "line\nbreak",
    "crlf\r\ninside",
    "cr\ronly",
    "trailing space ",
    " leading",
    "\\.",
    "\\N",
    "NULL",
    "null",
    "ünï ✓ 𝄞",
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "\ufeffbom",
    "\u2028sep\u2029",
    "x" * 120,
    "",
]
SHORT_TEXT = ["=", "+", "-", "@", "\t", "\r", "\n", ",", '"', "'", "é", "", "DE"]

HOSTILE_DETAILS = [
    {},
    {"method": "password"},
    {"b": 1, "aa": 2, "a": 3, "B": 4, "é": 5, "e": 6, "😀": 7, "ä": 8, "": 9, "z" * 40: 10},
    {"nested": {"zz": {"b": [1, {"y": None, "x": False}], "a": []}, "a": {}}, "k": [[], [[]]]},
    {"s": 'back\\slash "quote" / \t tab\nnew\r\b\f \u0001\u001f\u007f \u2028 \ufeff 𝄞'},
    {'key "with" quotes': 1, "key\nnewline": 2, "key\\backslash": 3, "k\u0001": 4},
    {"ints": [0, -1, 2**63, 2**70, -(2**70), 12345678901234567890]},
    {"floats": [0.0, -0.0, 1.0, 1.5, 0.1, 2.5, 1e-07, 1e-4, 0.0001, 0.00001, 3.141592653589793]},
    {"big": [1e15, 1e16, 1.5e15, 123456789012345.6, 1234567890123456.7, 1e22, 1e300, -1e300]},
    {"tiny": [5e-324, 2.2250738585072014e-308, -1e-300, 1.7976931348623157e308]},
    {"mixed": [True, False, None, "", "=x", -2, -2.5, {"-": "-"}]},
    {"filters": {"outcome": "failure", "q": "=1"}, "scope": "org", "delivery": "stream"},
    "=cmd()",
    "-x",
    "",
    -5,
    -1.5,
    1.5,
    0,
    0.0,
    -0.0,
    True,
    False,
    [],
    [1, "a", {"b": 2}],
]

ADDRESSES = [
    None,
    "192.0.2.1",
    "0.0.0.0",  # noqa: S104 - an address stored, not bound
    "255.255.255.255",
    "::",
    "::1",
    "2001:db8::7",
    "2001:0db8:0000:0000:0000:0000:0000:0001",
    "fe80::1",
    "::ffff:192.0.2.1",
    "2001:db8:1:2:3:4:5:6",
]

TIMES = [
    datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 3, 10, 12, 0, 0, 999999, tzinfo=UTC),
    datetime(2026, 3, 10, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 10, 2, 0, tzinfo=timezone(timedelta(hours=-8))),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 5, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 990000, tzinfo=UTC),
]


def add(organization, user=None, **fields) -> AuditEvent:
    """Insert one event directly, any field as given."""
    fields.setdefault("event_type", EventType.LOGIN_SUCCEEDED)
    fields.setdefault("occurred_at", datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    fields.setdefault("actor_label", user.email if user else "")
    event = AuditEvent(organization=organization, actor=user, **fields)
    event.save()
    return event


def python_bytes(queryset, **kwargs) -> bytes:
    return b"".join(data for data, _ in python_csv_chunks(queryset, **kwargs))


def copy_bytes(queryset, **kwargs) -> bytes:
    return b"".join(data for data, _ in copy_csv_chunks(queryset, **kwargs))


def rows_of(chunks) -> int:
    return sum(rows for _, rows in chunks)


@pytest.fixture
def org():
    return OrganizationFactory(slug="acme")


@pytest.fixture
def admin(org):
    return member(org, Role.ADMINISTRATOR, email="admin@acme.test")


def hostile_events(org, admin) -> None:
    """Every hostile value in every text column, with the details, addresses and times."""
    count = max(len(HOSTILE_TEXT), len(HOSTILE_DETAILS), len(ADDRESSES), len(TIMES))
    for n in range(count * 4):
        text = HOSTILE_TEXT[n % len(HOSTILE_TEXT)]
        other = HOSTILE_TEXT[(n * 7 + 3) % len(HOSTILE_TEXT)]
        short = SHORT_TEXT[n % len(SHORT_TEXT)]
        add(
            org,
            admin if n % 3 == 0 else None,
            actor_label=other,
            occurred_at=TIMES[n % len(TIMES)] + timedelta(microseconds=n),
            event_type=text[:64] if n % 5 == 4 else EventType.LOGIN_FAILED,
            outcome=short if n % 4 == 1 else "failure",
            reason=text,
            target_label=other,
            ip_address=ADDRESSES[n % len(ADDRESSES)],
            country=short,
            city=other,
            browser=text[:64],
            os=other[:64],
            device_type=short,
            session_hash=text[:16],
            request_id=other[:64],
            details=HOSTILE_DETAILS[n % len(HOSTILE_DETAILS)],
        )


def test_copy_writes_the_python_writers_bytes_for_hostile_events(org, admin):
    hostile_events(org, admin)
    queryset = AuditEvent.objects.order_by("-occurred_at", "-id")

    expected = python_bytes(queryset)
    assert copy_bytes(queryset) == expected
    assert expected.startswith((",".join(HEADER) + "\r\n").encode())
    assert rows_of(copy_csv_chunks(queryset)) == queryset.count() > 100


@pytest.mark.parametrize("lines", [1, 2, 3, 7])
def test_batches_of_any_size_join_to_the_same_bytes_and_rows(org, admin, monkeypatch, lines):
    hostile_events(org, admin)
    queryset = AuditEvent.objects.order_by("occurred_at", "id")
    expected = python_bytes(queryset)
    monkeypatch.setattr(csv_format, "LINES_PER_BATCH", lines)

    chunks = list(copy_csv_chunks(queryset))
    assert b"".join(data for data, _ in chunks) == expected
    assert sum(rows for _, rows in chunks) == queryset.count()
    assert all(data.endswith(b"\r\n") for data, _ in chunks)


@pytest.mark.parametrize(
    "stored",
    [
        '{"a": 1.50}',  # PostgreSQL keeps the written scale; Python reads a float
        '{"a": 1.0}',
        '{"a": 1e10}',
        '{"a": 1.0e10}',
        '{"a": 1E+2}',
        '{"a": 0.000}',
        '{"a": -0.0}',
        '{"a": 100000000000000000000.5}',
        '{"a": 1e-400}',
        '{"a": -1.5e-400}',
        '{"a": 1.5e400}',
        '{"a": -1.5e400}',
        '{"a": 1e400}',
        '{"a": 0.1000000000000000055511151231257827}',
        '{"a": 9007199254740993.0}',
        '{"a": 1000000000000000.0, "b": 9999999999999998.0, "c": 123456789012345.67}',
        '{"b": 1, "a": {"d": [1.10, 2.200, {"x": -3.0}], "c": null}}',
        '{"a": "\\u0000"}'.replace("\\u0000", "\\u0001"),
        "null",
        "-0.0",
        "-7.25",
        "-7",
        '"-"',
        "[]",
        "[0.5, -0.5]",
        "{}",
    ],
)
def test_details_as_postgresql_stores_them_print_as_python_reads_them(org, stored):
    add(org, None, details=RawSQL("%s::jsonb", [stored]))
    queryset = AuditEvent.objects.all()
    assert copy_bytes(queryset) == python_bytes(queryset)


def test_floats_print_as_pythons_shortest_repr(org):
    """Random doubles of every magnitude (by their bits) and the edges where Python's and
    PostgreSQL's notations part (1e15, 1e16, 1e-4, 1e-5)."""
    generator = random.Random(2026)
    values = [1e15, 1e16, 9.999999999999998e15, 1e-4, 1e-5, 9.999999999999999e-5]
    while len(values) < 1500:
        (value,) = struct.unpack("<d", generator.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(value):
            values.append(value)
    values += [generator.uniform(-1e17, 1e17) for _ in range(300)]
    values += [round(generator.uniform(0, 1000), generator.randint(0, 6)) for _ in range(300)]
    for start in range(0, len(values), 100):
        add(org, None, details={"v": values[start : start + 100]})
    queryset = AuditEvent.objects.order_by("id")
    assert copy_bytes(queryset) == python_bytes(queryset)


def test_a_persons_own_activity_hides_others_clients_alike(org, admin):
    """What audit.member_view hides of someone else's action (address, place, browser,
    session; an alert's triage by whom and its notes) COPY hides the same way."""
    alice = member(org, email="alice@acme.test")
    client_fields = {
        "ip_address": "2001:db8::9",
        "country": "DE",
        "city": "=Berlin",
        "browser": "Firefox",
        "os": "-Linux",
        "device_type": "desktop",
        "session_hash": "abc",
        "request_id": "req-1",
    }
    add(org, alice, **client_fields, details={"method": "password"})
    add(org, admin, target_user=alice, event_type=EventType.SESSION_ENDED, **client_fields)
    for triage in (EventType.ALERT_ACKNOWLEDGED, EventType.ALERT_RESOLVED):
        add(
            org,
            admin,
            target_user=alice,
            event_type=triage,
            **client_fields,
            details={"alert_id": 7, "rule": "new_device", "action": "=x", "note": "secret"},
        )
    add(org, admin, target_user=alice, event_type=EventType.ALERT_RESOLVED, details=[1])
    add(org, None, target_user=alice, event_type=EventType.ALERT_RESOLVED, **client_fields)
    queryset = events_for_user(user=alice)

    expected = python_bytes(queryset, viewer_id=alice.pk)
    assert copy_bytes(queryset, viewer_id=alice.pk) == expected
    assert b"secret" not in expected and b"Security team" in expected
    assert b"admin@acme.test" in expected  # the session they ended still says who
    # The administrator's own view of the same rows keeps everything.
    assert copy_bytes(queryset) == python_bytes(queryset)
    assert b"secret" in copy_bytes(queryset)


def test_the_activity_log_download_is_the_python_writers_bytes(client, org, admin):
    alice = member(org, email="alice@acme.test")
    hostile_events(org, alice)
    add(org, admin, target_user=alice, event_type=EventType.ALERT_RESOLVED, city="x")
    client.force_login(alice)

    response = client.get(reverse("exports:activity-csv"))

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == python_bytes(events_for_user(user=alice), viewer_id=alice.pk)


AUDIT_LOG_FILTERS = [
    {},
    {"start": "2026-03-10", "end": "2026-03-10"},
    {"start": "2026-03-11"},
    {"category": "authentication"},
    {"event_type": "login.failed"},
    {"outcome": "success"},
    {"user": "alice@acme.test"},
    {"user": "gone@elsewhere.test"},
    {"ip": "192.0.2.1"},
    {"ip": "2001:db8::/32"},
    {"ip": "192.0.2.0/24"},
    {"country": "DE"},
    {"q": "alice"},
    {"q": "nobody-at-all"},
    {"q": "actor:alice@acme.test outcome:failure"},
    {"q": "type:login.failed ip:192.0.2.0/24 country:DE"},
    {"start": "2026-03-09", "tz": "America/New_York", "outcome": "failure", "country": "FR"},
]


@pytest.mark.parametrize("params", AUDIT_LOG_FILTERS)
def test_every_audit_log_filter_downloads_the_rows_the_orm_reads(client, org, admin, params):
    """The COPY runs the queryset's own SQL: the download (through the real view) holds the
    bytes the Python writer makes of the same queryset's rows."""
    alice = member(org, email="alice@acme.test")
    other = OrganizationFactory(slug="globex")
    day = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    for n in range(24):
        add(
            org if n % 6 else other,
            [alice, admin, None][n % 3],
            **({} if n % 3 < 2 else {"actor_label": "gone@elsewhere.test"}),
            target_user=alice if n % 5 == 0 else None,
            occurred_at=day + timedelta(hours=5 * n),
            event_type=[EventType.LOGIN_FAILED, EventType.LOGIN_SUCCEEDED, EventType.LOGOUT][n % 3],
            outcome=["failure", "success"][n % 2],
            ip_address=["192.0.2.1", "2001:db8::1", "198.51.100.7", None][n % 4],
            country=["DE", "FR", ""][n % 3],
            details={"n": n, "note": "=1"},
        )
    client.force_login(admin)

    response = client.get(reverse("exports:audit-log-csv"), params)

    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content)
    form = EventFilterForm(params, paged=False)
    assert form.is_valid()
    queryset = events_matching(
        filters=event_filters_with_members(form.filters(), organization=org), organization=org
    )
    assert body == python_bytes(queryset)
    assert b"globex" not in body


def test_a_query_that_matches_nobody_is_the_header_alone(org, admin):
    add(org, admin)
    assert copy_bytes(AuditEvent.objects.none()) == (",".join(HEADER) + "\r\n").encode()
    assert copy_bytes(AuditEvent.objects.filter(reason="no such")) == python_bytes(
        AuditEvent.objects.filter(reason="no such")
    )


def test_the_copy_runs_through_djangos_cursor(org, admin):
    """Django's cursor runs it (its debug cursor logs the statement), as one COPY of the
    queryset's own SELECT with the parameters merged."""
    add(org, admin, reason="r")
    queryset = AuditEvent.objects.filter(organization=org, reason="r").order_by("-id")
    with CaptureQueriesContext(connection) as queries:
        body = copy_bytes(queryset)
    [statement] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("COPY")]
    assert statement.startswith("COPY (SELECT ") and statement.endswith(
        ") TO STDOUT WITH (FORMAT csv)"
    )
    assert f'"organization_id" = {org.pk}' in statement and "'r'" in statement
    assert body.count(b"\r\n") == 2


def test_an_abandoned_download_leaves_the_connection_usable(org, admin, monkeypatch):
    """A client that goes away mid-download closes the stream; the COPY is cancelled and the
    connection answers the next query."""
    for n in range(50):
        add(org, admin, reason=f"r{n}")
    monkeypatch.setattr(csv_format, "LINES_PER_BATCH", 5)
    chunks = copy_csv_chunks(AuditEvent.objects.order_by("id"))
    first, rows = next(chunks)
    assert rows == 4 and first.startswith(b"occurred_at,")
    chunks.close()
    assert AuditEvent.objects.filter(organization=org).count() == 50


def test_csv_chunks_chooses_copy_on_postgresql(org, admin):
    add(org, admin)
    with CaptureQueriesContext(connection) as queries:
        b"".join(data for data, _ in csv_chunks(AuditEvent.objects.all()))
    assert any(q["sql"].startswith("COPY (") for q in queries.captured_queries)


def test_a_background_export_and_an_archive_hold_the_python_writers_bytes(
    org, admin, settings, tmp_path, django_capture_on_commit_callbacks
):
    from exports.services import export_create, export_root
    from retention.archives import archive_expired
    from retention.files import archive_storage
    from retention.models import PurgeRun

    settings.EXPORT_ROOT = tmp_path / "exports"
    use_archive_storage(settings, tmp_path / "archives")
    hostile_events(org, admin)
    with django_capture_on_commit_callbacks(execute=True):
        export = export_create(request=None, user=admin, organization=org, filters={})
    export.refresh_from_db()
    form = EventFilterForm({}, paged=False)
    assert form.is_valid()
    queryset = events_matching(
        filters=event_filters_with_members(form.filters(), organization=org), organization=org
    )
    body = (export_root() / export.file_name).read_bytes()
    assert body == python_bytes(queryset)
    assert export.rows_written == queryset.count()

    cutoff = datetime(2026, 6, 1, tzinfo=UTC)
    run = PurgeRun.objects.create(
        scope="organization", organization=org, cutoff=cutoff, retention_days=90
    )
    events = AuditEvent.objects.filter(organization=org, occurred_at__lt=cutoff)
    record = archive_expired(run=run, organization=org, events=events)

    with archive_storage().open(record.name, "rb") as stream:
        archived = gzip.decompress(stream.read())
    assert archived == python_bytes(events.order_by("occurred_at", "id"))
    assert record.row_count == events.count()
