"""Hostile filters on every list, export and API endpoint: a clear 4xx or a correct answer
(an empty one where nothing matches), never a 5xx, and no stored event lost or changed.

One table of inputs runs across every endpoint that reads filters: on PostgreSQL in CI (where
the CSV export takes the COPY path) and on SQLite too (`make run`'s database, the Python CSV
path). The events are made once for the module and committed, so the API's feed, which serves
only committed transactions, sees them too.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role, Tier
from api.services import api_token_create
from audit.models import AuditEvent, EventType, Outcome
from exports.csv import HEADER
from exports.models import Export, ExportStatus

from .factories import OrganizationFactory, member

pytestmark = pytest.mark.django_db

ORG_FIELDS = frozenset(
    {
        "start",
        "end",
        "tz",
        "period",
        "category",
        "event_type",
        "outcome",
        "user",
        "ip",
        "country",
        "q",
    }
)
# The search (q) works on a person's own log too, within their own events.
OWN_FIELDS = ORG_FIELDS - {"user"}

REFUSED, EMPTY, ROWS = "refused", "empty", "rows"
# What a request may add to the log: its own record of looking, never anything else.
RECORDS_OF_LOOKING = {
    EventType.AUDIT_LOG_VIEWED,
    EventType.EXPORT_CREATED,
    EventType.EXPORT_DOWNLOADED,
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    url_name: str
    who: str  # "admin", "alice" (a member) or "token" (the API)
    fields: frozenset[str]
    kind: str  # "page", "htmx", "csv", "csv-job", "api"


ENDPOINTS = [
    Endpoint("audit-log", "accounts:audit-log", "admin", ORG_FIELDS | {"cursor"}, "page"),
    Endpoint("audit-log-htmx", "accounts:audit-log", "admin", ORG_FIELDS | {"cursor"}, "htmx"),
    Endpoint("activity", "accounts:activity", "alice", OWN_FIELDS | {"cursor"}, "page"),
    Endpoint("activity-htmx", "accounts:activity", "alice", OWN_FIELDS | {"cursor"}, "htmx"),
    # Exports take every row: a page cursor is no parameter of theirs.
    Endpoint("audit-log-csv", "exports:audit-log-csv", "admin", ORG_FIELDS, "csv"),
    Endpoint("audit-log-csv-job", "exports:audit-log-csv", "admin", ORG_FIELDS, "csv-job"),
    Endpoint("activity-csv", "exports:activity-csv", "alice", OWN_FIELDS, "csv"),
    Endpoint("api", "api:events", "token", ORG_FIELDS | {"cursor", "limit"}, "api"),
]


@dataclass(frozen=True)
class Case:
    id: str
    # A dict of parameters, or a raw query string (bytes that no encoder would write).
    params: dict[str, str] | str
    outcome: str
    field: str = ""  # the field a refusal names

    def names(self) -> set[str]:
        if isinstance(self.params, dict):
            return set(self.params)
        return {pair.partition("=")[0] for pair in self.params.split("&")}


CASES = [
    # --- Found by the attacker: dates past datetime's range, also after a zone's shift.
    Case("end-9999", {"end": "9999-12-31"}, REFUSED, "end"),
    Case("end-9999-gmt+12", {"end": "9999-12-31", "tz": "Etc/GMT+12"}, REFUSED, "end"),
    Case("end-9999-gmt-14", {"end": "9999-12-31", "tz": "Etc/GMT-14"}, REFUSED, "end"),
    Case("start-9999", {"start": "9999-12-31"}, REFUSED, "start"),
    Case("start-9999-gmt+12", {"start": "9999-12-31", "tz": "Etc/GMT+12"}, REFUSED, "start"),
    Case("start-0001", {"start": "0001-01-01"}, REFUSED, "start"),
    Case("start-0001-gmt-14", {"start": "0001-01-01", "tz": "Etc/GMT-14"}, REFUSED, "start"),
    Case("end-0001-kiritimati", {"end": "0001-01-01", "tz": "Pacific/Kiritimati"}, REFUSED, "end"),
    Case("start-1899", {"start": "1899-12-31"}, REFUSED, "start"),
    Case("end-9999-01-01", {"end": "9999-01-01"}, REFUSED, "end"),
    # ... and the last and first days that are in range, in the farthest zones.
    Case("end-9998-gmt+12", {"end": "9998-12-31", "tz": "Etc/GMT+12"}, ROWS),
    Case("start-1900-gmt-14", {"start": "1900-01-01", "tz": "Etc/GMT-14"}, ROWS),
    Case("range-1900-9998", {"start": "1900-01-01", "end": "9998-12-31"}, ROWS),
    # --- Found by the attacker: Unicode digits pass isdigit() and fail int().
    Case("user-superscript-2", {"user": "²"}, REFUSED, "user"),
    Case("user-circled-1", {"user": "①"}, REFUSED, "user"),
    Case("user-arabic-indic-3", {"user": "٣"}, REFUSED, "user"),
    Case("user-fullwidth-3", {"user": "３"}, REFUSED, "user"),
    Case("user-12-superscript-2", {"user": "12²"}, REFUSED, "user"),
    Case("user-id-past-bigint", {"user": "9" * 20}, REFUSED, "user"),
    Case("limit-superscript-2", {"limit": "²"}, REFUSED, "limit"),
    Case("limit-circled-1", {"limit": "①"}, REFUSED, "limit"),
    Case("limit-fullwidth-5", {"limit": "５"}, REFUSED, "limit"),
    # --- Found by the attacker: filters that match nobody (the COPY path raised mid-download).
    Case("q-no-such-person", {"q": "zzzz-no-such-person"}, EMPTY),
    Case("q-percent", {"q": "%"}, EMPTY),
    Case("q-underscore", {"q": "_"}, EMPTY),
    Case("q-backslash", {"q": "\\"}, EMPTY),
    Case("user-nobody", {"user": "nobody@nowhere.test"}, EMPTY),
    # --- Text: wildcards, quotes, SQL, markup, over-long values, NUL.
    Case("q-percents", {"q": "%%"}, EMPTY),
    Case("q-escaped-percent", {"q": "\\%"}, EMPTY),
    Case("q-single-quote", {"q": "'"}, EMPTY),
    # A lone double quote opens a quoted value of the search language (audit.query).
    Case("q-double-quote", {"q": '"'}, REFUSED, "q"),
    Case("q-sql", {"q": "'; DROP TABLE audit_auditevent; --"}, EMPTY),
    Case("q-markup", {"q": "<script>alert(1)</script>"}, EMPTY),
    Case("q-blank", {"q": "   "}, ROWS),
    Case("q-201", {"q": "x" * 201}, REFUSED, "q"),
    Case("q-100k", {"q": "x" * 100_000}, REFUSED, "q"),
    Case("q-nul", {"q": "a\x00b"}, REFUSED, "q"),
    Case("q-bad-utf8", "q=%FF%FE", EMPTY),
    Case("q-crlf-header", {"q": "x\r\nX-Injected: 1"}, EMPTY),
    Case("q-rtl-override-emoji", {"q": "\u202eevil\U0001f600"}, EMPTY),
    Case("user-nul", {"user": "\x00"}, REFUSED, "user"),
    Case("user-300", {"user": "a" * 300}, REFUSED, "user"),
    Case("user-negative", {"user": "-1"}, EMPTY),
    Case("user-zero", {"user": "0"}, EMPTY),
    # --- Dates: the wrong shape, impossible days, reversed ranges.
    Case("start-after-end", {"start": "2026-03-10", "end": "2026-03-01"}, REFUSED, "end"),
    Case("start-feb-30", {"start": "2026-02-30"}, REFUSED, "start"),
    Case("start-us-format", {"start": "03/01/2026"}, REFUSED, "start"),
    Case("start-fullwidth", {"start": "２０２６-03-01"}, REFUSED, "start"),
    Case("start-nul", {"start": "2026-03-01\x00"}, REFUSED, "start"),
    Case("start-repeated-last-wins", "start=2026-03-01&start=9999-12-31", REFUSED, "start"),
    Case("tz-unknown", {"tz": "Mars/Olympus"}, REFUSED, "tz"),
    Case("tz-path", {"tz": "../../../etc/passwd"}, REFUSED, "tz"),
    Case("tz-long", {"tz": "Europe/" + "x" * 100}, REFUSED, "tz"),
    Case("tz-nul", {"tz": "UTC\x00"}, REFUSED, "tz"),
    # --- Choices.
    Case("event-type-unknown", {"event_type": "login.hacked"}, REFUSED, "event_type"),
    Case("outcome-unknown", {"outcome": "maybe"}, REFUSED, "outcome"),
    Case("category-unknown", {"category": "everything"}, REFUSED, "category"),
    Case("category-mismatch", {"category": "mfa", "event_type": "login.failed"}, REFUSED),
    Case("type-is-no-parameter", {"type": "login.hacked"}, ROWS),
    # --- Places and addresses.
    Case("country-zzzz", {"country": "ZZZZ"}, REFUSED, "country"),
    Case("country-long", {"country": "D" * 50}, REFUSED, "country"),
    Case("country-umlauts", {"country": "ÄÖ"}, REFUSED, "country"),
    Case("country-zz", {"country": "zz"}, EMPTY),
    Case("country-de", {"country": "de"}, ROWS),
    Case("ip-octet-999", {"ip": "999.1.1.1"}, REFUSED, "ip"),
    Case("ip-prefix-99", {"ip": "203.0.113.0/99"}, REFUSED, "ip"),
    Case("ip-zone", {"ip": "fe80::1%eth0"}, REFUSED, "ip"),
    Case("ip-zone-network", {"ip": "fe80::%eth0/64"}, REFUSED, "ip"),
    Case("ip-fullwidth", {"ip": "２03.0.113.7"}, REFUSED, "ip"),
    Case("ip-long", {"ip": "1" * 100}, REFUSED, "ip"),
    Case("ip-other-network", {"ip": "10.0.0.0/8"}, EMPTY),
    Case("ip-v6-everything", {"ip": "::/0"}, EMPTY),
    Case("ip-our-network", {"ip": "203.0.113.0/24"}, ROWS),
    # --- Cursors and page sizes.
    Case("cursor-garbage", {"cursor": "abc"}, REFUSED, "cursor"),
    Case("cursor-long", {"cursor": "x" * 600}, REFUSED, "cursor"),
    Case("cursor-nul", {"cursor": "\x00"}, REFUSED, "cursor"),
    Case("cursor-unsigned-json", {"cursor": "WzEsMl0:1abc:xyz"}, REFUSED, "cursor"),
    Case("limit-0", {"limit": "0"}, REFUSED, "limit"),
    Case("limit-negative", {"limit": "-1"}, REFUSED, "limit"),
    Case("limit-billion", {"limit": str(10**9)}, REFUSED, "limit"),
    Case("limit-fraction", {"limit": "1.5"}, REFUSED, "limit"),
    Case("limit-exponent", {"limit": "1e3"}, REFUSED, "limit"),
    Case("limit-word", {"limit": "all"}, REFUSED, "limit"),
    Case("limit-1", {"limit": "1"}, ROWS),
    Case("limit-1000", {"limit": "1000"}, ROWS),
]


@dataclass
class World:
    admin: Any
    alice: Any
    secret: str
    seeded_up_to: int
    # Another tenant: its administrator and its API token.
    other_admin: Any
    other_secret: str


def _seed() -> World:
    org = OrganizationFactory.create(name="Hostile Acme", slug="hostile-acme", tier=Tier.ENTERPRISE)
    admin = member(org, Role.ADMINISTRATOR, email="ada@hostile.test", full_name="Ada Admin")
    alice = member(org, email="alice@hostile.test", full_name="Alice Member")
    other = OrganizationFactory.create(
        name="Hostile Globex", slug="hostile-globex", tier=Tier.ENTERPRISE
    )
    bob = member(other, email="bob@hostile-globex.test", full_name="Bob Member")
    other_admin = member(
        other, Role.ADMINISTRATOR, email="gina@hostile-globex.test", full_name="Gina Admin"
    )
    base = datetime(2026, 3, 1, 9, tzinfo=UTC)
    for i, (organization, user) in enumerate([(org, alice), (org, admin), (other, bob)] * 4):
        failed = i % 2 == 1
        AuditEvent.objects.create(
            organization=organization,
            actor=user,
            actor_label=user.email,
            event_type=EventType.LOGIN_FAILED if failed else EventType.LOGIN_SUCCEEDED,
            outcome=Outcome.FAILURE if failed else Outcome.SUCCESS,
            reason="invalid_credentials" if failed else "",
            occurred_at=base + timedelta(hours=i),
            ip_address="203.0.113.7",
            country="DE",
            city="Berlin",
            details={"formula": "=1+1", "note": 'quote " comma ,'},
        )
    _, secret = api_token_create(organization=org, user=admin, name="SIEM")
    _, other_secret = api_token_create(organization=other, user=other_admin, name="SIEM")
    seeded_up_to = AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]
    return World(
        admin=admin,
        alice=alice,
        secret=secret,
        seeded_up_to=seeded_up_to,
        other_admin=other_admin,
        other_secret=other_secret,
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The module's organizations, people and events, committed (and removed afterwards)."""
    from accounts.models import Organization, User

    from .db_support import events_delete_all

    with django_db_blocker.unblock():
        made = _seed()
    yield made
    with django_db_blocker.unblock():
        # Events leave the table only as its owner, through the guard's gate (as conftest.py's
        # teardown of transactional tests does).
        events_delete_all()
        Organization.objects.filter(slug__startswith="hostile-").delete()
        User.objects.filter(email__contains="hostile").delete()


