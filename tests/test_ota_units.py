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


def test_install_kiosk_installs_the_factory_release_once(tmp_path):
    import subprocess
    import sys

    from .ota_helpers import FACE_ENGINE, ROOT, bundle, key, write_trust

    signer, public = key(tmp_path / "keys", "publisher")
    write_trust(tmp_path / "trust.json", [public])
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + bytes(60))
    first = bundle(tmp_path / "v1.bundle", 1, [signer], [FACE_ENGINE], models={"llm": model})
    config = tmp_path / "ota.toml"
    config.write_text('root = "store"\ntrust = "trust.json"\nreserve_mb = 0\ntrial_backend = "onnxruntime"\n'
                      '[platform]\ntensorrt = "none"\ncompute_capability = "none"\njetpack = "none"\n')
    run = [sys.executable, str(ROOT / "tools" / "install-kiosk"), "--config", str(config), "--bundle", str(first)]
    done = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    current = tmp_path / "store" / "current"
    assert f'model = "{current / "models" / "tiny.gguf"}"' in done.stdout
    assert (current / "models" / "tiny.gguf").read_bytes() == model.read_bytes()
    again = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 1 and "already has release 1 (factory release 1)" in again.stderr
