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

from .daemon_harness import DaemonProcess, write_config
from .test_systemd_notify import NotifySocket

LOAD_GUARD_S = 180.0  # only stops a broken daemon from hanging the suite


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


@pytest.fixture
def managed():
    folder = Path(tempfile.mkdtemp(prefix="tsdd-"))
    manager = Manager(folder)
    config = write_config(folder)
    env = {"DISPLAY": "", "PULSE_SERVER": "unix:/nonexistent", "TALKERD_SOCKET": "",
           "NOTIFY_SOCKET": str(folder / "notify"), "WATCHDOG_USEC": "2000000"}
    process = DaemonProcess(config, "--input", "none", "--display", "none", "--output", "none", env=env)
    manager.process = process
    yield manager, process
    process.stop()
    manager.socket.close()
    shutil.rmtree(folder, ignore_errors=True)


def test_daemon_lifecycle_as_systemd_sees_it(managed):
    manager, process = managed
    manager.until("READY", "1")
    before_ready = manager.messages[:-1]
    from talkerd.daemon import AVATAR_SHOWN

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

    os.kill(process.process.pid, signal.SIGTERM)
    manager.until("STOPPING", "1")
    assert process.process.wait(LOAD_GUARD_S) == 0, process.log()
    assert not process.socket.exists()  # a clean stop leaves no stale socket
