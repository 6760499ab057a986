"""How long a kiosk takes from the process starting to the avatar on screen, and to ready for visitors.

Plays the service manager: binds the datagram socket named in ``NOTIFY_SOCKET``, starts ``talkerd run``
as systemd would (no terminal, no display, no sound device here) and times the daemon's own messages —
the ``STATUS=`` it sends once the first frame is shown, and ``READY=1`` once every model is warm.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..daemon import AVATAR_SHOWN
from ..errors import TalkerError

GUARD_S = 300.0
"""Only stops a daemon that never gets ready from hanging the benchmark."""


def measure_startup(config_path: Path) -> dict:
    """{"first_frame_s", "ready_s"} from the moment the process is started."""
    with tempfile.TemporaryDirectory(prefix="talkerd-startup-") as folder:
        address = os.path.join(folder, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
            manager.bind(address)
            env = {**os.environ, "NOTIFY_SOCKET": address, "DISPLAY": "", "TALKERD_SOCKET": ""}
            env.pop("WATCHDOG_USEC", None)
            started = time.monotonic()
            daemon = subprocess.Popen(
                [sys.executable, "-m", "talkerd", "--log-level", "WARNING", "run", "--config", str(config_path),
                 "--input", "none", "--display", "none", "--output", "none"],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                return _wait_for_messages(manager, daemon, started)
            finally:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()


def _wait_for_messages(manager: socket.socket, daemon: subprocess.Popen, started: float) -> dict:
    figures: dict[str, float] = {}
    while "ready_s" not in figures:
        remaining = started + GUARD_S - time.monotonic()
        if remaining <= 0 or daemon.poll() is not None:
            error = daemon.stderr.read().decode(errors="replace")[-2000:] if daemon.poll() is not None else ""
            raise TalkerError(f"the daemon did not become ready (exit {daemon.poll()}): {error}")
        manager.settimeout(min(1.0, remaining))
        try:
            message = manager.recv(4096).decode()
        except TimeoutError:
            continue
        at = round(time.monotonic() - started, 2)
        fields = dict(line.split("=", 1) for line in message.split("\n") if "=" in line)
        if fields.get("STATUS") == AVATAR_SHOWN:
            figures.setdefault("first_frame_s", at)
        if fields.get("READY") == "1":
            figures["ready_s"] = at
    return figures
