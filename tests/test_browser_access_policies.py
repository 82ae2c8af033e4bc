"""In Chromium: an administrator blocks a network for members, previews it, a member's sign-in is
refused, and the administrator finds the refusal, with its rule, in the Audit Log."""

from __future__ import annotations

import pytest

from accounts.models import Role

from .factories import OrganizationFactory, member
from .helpers import submit_sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "audit"]),
]


def test_an_administrator_blocks_a_network_and_sees_the_refused_sign_in(browser, live_server):
    organization = OrganizationFactory.create(name="Acme")
    admin = member(organization, Role.ADMINISTRATOR, email="boss@acme.test")
    alice = member(organization, Role.MEMBER, email="alice@acme.test")
    admin_context = browser.new_context(base_url=live_server.url)
    admin_context.set_default_timeout(10_000)
    page = admin_context.new_page()
    submit_sign_in(page, admin.email)
    page.wait_for_url("**/profile/")

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Organization").click()
    nav.get_by_role("link", name="Access policies").click()
    page.wait_for_url("**/settings/security/access-policies/")
    page.fill("input[name=name]", "Loopback")
    page.fill("textarea[name=cidrs] >> nth=-1", "127.0.0.0/8\n::1")
    page.get_by_role("button", name="Add list").click()
    page.wait_for_url("**/settings/security/access-policies/")
    assert page.get_by_text("Network list “Loopback” added.").is_visible()

    rules = page.locator("form[action$='/rules/']")
    rules.locator("select[name=role]").select_option(Role.MEMBER)
    rules.locator("select[name=action]").select_option("block")
    rules.locator("select[name=network_list]").select_option(label="Loopback")
    rules.get_by_role("button", name="Add rule").click()
    page.wait_for_url("**/settings/security/access-policies/")
    assert page.get_by_text("Network rule added.").is_visible()

    preview = page.locator("form[method=get]")
    preview.locator("input[name=ip]").fill("127.0.0.1")
    preview.locator("select[name=role]").select_option(Role.MEMBER)
    preview.get_by_role("button", name="Preview").click()
    assert (
        "Refused: Loopback is blocked for members." in page.get_by_test_id("preview").inner_text()
    )

    member_context = browser.new_context(base_url=live_server.url)
    member_context.set_default_timeout(10_000)
    member_page = member_context.new_page()
    submit_sign_in(member_page, alice.email)
    member_page.get_by_text("does not allow signing in from this network").wait_for()
    member_context.close()

    page.goto("/settings/security/audit-log/?q=reason%3Apolicy_denied")
    events = page.get_by_test_id("events")
    assert "Refused by an access policy" in events.inner_text()
    assert "alice@acme.test" in events.inner_text()
    events.locator("tbody tr td:first-child a").first.click()
    page.get_by_text("network_block:Loopback").wait_for()
    admin_context.close()
