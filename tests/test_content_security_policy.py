"""Every response carries the Content-Security-Policy, and no template needs it relaxed (issue 12,
finding 9). The browser proof is tests/test_browser_csp.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .factories import member
from .helpers import CSP_POLICY, csp_directives, sign_in

ROOT = Path(__file__).resolve().parent.parent


def _policy(response) -> set[str]:
    return csp_directives(response.get("Content-Security-Policy", ""))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/sign-in/", {}, 200),
        ("/password-reset/", {}, 200),
        ("/no-such-page/", {}, 404),
        ("/api/v1/events", {}, 401),
        ("/health/", {}, 200),
        ("/profile/", {}, 302),
    ],
)
def test_every_response_carries_the_policy(client, path, headers, status):
    response = client.get(path, **headers)

    assert response.status_code == status
    assert _policy(response) == CSP_POLICY


@pytest.mark.django_db
def test_signed_in_pages_and_htmx_fragments_carry_the_policy(client):
    user = member()
    sign_in(client, user.email)

    page = client.get("/profile/activity/")
    fragment = client.get("/profile/activity/?outcome=failure", HTTP_HX_REQUEST="true")

    assert page.status_code == fragment.status_code == 200
    assert _policy(page) == _policy(fragment) == CSP_POLICY


# Mail is read in mail clients, not under our policy: its inline styles are how mail is styled.
# The compliance report's document travels in its bundle as one self-contained file, read
# offline by an auditor (reports.bundle): its style is inside it, never served by the app.
OFFLINE_DOCUMENTS = {"templates/reports/report_document.html"}
PAGE_TEMPLATES = sorted(
    path
    for path in (ROOT / "templates").rglob("*.html")
    if "email" not in path.parts and str(path.relative_to(ROOT)) not in OFFLINE_DOCUMENTS
)
INLINE = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "a <style> block": re.compile(r"<style\b", re.I),
    "a style attribute": re.compile(r"\sstyle\s*=", re.I),
    "an on* event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "an hx-on handler (evaluated code)": re.compile(r"\shx-on[:-]", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
}


@pytest.mark.parametrize("template", PAGE_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_templates_need_no_inline_script_or_style(template):
    text = template.read_text()
    found = [what for what, pattern in INLINE.items() if pattern.search(text)]
    assert found == [], f"{template.relative_to(ROOT)} has {', '.join(found)}"


@pytest.mark.django_db
def test_a_refused_csrf_token_gets_our_own_page_not_django_s_inline_styled_one():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        "/sign-in/", {"email": "a@b.test", "password": "x"}
    )

    assert response.status_code == 403
    assert _policy(response) == CSP_POLICY
    assert b"This form has expired" in response.content
    assert b"<style" not in response.content
