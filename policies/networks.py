"""Sets of networks as sorted address ranges: membership by bisection, and coverage.

A sign-in checked against a thousand CIDRs asks two bisections, not a thousand `in` tests.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

# Big enough for an office's, a VPN's and a cloud's ranges; a list is compiled at every change.
MAX_CIDRS = 5000


class CidrError(ValueError):
    """A CIDR list that cannot be used, with the reason a person reads."""


def parse_cidrs(text: str) -> list[str]:
    """The networks of a text (one per line, or separated by commas or spaces), normalised.

    Refuses, with the reason, a malformed network, one with host bits set, and two that
    overlap (one inside the other, or the same twice).
    """
    tokens = [t for t in text.replace(",", " ").split() if t]
    if not tokens:
        raise CidrError("Enter at least one network, such as 203.0.113.0/24 or 2001:db8::/32.")
    if len(tokens) > MAX_CIDRS:
        raise CidrError(f"A list holds at most {MAX_CIDRS} networks; this one has {len(tokens)}.")
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for token in tokens:
        shown = token if len(token) <= 60 else token[:60] + "…"
        try:
            network = ipaddress.ip_network(token, strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                loose = ipaddress.ip_network(token, strict=False)
                raise CidrError(
                    f"{shown} has host bits set: the network is {loose.with_prefixlen}."
                ) from None
            raise CidrError(
                f"{shown} is not a network: write an IPv4 or IPv6 address with an optional "
                "prefix length, such as 203.0.113.0/24 or 2001:db8::/32."
            ) from None
        networks.append(network)
    for version in (4, 6):
        same = sorted(
            (n for n in networks if n.version == version),
            key=lambda n: (int(n.network_address), -int(n.broadcast_address)),
        )
        for earlier, later in zip(same, same[1:], strict=False):
            if int(later.network_address) <= int(earlier.broadcast_address):
                raise CidrError(
                    f"{later.with_prefixlen} overlaps {earlier.with_prefixlen}: keep one of them."
                )
    return [n.with_prefixlen for n in networks]


@dataclass(frozen=True)
class NetworkSet:
    """Merged, sorted [first, last] address ranges, per IP version."""

    starts4: tuple[int, ...] = ()
    ends4: tuple[int, ...] = ()
    starts6: tuple[int, ...] = ()
    ends6: tuple[int, ...] = ()

    @classmethod
    def of(cls, cidrs: Iterable[str]) -> NetworkSet:
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for cidr in cidrs:
            network = ipaddress.ip_network(cidr, strict=False)
            ranges[network.version].append(
                (int(network.network_address), int(network.broadcast_address))
            )
        merged = {version: _merge(pairs) for version, pairs in ranges.items()}
        return cls(
            tuple(a for a, _ in merged[4]),
            tuple(b for _, b in merged[4]),
            tuple(a for a, _ in merged[6]),
            tuple(b for _, b in merged[6]),
        )

    def __bool__(self) -> bool:
        return bool(self.starts4 or self.starts6)

    def union(self, other: NetworkSet) -> NetworkSet:
        return NetworkSet(
            *_split(
                _merge([*_pairs(self.starts4, self.ends4), *_pairs(other.starts4, other.ends4)])
            ),
            *_split(
                _merge([*_pairs(self.starts6, self.ends6), *_pairs(other.starts6, other.ends6)])
            ),
        )

    def contains(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        starts, ends = (
            (self.starts4, self.ends4) if address.version == 4 else (self.starts6, self.ends6)
        )
        value = int(address)
        index = bisect_right(starts, value) - 1
        return index >= 0 and value <= ends[index]

    def covers(self, other: NetworkSet) -> bool:
        """Whether every address of `other` is in this set."""
        for starts, ends, inner_starts, inner_ends in (
            (self.starts4, self.ends4, other.starts4, other.ends4),
            (self.starts6, self.ends6, other.starts6, other.ends6),
        ):
            for first, last in zip(inner_starts, inner_ends, strict=True):
                index = bisect_right(starts, first) - 1
                # Merged ranges never touch: one range must hold the whole inner one.
                if index < 0 or ends[index] < last:
                    return False
        return True


def parse_address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _merge(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(pairs):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _pairs(starts: tuple[int, ...], ends: tuple[int, ...]) -> list[tuple[int, int]]:
    return list(zip(starts, ends, strict=True))


def _split(pairs: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(a for a, _ in pairs), tuple(b for _, b in pairs)


# Every address there is.
EVERYWHERE = NetworkSet.of(["0.0.0.0/0", "::/0"])
