"""Every page, in Chromium at 360, 390 and 1280 px: no sideways scrolling, and axe finds no
serious or critical violation (issue 16, items 1 and 9). Plus the menu by keyboard, by tap and
without scripts.

The page list is complete by construction: every URL pattern of the project is either visited
here (pages with ids on one real object each) or excluded with its reason, or
test_every_url_is_visited_or_excluded fails. The data is the demo's plus values that stress a
table: a long email address, long user agents, IPv6 addresses, a long webhook URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import (
    Membership,
    Organization,
    OrganizationDomain,
    Role,
    SavedSearch,
    SearchLog,
    User,
    UserSession,
)
from accounts.navigation import MENU
from alerts.models import Alert, RuleKind, WebhookDelivery, WebhookEndpoint
from audit.models import AuditEvent
from compliance.models import Review
from demo.seed import DEMO_PASSWORD, seed_demo
from exports.models import Export, ExportStatus
from policies.models import NetworkList
from reports.models import ComplianceReport

from .helpers import sign_in
from .mfa_support import backup_codes, code_for, totp_device

pytestmark = [
    pytest.mark.browser,
    # The throttle keeps its database buckets (no Redis here) on the "audit" connection.
    pytest.mark.django_db(transaction=True, databases=["default", "audit"]),
]

# Two phone widths (a small Android, an iPhone) in light and dark, and a laptop. 390 is checked in
# dark mode so the dark colours meet axe's contrast rules too.
VIEWPORTS = ((360, "light"), (390, "dark"), (1280, "light"))
# A 1280 px laptop at 200% zoom lays pages out 640 px wide (WCAG 1.4.10 reflow): checked for
# width only, the rules axe checks do not change between 390 and 1280.
REFLOW_WIDTH = 640
TIME_ZONE = "America/Los_Angeles"

LONG_EMAIL = "maximiliana.worthington-abernathy.security-operations@acme.test"
UNKNOWN_EMAIL = "firstname.lastname.external-contractor-2026-q4@acme.test"
IPV6 = "2001:db8:85a3:1234:5678:8a2e:370:7334"
LONG_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; SM-S928B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.135 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/492.0.0.54.80;IABMV/1;FBAN/EMA;FBLC/en_GB;FBCR/Vodafone;FBDV/SM-S928B]"
)
LONG_WEBHOOK = (
    "https://hooks.example.test/services/T0123456789/B0123456789/"
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
)

# URL patterns that are not pages, or not pages of their own, and why.
EXCLUDED = {
    "health": "JSON for the load balancer",
    "operations:metrics": "Prometheus text for the operator's scraper (test_operations_metrics)",
    "api:events": "the events API answers JSON",
    "exports:audit-log-csv": "a CSV download",
    "exports:activity-csv": "a CSV download",
    "exports:export-status": "an HTMX fragment the Exports page polls (visited inside it)",
    "exports:export-download": "a file download",
    "retention:file-download": "a file download",
    "retention:files-verify": "POST only (the Archives page's verify button)",
    "retention:schedule-run": "POST only",
    "accounts:logout": "POST only",
    "accounts:time-zone": "POST only (a form on Profile)",
    "accounts:time-zone-detected": "POST only (app.js sends the browser's zone)",
    "accounts:mfa-backup-codes": "new codes, shown once after their question (test_browser_mfa)",
    "accounts:mfa-policy": "POST only (a form on Members)",
    "accounts:passkey-add-options": "JSON for passkeys.js (tests/test_browser_passkeys.py)",
    "accounts:passkey-verify-options": "JSON for passkeys.js (tests/test_browser_passkeys.py)",
    "accounts:passkey-sign-in-options": "JSON for passkeys.js (tests/test_browser_passkeys.py)",
    "accounts:passkey-verify": "POST only (passkeys.js submits the answer; browser-tested)",
    "accounts:passkey-sign-in": "POST only (passkeys.js submits the answer; browser-tested)",
    "accounts:member-role": "POST only (a form on Members)",
    "accounts:member-unlock": "POST only (a form on Members)",
    "accounts:domain-verify": "POST only (a form on Email domains)",
    "accounts:audit-log-search-save": "POST only (Save this search, beside the Audit Log's box)",
    "accounts:activity-search-save": "POST only (Save this search, beside the Activity Log's box)",
    "alerts:alert-acknowledge": "POST only (the alert's triage form)",
    "alerts:alert-assign": "POST only (the alert's triage form)",
    "alerts:alert-resolve": "POST only (the alert's triage form)",
    "accounts:activity-confirm": "POST only (a button on Profile)",
    "api:token-revoke": "needs a live token (tests/test_forms_and_actions.py)",
    "retention:schedule-delete": "needs a schedule (tests/test_forms_and_actions.py)",
    "integrity:verify": "POST only (Verify now, on Log integrity)",
    "compliance:review-item-mark": "POST only (a review's mark forms)",
    "compliance:guide-acknowledge": "POST only (the guide's acknowledge button)",
    "reports:access-review-csv": "a CSV download",
    "reports:report-status": "an HTMX fragment a report's page polls (visited inside it)",
    "reports:report-download": "a file download",
    "streams:stream-test": "POST only (Send test event, on Streams)",
    "streams:stream-pause": "POST only (Pause and Resume, on Streams)",
    "streams:stream-create": "Enterprise only: walked in tests/test_browser_streams.py",
    "streams:stream-edit": "Enterprise only: walked in tests/test_browser_streams.py",
    "streams:stream-replay": "Enterprise only: walked in tests/test_browser_streams.py",
    "streams:stream-delete": "Enterprise only: walked in tests/test_browser_streams.py",
    "policies:network-list-add": "POST only (a form on Access policies)",
    "policies:network-list-edit": "POST only (a form on Access policies)",
    "policies:network-rule-add": "POST only (a form on Access policies)",
    "policies:settings": "POST only (a form on Access policies)",
    "policies:time-window-add": "POST only (a form on Access policies)",
    "policies:time-exception-add": "POST only (a form on Access policies)",
    "policies:sessions": "POST only (a form on Access policies)",
    "/": "redirects to Profile",
    "admin": "Django's own admin, for platform operators",
    "/admin/login/": "Django's own admin sign-in, sent on to ours",
}


def url_patterns(resolver: URLResolver | None = None, namespace: str = "", prefix: str = ""):
    """(view name, or the route where a pattern has no name) of every URL pattern."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                yield "admin"
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from url_patterns(entry, inner, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name}" if entry.name else "/" + prefix + str(entry.pattern)


