"""Client IP resolution: REMOTE_ADDR, or through trusted proxies the right-most untrusted hop."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HEADER_KEPT = 512


@dataclass(frozen=True)
class ResolvedIP:
    ip: str | None
    # The raw forwarding header, kept only when it could not be parsed (for the event's details).
    unparsable_header: str | None = None


def parse_ip(value: str) -> IPAddress | None:
    """Parse one address as proxies write it: ports, brackets and IPv6 zone ids are dropped."""
    text = value.strip().strip('"')
    if not text or len(text) > 64:
        return None
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]  # zone id (fe80::1%eth0) names a local interface, not a host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def resolve_client_ip(
    remote_addr: str | None, forwarded_for: str | None, trusted_proxies: Sequence[IPNetwork]
) -> ResolvedIP:
    """Return the client address; never raises, whatever the headers hold."""
    peer = parse_ip(remote_addr or "")
    if peer is None:
        return ResolvedIP(None, (remote_addr or "")[:MAX_HEADER_KEPT] or None)
    if not forwarded_for or not _trusted(peer, trusted_proxies):
        # A header from a client we do not trust is ignored, whatever it says.
        return ResolvedIP(str(peer))
    hops = forwarded_for.split(",")
    for hop in reversed(hops):
        address = parse_ip(hop)
        if address is None:
            return ResolvedIP(None, forwarded_for[:MAX_HEADER_KEPT])
        if not _trusted(address, trusted_proxies):
            return ResolvedIP(str(address))
    # Every hop is one of our proxies: the left-most is the closest we know to the client.
    first = parse_ip(hops[0])
    return ResolvedIP(str(first) if first else str(peer))


def network_parse(text: str, *, widest_v4: int, widest_v6: int) -> IPNetwork:
    """Parse one allowlist entry (an address or a CIDR) into its network, or raise ValueError
    with a sentence saying what is wrong: not an address or network, or wider than /widest."""
    value = text.strip()
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network (write e.g. 203.0.113.0/24 or "
            "2001:db8:1::/48)."
        ) from None
    widest = widest_v4 if network.version == 4 else widest_v6
    if network.prefixlen < widest:
        raise ValueError(
            f"{network.with_prefixlen} is too broad: an allowlist entry may be at most a "
            f"/{widest} for IPv{network.version} ({network.num_addresses:,} addresses is more "
            "than one organization's offices)."
        )
    return network
