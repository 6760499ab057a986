"""The systemd units, sysusers and tmpfiles snippets: linted by systemd's own tools, and consistent with
the kiosk config and the talkerd command line."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from talkerd.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
SERVICE = UNITS / "talkerd.service"
XORG = UNITS / "talkerd-xorg.service"
ALL_UNITS = sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".socket", ".timer", ".target", ".path"))
KIOSK_CONFIG = ROOT / "configs" / "jetson-agx-orin-32gb.toml"
# systemd-analyze verify exits 0 on these; they still mean a setting was thrown away.
LINT_WORDS = ("Unknown key", "Unknown section", "Failed to parse", "ignoring", "Invalid", "not executable")
EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost")


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (systemd keys may repeat; configparser cannot hold that)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line!r} outside a section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{key} is set {len(values)} times"
    return values[0]


def lint_copy(source: Path, folder: Path) -> Path:
    """A copy whose Exec* programs exist here (/bin/true stands in for Xorg and the installed venv)."""
    lines = []
    for line in source.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key in EXEC_KEYS:
            prefix = re.match(r"[-@:+!]*", value).group(0)
            program, _, rest = value[len(prefix):].partition(" ")
            if not Path(program).exists():
                value = f"{prefix}/bin/true {rest}".rstrip()
        lines.append(f"{key}{sep}{value}" if sep else line)
    target = folder / source.name
    target.write_text("\n".join(lines) + "\n")
    return target


def verify(paths: list[Path]) -> list[str]:
    """Problems systemd-analyze finds: a non-zero exit, or any line that says a setting was dropped."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing (scripts/setup.sh installs the systemd package)")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, paths)], capture_output=True, text=True)
    output = (done.stdout + done.stderr).splitlines()
    problems = [line for line in output if any(word in line for word in LINT_WORDS)]
    if done.returncode != 0:
        problems.append(f"exit {done.returncode}: " + " | ".join(output))
    return problems


def test_units_pass_systemd_analyze_verify(tmp_path):
    assert SERVICE in ALL_UNITS and len(ALL_UNITS) >= 5
    assert verify([lint_copy(unit, tmp_path) for unit in ALL_UNITS]) == []


def test_the_lint_catches_unknown_keys_and_bad_values(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    text = lint_copy(SERVICE, tmp_path).read_text()
    (broken / "talkerd.service").write_text(text.replace("Type=notify", "Type=notifyy").replace("WatchdogSec=", "WatchdogSecs="))
    for unit in ALL_UNITS:
        if unit != SERVICE:
            lint_copy(unit, broken)
    problems = verify(sorted(broken.iterdir()))
    assert any("Unknown key" in p and "WatchdogSecs" in p for p in problems)
    assert any("notifyy" in p for p in problems)


def kiosk_config():
    from talkerd.config import load_config

    return load_config(KIOSK_CONFIG)


def test_service_is_a_notify_service_with_watchdog_reload_and_restart():
    unit = read_unit(SERVICE)
    assert one(unit, "Service", "Type") == "notify"  # systemd 249 (JetPack 6) has no notify-reload
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert int(one(unit, "Service", "WatchdogSec")) >= 10
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Service", "Restart") == "always"
    assert str(ExitCode.CONFIG) in one(unit, "Service", "RestartPreventExitStatus").split()
    assert int(one(unit, "Service", "TimeoutStartSec")) >= 120
    assert {"audio", "video", "render"} <= set(one(unit, "Service", "SupplementaryGroups").split())
    assert "DISPLAY=:0" in unit["Service"]["Environment"]


def test_service_matches_the_kiosk_config_and_the_command_line():
    from talkerd.cli import build_parser

    unit = read_unit(SERVICE)
    config = kiosk_config()
    runtime = "/run/" + one(unit, "Service", "RuntimeDirectory")
    assert config.control.socket.parent == Path(runtime)
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0750"
    assert config.control.group == one(unit, "Service", "Group") == one(unit, "Service", "User")
    state = Path("/var/lib") / one(unit, "Service", "StateDirectory")
    assert config.engines.build_dir.is_relative_to(state) and config.llm.model.is_relative_to(state)
    assert str(state) in one(unit, "Service", "ReadWritePaths").split()
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0].endswith("/talkerd")
    args = build_parser().parse_args(argv[1:])  # the unit's command line is one talkerd accepts
    assert args.command == "run"
    assert Path(args.config).parent == Path("/etc") / one(unit, "Service", "ConfigurationDirectory")


def test_hardening_keeps_the_gpu_audio_and_x_reachable():
    service = read_unit(SERVICE)["Service"]
    assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    assert service["ProtectHome"] == ["yes"] and service["PrivateTmp"] == ["yes"]
    for closes_devices in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "MemoryDenyWriteExecute"):
        assert closes_devices not in service, f"{closes_devices} would break CUDA/TensorRT or ALSA on Tegra"
    assert "-/tmp/.X11-unix" in service["BindReadOnlyPaths"]  # PrivateTmp would hide the X socket
    xorg = read_unit(XORG)
    auth = re.search(r"-auth (\S+)", one(xorg, "Service", "ExecStart")).group(1)
    assert f"XAUTHORITY={auth}" in service["Environment"]
    assert "talkerd-xorg.service" in read_unit(SERVICE)["Unit"]["After"][0].split()


def test_xorg_unit_is_a_bare_server_on_vt1():
    xorg = read_unit(XORG)
    argv = shlex.split(one(xorg, "Service", "ExecStart"))
    assert argv[:3] == ["/usr/lib/xorg/Xorg", ":0", "vt1"]
    assert "-nolisten" in argv and argv[argv.index("-nolisten") + 1] == "tcp"
    assert "getty@tty1.service" in one(xorg, "Unit", "Conflicts").split()


@pytest.mark.skipif(os.geteuid() != 0, reason="creating files owned by another user needs root")
def test_sysusers_and_tmpfiles_create_the_user_and_folders(tmp_path):
    for tool in ("systemd-sysusers", "systemd-tmpfiles"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (scripts/setup.sh installs the systemd package)")
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(UNITS / "talkerd.sysusers.conf")], check=True, capture_output=True)
    passwd = dict((line.split(":")[0], line.split(":")) for line in (tmp_path / "etc" / "passwd").read_text().splitlines())
    user = passwd["talkerd"]
    assert user[5] == "/var/lib/talkerd" and user[6].endswith("nologin")
    groups = {fields[0]: fields for fields in (line.split(":") for line in (tmp_path / "etc" / "group").read_text().splitlines())}
    assert "talkerd" in groups
    for group in ("audio", "video", "render"):
        assert "talkerd" in groups[group][3].split(","), f"talkerd is not in group {group}"
    done = subprocess.run(["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(UNITS / "talkerd.tmpfiles.conf")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("", "models", "engines", "ota"):
        st = (tmp_path / "var" / "lib" / "talkerd" / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (int(user[2]), int(user[3]), 0o750)
    textfiles = (tmp_path / "var" / "lib" / "node_exporter" / "textfile_collector").stat()
    assert (textfiles.st_gid, textfiles.st_mode & 0o777) == (int(user[3]), 0o775)