def _stored(up_to: int) -> tuple[int, str]:
    """How many of the events up to `up_to` exist, and a checksum of every field of them."""
    rows = AuditEvent.objects.filter(id__lte=up_to).order_by("id").values_list()
    return len(rows), hashlib.sha256(repr(list(rows)).encode()).hexdigest()


def _request(client: Client, endpoint: Endpoint, case: Case, world: World):
    url = reverse(endpoint.url_name)
    headers: dict[str, str] = {}
    if endpoint.kind == "htmx":
        headers["HX-Request"] = "true"
    if endpoint.who == "token":
        headers["Authorization"] = f"Bearer {world.secret}"
    if isinstance(case.params, str):
        return client.get(f"{url}?{case.params}", headers=headers)
    return client.get(url, case.params, headers=headers)


def _csv_rows(body: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert rows[0] == HEADER
    assert all(len(row) == len(HEADER) for row in rows[1:])
    return rows[1:]


def _expected(case: Case, endpoint: Endpoint) -> str:
    """A parameter an endpoint does not take is ignored: there the answer is every row."""
    return case.outcome if case.names() & endpoint.fields else ROWS


def _check_refused(response, endpoint: Endpoint, case: Case) -> None:
    assert response.status_code == 400
    if endpoint.kind == "api":
        body = response.json()
        assert body["error"].startswith("These filters could not be used")
        if case.field:
            assert case.field in body["fields"], body
        return
    text = response.content.decode()
    if endpoint.kind in ("page", "htmx"):
        assert 'data-testid="filter-errors"' in text
        assert ("<html" in text) == (endpoint.kind == "page")
        assert "HX-Request" in response["Vary"]
        if case.field:
            assert f"<li>{case.field}: " in text
    else:
        assert response["Content-Type"].startswith("text/plain")
        assert text.startswith("These filters could not be used")
        if case.field:
            assert f"{case.field}: " in text


def _answered_rows(response, endpoint: Endpoint, world: World, client: Client) -> int:
    """How many events the (successful) answer holds; reads a streamed CSV to its end."""
    if endpoint.kind in ("page", "htmx"):
        assert response.status_code == 200
        return len(response.context["page"].events)
    if endpoint.kind == "api":
        assert response.status_code == 200
        body = response.json()
        assert body["next_cursor"]
        return len(body["events"])
    if response.status_code == 302:  # a background job (export list) on the job endpoint
        assert endpoint.kind == "csv-job"
        export = Export.objects.get()
        assert export.status == ExportStatus.DONE, export.error
        download = client.get(reverse("exports:export-download", args=[export.pk]))
        # django-stubs types every test-client response as a non-streaming one; this is a
        # FileResponse.
        rows = _csv_rows(b"".join(download.streaming_content))  # type: ignore[attr-defined]
        assert len(rows) == export.rows_written
        return len(rows)
    assert response.status_code == 200
    assert response.streaming
    return len(_csv_rows(b"".join(response.streaming_content)))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_filters_are_refused_or_answered_and_change_no_event(
    case, endpoint, world, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.EXPORT_ROOT = tmp_path
    if endpoint.kind == "csv-job":
        settings.EXPORT_STREAM_MAX_ROWS = 0  # anything with a row becomes a background job
    client = Client(raise_request_exception=False)
    if endpoint.who != "token":
        client.force_login(getattr(world, endpoint.who))
    seeded_before = _stored(world.seeded_up_to)
    count_before = AuditEvent.objects.count()
    last_before = AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]

    with django_capture_on_commit_callbacks(execute=True):
        response = _request(client, endpoint, case, world)

    assert response.status_code < 500
    expected = _expected(case, endpoint)
    if expected == REFUSED:
        _check_refused(response, endpoint, case)
        assert AuditEvent.objects.count() == count_before  # a refusal records nothing
        assert not Export.objects.exists()
    else:
        answered = _answered_rows(response, endpoint, world, client)
        assert (answered == 0) == (expected == EMPTY), (expected, answered)
        added = AuditEvent.objects.filter(id__gt=last_before).values_list("event_type", flat=True)
        assert set(added) <= RECORDS_OF_LOOKING
    assert _stored(world.seeded_up_to) == seeded_before


# --- Scheduled exports: the filters stored by Archives & scheduled exports, and their run ------

SCHEDULE_FIELDS = ORG_FIELDS - {"start", "end", "tz"}  # a schedule's window moves with each run


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.names() & SCHEDULE_FIELDS], ids=lambda c: c.id
)
def test_hostile_schedule_filters_are_refused_or_their_runs_hold_exactly_the_rows(
    case, world, settings, tmp_path
):
    from retention.models import ExportSchedule, StoredFile
    from retention.schedules import export_schedule_run

    from .retention_support import use_archive_storage

    use_archive_storage(settings, tmp_path)
    client = Client(raise_request_exception=False)
    client.force_login(world.admin)
    seeded_before = _stored(world.seeded_up_to)
    count_before = AuditEvent.objects.count()
    form = {"name": "Hostile", "frequency": "monthly", "window_days": "31"}
    if isinstance(case.params, str):
        body = "&".join(f"{k}={v}" for k, v in form.items()) + "&" + case.params
        response = client.post(
            reverse("retention:archives"), body, "application/x-www-form-urlencoded"
        )
    else:
        response = client.post(reverse("retention:archives"), {**form, **case.params})

    assert response.status_code < 500
    if case.outcome == REFUSED:
        assert response.status_code == 400
        assert 'class="errorlist' in response.content.decode()
        assert not ExportSchedule.objects.exists()
        assert AuditEvent.objects.count() == count_before
    else:
        assert response.status_code == 303
        schedule = ExportSchedule.objects.get()
        stored = export_schedule_run(
            schedule=schedule, period_end=datetime(2026, 3, 2, tzinfo=UTC), actor=world.admin
        )
        rows = _csv_rows((tmp_path / stored.name).read_bytes())
        assert len(rows) == stored.row_count == StoredFile.objects.get().row_count
        assert (len(rows) == 0) == (case.outcome == EMPTY), (case.outcome, len(rows))
    assert _stored(world.seeded_up_to) == seeded_before


