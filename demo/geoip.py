"""A small GeoIP2-City database of the demo's networks, written at seed time for `make run`.

Each demo place's /24 is put in its city, as MaxMind's database would put an ISP's network, so
sign-ins show a location and the country rules fire on the demo's data and on requests that
come from those addresses. Only the demo's own (documentation and benchmarking) ranges are in
it: nothing real is located.
"""

from __future__ import annotations

from pathlib import Path

from .activity import ATTACKER, CITIES, PLACES, Place
from .scenarios import SCENARIO_PLACES, TOR

COUNTRY_NAMES = {
    "AU": "Australia",
    "BR": "Brazil",
    "CA": "Canada",
    "DE": "Germany",
    "FR": "France",
    "GB": "United Kingdom",
    "IN": "India",
    "JP": "Japan",
    "NG": "Nigeria",
    "NL": "Netherlands",
    "RU": "Russia",
    "SG": "Singapore",
    "US": "United States",
    "VN": "Vietnam",
}


def demo_places() -> dict[str, Place]:
    """Every demo network (a /24) and its place; the first place named for a network wins."""
    networks: dict[str, Place] = {}
    for place in [*CITIES.values(), *PLACES, ATTACKER, TOR, *SCENARIO_PLACES]:
        networks.setdefault(f"{place[4]}0/24", place)
    return networks


def demo_geoip_build(path: Path) -> Path:
    """Write the demo's GeoIP2-City database at `path` (its folder made); returns the path."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    for network, (country, city, latitude, longitude, _) in demo_places().items():
        writer.insert_network(
            IPSet([network]),
            {
                "country": {"iso_code": country, "names": {"en": COUNTRY_NAMES[country]}},
                "city": {"names": {"en": city}},
                "location": {"latitude": latitude, "longitude": longitude},
            },
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    writer.to_db_file(str(partial))
    partial.replace(path)  # a server reading the old file never sees half a new one
    return path
