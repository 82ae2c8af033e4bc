"""The Tor Project's list of exit relays: read from a local file, replaced as a whole.

Two formats are read, as the Tor Project publishes them: the bulk exit list (one address per
line, https://check.torproject.org/torbulkexitlist) and exit-addresses
(https://check.torproject.org/exit-addresses: `ExitNode <fingerprint>`, `Published ...`,
`LastStatus ...` and `ExitAddress <address> <date> <time>` lines). A file with anything else in
it is refused whole, naming the first line it could not read, and the list already loaded stays:
a truncated download or the wrong file never empties the list behind the operator's back.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .models import EventType, TorExitNode
from .services import event_record

# Lines of the exit-addresses format that carry nothing the list needs.
_SKIPPED_KEYWORDS = frozenset({"Published", "LastStatus"})
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")
# Longer lines are not of either format (and are not worth quoting in full).
MAX_LINE = 200
QUOTED = 60


class TorListError(ValueError):
    """The file is not a Tor exit list; the message names the line."""


@dataclass(frozen=True)
class TorExit:
    ip_address: str
    fingerprint: str = ""


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _refuse(number: int, line: str, why: str) -> TorListError:
    shown = line if len(line) <= QUOTED else line[:QUOTED] + "…"
    return TorListError(f"line {number}: {why}: {shown!r}")


def tor_exit_list_parse(lines: Iterable[bytes]) -> list[TorExit]:
    """Read either format into the exits it lists (each address once), or raise TorListError."""
    exits: dict[str, TorExit] = {}
    fingerprint = ""
    number = 0
    for number, raw in enumerate(lines, start=1):  # noqa: B007 - number is used after the loop
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise TorListError(f"line {number}: not text (a Tor exit list is ASCII)") from None
        if len(line) > MAX_LINE:
            raise _refuse(number, line, "too long for a Tor exit list line")
        if not line or line.startswith("#"):
            continue
        keyword, *rest = line.split()
        if keyword == "ExitNode":
            if len(rest) != 1 or not _FINGERPRINT.match(rest[0]):
                raise _refuse(number, line, "ExitNode without a relay fingerprint")
            fingerprint = rest[0].upper()
            continue
        if keyword in _SKIPPED_KEYWORDS:
            continue
        if keyword == "ExitAddress":
            address = _address(rest[0]) if rest else None
            if address is None:
                raise _refuse(number, line, "ExitAddress without a valid IP address")
            exits.setdefault(address, TorExit(address, fingerprint))
            continue
        address = _address(line)
        if address is None:
            raise _refuse(number, line, "not an IP address nor a line of the exit-addresses format")
        exits.setdefault(address, TorExit(address))
    if not exits:
        raise TorListError(
            f"no exit addresses in {number} line{'s' if number != 1 else ''}; "
            "an empty list would switch Tor detection off"
        )
    return list(exits.values())


def tor_exits_replace(*, exits: list[TorExit], source: str) -> int:
    """Replace the loaded list with these exits and record it; returns how many were loaded before.

    One transaction: the rules see the old list or the new one, never a half-loaded one.
    """
    now = timezone.now()
    with transaction.atomic():
        before = TorExitNode.objects.count()
        TorExitNode.objects.all().delete()
        TorExitNode.objects.bulk_create(
            [
                TorExitNode(ip_address=e.ip_address, fingerprint=e.fingerprint, loaded_at=now)
                for e in exits
            ],
            batch_size=1000,
        )
        event_record(
            event_type=EventType.SETTINGS_CHANGED,
            reason="tor exit list",
            details={
                "setting": "tor_exit_list",
                "old": {"addresses": before},
                "new": {"addresses": len(exits)},
                "source": source,
            },
        )
    return before


def tor_exits_loaded() -> tuple[int, datetime | None]:
    """How many exits are loaded, and when they were (None when no list was ever loaded)."""
    latest = TorExitNode.objects.order_by("-loaded_at").values_list("loaded_at", flat=True).first()
    return TorExitNode.objects.count(), latest
