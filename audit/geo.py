"""Geo location from a local MaxMind City database (GEOIP_CITY_DB); empty when none is set."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from geoip2.database import Reader

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeoLocation:
    country: str = ""
    city: str = ""
    latitude: float | None = None
    longitude: float | None = None


EMPTY = GeoLocation()
# Each database opened once per process; None for one that could not be opened (logged once).
_readers: dict[str, Reader | None] = {}
_lock = threading.Lock()


def _reader(path: str) -> Reader | None:
    if path not in _readers:
        with _lock:
            if path not in _readers:
                import geoip2.database

                try:
                    _readers[path] = geoip2.database.Reader(path)
                except (OSError, ValueError):
                    logger.exception("GeoIP database %s could not be opened; geo stays empty", path)
                    _readers[path] = None
    return _readers.get(path)


def locate(ip: str | None) -> GeoLocation:
    """Look the address up; any miss or error gives an empty location."""
    path = settings.GEOIP_CITY_DB
    if not ip or not path:
        return EMPTY
    reader = _reader(path)
    if reader is None:
        return EMPTY
    try:
        found = reader.city(ip)
    except Exception:  # AddressNotFoundError, private ranges, a damaged database
        return EMPTY
    return GeoLocation(
        country=(found.country.iso_code or "")[:2],
        city=(found.city.name or "")[:128],
        latitude=found.location.latitude,
        longitude=found.location.longitude,
    )


def reset_readers() -> None:
    """Forget opened databases (tests that point GEOIP_CITY_DB elsewhere)."""
    with _lock:
        _readers.clear()
