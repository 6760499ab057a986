"""The real daemon under a service manager's eyes: its sd_notify messages, from its main pid, through a
start, a reload (SIGHUP), watchdog pings and a stop (SIGTERM).

systemd itself cannot run here (PID 1 is something else); the test plays its part on the wire: it binds
the datagram socket named in NOTIFY_SOCKET, sets WATCHDOG_USEC, and reads what arrives.
"""
from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import pytest

from talkerd.daemon import AVATAR_SHOWN

from .daemon_harness import DaemonProcess, write_config
from .test_systemd_notify import NotifySocket

LOAD_GUARD_S = 180.0  # only stops a broken daemon from hanging the suite
STOP_LIMIT_S = 5.0  # what the unit's stop expects; the daemon's own deadline (STOP_DEADLINE_S) is within it


class Manager:
    """The service manager's side of the notify protocol for one daemon process."""

    def __init__(self, folder: Path) -> None:
        self.socket = NotifySocket(str(folder / "notify"))
        self.messages: list[dict[str, str]] = []
        self.process: DaemonProcess | None = None

    def until(self, key: str, value: str | None = None) -> dict[str, str]:
        """Read messages until one has ``key`` (with ``value``); each must come from the main pid."""
        assert self.process is not None
        deadline = time.monotonic() + LOAD_GUARD_S
        while True:
            try:
                fields, pid = self.socket.receive(timeout_s=1.0)
            except TimeoutError:
                assert self.process.process.poll() is None, f"talkerd exited ({self.process.process.returncode}):\n{self.process.log()}"
                assert time.monotonic() < deadline, f"no {key}={value} after {self.messages}:\n{self.process.log()}"
                continue
            assert pid == self.process.process.pid, f"notification from pid {pid}, not the main pid: {fields}"
            self.messages.append(fields)
            if key in fields and (value is None or fields[key] == value):
                return fields


    def collect(self, seconds: float) -> list[dict[str, str]]:
        """Every message that arrives within ``seconds``."""
        end = time.monotonic() + seconds
        received = []
        while (left := end - time.monotonic()) > 0:
            try:
                fields, _ = self.socket.receive(timeout_s=left)
            except TimeoutError:
                break
            received.append(fields)
        self.messages.extend(received)
        return received


@pytest.fixture
def start_managed():
    """Starts the real daemon (or one made to misbehave: ``launcher``) under the test's notify socket."""
    started: list[tuple[Manager, DaemonProcess, Path]] = []

    def start(launcher: tuple[str, ...] = ("-m", "talkerd"), *, env: dict[str, str] | None = None,
              control: str = "") -> tuple[Manager, DaemonProcess]:
        folder = Path(tempfile.mkdtemp(prefix="tsdd-"))
        manager = Manager(folder)
        config = write_config(folder, extra=control)  # ``control``: more [control] keys
        environment = {"DISPLAY": "", "PULSE_SERVER": "unix:/nonexistent", "TALKERD_SOCKET": "",
                       "NOTIFY_SOCKET": str(folder / "notify"), "WATCHDOG_USEC": "2000000", **(env or {})}
        process = DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none",
                                env=environment, launcher=launcher)
        manager.process = process
        started.append((manager, process, folder))
        return manager, process

    yield start
    for manager, process, folder in started:
        process.stop()
        manager.socket.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def managed(start_managed):
    return start_managed()


def stop_and_time(manager: Manager, process: DaemonProcess) -> float:
    """SIGTERM, then STOPPING=1 and the exit: the seconds from the signal to the exit."""
    sent = time.monotonic()
    os.kill(process.process.pid, signal.SIGTERM)
    manager.until("STOPPING", "1")
    assert process.process.wait(LOAD_GUARD_S) == 0, process.log()
    return time.monotonic() - sent


def test_daemon_lifecycle_as_systemd_sees_it(managed):
    manager, process = managed
    manager.until("READY", "1")
    before_ready = manager.messages[:-1]
    assert any(m.get("STATUS") == AVATAR_SHOWN for m in before_ready), "the avatar must be on screen before READY"
    assert any("EXTEND_TIMEOUT_USEC" in m for m in before_ready), "long loads must extend the start timeout"
    assert any(m.get("STATUS", "").startswith("loading") for m in before_ready)
    assert process.call("status")["state"] == "ready"  # READY=1 means ready for visitors
    assert stat.S_IMODE(os.stat(process.socket).st_mode) == 0o660
    status = manager.until("STATUS")
    assert "\n" not in status["STATUS"] and status["STATUS"]

    manager.until("WATCHDOG", "1")  # fed while every stage is alive
    manager.until("WATCHDOG", "1")

    os.kill(process.process.pid, signal.SIGHUP)
    reloading = manager.until("RELOADING", "1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    manager.until("READY", "1")  # the reload is over

    assert stop_and_time(manager, process) < STOP_LIMIT_S, process.log()
    assert not process.socket.exists()  # a clean stop leaves no stale socket


def test_ready_waits_for_a_slow_warm_up(start_managed, tmp_path):
    """READY=1 means every component is warm: a face engine whose warm-up is slowed on purpose holds it back."""
    mark = tmp_path / "face-warmed"
    manager, process = start_managed(("-m", "tests.patched_daemon", "slow-face-warm-up"),
                                     env={"TALKERD_TEST_MARK": str(mark)})
    manager.until("READY", "1")
    ready_at = time.clock_gettime(time.CLOCK_MONOTONIC)
    assert mark.exists(), "READY=1 came while the face engine was still warming up"
    assert float(mark.read_text()) <= ready_at
    assert any(m.get("STATUS") == AVATAR_SHOWN for m in manager.messages), "the avatar is shown while it warms up"


def test_a_hung_stage_stops_the_watchdog_and_sigterm_still_stops_the_daemon(start_managed):
    manager, process = start_managed(("-m", "tests.patched_daemon", "hang-brain"), control="heartbeat_stale_s = 2.0\n")
    manager.until("READY", "1")
    manager.until("WATCHDOG", "1")
    process.call("call", "ask", '{"text": "please hang", "wait": false}')
    deadline = time.monotonic() + LOAD_GUARD_S
    while (status := process.call("status"))["stages"]["heartbeat_age_s"]["brain"] <= 2.0:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    manager.collect(0.5)  # a ping checked just before the brain went stale may still be on its way
    later = manager.collect(4.0)  # two watchdog periods (WATCHDOG_USEC 2 s: a ping every second)
    assert not any("WATCHDOG" in m for m in later), later
    status = process.call("status")
    assert status["stages"]["watchdog_misses"] >= 2
    assert status["stages"]["heartbeat_age_s"]["speech"] < 2.0  # only the hung stage is stale
    assert stop_and_time(manager, process) < STOP_LIMIT_S, process.log()
