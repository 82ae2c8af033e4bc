"""The time zone each person reads times in: which names are zones, and activating a person's.

A person's zone (User.time_zone) comes from their browser after their first sign-in and may be
changed on Profile; every page shows times in it, and says which it is. CSV exports and the API
stay in UTC.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from itertools import groupby

DEFAULT_ZONE = "UTC"


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """Every IANA name this Python knows, including the old aliases browsers still send."""
    return frozenset(zoneinfo.available_timezones())


def zone_valid(name: str) -> bool:
    return name in zone_names()


@lru_cache(maxsize=1)
def zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The zones to offer, grouped by region ("Europe": Europe/Berlin ...), UTC first.

    Old aliases ("US/Pacific", "Japan") and fixed offsets ("Etc/GMT+5") are valid when stored but
    not offered: each has a regional name.
    """
    regional = sorted(
        name
        for name in zone_names()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/", "Canada/", "Brazil/"))
    )
    groups: list[tuple[str, list[tuple[str, str]]]] = [("", [(DEFAULT_ZONE, DEFAULT_ZONE)])]
    for region, names in groupby(regional, key=lambda name: name.split("/", 1)[0]):
        groups.append((region, [(name, name.replace("_", " ")) for name in names]))
    return groups


def zone_of(user: object) -> str:
    """The zone a person's times are shown in: theirs once known (and still a zone), else UTC."""
    name = getattr(user, "time_zone", "") or ""
    return name if zone_valid(name) else DEFAULT_ZONE
