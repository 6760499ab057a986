"""tools/install-kiosk into a scratch root: a dry run prints every step and changes nothing; a real
run twice changes nothing the second time; an edited config survives. The venv/pip step is skipped
with --no-venv (it needs the network and minutes); everything else runs for real (systemd-sysusers,
systemd-tmpfiles and systemctl --root on the scratch root)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_systemd_units import ROOT, UNITS

INSTALLER = ROOT / "tools" / "install-kiosk"
UNIT_NAMES = sorted(p.name for p in UNITS.glob("*.service"))


def install(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INSTALLER), "--root", str(root), "--no-venv", *args],
                          capture_output=True, text=True, cwd=ROOT)


def listing(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: type, mode, owner and content hash (or link target)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = ("link", os.readlink(path))
        elif path.is_file():
            what = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            what = ("dir",)
        entries[str(path.relative_to(root))] = (*what, st.st_mode, st.st_uid, st.st_gid)
    return entries


needs_root_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("systemd-sysusers", "systemd-tmpfiles", "systemctl")),
    reason="files owned by the talkerd user need root, and the systemd tools (scripts/setup.sh installs systemd)")


def test_a_dry_run_prints_every_step_and_changes_nothing(tmp_path):
    done = install(tmp_path, "--dry-run")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for header in ("[1/6] the venv", "[2/6] files", "[3/6] user and folders", "[4/6] configuration", "[5/6] units enabled", "[6/6] checks"):
        assert header in out
    for unit in UNIT_NAMES:
        assert f"would: install systemd/{unit} -> /etc/systemd/system/{unit}" in out
    for line in ("would: install configs/jetson-agx-orin-32gb.toml -> /etc/talkerd/talkerd.toml",
                 "would: install systemd/talkerd-sound.pa -> /etc/talkerd/sound.pa",
                 "would: install systemd/talkerd.sysusers.conf -> /usr/lib/sysusers.d/talkerd.conf",
                 f"would: run systemd-sysusers --root={tmp_path}", f"would: run systemd-tmpfiles --root={tmp_path} --create",
                 f"would: run systemctl --root={tmp_path} enable talkerd-xorg.service", "tools/check_target.py --skip-wheels",
                 "skipped: the venv /opt/talkerd/venv (--no-venv)"):
        assert line in out, line
    assert "asr.model: /var/lib/talkerd/models/vosk-model-en-us-0.22-lgraph is missing: the English vosk model" in out
    assert "llm.model: /var/lib/talkerd/models/qwen2.5-1.5b-instruct-q4_k_m.gguf is missing: the GGUF" in out
    assert "(dry run)" in out
    assert listing(tmp_path) == {}


@needs_root_tools
def test_a_second_run_changes_nothing(tmp_path):
    first = install(tmp_path)
    assert first.returncode == 0, first.stderr
    after_first = listing(tmp_path)
    assert "Python 3.10: ok" in first.stdout  # the target checks ran
    second = install(tmp_path)
    assert second.returncode == 0, second.stderr
    assert listing(tmp_path) == after_first
    assert "install-kiosk: nothing changed" in second.stdout and "install " not in second.stdout.replace("install-kiosk", "")
    # What the first run made: units, enabled; the user; its folders; the config.
    for unit in UNIT_NAMES:
        assert f"etc/systemd/system/{unit}" in after_first
    for unit in ("talkerd.service", "talkerd-xorg.service", "talkerd-sound.service", "talkerd-performance.service"):
        assert after_first[f"etc/systemd/system/multi-user.target.wants/{unit}"][0] == "link"
    assert "talkerd:" in (tmp_path / "etc" / "passwd").read_text()
    assert after_first["var/lib/talkerd/models"][0] == "dir"
    assert (tmp_path / "etc/talkerd/talkerd.toml").read_bytes() == (ROOT / "configs/jetson-agx-orin-32gb.toml").read_bytes()


@needs_root_tools
def test_an_edited_config_is_kept_and_the_shipped_one_put_beside_it(tmp_path):
    assert install(tmp_path).returncode == 0
    config = tmp_path / "etc/talkerd/talkerd.toml"
    edited = config.read_text().replace('name = "Ava"', 'name = "Max"')
    config.write_text(edited)
    again = install(tmp_path)
    assert again.returncode == 0, again.stderr
    assert config.read_text() == edited
    assert "kept: /etc/talkerd/talkerd.toml (edited here" in again.stdout
    assert (tmp_path / "etc/talkerd/talkerd.toml.shipped").read_bytes() == (ROOT / "configs/jetson-agx-orin-32gb.toml").read_bytes()
    settled = listing(tmp_path)
    third = install(tmp_path)
    assert listing(tmp_path) == settled and "nothing changed" in third.stdout


def test_bad_arguments_exit_2(tmp_path):
    done = subprocess.run([sys.executable, str(INSTALLER), "--root", "relative/dir", "--dry-run"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "--root relative/dir: must be an existing folder" in done.stderr
    done = install(tmp_path, "--profile", str(tmp_path / "none.toml"))
    assert done.returncode == 2 and "no such file" in done.stderr
