"""The one vetted way out (outbound.http): address policy, pinning, TLS, redirects, limits."""

from __future__ import annotations

import ipaddress

import pytest

from outbound import http as outbound
from outbound.addresses import is_public

from .outbound_support import (
    HOSTILE_URLS,
    Answer,
    Certificate,
    Listener,
    Receiver,
    certificate,
    running,
)


class CountingResolver:
    """Answers from a script, one answer per call: what a rebinding DNS server does."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "224.0.0.1",
        "::ffff:10.0.0.1",
        "2002:a9fe:a9fe::1",
        "64:ff9b::c0a8:101",
        "2001::1",
        "64:ff9b:1::808:808",
        "fec0::1",
        "3fff::1",
        "5f00::1",
        "ff0e::1",
        "192.88.99.1",
        "240.0.0.1",
    ],
)
def test_addresses_that_lead_to_no_public_host_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "2606:4700::1111", "::ffff:93.184.215.14", "64:ff9b::5db8:d70e"],
)
def test_public_unicast_addresses_and_their_translations_are_public(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(("url", "message"), HOSTILE_URLS)
def test_hostile_urls_are_refused_before_any_connection(url, message):
    with Listener() as listener, pytest.raises(outbound.Refused, match=message):
        outbound.request("POST", url.format(port=listener.port), body=b"{}", timeout=1)
    assert listener.accepted == 0


@pytest.mark.parametrize(
    "answer",
    [["64:ff9b::7f00:1"], ["93.184.215.14", "127.0.0.1"], ["2002:c0a8:101::"], ["::1"]],
)
def test_a_host_name_with_any_non_public_address_is_refused(answer):
    resolver = CountingResolver(answer)
    assert "private, loopback or reserved" in (
        outbound.url_problem("https://hooks.example.com/x", resolver=resolver) or ""
    )


def test_the_connection_goes_to_the_address_vetted_not_to_a_second_answer():
    # The second answer (a rebinding) is an address nothing listens on: a client that resolved
    # again to connect would time out there instead of reaching the receiver.
    resolver = CountingResolver(["127.0.0.1"], ["10.255.255.1"])
    with running(Receiver()) as receiver:
        response = outbound.request(
            "POST",
            f"http://rebind.test:{receiver.port}/hook",
            body=b"{}",
            allow_private=True,
            resolver=resolver,
            timeout=2,
        )
    assert response.status == 204
    assert response.address == "127.0.0.1"
    assert resolver.calls == [("rebind.test", receiver.port)]
    [received] = receiver.requests
    assert received.headers["Host"] == f"rebind.test:{receiver.port}"


def test_tls_is_verified_against_the_url_host_while_connecting_to_the_vetted_address(tmp_path):
    cert = certificate(tmp_path, name="hook.test", san="DNS:hook.test")
    resolver = CountingResolver(["127.0.0.1"])
    with running(Receiver(tls=cert)) as receiver:
        response = outbound.request(
            "POST",
            f"https://hook.test:{receiver.port}/hook",
            body=b"{}",
            allow_private=True,
            resolver=resolver,
            ca_certs=cert.cert,
            timeout=2,
        )
    assert response.status == 204
    assert receiver.server_names == ["hook.test"]  # SNI
    assert receiver.requests[0].headers["Host"] == f"hook.test:{receiver.port}"


def _assert_tls_refused(served: Certificate, *, trusting: Certificate, reason: str) -> None:
    """A request to hook.test, served with `served` and trusting only `trusting`, never lands."""
    with (
        running(Receiver(tls=served)) as receiver,
        pytest.raises(outbound.RequestFailed, match=f"TLS failed.*{reason}"),
    ):
        outbound.request(
            "POST",
            f"https://hook.test:{receiver.port}/hook",
            allow_private=True,
            resolver=CountingResolver(["127.0.0.1"]),
            ca_certs=trusting.cert,
            timeout=2,
        )
    assert receiver.requests == []


def test_a_certificate_for_another_host_name_is_refused(tmp_path):
    cert = certificate(tmp_path, name="other.test", san="DNS:other.test")
    _assert_tls_refused(cert, trusting=cert, reason="(?i:hostname)")


def test_a_certificate_from_an_untrusted_issuer_is_refused(tmp_path):
    served = certificate(tmp_path, name="hook.test", san="DNS:hook.test")
    trusted = certificate(tmp_path, name="trusted-ca", san="DNS:hook.test")
    _assert_tls_refused(served, trusting=trusted, reason="certificate verify failed")


def test_a_redirect_is_returned_not_followed():
    with running(Receiver()) as target, running(Receiver()) as receiver:
        receiver.answer = Answer(
            status=302, headers={"Location": f"http://127.0.0.1:{target.port}/internal"}
        )
        response = outbound.request(
            "POST", f"http://127.0.0.1:{receiver.port}/hook", allow_private=True, timeout=2
        )
    assert response.status == 302
    assert target.requests == []


def test_the_response_body_is_read_only_up_to_the_cap():
    with running(Receiver()) as receiver:
        receiver.answer = Answer(status=200, body=b"x" * 5_000_000)
        response = outbound.request(
            "GET",
            f"http://127.0.0.1:{receiver.port}/big",
            allow_private=True,
            max_response_bytes=1000,
            timeout=2,
        )
    assert response.body == b"x" * 1000
    assert response.truncated


def test_a_body_that_drips_slower_than_the_deadline_times_out():
    # Each byte arrives within the per-read timeout; the whole never does.
    with running(Receiver()) as receiver:
        receiver.answer = Answer(status=200, body=b"x" * 40, drip_bytes=1, drip_pause=0.1)
        with pytest.raises(outbound.RequestFailed) as failed:
            outbound.request(
                "GET", f"http://127.0.0.1:{receiver.port}/slow", allow_private=True, timeout=0.5
            )
    assert failed.value.timed_out


def test_a_closed_port_fails_the_request_without_raising_anything_else():
    with Listener() as listener:
        port = listener.port
    with pytest.raises(outbound.RequestFailed, match="could not connect to 127.0.0.1"):
        outbound.request("POST", f"http://127.0.0.1:{port}/", allow_private=True, timeout=1)


def test_an_ipv6_literal_is_connected_to_with_a_bracketed_host_header():
    with running(Receiver(host="::1")) as receiver:
        response = outbound.request(
            "POST", f"http://[::1]:{receiver.port}/hook", allow_private=True, timeout=2
        )
    assert response.status == 204
    assert receiver.requests[0].headers["Host"] == f"[::1]:{receiver.port}"


def test_an_international_host_name_is_resolved_and_named_in_its_ascii_form():
    resolver = CountingResolver(["127.0.0.1"])
    with running(Receiver()) as receiver:
        outbound.request(
            "POST",
            f"http://bücher.test:{receiver.port}/hook",
            allow_private=True,
            resolver=resolver,
            timeout=2,
        )
    assert resolver.calls == [("xn--bcher-kva.test", receiver.port)]
    assert receiver.requests[0].headers["Host"] == f"xn--bcher-kva.test:{receiver.port}"


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001"])
def test_ipv4_shorthands_are_refused_even_where_private_addresses_are_allowed(host):
    # Whatever they resolve to, they are not a name a certificate or a reader can check.
    with pytest.raises(outbound.Refused, match="neither a host name nor an IP address"):
        outbound.destination_vet(f"http://{host}/", allow_private=True)
