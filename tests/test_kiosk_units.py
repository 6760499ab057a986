"""The kiosk's units as a whole: restart policy and its end, memory guard, the performance oneshot
(run for real against stand-ins for the JetPack tools), and the users and groups they rely on."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from talkerd.config import load_config

from .test_systemd_units import KIOSK_CONFIG, ROOT, SERVICE, UNITS, one, read_unit

PERFORMANCE = UNITS / "talkerd-performance.service"
SOUND = UNITS / "talkerd-sound.service"
SIZE = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def megabytes(value: str) -> float:
    match = re.fullmatch(r"(\d+)([KMGT])", value)
    assert match, f"{value!r}: expected a size like 6G"
    return int(match[1]) * SIZE[match[2]]


def test_the_daemon_restarts_always_but_not_in_a_tight_loop():
    unit = read_unit(SERVICE)
    assert one(unit, "Service", "Restart") == "always"
    burst, interval = int(one(unit, "Unit", "StartLimitBurst")), float(one(unit, "Unit", "StartLimitIntervalSec"))
    restart_sec = float(one(unit, "Service", "RestartSec"))
    # The limit can be hit (the restarts fit in the window) and is not hit by one bad minute.
    assert burst * restart_sec < interval and burst >= 3 and interval >= 300
    assert "StartLimitAction" not in unit["Unit"]  # the action is the out-of-service unit, not a reboot


def test_memory_guard_sits_inside_the_daemons_own_budget():
    service = read_unit(SERVICE)["Service"]
    high, hard = megabytes(one(read_unit(SERVICE), "Service", "MemoryHigh")), megabytes(service["MemoryMax"][0])
    assert high < hard <= load_config(KIOSK_CONFIG).memory.budget_mb


def test_the_daemon_is_ordered_after_sound_display_and_performance():
    unit = read_unit(SERVICE)["Unit"]
    for name in ("talkerd-xorg.service", "talkerd-sound.service", "talkerd-performance.service"):
        assert name in unit["After"][0].split() and name in unit["Wants"][0].split()
    assert "talkerd.service" in one(read_unit(PERFORMANCE), "Unit", "Before").split()
    assert "talkerd.service" in one(read_unit(SOUND), "Unit", "Before").split()


def test_sysusers_puts_talkerd_in_audio_video_render():
    lines = [line.split() for line in (UNITS / "talkerd.sysusers.conf").read_text().splitlines() if line and not line.startswith("#")]
    assert {tuple(fields[:3]) for fields in lines if fields[0] == "m"} == {("m", "talkerd", g) for g in ("audio", "video", "render")}


def fake_tool(folder, name: str, exit_code: int = 0) -> None:
    """Stands in for a JetPack tool (nvpmodel, jetson_clocks: Jetson hardware only): records its call."""
    script = folder / name
    script.write_text(f"#!/bin/sh\necho \"{name} $*\" >> \"{folder}/calls\"\necho '{name} says no' >&2\nexit {exit_code}\n")
    script.chmod(0o755)


def run_performance(tmp_path, *args):
    argv = shlex.split(one(read_unit(PERFORMANCE), "Service", "ExecStart"))
    assert argv[1:3] == ["-m", "talkerd.kiosk.performance"]
    env = {**os.environ, "PATH": str(tmp_path)}
    return subprocess.run([sys.executable, *argv[1:], *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_performance_mode_runs_nvpmodel_then_jetson_clocks(tmp_path):
    fake_tool(tmp_path, "nvpmodel")
    fake_tool(tmp_path, "jetson_clocks")
    done = run_performance(tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.strip() for line in (tmp_path / "calls").read_text().splitlines()] == ["nvpmodel -m 0", "jetson_clocks"]
    assert "done: nvpmodel -m 0\ndone: jetson_clocks" in done.stdout


def test_performance_mode_without_the_tools_succeeds_and_says_so(tmp_path):
    done = run_performance(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "nvpmodel, jetson_clocks not found" in done.stdout


def test_performance_mode_reports_a_failing_tool(tmp_path, monkeypatch):
    monkeypatch.setattr("talkerd.kiosk.performance.SEARCH_PATH", "")
    fake_tool(tmp_path, "nvpmodel", exit_code=3)
    fake_tool(tmp_path, "jetson_clocks")
    from talkerd.kiosk.performance import run_steps, steps

    done, absent, failed = run_steps(steps(0), str(tmp_path))
    assert done == ["jetson_clocks"] and failed == ["nvpmodel -m 0: exit 3: nvpmodel says no"]
