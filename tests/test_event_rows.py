"""The event table of the Audit Log and the Activity Log, and the filter form above it.

Both are plain templates (templates/accounts/_results.html, _filters.html with Django's widgets):
these tests read the HTML as a browser would, so they hold whatever the markup's layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from django.core.cache import cache
from django.urls import reverse

from audit.models import AuditEvent, EventType

pytestmark = pytest.mark.django_db

AUDIT_LOG = reverse("accounts:audit-log")
ACTIVITY = reverse("accounts:activity")
# Markup, an attribute break-out and script in every value a row shows (each within its column's
# length), and in the user agent and details, which only the event's own page shows.
HOSTILE = {
    "event_type": "<b>login.succeeded</b>",
    "outcome": '"><i>',
    "reason": "<img src=x onerror=alert(1)>",
    "actor_label": "<script>alert('actor')</script>@x.test",
    "target_label": '"><svg onload=alert(2)>',
    "city": "</td><script>alert(3)</script>",
    "country": "<>",
    "browser": "Fire&fox <u>",
    "os": "</table>",
    "user_agent": "<script>alert('ua')</script>",
    "details": {"note": "<script>alert('details')</script>", "<k>": "&amp;"},
}
# The markup a row is made of; anything else in the table came from a value.
ROW_TAGS = {"tr", "td", "a", "time", "span", "code"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@dataclass
class Row:
    attrs: dict[str, str | None]
    cells: list[str] = field(default_factory=list)
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)


class _TableReader(HTMLParser):
    """The rows of the events table's body: each row's attributes, cell texts and tags."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.in_body = False
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self.in_body = True
        elif not self.in_body:
            return
        elif tag == "tr":
            self.rows.append(Row(dict(attrs)))
        else:
            self.rows[-1].tags.append((tag, dict(attrs)))
            if tag == "td":
                self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_body = False
        elif self.in_body and tag == "td" and self.cell is not None:
            self.rows[-1].cells.append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(html: str) -> list[Row]:
    reader = _TableReader()
    reader.feed(html)
    reader.close()
    return reader.rows


def row_of(html: str, href: str) -> Row:
    """The one row whose link leads to href."""
    found = [row for row in table_rows(html) if ("a", {"href": href}) in row.tags]
    assert len(found) == 1, f"no single row links to {href}"
    return found[0]


def add(organization, actor, **fields) -> AuditEvent:
    fields.setdefault("event_type", EventType.LOGIN_FAILED)
    fields.setdefault("occurred_at", datetime(2026, 3, 10, 23, 30, 15, 123456, tzinfo=UTC))
    event = AuditEvent(organization=organization, actor=actor, **fields)
    event.save()
    return event


def test_a_row_shows_each_column_and_links_to_the_event(client, org, admin):
    event = add(
        org,
        admin,
        actor_label="alice@acme.test",
        target_label="bob@acme.test",
        outcome="failure",
        reason="invalid_credentials",
        ip_address="203.0.113.7",
        city="Berlin",
        country="DE",
        browser="Firefox 128",
        os="Linux",
    )
    client.force_login(admin)

    body = client.get(AUDIT_LOG).content.decode()

    row = row_of(body, f"{AUDIT_LOG}{event.pk}/")
    assert row.attrs == {"class": "outcome-failure"}
    assert row.cells == [
        # Older than a week: the date and minute, with the exact second for screen readers.
        "2026-03-10 23:30 (2026-03-10 23:30:15 UTC)",
        "Wrong password for bob@acme.test login.failed",
        "Failed",
        "Wrong password invalid_credentials",
        "alice@acme.test → bob@acme.test",
        "203.0.113.7",
        "Berlin, Germany",
        "Firefox 128 on Linux",
    ]
    assert ("code", {"class": "code-secondary"}) in row.tags
    times = [attrs for tag, attrs in row.tags if tag == "time"]
    assert times == [
        {"datetime": "2026-03-10T23:30:15.123456+00:00", "title": "2026-03-10 23:30:15 UTC"}
    ]


def test_a_row_leaves_out_what_was_not_recorded(client, org, admin):
    event = add(org, None, actor_label="", country="DE", os="Linux")
    client.force_login(admin)

    row = row_of(client.get(AUDIT_LOG).content.decode(), f"{AUDIT_LOG}{event.pk}/")

    assert row.cells[3:] == ["", "", "—", "Germany", "Linux"]


def test_no_matching_events_says_so_in_one_row(client, org, admin):
    client.force_login(admin)

    body = client.get(AUDIT_LOG, {"country": "ZZ"}).content.decode()

    assert [row.cells for row in table_rows(body)] == [["No events match."]]