# --- Who may ask: the views that parse filters keep their doors whatever the input ------------

HOSTILE = {"end": "9999-12-31", "user": "²", "q": "%", "limit": "²"}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_anonymous_is_turned_away_before_any_filter_is_read(endpoint, world):
    response = Client().get(reverse(endpoint.url_name), HOSTILE)
    if endpoint.kind == "api":
        assert response.status_code == 401
        assert response.json()["error"]
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.who == "admin"], ids=lambda e: e.name
)
def test_a_member_may_not_read_the_organizations_log_with_any_filter(endpoint, world):
    client = Client()
    client.force_login(world.alice)
    assert client.get(reverse(endpoint.url_name), HOSTILE).status_code == 403


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_another_tenant_filtering_by_our_member_gets_nothing_of_ours(endpoint, world):
    client = Client()
    extra = {}
    if endpoint.who == "token":
        extra["HTTP_AUTHORIZATION"] = f"Bearer {world.other_secret}"
    else:
        client.force_login(world.other_admin)
    ours = {world.alice.pk, world.admin.pk}
    for params in ({"user": str(world.alice.pk)}, {"user": world.alice.email}, {"q": "alice"}):
        response = client.get(reverse(endpoint.url_name), params, **extra)
        assert response.status_code == 200
        if endpoint.kind in ("page", "htmx"):
            assert {e.actor_id for e in response.context["page"].events}.isdisjoint(ours)
        elif endpoint.kind == "api":
            assert {e["user_id"] for e in response.json()["events"]}.isdisjoint(ours)
        else:
            body = b"".join(response.streaming_content).decode()
            assert "@hostile.test" not in body
            _csv_rows(body.encode())


def test_an_api_cursor_of_another_tenant_is_refused_with_the_reason(world):
    client = Client()
    ours = client.get(reverse("api:events"), HTTP_AUTHORIZATION=f"Bearer {world.secret}")
    cursor = ours.json()["next_cursor"]
    response = client.get(
        reverse("api:events"),
        {"cursor": cursor},
        HTTP_AUTHORIZATION=f"Bearer {world.other_secret}",
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("These filters could not be used: cursor:")
    assert "cursor" in response.json()["fields"]
