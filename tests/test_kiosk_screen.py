"""The kiosk's screen: the X unit's readiness (a server that accepts clients, not a socket file), its
no-blanking flags on a real X server, and the out-of-service notice read back from the screen."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from talkerd.kiosk.out_of_service import render_screen

from .kiosk_x import Xvfb, free_display, screen_saver, xorg_server_flags
from .test_systemd_units import ROOT, SERVICE, UNITS, XORG, one, read_unit

OUT_OF_SERVICE = UNITS / "talkerd-out-of-service.service"


def run_module(module: str, *args: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture
def xvfb(tmp_path):
    server = Xvfb(tmp_path)
    yield server
    server.stop()


def test_wait_for_x_waits_for_a_server_that_accepts_clients(xvfb):
    """Started before the server (as ExecStartPost may be), it keeps trying and succeeds once X answers."""
    waiter = run_module("talkerd.kiosk.wait_for_x", "--display", xvfb.display, "--timeout", "120", "--interval", "0.05", env=xvfb.env)
    time.sleep(0.5)
    assert waiter.poll() is None, "wait_for_x gave up or succeeded with no X server running"
    xvfb.start()
    out, err = waiter.communicate()
    assert waiter.returncode == 0, err
    assert f"X server {xvfb.display} accepts connections" in out


def test_wait_for_x_refuses_a_socket_that_does_not_speak_x(tmp_path):
    """A socket file alone (a crashed server's leftover, or one still starting) is not readiness."""
    import socket

    number = free_display()
    path = f"/tmp/.X11-unix/X{number}"
    os.makedirs("/tmp/.X11-unix", exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(path)
        sock.listen(1)  # accepts the connection, never answers the X11 setup
        try:
            waiter = run_module("talkerd.kiosk.wait_for_x", "--display", f":{number}", "--timeout", "1", env=dict(os.environ))
            out, err = waiter.communicate()
        finally:
            os.unlink(path)
    assert waiter.returncode == 1
    assert f"not ready after 1 s" in err and f":{number}" in err


def test_wait_for_x_usage_error_exits_2():
    done = subprocess.run([sys.executable, "-m", "talkerd.kiosk.wait_for_x", "--timeout", "soon"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "--timeout" in done.stderr


def test_the_x_units_flags_disable_blanking_on_a_real_server(xvfb):
    xvfb.start().wait_usable()
    assert screen_saver(xvfb.number, xvfb.auth)["timeout"] == 0
    flags = xorg_server_flags(xvfb.auth)
    assert "-dpms" in flags and "-nocursor" in flags  # DPMS: Xorg only (Xvfb has no DPMS extension)
    argv = shlex.split(one(read_unit(XORG), "Service", "ExecStartPost"))
    assert argv[1:4] == ["-m", "talkerd.kiosk.wait_for_x", "--display"] and argv[4] == ":0"


def test_a_server_without_the_kiosk_flags_would_blank(xvfb):
    """The check above can fail: a default X server blanks after 10 minutes."""
    # -noreset only so the probe's disconnect does not reset the server under the next connection.
    plain = subprocess.Popen(["Xvfb", f":{xvfb.number}", "-screen", "0", "320x200x24", "-nolisten", "tcp", "-noreset",
                              "-auth", str(xvfb.auth)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    xvfb.process = plain
    xvfb.wait_usable()
    assert screen_saver(xvfb.number, xvfb.auth)["timeout"] == 600


def wait_for_screen(xvfb, expected: np.ndarray, process: subprocess.Popen) -> np.ndarray:
    deadline = time.monotonic() + 120
    while True:
        shot = xvfb.screenshot()
        if shot is not None and shot.shape == expected.shape and np.abs(shot.astype(int) - expected).mean() < 1.0:
            return shot
        assert process.poll() is None, f"out_of_service exited: {process.communicate()}"
        assert time.monotonic() < deadline, "the out-of-service notice never covered the screen"
        time.sleep(0.2)


def test_out_of_service_covers_the_screen_until_stopped(xvfb):
    xvfb.start().wait_usable()
    notice = run_module("talkerd.kiosk.out_of_service", "--for", "3600", env=xvfb.env)
    try:
        expected = render_screen(*xvfb.size)
        shot = wait_for_screen(xvfb, expected, notice)
        assert (shot == expected).all(axis=2).mean() > 0.99
        # The notice really says it: bright text on the dark background in the middle band.
        bright = (shot.min(axis=2) > 200).mean(axis=1)
        assert bright[: xvfb.size[1] // 4].max() == 0 and bright[xvfb.size[1] // 3 : xvfb.size[1] * 3 // 4].max() > 0.05
    finally:
        notice.send_signal(signal.SIGTERM)
        notice.communicate()
    # Stopped by systemd (SIGTERM): killed by the signal, so the unit's ExecStopPost starts nothing.
    assert notice.returncode == -signal.SIGTERM


def test_out_of_service_exits_0_when_its_time_is_up_even_without_a_display(tmp_path):
    """The period ends with exit 0 (the unit then retries talkerd) whether or not X came up."""
    env = {**os.environ, "DISPLAY": f":{free_display()}", "XAUTHORITY": str(tmp_path / "none")}
    notice = run_module("talkerd.kiosk.out_of_service", "--for", "1", env=env)
    out, err = notice.communicate()
    assert notice.returncode == 0, err
    assert "no X server answers" in err and "talkerd is tried again" in err


def test_out_of_service_unit_retries_only_after_its_own_period():
    unit = read_unit(OUT_OF_SERVICE)
    service = unit["Service"]
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[1:3] == ["-m", "talkerd.kiosk.out_of_service"] and float(argv[argv.index("--for") + 1]) >= 300
    stop_post = one(unit, "Service", "ExecStopPost")
    assert stop_post.startswith("+") and "$$EXIT_CODE\" = exited" in stop_post and "start talkerd.service" in stop_post
    daemon = read_unit(SERVICE)
    assert one(daemon, "Unit", "OnFailure") == OUT_OF_SERVICE.name
    assert OUT_OF_SERVICE.name in one(daemon, "Unit", "Conflicts").split()
    # Its retry comes after the daemon's start-limit window, so systemd accepts the start.
    assert float(argv[argv.index("--for") + 1]) >= float(one(daemon, "Unit", "StartLimitIntervalSec"))
    for key in ("DISPLAY=:0", "XAUTHORITY=/run/talkerd-xorg/Xauthority"):
        assert key in service["Environment"] and key in daemon["Service"]["Environment"]
    assert service["User"] == ["talkerd"]


def test_the_screen_is_read_back_as_the_x_server_shows_it(xvfb):
    """read_screen (GetImage over the X11 protocol) sees what a screenshot sees; no server: None."""
    from talkerd.render.xprobe import read_screen

    xvfb.start().wait_usable()
    notice = run_module("talkerd.kiosk.out_of_service", "--for", "3600", env=xvfb.env)
    try:
        shot = wait_for_screen(xvfb, render_screen(*xvfb.size), notice)
        os.environ["XAUTHORITY"] = str(xvfb.auth)
        try:
            read = read_screen(*xvfb.size, display=xvfb.display)
        finally:
            os.environ.pop("XAUTHORITY")
    finally:
        notice.send_signal(signal.SIGTERM)
        notice.communicate()
    assert read is not None and read.shape == shot.shape and (read == shot).all()
    assert read_screen(64, 64, display=f":{free_display()}") is None


# A window Qt never painted cannot be provoked on demand (it happens to a few windows in a hundred on
# a busy machine), so the screen reader below stands for the X server showing one: a flat black screen
# for the first ``black`` reads, then the real screen.
NEVER_PAINTED = """
import logging, sys, time
import numpy as np
from talkerd.kiosk.out_of_service import render_screen
from talkerd.render import sinks, xprobe
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
black = int(sys.argv[1])
reads = []
def reader(width, height):
    reads.append(1)
    return np.zeros((height, width, 3), np.uint8) if len(reads) <= black else xprobe.read_screen(width, height)
sink = sinks.WindowSink((640, 360), fullscreen=True, screen_reader=reader)
frame = render_screen(640, 360)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and (len(reads) <= min(black, sinks.PAINT_REOPENS) or sink._check_at is not None):
    sink.show(frame)
    time.sleep(0.05)
print(f"reopened {sink.reopened} after {len(reads)} reads", flush=True)
while True:
    sink.show(frame)
    time.sleep(0.2)
"""


@pytest.mark.parametrize("black, reopened", [(1, 1), (99, 3)])
def test_a_fullscreen_window_that_was_never_painted_is_opened_again(xvfb, black, reopened):
    """Opened again (at most PAINT_REOPENS times) until the screen shows the frame; past that the
    kiosk logs an error and keeps going."""
    from talkerd.render.sinks import PAINT_REOPENS

    assert reopened <= PAINT_REOPENS
    xvfb.start().wait_usable()
    process = subprocess.Popen([sys.executable, "-c", NEVER_PAINTED, str(black)], cwd=ROOT, env=xvfb.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        report = process.stdout.readline()  # the child reports once its checks are over (within 60 s)
        assert report == f"reopened {reopened} after {reopened + 1} reads\n"
        wait_for_screen(xvfb, render_screen(*xvfb.size), process)  # the reopened window is painted
    finally:
        process.kill()
        _, err = process.communicate()
    assert err.count("was never painted") == reopened
    assert ("still not painted" in err) == (black > PAINT_REOPENS)
