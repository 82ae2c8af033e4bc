"""`manage.py load_tor_exits PATH`: either Tor Project format loads; a bad file changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import EventType, TorExitNode

from .helpers import events

pytestmark = pytest.mark.django_db

BULK = "171.25.193.25\n185.220.101.4\n2001:db8:7e57::1\n"
EXIT_ADDRESSES = """\
ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
Published 2026-01-12 05:51:26
LastStatus 2026-01-12 12:00:00
ExitAddress 162.247.74.201 2026-01-12 12:13:25
ExitNode 0091174DE56EA5E9D1AC2AB5C1AE2AAB5E3D2F3F
Published 2026-01-12 09:10:02
LastStatus 2026-01-12 11:00:00
ExitAddress 185.220.101.4 2026-01-12 11:09:21
ExitAddress 185.220.101.5 2026-01-12 11:09:21
"""


def _file(tmp_path, text: str | bytes, name: str = "exits.txt") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _load(path: str) -> str:
    out = StringIO()
    call_command("load_tor_exits", path, stdout=out)
    return out.getvalue()


def _listed() -> set[str]:
    return set(TorExitNode.objects.values_list("ip_address", flat=True))


def test_the_bulk_exit_list_loads_one_address_per_line(tmp_path):
    output = _load(_file(tmp_path, BULK))

    assert _listed() == {"171.25.193.25", "185.220.101.4", "2001:db8:7e57::1"}
    assert "Loaded 3 Tor exit addresses" in output
    [changed] = events(EventType.SETTINGS_CHANGED)
    assert changed.organization_id is None  # the platform's list, not a tenant's setting
    assert changed.details["setting"] == "tor_exit_list"
    assert changed.details["new"] == {"addresses": 3}


def test_the_exit_addresses_format_loads_with_each_relays_fingerprint(tmp_path):
    _load(_file(tmp_path, EXIT_ADDRESSES))

    nodes = {n.ip_address: n.fingerprint for n in TorExitNode.objects.all()}
    assert nodes == {
        "162.247.74.201": "0011BD2485AD45D984EC4159C88FC066E5E3300E",
        "185.220.101.4": "0091174DE56EA5E9D1AC2AB5C1AE2AAB5E3D2F3F",
        "185.220.101.5": "0091174DE56EA5E9D1AC2AB5C1AE2AAB5E3D2F3F",
    }


def test_a_new_list_replaces_the_old_one(tmp_path):
    _load(_file(tmp_path, BULK, "old.txt"))
    output = _load(_file(tmp_path, "# fresh\n\n198.51.100.77\n198.51.100.77\n", "new.txt"))

    assert _listed() == {"198.51.100.77"}
    assert "Loaded 1 Tor exit addresses" in output and "replacing 3" in output


def test_a_missing_file_is_refused_and_the_list_stays(tmp_path):
    _load(_file(tmp_path, BULK))

    with pytest.raises(CommandError) as refused:
        _load(str(tmp_path / "nowhere.txt"))

    message = str(refused.value)
    assert "nowhere.txt" in message and "No such file" in message
    assert "(3 addresses) stays" in message
    assert len(_listed()) == 3


def test_a_corrupt_line_is_refused_naming_it_and_the_list_stays(tmp_path):
    _load(_file(tmp_path, BULK))
    corrupt = "171.25.193.25\n185.220.101.4\n<html>Service Unavailable</html>\n"

    with pytest.raises(CommandError, match=r"line 3: .*'<html>Service Unavailable</html>'"):
        _load(_file(tmp_path, corrupt, "corrupt.txt"))

    assert _listed() == {"171.25.193.25", "185.220.101.4", "2001:db8:7e57::1"}
    assert len(events(EventType.SETTINGS_CHANGED)) == 1  # only the first load


def test_an_exit_address_line_without_an_address_is_refused(tmp_path):
    text = EXIT_ADDRESSES.replace("ExitAddress 185.220.101.5", "ExitAddress 185.220.101.500")
    with pytest.raises(CommandError, match="line 9: ExitAddress without a valid IP address"):
        _load(_file(tmp_path, text))
    assert _listed() == set()


def test_a_binary_file_is_refused_naming_the_line(tmp_path):
    with pytest.raises(CommandError, match="line 2: not text"):
        _load(_file(tmp_path, b"171.25.193.25\n\x89PNG\r\n\x1a\n"))
    assert _listed() == set()


def test_an_empty_file_is_refused_rather_than_switching_tor_detection_off(tmp_path):
    _load(_file(tmp_path, BULK))
    with pytest.raises(CommandError, match="no exit addresses"):
        _load(_file(tmp_path, "# nothing today\n", "empty.txt"))
    assert len(_listed()) == 3


def test_without_any_list_the_refusal_says_so(tmp_path):
    with pytest.raises(CommandError, match="No Tor exit list is loaded"):
        _load(_file(tmp_path, "not an address\n"))