@dataclass
class Data:
    acme: Organization
    alice: User
    alice_device_id: int
    long_user: User


def _review(data: Data) -> Review:
    """The demo's administrators' review (the administrator visits: theirs to sign)."""
    return Review.objects.filter(
        organization=data.acme, schedule__assigned_role=Role.ADMINISTRATOR
    ).earliest("id")


@dataclass(frozen=True)
class Page:
    view_name: str
    kwargs: Callable[[Data], dict[str, object]] = lambda data: {}
    query: str = ""


def _open_access_review(data: Data, *, item: bool = False) -> dict[str, object]:
    """Acme's open access review (started by its compliance officer), and Alice's row in it."""
    from reports.models import AccessReview
    from reports.services import access_review_start

    review = AccessReview.objects.filter(organization=data.acme, completed_at=None).first()
    if review is None:
        officer = User.objects.get(email="compliance@acme.test")
        review = access_review_start(actor=officer, organization=data.acme)
    kwargs: dict[str, object] = {"review_id": review.pk}
    if item:
        kwargs["item_id"] = review.items.get(user=data.alice).pk
    return kwargs


def _saved_search(email: str, log: str) -> dict[str, object]:
    """A saved search of the person's (the delete confirmation's page names it)."""
    user = User.objects.get(email=email)
    search, _ = SavedSearch.objects.get_or_create(
        organization=user.membership.organization,
        owner=user,
        log=log,
        name="Failed sign-ins from abroad, last 30 days",
        defaults={"query": "q=type%3Alogin.failed+-country%3ADE&period=30d", "shared": True},
    )
    return {"search_id": search.pk}


