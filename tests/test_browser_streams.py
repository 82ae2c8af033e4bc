"""In Chromium: an Enterprise administrator adds a syslog stream, tests it, replays, removes it.

Each page on the way is checked as tests/test_browser_pages.py checks every page (it fits a
phone and passes axe); the syslog listener is a real TLS server.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role, Tier
from streams.models import StreamDestination

from .factories import OrganizationFactory, member
from .helpers import submit_sign_in
from .streams_support import SyslogListener, self_signed
from .test_browser_pages import Visitor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_adds_tests_replays_and_removes_a_syslog_stream(
    browser, live_server, settings, tmp_path
):
    settings.STREAMS_ALLOW_PRIVATE = True  # the listener is on loopback
    settings.STREAMS_TIMEOUT_SECONDS = 2.0
    admin = member(OrganizationFactory.create(tier=Tier.ENTERPRISE), Role.ADMINISTRATOR)
    certificate = self_signed(tmp_path)
    listener = SyslogListener(certificate).start()
    visitor = Visitor(browser, live_server.url)
    page = visitor.page
    try:
        submit_sign_in(page, admin.email)
        page.wait_for_url("**/profile/")

        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("button", name="Security").click()
        nav.get_by_role("link", name="Streams").click()
        page.wait_for_url("**/settings/security/streams/")
        page.get_by_role("link", name="Syslog over TLS (RFC 5424)").click()
        visitor.check_here("streams:stream-create")
        page.fill("input[name=name]", "Production SIEM")
        page.fill("input[name=host]", "localhost")
        page.fill("input[name=port]", str(listener.port))
        page.fill("textarea[name=ca_certificate]", certificate.cert_pem)
        page.get_by_role("button", name="Add destination").click()
        page.wait_for_url("**/settings/security/streams/")
        assert page.get_by_text("Added the stream “Production SIEM”").is_visible()
        visitor.check_here("streams:stream-list")
        destination = StreamDestination.objects.get()

        page.get_by_role("button", name="Send test event").click()
        page.get_by_text("The test event (id 0) reached “Production SIEM”").wait_for()
        # OCSF, the first format offered, carries our id as metadata.uid.
        sent = listener.messages[-1].json
        assert sent["metadata"]["uid"] == "0" and "class_uid" in sent

        page.get_by_role("link", name="Production SIEM").click()
        page.wait_for_url(f"**{reverse('streams:stream-edit', args=[destination.pk])}")
        visitor.check_here("streams:stream-edit")
        assert certificate.cert_pem.strip() in page.input_value("textarea[name=ca_certificate]")

        visitor.check(reverse("streams:stream-replay", args=[destination.pk]))
        page.get_by_role("button", name="Replay").click()
        page.get_by_text("Choose the day to send events again from.").wait_for()

        visitor.check(reverse("streams:stream-delete", args=[destination.pk]))
        page.get_by_role("button", name="Remove stream").click()
        page.get_by_text("Removed the stream “Production SIEM”").wait_for()
        assert not StreamDestination.objects.exists()
        assert visitor.problems == [], "\n".join(visitor.problems)
    finally:
        visitor.close()
        listener.stop()
