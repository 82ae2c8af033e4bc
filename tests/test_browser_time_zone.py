"""After the first sign-in the browser's zone becomes the person's; every page then says it."""

from __future__ import annotations

import pytest

from accounts.models import Role, User

from .factories import member
from .helpers import submit_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page_in_tokyo(browser, live_server):
    context = browser.new_context(base_url=live_server.url, timezone_id="Asia/Tokyo")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_the_first_sign_in_stores_the_browsers_zone_and_pages_show_it(page_in_tokyo):
    page = page_in_tokyo
    user = member(role=Role.ADMINISTRATOR)

    submit_sign_in(page, user.email)

    page.wait_for_url("**/profile/")
    label = page.get_by_test_id("time-zone")
    label.filter(has_text="Times in Asia/Tokyo").wait_for()
    assert User.objects.get(pk=user.pk).time_zone == "Asia/Tokyo"
    page.goto("/profile/activity/")
    assert page.get_by_test_id("time-zone").inner_text() == "Times in Asia/Tokyo"
    assert "JST" in page.locator("table.events time").first.get_attribute("title")


def test_a_chosen_zone_is_kept_at_the_next_sign_in(page_in_tokyo):
    page = page_in_tokyo
    user = member(role=Role.MEMBER, time_zone="Europe/Berlin")

    submit_sign_in(page, user.email)

    page.wait_for_url("**/profile/")
    assert page.get_by_test_id("time-zone").inner_text() == "Times in Europe/Berlin"
    assert page.get_by_test_id("time-zone").get_attribute("data-time-zone-detect") is None
    assert User.objects.get(pk=user.pk).time_zone == "Europe/Berlin"
