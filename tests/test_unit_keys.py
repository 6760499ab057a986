"""Every key of every unit file in systemd/ is in systemd/unit-keys.txt and is no newer than the
kiosk's systemd (249, JetPack 6): CI's newer systemd-analyze would accept keys 249 silently ignores."""
from __future__ import annotations

from pathlib import Path

import pytest

from .test_systemd_units import ALL_UNITS, UNITS, read_unit

TARGET_SYSTEMD = 249
KEY_LIST = UNITS / "unit-keys.txt"
EXEC_PREFIXES = "+-@!:"


def read_key_list(path: Path = KEY_LIST) -> dict[tuple[str, str], int]:
    """(section, key or key=value) → the systemd release that introduced it."""
    keys = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        assert len(fields) == 3 and fields[2].isdigit(), f"{path.name}:{number}: expected 'section key since', got {line!r}"
        section, key, since = fields
        assert (section, key) not in keys, f"{path.name}:{number}: {section} {key} listed twice"
        keys[(section, key)] = int(since)
    return keys


def problems_in(unit_path: Path, keys: dict[tuple[str, str], int], target: int = TARGET_SYSTEMD) -> list[str]:
    """Every key (or key=value) in ``unit_path`` that is not listed or is newer than ``target``."""
    found = []
    for section, entries in read_unit(unit_path).items():
        for key, values in entries.items():
            since = keys.get((section, key))
            if since is None:
                found.append(f"{unit_path.name}: [{section}] {key}= is not in {KEY_LIST.name}")
            elif since > target:
                found.append(f"{unit_path.name}: [{section}] {key}= needs systemd {since}, the kiosk has {target}")
            for value in values:
                for listed, since in keys.items():
                    if listed[0] != section or not listed[1].startswith(key + "="):
                        continue
                    wanted = listed[1][len(key) + 1:]
                    applies = value == wanted or (wanted in EXEC_PREFIXES and value.startswith(wanted))
                    if applies and since > target:
                        found.append(f"{unit_path.name}: [{section}] {key}={value} needs systemd {since}, the kiosk has {target}")
    return found


def test_every_unit_key_is_listed_and_no_newer_than_249():
    keys = read_key_list()
    assert len(ALL_UNITS) >= 5
    assert [p for unit in ALL_UNITS for p in problems_in(unit, keys)] == []


def test_every_listed_key_is_used_or_marked_as_too_new():
    """The list stays the list of what the units use (plus the too-new keys it warns about)."""
    used = {(section, key) for unit in ALL_UNITS for section, entries in read_unit(unit).items() for key in entries}
    unused = [f"{s} {k}" for (s, k), since in read_key_list().items()
              if "=" not in k and since <= TARGET_SYSTEMD and (s, k) not in used]
    assert unused == []


@pytest.mark.parametrize(("line", "section", "expected"), [
    ("ExitType=cgroup", "Service", "[Service] ExitType= needs systemd 250, the kiosk has 249"),
    ("Type=notify-reload", "Service", "[Service] Type=notify-reload needs systemd 253, the kiosk has 249"),
    ("WatchdogSecs=30", "Service", "[Service] WatchdogSecs= is not in unit-keys.txt"),
    ("MemoryMax=1G", "Unit", "[Unit] MemoryMax= is not in unit-keys.txt"),
])
def test_the_check_names_a_too_new_or_unknown_key(tmp_path, line, section, expected):
    unit = tmp_path / "probe.service"
    unit.write_text(f"[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n[{section}]\n{line}\n")
    assert problems_in(unit, read_key_list()) == [f"probe.service: {expected}"]


def test_the_key_list_is_well_formed(tmp_path):
    bad = tmp_path / "keys.txt"
    bad.write_text("Service Type one\n")
    with pytest.raises(AssertionError, match="expected 'section key since'"):
        read_key_list(bad)
