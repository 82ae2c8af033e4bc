"""CSV export of exactly the filtered rows: header, neutralised cells, streaming and jobs."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts.models import Role
from audit.models import EventType
from exports.csv import HEADER
from exports.models import Export, ExportStatus

from .factories import OrganizationFactory, member
from .helpers import events
from .test_audit_log import AUDIT_LOG_ROLES, MADE_BEFORE, add

pytestmark = pytest.mark.django_db

URL = reverse("exports:audit-log-csv")
MINE_URL = reverse("exports:activity-csv")


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    cache.clear()


def parse(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    reader = csv.reader(io.StringIO(body.decode()))
    header = next(reader)
    assert header == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in reader]


def made(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows of events the test made (signing in records its own)."""
    return [r for r in rows if r["occurred_at"] < MADE_BEFORE.isoformat()]


@pytest.fixture
def org():
    return OrganizationFactory(slug="acme")


@pytest.fixture
def admin(org):
    return member(org, Role.ADMINISTRATOR, email="admin@acme.test")


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(URL).status_code == 302


def test_member_cannot_export_the_organization(client, org):
    client.force_login(member(org))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("role", AUDIT_LOG_ROLES)
def test_audit_roles_get_exactly_the_filtered_rows(client, org, role):
    alice = member(org, email="alice@acme.test")
    base = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    failures = [
        add(
            org,
            alice,
            event_type=EventType.LOGIN_FAILED,
            outcome="failure",
            reason="invalid_credentials",
            occurred_at=base + timedelta(minutes=i),
            ip_address="203.0.113.4",
            country="DE",
            city="Berlin",
            details={"method": "password", "a": [1, 2]},
        )
        for i in range(3)
    ]
    add(org, alice, occurred_at=base)
    add(OrganizationFactory(), member(), event_type=EventType.LOGIN_FAILED, outcome="failure")
    client.force_login(member(org, role))
    response = client.get(URL, {"outcome": "failure"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = made(parse(response))
    assert [r["occurred_at"] for r in rows] == [
        (e.occurred_at).isoformat(timespec="microseconds") for e in reversed(failures)
    ]
    first = rows[-1]
    assert first["occurred_at"] == "2026-03-01T08:30:15.123456+00:00"
    assert first["event_type"] == "login.failed" and first["user"] == "alice@acme.test"
    assert first["ip_address"] == "203.0.113.4" and first["city"] == "Berlin"
    assert first["details"] == '{"a":[1,2],"method":"password"}'


def test_formula_cells_are_neutralised(client, org, admin):
    add(org, None, actor_label="=HYPERLINK(1)", user_agent="x", browser="+cmd", reason="@SUM")
    client.force_login(admin)
    [row] = made(parse(client.get(URL)))
    assert row["user"] == "'=HYPERLINK(1)"
    assert row["browser"] == "'+cmd" and row["reason"] == "'@SUM"


def test_whole_seconds_and_empty_values_keep_the_format(client, org, admin):
    add(org, None, occurred_at=datetime(2026, 2, 2, 2, 2, 2, tzinfo=UTC), details={})
    client.force_login(admin)
    [row] = made(parse(client.get(URL)))
    assert row["occurred_at"] == "2026-02-02T02:02:02.000000+00:00"
    assert row["ip_address"] == "" and row["details"] == "{}"


def test_another_tenants_administrator_gets_none_of_our_rows(client, org):
    add(org, member(org))
    client.force_login(member(OrganizationFactory(), Role.ADMINISTRATOR))
    assert made(parse(client.get(URL))) == []


def test_bad_filters_give_400_with_the_reason(client, org, admin):
    client.force_login(admin)
    response = client.get(URL, {"ip": "999.1.1.1/40"})
    assert response.status_code == 400
    assert "CIDR" in response.content.decode()


def test_a_streamed_export_is_recorded_as_created_and_downloaded(client, org, admin):
    client.force_login(admin)
    parse(client.get(URL, {"country": "DE"}))
    created = events(EventType.EXPORT_CREATED)
    downloaded = events(EventType.EXPORT_DOWNLOADED)
    assert len(created) == len(downloaded) == 1
    assert created[0].details["filters"] == {"country": "DE"}
    assert created[0].actor_id == admin.pk


def test_members_export_their_own_activity_only(client, org):
    alice, bob = member(org), member(org)
    hers = add(org, alice, request_id="hers")
    add(org, bob, request_id="his")
    client.force_login(alice)
    rows = made(parse(client.get(MINE_URL)))
    assert [r["request_id"] for r in rows] == [hers.request_id]


def test_above_the_threshold_the_export_becomes_a_job_with_a_checksum(
    client, org, admin, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_STREAM_MAX_ROWS = 5
    for i in range(8):
        add(org, admin, occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i))
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(URL, {"end": "2026-05-01"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert response["Location"].endswith(f"?created={export.pk}")
    assert export.status == ExportStatus.DONE  # tasks run eagerly in tests
    assert export.rows_written == 8 and export.filters == {"end": "2026-05-01"}

    download = client.get(reverse("exports:export-download", args=[export.pk]))
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == export.sha256 == download["X-Content-SHA256"]
    assert len(made(parse_bytes(body))) == 8
    assert len(events(EventType.EXPORT_DOWNLOADED)) == 1
    assert events(EventType.EXPORT_CREATED)[0].details["delivery"] == "job"


@pytest.mark.parametrize(
    "filters", [{"q": "zzzz-no-such-person"}, {"q": "%"}, {"user": "nobody@nowhere.test"}]
)
def test_a_background_export_that_matches_nobody_is_its_header_alone(
    org, admin, filters, django_capture_on_commit_callbacks
):
    from exports.services import export_create, export_root

    add(org, admin)
    with django_capture_on_commit_callbacks(execute=True):
        export = export_create(request=None, user=admin, organization=org, filters=filters)

    export.refresh_from_db()
    assert export.status == ExportStatus.DONE, export.error
    assert export.rows_written == 0
    body = (export_root() / export.file_name).read_bytes()
    assert body == (",".join(HEADER) + "\r\n").encode()
    assert hashlib.sha256(body).hexdigest() == export.sha256


@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_running_build_shows_its_progress_to_a_sweep_while_it_reads(org, admin, monkeypatch):
    """The build reads its rows in one transaction, and its progress commits as it goes: a
    sweep, on a connection of its own, sees a live build and leaves it alone."""
    import threading

    from django.db import connection, connections

    from audit.services import DURABLE_ALIAS
    from exports import csv as csv_format
    from exports import services

    for i in range(6):
        add(org, admin, occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i))
    export = Export.objects.create(organization=org, requested_by=admin, filters={})
    monkeypatch.setattr(csv_format, "LINES_PER_BATCH", 2)
    monkeypatch.setattr(services, "PROGRESS_EVERY", 1)
    seen = []

    def look(reading):  # a thread has its own connections, as a sweep has
        seen.append(
            (reading, *Export.objects.values_list("status", "rows_written").get(pk=export.pk))
        )
        connections.close_all()

    def after_progress(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('UPDATE "exports_export"'):
            thread = threading.Thread(target=look, args=(connection.in_atomic_block,))
            thread.start()
            thread.join()
        return result

    with connections[DURABLE_ALIAS].execute_wrapper(after_progress):
        services.export_build(export_id=str(export.pk))

    export.refresh_from_db()
    assert export.status == ExportStatus.DONE and export.rows_written >= 6
    assert seen[:4] == [
        (True, ExportStatus.RUNNING, 0),  # the count, read in the rows' own snapshot
        (True, ExportStatus.RUNNING, 1),
        (True, ExportStatus.RUNNING, 3),
        (True, ExportStatus.RUNNING, 5),
    ]


@pytest.mark.postgres(reason="an event committed by another connection mid-build")
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_an_event_committed_between_the_count_and_the_rows_is_in_neither(org, admin):
    """The build counts and reads in one snapshot: the file holds exactly the rows it counted."""
    import threading

    from django.db import connection, connections

    from exports import services

    for i in range(6):
        add(org, admin, occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i))
    export = Export.objects.create(organization=org, requested_by=admin, filters={})
    late = datetime(2026, 1, 2, tzinfo=UTC)

    def commit_a_late_event():  # a thread has its own connections: it commits at once
        add(org, admin, occurred_at=late)
        connections.close_all()

    def after_count(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("SELECT COUNT(*)"):
            thread = threading.Thread(target=commit_a_late_event)
            thread.start()
            thread.join()
        return result

    with connection.execute_wrapper(after_count):
        services.export_build(export_id=str(export.pk))

    export.refresh_from_db()
    assert export.status == ExportStatus.DONE
    assert export.rows_written == export.rows_expected
    body = (services.export_root() / export.file_name).read_bytes()
    rows = parse_bytes(body)
    assert len(rows) == export.rows_written
    assert "2026-01-02T" not in body.decode()
    assert len(events(organization=org, occurred_at=late)) == 1  # it was committed


def parse_bytes(body: bytes) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(body.decode()))
    assert next(reader) == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in reader]


def test_export_list_and_status_poll_until_done(client, org, admin):
    export = Export.objects.create(organization=org, requested_by=admin, rows_expected=10)
    client.force_login(admin)
    listing = client.get(reverse("exports:export-list")).content.decode()
    assert 'hx-trigger="every 1s"' in listing
    status_url = reverse("exports:export-status", args=[export.pk])
    assert client.get(status_url, HTTP_HX_REQUEST="true").status_code == 200
    Export.objects.filter(pk=export.pk).update(status=ExportStatus.DONE, sha256="ab" * 32)
    done = client.get(status_url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx stops polling
    assert "every 1s" not in done.content.decode()


def test_another_tenants_export_is_not_found(client, org):
    export = Export.objects.create(organization=org)
    client.force_login(member(OrganizationFactory(), Role.ADMINISTRATOR))
    assert client.get(reverse("exports:export-download", args=[export.pk])).status_code == 404
    assert client.get(reverse("exports:export-status", args=[export.pk])).status_code == 404


def test_members_cannot_see_the_export_list(client, org):
    client.force_login(member(org))
    assert client.get(reverse("exports:export-list")).status_code == 403


def test_expired_exports_are_gone(client, org, admin):
    from django.utils import timezone

    from exports.services import exports_expire

    export = Export.objects.create(
        organization=org,
        status=ExportStatus.DONE,
        file_name="x.csv",
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    client.force_login(admin)
    assert client.get(reverse("exports:export-download", args=[export.pk])).status_code == 410
    assert exports_expire() == 1
    export.refresh_from_db()
    assert export.status == ExportStatus.EXPIRED


def test_the_stream_writes_what_exports_csv_writes(org, admin):
    from audit.models import AuditEvent
    from exports.csv import EVENT_FIELDS, csv_lines
    from exports.services import csv_stream

    add(org, admin, details={"z": "ü", "a": {"b": None}}, reason="-1", city="São Paulo")
    add(org, None, actor_label="\t=1", occurred_at=datetime(2026, 1, 1, 0, 0, 0, 100, tzinfo=UTC))
    add(org, admin, reason='a,"b"', city="=x,y", details={"q": 'say "hi", then\nleave'})
    add(org, admin, ip_address="2001:db8::7", details={})
    queryset = AuditEvent.objects.order_by("-occurred_at", "-id")

    expected = "".join(csv_lines(queryset.values_list(*EVENT_FIELDS)))
    assert b"".join(csv_stream(queryset)) == expected.encode()


def test_awkward_values_are_quoted_neutralised_and_read_back(org, admin, monkeypatch):
    """Cells that need quoting or neutralising, and details whose keys, numbers and strings a
    database might print unlike Python, across batch boundaries."""
    from audit.models import AuditEvent
    from exports import csv as csv_format
    from exports.csv import EVENT_FIELDS, csv_lines
    from exports.services import csv_stream

    awkward_details = [
        {"note": "a, b: c", "k": "x: y, z"},
        {"filters": {"outcome": "failure", "q": "=1"}, "scope": "org", "delivery": "stream"},
        {"zz": 1, "a": [1, 2.5, {"yy": None, "b": True}], "mm": "ünï ✓ 𝄞"},
        {"f": 1e-07, "g": 1e20, "h": 0.1, "i": -0.0, "j": 12345678901234567890},
        {"s": 'back\\slash "quote" \t tab\nnew \u0001 \u2028'},
        {"": "empty key", "é": 1, "e": 2, "E": 3},
        "=cmd()",
        -5,
        0,
        [],
        "",
    ]
    for n, details in enumerate(awkward_details):
        add(org, admin, details=details, reason=f"r{n}")
    starts = ["=", "+", "-", "@", "\t", "\r", "\n", "'"]
    for n, start in enumerate(starts):
        add(org, None, actor_label=f"{start}x{n}", city=f"{start}", browser=f"a{start}b")
    add(org, None, actor_label="back\\slash \\N", os="\\N", device_type="a,b", city='"q"')
    add(org, None, reason="line\nbreak\r\nand tab\t", ip_address=None, details={"a": 1})
    add(org, None, ip_address="2001:db8::7", request_id="@x", session_hash="-1")
    queryset = AuditEvent.objects.order_by("-occurred_at", "-id")
    expected = "".join(csv_lines(queryset.values_list(*EVENT_FIELDS)))
    # Across batch boundaries too, with awkward and plain rows mixed in one batch.
    monkeypatch.setattr(csv_format, "LINES_PER_BATCH", 3)
    assert b"".join(csv_stream(queryset)) == expected.encode()

    parsed = parse_bytes(expected.encode())
    rows = {r["reason"]: r for r in parsed}
    assert rows["r0"]["details"] == '{"k":"x: y, z","note":"a, b: c"}'
    assert rows["r2"]["details"] == '{"a":[1,2.5,{"b":true,"yy":null}],"mm":"ünï ✓ 𝄞","zz":1}'
    assert rows["r5"]["details"] == '{"":"empty key","E":3,"e":2,"é":1}'
    assert rows["r6"]["details"] == '"=cmd()"'
    assert rows["r7"]["details"] == "'-5"
    assert rows["r8"]["details"] == rows["r9"]["details"] == rows["r10"]["details"] == "{}"
    assert rows["line\nbreak\r\nand tab\t"]["ip_address"] == ""
    labels = {r["user"]: r for r in parsed}
    for n, start in enumerate(starts):
        shown = "'" if start in "=+-@\t\r" else ""
        assert labels[f"{shown}{start}x{n}"]["city"] == shown + start
        assert labels[f"{shown}{start}x{n}"]["browser"] == f"a{start}b"
    assert labels["back\\slash \\N"]["os"] == "\\N"
    assert labels["back\\slash \\N"]["device_type"] == "a,b"
    assert labels["back\\slash \\N"]["city"] == '"q"'
    [v6] = [r for r in parsed if r["ip_address"] == "2001:db8::7"]
    assert v6["request_id"] == "'@x" and v6["session"] == "'-1"


def test_anonymous_cannot_export_own_activity_or_see_exports(client, org):
    export = Export.objects.create(organization=org)
    for url in (
        MINE_URL,
        reverse("exports:export-list"),
        reverse("exports:export-download", args=[export.pk]),
        reverse("exports:export-status", args=[export.pk]),
    ):
        assert client.get(url).status_code == 302


@pytest.mark.parametrize(
    "role", [Role.ADMINISTRATOR, Role.SECURITY_ANALYST, Role.COMPLIANCE_OFFICER]
)
def test_each_audit_role_sees_and_downloads_the_organizations_exports(client, org, role, settings):
    from pathlib import Path

    root = Path(settings.EXPORT_ROOT)
    root.mkdir(parents=True)
    (root / "done.csv").write_text("occurred_at\r\n")
    export = Export.objects.create(
        organization=org, status=ExportStatus.DONE, file_name="done.csv", sha256="0" * 64
    )
    client.force_login(member(org, role))
    assert str(export.pk) in client.get(reverse("exports:export-list")).content.decode()
    response = client.get(reverse("exports:export-download", args=[export.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content)


def test_members_cannot_download_the_organizations_exports(client, org):
    export = Export.objects.create(organization=org, status=ExportStatus.DONE, file_name="x.csv")
    client.force_login(member(org))
    assert client.get(reverse("exports:export-download", args=[export.pk])).status_code == 403


def test_a_running_export_is_not_downloadable_yet(client, org, admin):
    export = Export.objects.create(organization=org, status=ExportStatus.RUNNING)
    client.force_login(admin)
    assert client.get(reverse("exports:export-download", args=[export.pk])).status_code == 409