# Who visits which pages: a member their Profile, an administrator the organization's settings.
MEMBER_PAGES = (
    Page("accounts:profile"),
    Page("accounts:activity"),
    Page(
        "accounts:activity-event",
        lambda data: {"event_id": AuditEvent.objects.filter(actor=data.alice).latest("id").pk},
    ),
    Page("accounts:password-change"),
    Page(
        "accounts:activity-report",
        lambda data: {
            "event_id": AuditEvent.objects.filter(actor=data.alice, event_type="login.succeeded")
            .latest("id")
            .pk
        },
    ),
    Page("accounts:security"),
    Page("accounts:mfa-enrol"),
    Page("accounts:passkey-add"),
    Page("accounts:mfa-device-remove", lambda data: {"kind": "totp", "pk": data.alice_device_id}),
    Page("alerts:my-alerts"),
    Page("accounts:sessions-end-others"),
    Page("accounts:mfa-backup-codes-new"),
    Page(
        "accounts:session-end",
        lambda data: {
            "session_hash": UserSession.objects.filter(user=data.alice, ended_at__isnull=True)
            .earliest("id")
            .session_hash
        },
    ),
    Page(
        "accounts:activity-search-delete",
        lambda data: _saved_search(data.alice.email, SearchLog.ACTIVITY),
    ),
)
ADMINISTRATOR_PAGES = (
    Page("accounts:security-settings"),
    Page("accounts:audit-log"),
    Page(
        "accounts:audit-log-event",
        lambda data: {"event_id": AuditEvent.objects.filter(actor=data.long_user).latest("id").pk},
    ),
    Page("accounts:members"),
    Page(
        "accounts:member-sign-out",
        lambda data: {"membership_id": data.alice.membership.pk},
    ),
    Page(
        "accounts:member-mfa-reset",
        lambda data: {"membership_id": data.alice.membership.pk},
    ),
    Page("accounts:domains"),
    Page(
        "accounts:domain-remove",
        lambda data: {"domain_id": OrganizationDomain.objects.get(domain="acme.test").pk},
    ),
    Page("accounts:throttling"),
    Page("exports:export-list"),
    Page("api:tokens"),
    Page("alerts:alert-list"),
    Page(
        "alerts:alert-detail",
        lambda data: {"pk": Alert.objects.filter(organization=data.acme)[0].pk},
    ),
    Page(
        "alerts:alert-subject-unlock",
        lambda data: {"pk": Alert.objects.filter(subject_user=data.alice)[0].pk},
    ),
    Page(
        "alerts:alert-subject-sign-out",
        lambda data: {"pk": Alert.objects.filter(subject_user=data.alice)[0].pk},
    ),
    Page("alerts:rule-list"),
    Page("alerts:rule-edit", lambda data: {"kind": RuleKind.FAILED_SIGN_INS}),
    Page("alerts:webhook-list"),
    Page(
        "alerts:webhook-detail",
        lambda data: {"pk": WebhookEndpoint.objects.get(organization=data.acme).pk},
    ),
    Page(
        "alerts:webhook-delete",
        lambda data: {"pk": WebhookEndpoint.objects.get(organization=data.acme).pk},
    ),
    Page("integrity:integrity"),
    Page("compliance:reviews"),
    Page("compliance:schedule-add"),
    Page("compliance:schedule-edit", lambda data: {"pk": _review(data).schedule_id}),
    Page("compliance:review-open", lambda data: {"pk": _review(data).schedule_id}),
    Page("compliance:review-detail", lambda data: {"pk": _review(data).pk}),
    Page("compliance:review-sign-off", lambda data: {"pk": _review(data).pk}),
    Page("compliance:checklist"),
    Page("compliance:retention-acknowledge"),
    Page("compliance:guide"),
    Page("compliance:guide-edit"),
    Page("reports:access-reviews"),
    Page("reports:access-review", _open_access_review),
    Page(
        "reports:access-review-decide",
        lambda data: _open_access_review(data, item=True),
        "?decision=change_role&role=security_analyst",
    ),
    Page("reports:access-review-complete", _open_access_review),
    Page("reports:reports"),
    Page(
        "reports:report",
        lambda data: {"report_id": ComplianceReport.objects.get(organization=data.acme).pk},
    ),
    # Acme is not on the Enterprise tier: the page says why not (the Enterprise pages are
    # walked in tests/test_browser_streams.py).
    Page("streams:stream-list"),
    Page("policies:access-policies"),
    Page(
        "policies:remove",
        lambda data: {
            "kind": "network-list",
            "pk": NetworkList.objects.get(organization=data.acme, name="Office").pk,
        },
    ),
    Page("retention:retention"),
    Page("retention:archives"),
    Page(
        "accounts:audit-log-search-delete",
        lambda data: _saved_search("admin@acme.test", SearchLog.AUDIT),
    ),
)
ANONYMOUS_PAGES = (
    Page("accounts:login"),
    Page("accounts:password-reset"),
    Page("accounts:password-reset-sent"),
    Page("accounts:password-reset-done"),
    Page(
        "accounts:password-reset-confirm",
        lambda data: {
            "uidb64": urlsafe_base64_encode(force_bytes(data.long_user.pk)),
            "token": default_token_generator.make_token(data.long_user),
        },
    ),
)
# Visited on the way: the second sign-in step, when the member signs in with their code.
ON_THE_WAY = {"accounts:mfa-verify"}


