"""The running daemon's real window under Xvfb: the mouth opens while the answer is spoken and is
closed in silence (screenshots of the whole X screen, read back pixel by pixel)."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from talkerd.render import DefaultAvatar

from .daemon_harness import DaemonProcess, write_config
from .test_render_window import opening_fraction

pytestmark = pytest.mark.display


def test_mouth_moves_with_the_answer_in_the_real_window(tmp_path, screenshot):
    config = write_config(tmp_path)
    process = DaemonProcess(config, "--input", "none", "--display", "window", "--output", "none")
    try:
        status = process.wait_ready()
        process.wait_prerendered()
        assert "window on" in status["display"], status["display"]
        avatar = DefaultAvatar(1280, 720)
        avatar.draw(0.0, np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
        x, y, w, h = avatar.mouth_box  # the open mouth's box, widened for the idle head motion
        box = (x - 12, y - 12, w + 24, h + 24)
        before = [opening_fraction(screenshot(), box) for _ in range(3)]
        text = "Hello and welcome! Our café upstairs serves coffee, tea and cakes all day long."
        reply = process.ctl("--json", "call", "say", json.dumps({"text": text, "wait": False}))
        assert reply.returncode == 0, reply.stderr
        during = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(during) < 40:
            during.append(opening_fraction(screenshot(), box))
            if not process.call("status")["speaking"]:
                break
        while process.call("status")["speaking"] and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.6)
        after = [opening_fraction(screenshot(), box) for _ in range(3)]
    finally:
        assert process.stop() == 0, process.log()
    # Closed, the box shows only the dark line between the lips (about 1%); open, the mouth's inside.
    closed = 0.016
    assert max(before) < closed, before
    assert max(after) < closed, after
    # While speaking the mouth is open in about two shots of three (it closes on consonants and in the
    # pauses between clauses); the shots land at random moments, and on a busy machine there are only a
    # dozen or so, so at least a quarter of them (a mouth that never opens has none).
    open_shots = [value for value in during if value > 2 * closed]
    assert len(open_shots) >= max(2, len(during) / 4), during


def test_a_recorded_announcement_is_played_with_lip_sync_from_the_face_engine(tmp_path, screenshot):
    from .conftest import espeak_wav

    announcement = espeak_wav("Attention please. The café closes in ten minutes.", tmp_path / "announcement.wav")
    config = write_config(tmp_path)
    process = DaemonProcess(config, "--input", "none", "--display", "window", "--output", "none")
    try:
        status = process.wait_ready()
        process.wait_prerendered()
        assert status["components"]["face"]["state"] == "ok", status["components"]
        avatar = DefaultAvatar(1280, 720)
        avatar.draw(0.0, np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
        x, y, w, h = avatar.mouth_box
        box = (x - 12, y - 12, w + 24, h + 24)
        reply = process.ctl("--json", "call", "play", json.dumps({"path": str(announcement), "wait": False}))
        assert reply.returncode == 0, reply.stderr
        during = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.call("status")["speaking"]:
            during.append(opening_fraction(screenshot(), box))
        time.sleep(0.6)
        after = opening_fraction(screenshot(), box)
        last = process.call("status")["last_turn"]
    finally:
        assert process.stop() == 0, process.log()
    assert last["route"] == "play" and last["source"] == "play"
    closed = 0.016
    assert after < closed
    # espeak's audio has no phoneme durations: the mouth here comes from the face engine.
    assert len(during) >= 3
    assert sum(value > 2 * closed for value in during) >= len(during) / 3, during