@pytest.mark.parametrize(
    ("url", "htmx"),
    [(AUDIT_LOG, False), (AUDIT_LOG, True), (ACTIVITY, False)],
    ids=["audit-log", "audit-log-htmx", "activity-log"],
)
def test_html_and_script_in_event_values_are_shown_as_text_in_the_rows(
    client, org, admin, url, htmx
):
    event = add(org, admin, **HOSTILE)
    client.force_login(admin)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = client.get(url, **headers)

    body = response.content.decode()
    assert response.status_code == 200
    row = row_of(body, f"{url}{event.pk}/")
    assert row.attrs == {"class": f"outcome-{HOSTILE['outcome']}"}
    assert row.cells[1:] == [
        f"{HOSTILE['event_type']} ({HOSTILE['reason']}) {HOSTILE['event_type']}",
        HOSTILE["outcome"],
        HOSTILE["reason"],
        f"{HOSTILE['actor_label']} → {HOSTILE['target_label']}",
        "—",
        f"{HOSTILE['city']}, {HOSTILE['country']}",
        f"{HOSTILE['browser']} on {HOSTILE['os']}",
    ]
    made_of = {tag for row in table_rows(body) for tag, _ in row.tags}
    assert made_of <= ROW_TAGS
    for raw in ("<script>", "<img src=x", "<svg", "<b>", "<i>", "<u>"):
        assert raw not in body
    assert body.count("</table>") == 1


def test_user_agent_and_details_are_shown_as_text_on_the_events_page(client, org, admin):
    event = add(org, admin, **HOSTILE)
    client.force_login(admin)

    body = client.get(reverse("accounts:audit-log-event", args=[event.pk])).content.decode()

    assert "&lt;script&gt;alert(&#x27;ua&#x27;)&lt;/script&gt;" in body
    assert "&lt;script&gt;alert(&#x27;details&#x27;)&lt;/script&gt;" in body
    assert "<script>" not in body


class _ControlReader(HTMLParser):
    """The filter form's controls: name → (tag, attributes), and each select's options."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: dict[str, tuple[str, dict[str, str | None]]] = {}
        self.options: dict[str, list[tuple[str | None, bool]]] = {}
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag in ("input", "select") and named.get("name"):
            self.controls[str(named["name"])] = (tag, named)
        if tag == "select":
            self.select = str(named["name"])
            self.options[self.select] = []
        elif tag == "option" and self.select:
            self.options[self.select].append((named.get("value"), "selected" in named))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


def controls_of(html: str) -> _ControlReader:
    start = html.index('<form method="get"')
    reader = _ControlReader()
    reader.feed(html[start : html.index("</form>", start)])
    return reader


def test_filter_form_offers_date_pickers_choices_and_bounded_text(client, org, admin):
    client.force_login(admin)

    form = controls_of(client.get(AUDIT_LOG).content.decode())

    kinds = {name: (tag, attrs.get("type")) for name, (tag, attrs) in form.controls.items()}
    assert kinds == {
        "start": ("input", "date"),
        "end": ("input", "date"),
        "category": ("select", None),
        "event_type": ("select", None),
        "outcome": ("select", None),
        "user": ("input", "text"),
        "ip": ("input", "text"),
        "country": ("select", None),
        "reason": ("select", None),
        "q": ("input", "search"),
        "period": ("select", None),
        "tz": ("input", "hidden"),
    }
    # No maxlength: the search explains an over-long query (audit.query) rather than the
    # browser cutting it silently.
    assert "maxlength" not in form.controls["q"][1]
    assert form.controls["start"][1]["id"] == "id_start"  # what its <label for> names
    assert form.options["outcome"] == [("", True), ("success", False), ("failure", False)]
    assert ("login.failed", False) in form.options["event_type"]


def test_filter_form_shows_the_filters_in_use(client, org, admin):
    client.force_login(admin)

    body = client.get(
        AUDIT_LOG,
        {
            "start": "2026-03-01",
            "outcome": "failure",
            "ip": "203.0.113.0/24",
            "tz": "Europe/Berlin",
        },
    ).content.decode()

    form = controls_of(body)
    assert form.controls["start"][1]["value"] == "2026-03-01"
    assert form.controls["ip"][1]["value"] == "203.0.113.0/24"
    assert form.controls["tz"][1]["value"] == "Europe/Berlin"
    assert form.options["outcome"] == [("", False), ("success", False), ("failure", True)]


def test_filter_form_gives_back_refused_text_as_text(client, org, admin):
    client.force_login(admin)
    typed = '"><script>alert(1)</script>'

    response = client.get(AUDIT_LOG, {"ip": typed, "outcome": typed})

    assert response.status_code == 400
    form = controls_of(response.content.decode())
    assert form.controls["ip"][1]["value"] == typed
    assert not any(selected for _, selected in form.options["outcome"])
    assert "<script>" not in response.content.decode()