def test_every_url_is_visited_or_excluded():
    visited = {p.view_name for p in MEMBER_PAGES + ADMINISTRATOR_PAGES + ANONYMOUS_PAGES}
    visited |= ON_THE_WAY
    patterns = set(url_patterns())
    missing = patterns - visited - EXCLUDED.keys()
    assert not missing, f"neither visited nor excluded: {sorted(missing)}"
    assert not visited & EXCLUDED.keys()
    assert not (visited | EXCLUDED.keys()) - patterns, "a name that is no longer a URL"


def test_every_signed_in_page_is_in_the_menu_or_under_an_entry():
    in_menu = {name for group in MENU for e in group.entries for name in (e.url_name, *e.pages)}
    signed_in = {p.view_name for p in MEMBER_PAGES + ADMINISTRATOR_PAGES}
    assert signed_in - in_menu == set()


@pytest.fixture
def data(live_server) -> Data:
    """The demo, an alert for Alice, and rows with long values from a phone on IPv6."""
    seed_demo(days=2)
    acme = Organization.objects.get(slug="acme")
    long_user = User.objects.create_user(LONG_EMAIL, DEMO_PASSWORD, full_name="Maximiliana W.")
    Membership.objects.create(user=long_user, organization=acme, role=Role.SECURITY_ANALYST)
    phone = {"REMOTE_ADDR": IPV6, "HTTP_USER_AGENT": LONG_AGENT}
    for email, password in [(UNKNOWN_EMAIL, "x"), (LONG_EMAIL, "x"), (LONG_EMAIL, DEMO_PASSWORD)]:
        sign_in(Client(), email, password, **phone)
    for _ in range(5):
        sign_in(Client(), "alice@acme.test", "wrong", REMOTE_ADDR="198.51.100.7")
    alice = User.objects.get(email="alice@acme.test")
    # A session of Alice's on the phone, then her authenticator (the browser signs in with it).
    sign_in(Client(), alice.email, DEMO_PASSWORD, **phone)
    device = totp_device(alice, name="Pixel 9 Pro XL (work profile, managed)")
    backup_codes(alice)
    webhook = WebhookEndpoint.objects.create(
        organization=acme, url=LONG_WEBHOOK, description="SIEM intake", secret="whsec_" + "a" * 32
    )
    WebhookDelivery.objects.create(
        endpoint=webhook,
        alert=Alert.objects.filter(organization=acme)[0],
        status="failed",
        attempts=5,
        last_error="ConnectionRefusedError(111, 'Connection refused') " * 4,
    )
    admin = User.objects.get(email="admin@acme.test")
    Export.objects.create(
        organization=acme,
        requested_by=admin,
        status=ExportStatus.FAILED,
        error="The storage refused the file: " + "x" * 120,
        finished_at=timezone.now(),
    )
    return Data(acme=acme, alice=alice, alice_device_id=device.pk, long_user=long_user)


