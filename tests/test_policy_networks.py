"""Network sets: membership at the edges of ranges, merging, coverage, and the CIDR parser."""

from __future__ import annotations

import ipaddress

import pytest

from policies.networks import EVERYWHERE, CidrError, NetworkSet, parse_address, parse_cidrs

THOUSAND = [f"10.{i // 256}.{i % 256}.0/24" for i in range(1000)]


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("10.0.0.0", True),
        ("10.3.231.255", True),  # the last address of the thousandth /24
        ("10.3.232.0", False),
        ("9.255.255.255", False),
        ("2001:db8::", True),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", True),
        ("2001:db9::", False),
        ("::ffff:10.0.0.1", True),  # an IPv4-mapped IPv6 address is the IPv4 one
    ],
)
def test_membership_at_the_edges(address, inside):
    networks = NetworkSet.of([*THOUSAND, "2001:db8::/32"])
    assert networks.contains(parse_address(address)) is inside


def test_adjacent_networks_merge_into_one_range():
    networks = NetworkSet.of(THOUSAND)
    assert networks.starts4 == (int(ipaddress.ip_address("10.0.0.0")),)
    assert NetworkSet.of(["10.0.0.0/9"]).covers(NetworkSet.of(["10.0.0.0/16", "10.64.0.0/10"]))
    assert not networks.covers(NetworkSet.of(["10.3.224.0/20"]))  # past the last /24
    assert EVERYWHERE.covers(networks)
    assert not networks.covers(EVERYWHERE)


def test_a_thousand_networks_parse_and_two_overlapping_do_not():
    assert parse_cidrs("\n".join(THOUSAND)) == THOUSAND
    with pytest.raises(CidrError, match="10.0.1.0/24 overlaps 10.0.0.0/23"):
        parse_cidrs("10.0.0.0/23 10.0.1.0/24")
    with pytest.raises(CidrError, match="at most 5000"):
        parse_cidrs(" ".join(["192.0.2.1"] * 5001))
