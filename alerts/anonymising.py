"""Which networks hide who signs in: Tor exits (audit.tor's list) and hosting providers by AS.

People sign in from homes, offices and phones; a sign-in from a data centre is a VPN service, a
proxy or a script on a rented server. The built-in list names large cloud and hosting operators
and the networks consumer VPN services rent from; ALERTS_HOSTING_ASNS replaces it. Left out on
purpose: Cloudflare (AS13335), whose WARP and Zero Trust clients carry many companies' ordinary
employees, and mobile or residential carriers of any kind.
"""

from __future__ import annotations

from django.conf import settings

DEFAULT_HOSTING_ASNS: dict[int, str] = {
    16509: "Amazon Web Services",
    14618: "Amazon Web Services",
    8075: "Microsoft (Azure)",
    15169: "Google",
    396982: "Google Cloud",
    31898: "Oracle Cloud",
    14061: "DigitalOcean",
    63949: "Akamai Connected Cloud (Linode)",
    20473: "Vultr",
    24940: "Hetzner Online",
    16276: "OVHcloud",
    51167: "Contabo",
    12876: "Scaleway",
    45102: "Alibaba Cloud",
    9009: "M247 (hosts many VPN services)",
    60068: "Datacamp / CDN77 (hosts many VPN services)",
    212238: "Datacamp (hosts many VPN services)",
}


def hosting_asns() -> frozenset[int]:
    """The AS numbers counted as hosting providers: ALERTS_HOSTING_ASNS, else the built-in list."""
    configured = settings.ALERTS_HOSTING_ASNS
    return frozenset(configured) if configured else frozenset(DEFAULT_HOSTING_ASNS)