# The outermost elements that stick out past the viewport (not those inside a scrolling box).
WIDEST = """width => {
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.getBoundingClientRect().right <= width + 1 || el.closest(".table-scroll")) continue;
    if (out.some(outer => outer.contains(el))) continue;
    out.push(el);
  }
  return out.slice(0, 3).map(el => el.tagName.toLowerCase()
    + (el.className ? "." + el.className : "")
    + " " + Math.round(el.getBoundingClientRect().right) + "px").join(", ");
}"""


def _signed_in(page) -> None:
    """Wait for Profile, in the zone the sign-in stored from the browser (first sign-in)."""
    page.wait_for_url("**/profile/")
    page.locator("[data-time-zone-detect]").wait_for(state="detached")
    assert page.get_by_test_id("time-zone").inner_text() == f"Times in {TIME_ZONE}"


class Visitor:
    """One browser context in the test's time zone; checks a page at every viewport."""

    axe = Axe()

    def __init__(self, browser, base_url: str) -> None:
        self.context = browser.new_context(base_url=base_url, timezone_id=TIME_ZONE)
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.problems: list[str] = []

    def sign_in(self, email: str, code: Callable[[], str] | None = None) -> None:
        self.page.goto("/sign-in/")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", DEMO_PASSWORD)
        self.page.click("button[type=submit]")
        if code is not None:
            self.page.wait_for_url("**/sign-in/code/")
            self.check_here("accounts:mfa-verify")
            self.page.fill("input[name=code]", code())
            self.page.click("button[type=submit]")
        _signed_in(self.page)

    def check(self, path: str) -> None:
        self.page.set_viewport_size({"width": VIEWPORTS[-1][0], "height": 900})
        response = self.page.goto(path)
        assert response is not None
        if not response.ok:
            self.problems.append(f"{path}: HTTP {response.status}")
            return
        self.check_here(path)

    def check_here(self, where: str) -> None:
        """The page as loaded, at each viewport (narrowest last, where problems are likeliest)."""
        self.fits(where, REFLOW_WIDTH)
        for width, scheme in reversed(VIEWPORTS):
            self.page.emulate_media(color_scheme=scheme)
            self.fits(where, width)
            results = self.axe.run(self.page)
            for violation in results.response["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    targets = [node["target"] for node in violation["nodes"][:3]]
                    self.problems.append(
                        f"{where} at {width}px {scheme}: {violation['id']} "
                        f"({violation['impact']}) {targets}"
                    )

    def fits(self, where: str, width: int) -> None:
        self.page.set_viewport_size({"width": width, "height": 800})
        scroll_width = self.page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            wide = self.page.evaluate(WIDEST, width)
            self.problems.append(f"{where} at {width}px: {scroll_width}px wide ({wide})")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(browser, live_server):
    opened: list[Visitor] = []

    def _open() -> Visitor:
        opened.append(Visitor(browser, live_server.url))
        return opened[-1]

    yield _open
    for each in opened:
        each.close()


def _visit_all(visitor: Visitor, pages: tuple[Page, ...], data: Data) -> None:
    for page in pages:
        visitor.check(reverse(page.view_name, kwargs=page.kwargs(data)) + page.query)
    assert visitor.problems == [], "\n".join(visitor.problems)


def test_a_member_s_pages_fit_a_phone_and_pass_axe(visitor, data):
    alice = visitor()
    device = TOTPDevice.objects.get(pk=data.alice_device_id)
    alice.sign_in("alice@acme.test", code=lambda: code_for(device))
    _visit_all(alice, MEMBER_PAGES, data)


def test_an_administrator_s_pages_fit_a_phone_and_pass_axe(visitor, data):
    admin = visitor()
    admin.sign_in("admin@acme.test")
    _visit_all(admin, ADMINISTRATOR_PAGES, data)


def test_the_sign_in_and_password_reset_pages_fit_a_phone_and_pass_axe(visitor, data):
    _visit_all(visitor(), ANONYMOUS_PAGES, data)


def test_filtering_the_audit_log_keeps_one_results_region(visitor, data):
    admin = visitor()
    admin.sign_in("admin@acme.test")
    admin.page.goto(reverse("accounts:audit-log"))
    with admin.page.expect_response(lambda response: "audit-log" in response.url):
        admin.page.get_by_role("button", name="Search").click()
    admin.page.wait_for_load_state("networkidle")
    assert admin.page.locator("[id=results]").count() == 1


def _nav(page):
    return page.get_by_role("navigation", name="Main")


def test_the_menu_opens_by_keyboard_and_marks_the_current_page(visitor, data):
    admin = visitor()
    admin.sign_in("admin@acme.test")
    page = admin.page
    security = _nav(page).get_by_role("button", name="Security")
    # Links in a closed group are hidden, so found with include_hidden.
    audit_log = _nav(page).get_by_role("link", name="Audit Log", include_hidden=True)
    assert security.get_attribute("aria-expanded") == "false" and not audit_log.is_visible()

    security.focus()
    page.keyboard.press("Enter")
    assert security.get_attribute("aria-expanded") == "true" and audit_log.is_visible()
    page.keyboard.press("Escape")
    assert not audit_log.is_visible()
    assert page.evaluate("document.activeElement.textContent").startswith("Security")
    page.keyboard.press(" ")
    page.keyboard.press("Tab")  # Overview
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Audit Log"
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings/security/audit-log/")

    assert audit_log.get_attribute("aria-current") == "page"
    assert _nav(page).get_by_role("button", name="Security (current section)").count() == 1
    assert audit_log.is_hidden()  # the new page opens with the menu closed
    assert _nav(page).locator("[aria-current]").count() == 1
    # An event under the Audit Log: the log's link marks the section, the breadcrumbs lead back.
    page.locator("[data-testid=events] tbody a").first.click()
    page.wait_for_url("**/audit-log/*/")
    assert audit_log.get_attribute("aria-current") == "true"
    crumbs = page.get_by_role("navigation", name="Breadcrumb").get_by_role("link")
    assert crumbs.all_inner_texts() == ["Security settings", "Audit Log"]


def test_the_menu_opens_by_tap_on_a_phone_and_closes_on_a_tap_elsewhere(browser, live_server, data):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 390, "height": 800},
        has_touch=True,
        is_mobile=True,
        timezone_id=TIME_ZONE,
    )
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto("/sign-in/")
        page.fill("input[name=email]", "admin@acme.test")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").tap()
        _signed_in(page)
        toggle = page.get_by_role("button", name="Menu")
        organization = _nav(page).get_by_role("button", name="Organization")
        assert not organization.is_visible()

        toggle.tap()
        organization.tap()
        members = page.locator("#site-nav").get_by_role("link", name="Members", include_hidden=True)
        assert members.is_visible()
        page.get_by_role("heading", level=1).tap()
        assert not members.is_visible()
        organization.tap()
        members.tap()
        page.wait_for_url("**/settings/security/members/")
        assert members.get_attribute("aria-current") == "page"
        assert toggle.get_attribute("aria-expanded") == "false"  # the new page opens folded
    finally:
        context.close()


def test_without_scripts_every_menu_link_shows(browser, live_server, data):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto("/sign-in/")
        page.fill("input[name=email]", "admin@acme.test")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/profile/")
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 800})
            links = _nav(page).get_by_role("link")
            assert links.count() >= 15
            assert all(links.nth(i).is_visible() for i in range(links.count()))
            assert not _nav(page).get_by_role("button", name="Security").is_visible()
    finally:
        context.close()
