"""The client IP resolver of the brief, table-driven, and through the real sign-in view."""

from __future__ import annotations

import ipaddress

import pytest

from audit.ip import resolve_client_ip
from audit.models import EventType

from .factories import member
from .helpers import events, sign_in

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


@pytest.mark.parametrize(
    ("remote", "forwarded", "proxies", "expected_ip", "keeps_header"),
    [
        # No proxy trusted (the default): the header is ignored, whatever it says.
        ("203.0.113.5", "1.2.3.4", [], "203.0.113.5", False),
        ("203.0.113.5", None, PROXIES, "203.0.113.5", False),
        # A forged header from an untrusted client is ignored even when proxies are configured.
        ("198.51.100.7", "1.2.3.4", PROXIES, "198.51.100.7", False),
        # Through a trusted proxy: the right-most address that is not a proxy.
        ("10.0.0.2", "203.0.113.9", PROXIES, "203.0.113.9", False),
        ("10.0.0.2", "6.6.6.6, 203.0.113.9", PROXIES, "203.0.113.9", False),
        ("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.1.1.1", PROXIES, "203.0.113.9", False),
        # Ports are stripped, IPv6 is understood, brackets and zone ids are dropped.
        ("10.0.0.2", "203.0.113.9:4711", PROXIES, "203.0.113.9", False),
        ("10.0.0.2", "[2001:db8::1]:443", PROXIES, "2001:db8::1", False),
        ("10.0.0.2", "2001:db8::2", PROXIES, "2001:db8::2", False),
        ("10.0.0.2", "fe80::1%eth0", PROXIES, "fe80::1", False),
        ("2001:db8:ffff::1", "2001:db8::3", PROXIES, "2001:db8::3", False),
        ("::ffff:203.0.113.4", None, [], "203.0.113.4", False),
        # Garbage stores no IP and keeps the raw header.
        ("10.0.0.2", "not-an-ip", PROXIES, None, True),
        ("10.0.0.2", "unknown, 10.1.1.1", PROXIES, None, True),
        ("10.0.0.2", "1.2.3.4.5", PROXIES, None, True),
        ("10.0.0.2", "x" * 10_000, PROXIES, None, True),
        ("10.0.0.2", "", PROXIES, "10.0.0.2", False),
        # Garbage to the left of the client's real address does not matter.
        ("10.0.0.2", "garbage, 203.0.113.9", PROXIES, "203.0.113.9", False),
        # Only proxies in the chain: the left-most is the closest to the client we know.
        ("10.0.0.2", "10.9.9.9, 10.1.1.1", PROXIES, "10.9.9.9", False),
        # An unparsable peer address.
        ("", None, [], None, False),
        ("garbage", None, [], None, True),
    ],
)
def test_resolve_client_ip(remote, forwarded, proxies, expected_ip, keeps_header):
    resolved = resolve_client_ip(remote, forwarded, proxies)
    assert resolved.ip == expected_ip
    assert (resolved.unparsable_header is not None) is keeps_header
    if resolved.unparsable_header:
        assert len(resolved.unparsable_header) <= 512


@pytest.mark.django_db
def test_forged_forwarded_for_is_ignored_by_default(client):
    user = member()
    sign_in(client, user.email, REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR="1.1.1.1")
    assert events(EventType.LOGIN_SUCCEEDED)[0].ip_address == "198.51.100.20"


@pytest.mark.django_db
def test_trusted_proxy_yields_the_forwarded_client(client, settings):
    settings.TRUSTED_PROXIES = PROXIES
    user = member()
    sign_in(
        client,
        user.email,
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.50:5555",
    )
    assert events(EventType.LOGIN_SUCCEEDED)[0].ip_address == "203.0.113.50"


@pytest.mark.django_db
def test_garbage_forwarded_for_stores_no_ip_and_keeps_the_header(client, settings):
    settings.TRUSTED_PROXIES = PROXIES
    user = member()
    response = sign_in(
        client, user.email, "wrong", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="<script>"
    )
    assert response.status_code == 200
    [failed] = events(EventType.LOGIN_FAILED)
    assert failed.ip_address is None
    assert failed.details["unparsable_client_ip"] == "<script>"
