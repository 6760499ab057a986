"""A private Xvfb started with the kiosk X unit's own server flags, and two small readers of it: the
core X11 screen-saver settings, and a screenshot (``import -window root``)."""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from talkerd.render.xprobe import probe_display

from .test_systemd_units import XORG, one, read_unit

XORG_ONLY_FLAGS = {"-novtswitch"}
"""Xorg flags that Xvfb does not know (the VT); everything else of the unit's command line is passed."""


def free_display() -> int:
    for number in range(150, 250):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number between 150 and 250")


def xorg_server_flags(auth: Path) -> list[str]:
    """The kiosk X unit's server arguments after ``:0 vt1``, for Xvfb, with ``-auth`` pointing at ``auth``."""
    argv = shlex.split(one(read_unit(XORG), "Service", "ExecStart"))
    flags = [a for a in argv[3:] if a not in XORG_ONLY_FLAGS]
    flags[flags.index("-auth") + 1] = str(auth)
    return flags


def make_cookie(path: Path, display: str) -> None:
    cookie = subprocess.run(["mcookie"], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["xauth", "-q", "-f", str(path), "add", display, ".", cookie], check=True)


class Xvfb:
    """``start()`` Xvfb on a free display with the kiosk unit's flags (cookie required); ``stop()``."""

    def __init__(self, folder: Path, size: tuple[int, int] = (640, 360)) -> None:
        for tool in ("Xvfb", "xauth", "mcookie"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is missing (scripts/setup.sh installs xvfb and xauth)")
        self.number = free_display()
        self.display = f":{self.number}"
        self.auth = folder / "Xauthority"
        make_cookie(self.auth, self.display)
        self.env = {**os.environ, "DISPLAY": self.display, "XAUTHORITY": str(self.auth)}
        self.size = size
        self.process: subprocess.Popen | None = None

    def start(self) -> "Xvfb":
        screen = f"{self.size[0]}x{self.size[1]}x24"
        self.process = subprocess.Popen(["Xvfb", self.display, "-screen", "0", screen, *xorg_server_flags(self.auth)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def wait_usable(self) -> None:
        old = os.environ.get("XAUTHORITY")
        os.environ["XAUTHORITY"] = str(self.auth)
        try:
            deadline = time.monotonic() + 60
            while not probe_display(self.display).usable:
                assert self.process.poll() is None, "Xvfb exited"
                assert time.monotonic() < deadline, f"Xvfb on {self.display} never accepted a client"
                time.sleep(0.05)
        finally:
            if old is None:
                del os.environ["XAUTHORITY"]
            else:
                os.environ["XAUTHORITY"] = old

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def screenshot(self) -> np.ndarray:
        import cv2

        png = subprocess.run(["import", "-display", self.display, "-window", "root", "png:-"],
                             env=self.env, check=True, capture_output=True).stdout
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def screen_saver(number: int, auth: Path) -> dict[str, int]:
    """The core GetScreenSaver reply (timeout 0 = the screen never blanks), over the X11 protocol."""
    from talkerd.render import xprobe

    os.environ["XAUTHORITY"] = str(auth)
    cookie = xprobe._read_xauthority(str(number)) or b""
    name = b"MIT-MAGIC-COOKIE-1" if cookie else b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(f"/tmp/.X11-unix/X{number}")
        sock.sendall(struct.pack("<BxHHHHxx", ord("l"), 11, 0, len(name), len(cookie)) + _pad(name) + _pad(cookie))
        head = xprobe._recv(sock, 8)
        assert head[0] == 1, "the X server refused the connection"
        xprobe._recv(sock, struct.unpack_from("<H", head, 6)[0] * 4)
        sock.sendall(struct.pack("<BxH", 108, 1))  # GetScreenSaver
        reply = xprobe._recv(sock, 32)
    assert reply[0] == 1, f"GetScreenSaver failed: {reply[:2]!r}"
    timeout, interval = struct.unpack_from("<HH", reply, 8)
    return {"timeout": timeout, "interval": interval, "prefer_blanking": reply[12]}
