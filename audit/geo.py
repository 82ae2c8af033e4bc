"""What a local MaxMind database says about an address: its place (GEOIP_CITY_DB) and its network
operator (GEOIP_ASN_DB). Empty when no database is set, or the one set cannot be read."""

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


@dataclass(frozen=True)
class AutonomousSystem:
    """The network an address belongs to: its AS number and the organization that runs it."""

    number: int
    organization: str = ""


EMPTY = GeoLocation()
# Each database opened once per process; None for one that could not be opened (logged once).
_readers: dict[str, Reader | None] = {}
# Databases found to be of the wrong kind for a lookup (an ASN path naming a City database).
_wrong_kind: set[str] = set()
_lock = threading.Lock()


def _reader(path: str) -> Reader | None:
    if path not in _readers:
        with _lock:
            if path not in _readers:
                import geoip2.database
                from maxminddb import InvalidDatabaseError

                try:
                    _readers[path] = geoip2.database.Reader(path)
                except (OSError, ValueError, InvalidDatabaseError):
                    logger.exception(
                        "GeoIP database %s could not be opened; its lookups stay empty", path
                    )
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


def autonomous_system_of(ip: str | None) -> AutonomousSystem | None:
    """The address's AS from the ASN database (GEOIP_ASN_DB); None on any miss or error."""
    path = settings.GEOIP_ASN_DB
    if not ip or not path:
        return None
    reader = _reader(path)
    if reader is None or path in _wrong_kind:
        return None
    try:
        found = reader.asn(ip)
    except TypeError:  # not an ASN database (geoip2 checks the database type)
        with _lock:
            if path not in _wrong_kind:
                _wrong_kind.add(path)
                logger.error(
                    "GeoIP database %s is not an ASN database; ASN lookups stay empty", path
                )
        return None
    except Exception:  # AddressNotFoundError, private ranges, a damaged database
        return None
    if found.autonomous_system_number is None:
        return None
    return AutonomousSystem(
        number=found.autonomous_system_number,
        organization=(found.autonomous_system_organization or "")[:200],
    )


def reset_readers() -> None:
    """Forget opened databases (tests that point GEOIP_CITY_DB or GEOIP_ASN_DB elsewhere)."""
    with _lock:
        _readers.clear()
        _wrong_kind.clear()
