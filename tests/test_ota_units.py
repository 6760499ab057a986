"""The OTA unit passes systemd's own lint, and the daemon's unit rolls an interrupted install back first."""
from __future__ import annotations

from .test_systemd_units import SERVICE, UNITS, lint_copy, read_unit, verify

OTA_UNIT = UNITS / "talkerd-ota@.service"


def test_the_ota_unit_passes_systemd_analyze_verify(tmp_path):
    assert verify([lint_copy(OTA_UNIT, tmp_path)]) == []


def test_the_installer_has_network_and_the_daemon_recovers_before_it_starts():
    ota = read_unit(OTA_UNIT)["Service"]
    assert ota["ExecStart"] == ["/opt/talkerd/venv/bin/talkerd-ota --config /etc/talkerd/ota.toml install %I"]
    assert "AF_INET" in ota["RestrictAddressFamilies"][0].split()
    daemon = read_unit(SERVICE)["Service"]
    assert daemon["ExecStartPre"] == ["-/opt/talkerd/venv/bin/talkerd-ota --config /etc/talkerd/ota.toml recover"]
    assert "AF_INET" not in daemon["RestrictAddressFamilies"][0].split()
