"""Frame sinks: the display probe, open_sink's choices and reasons, the video file written."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from talkerd.config import RenderConfig
from talkerd.errors import ComponentUnavailable, ExitCode
from talkerd.render import DisplayModeError, NullSink, VideoSink, open_sink
from talkerd.render.soundtrack import Soundtrack
from talkerd.render.xprobe import probe_display

from .conftest import ROOT


def run_without_display(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_auto_without_a_display_writes_video_and_says_where_without_aborting(tmp_path):
    # In a child process: were a HighGUI window call made without a display, it would abort (134).
    result = run_without_display(
        """
        import json, numpy as np
        from talkerd.config import RenderConfig
        from talkerd.render import open_sink, DefaultAvatar
        cfg = RenderConfig(width=320, height=180, fps=25)
        sink, reason = open_sink("auto", cfg)
        avatar = DefaultAvatar(320, 180)
        for n in range(10):
            sink.show(avatar.draw(n / 25, np.zeros(4)))
        sink.close()
        print(json.dumps({"kind": type(sink).__name__, "reason": reason, "path": str(sink.path)}))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["kind"] == "VideoSink"
    assert "no display" in answer["reason"] and "DISPLAY is not set" in answer["reason"]
    assert answer["path"] in answer["reason"] and answer["path"].startswith(str(tmp_path))
    capture = cv2.VideoCapture(answer["path"])
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 10


def test_window_without_a_display_carries_on_without_the_picture(tmp_path):
    result = run_without_display(
        """
        from talkerd.config import RenderConfig
        from talkerd.render import open_sink
        sink, reason = open_sink("window", RenderConfig())
        sink.show(None)
        print(type(sink).__name__, "|", reason)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    kind, reason = result.stdout.strip().split(" | ")
    assert kind == "NullSink" and "no" in reason.lower() and "DISPLAY" in reason


def test_probe_explains_why_a_display_is_not_usable(tmp_path):
    assert not probe_display("").usable
    assert "not set" in probe_display("").reason
    bad = probe_display("nonsense")
    assert not bad.usable and "form" in bad.reason
    # A free display number: nothing listens there.
    number = next(n for n in range(500, 600) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    silent = probe_display(f":{number}")
    assert not silent.usable and f":{number}" in silent.reason


def test_probe_sees_a_server_that_refuses_the_connection(tmp_path):
    """A fake X server on a TCP port that answers the setup with 'Failed' (the reply a server sends
    when authorisation is missing): the probe must report it, not call it a display."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    if port < 6000:
        server.close()
        pytest.skip("the kernel gave a port below 6000; cannot name it as an X display")
    reason = b"No protocol specified"
    import threading

    def answer():
        conn, _ = server.accept()
        conn.recv(64)
        pad = b"\0" * (-len(reason) % 4)
        conn.sendall(bytes([0, len(reason)]) + (11).to_bytes(2, "little") + b"\0\0"
                     + ((len(reason) + len(pad)) // 4).to_bytes(2, "little") + reason + pad)
        conn.close()

    thread = threading.Thread(target=answer)
    thread.start()
    status = probe_display(f"127.0.0.1:{port - 6000}")
    thread.join()
    server.close()
    assert not status.usable and "No protocol specified" in status.reason


def test_probe_accepts_the_test_x_server_and_reads_its_screen_size(needs_display):
    status = probe_display()
    assert status.usable, status.reason
    assert status.screen == (1280, 720)  # scripts/with-test-services.sh: Xvfb -screen 0 1280x720x24


def test_unknown_mode_and_bad_video_path_are_clear_errors(tmp_path):
    with pytest.raises(DisplayModeError) as bad_mode:
        open_sink("screen", RenderConfig())
    assert "screen" in bad_mode.value.message and bad_mode.value.exit_code == ExitCode.USAGE
    with pytest.raises(DisplayModeError):
        open_sink("video:", RenderConfig())
    (tmp_path / "file").write_text("")
    with pytest.raises(ComponentUnavailable) as bad_path:
        open_sink(f"video:{tmp_path}/file/inside.mp4", RenderConfig())
    assert "inside.mp4" in bad_path.value.message
    with pytest.raises(ComponentUnavailable) as bad_ext:
        open_sink(f"video:{tmp_path}/clip.xyz", RenderConfig())
    assert "extension" in bad_ext.value.message


def test_none_drops_frames():
    sink, reason = open_sink("none", RenderConfig())
    assert isinstance(sink, NullSink) and "dropped" in reason


def test_video_sink_writes_the_frames_it_is_given(tmp_path):
    path = tmp_path / "clip.mp4"
    sink, reason = open_sink(f"video:{path}", RenderConfig(width=320, height=240, fps=25))
    assert str(path) in reason
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    for colour in colours:
        for _ in range(5):
            sink.show(np.full((240, 320, 3), colour, np.uint8))
    sink.close()
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320 and int(capture.get(cv2.CAP_PROP_FPS)) == 25
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 15
    for index, colour in enumerate(colours):
        mean = frames[index * 5 + 2].reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - colour).max() < 25


def test_video_sink_starts_a_new_segment_and_keeps_the_previous(tmp_path):
    path = tmp_path / "avatar.mp4"
    sink = VideoSink(path, 10, (64, 48), segment_s=1.0)
    for n in range(25):
        sink.show(np.full((48, 64, 3), n * 10, np.uint8))
    sink.close()
    previous = tmp_path / "avatar.prev.mp4"
    assert previous.exists() and path.exists()
    assert int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert int(cv2.VideoCapture(str(previous)).get(cv2.CAP_PROP_FRAME_COUNT)) == 10


def test_the_next_segment_keeps_its_sound_when_the_playout_writes_during_the_rotation(tmp_path, monkeypatch):
    """The playout's thread writes a block whenever it plays one, also while the render thread is rotating
    the video file; the new file's sound must start with its picture, not after the old file's length of
    silence (which ffmpeg's -shortest then cut away: a kiosk's later answers were silent in its video)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (scripts/setup.sh)")
    path = tmp_path / "avatar.mp4"
    sink = VideoSink(path, 10, (64, 48), segment_s=1.0)
    track = sink.add_soundtrack(16000)
    loud = np.full(1600, 8000, np.int16)  # 0.1 s
    finish = Soundtrack.finish

    def finish_and_the_next_block_at_once(self, finished, *, wait):
        finish(self, finished, wait=True)
        monkeypatch.setattr(Soundtrack, "finish", finish)
        self.write(loud)  # the playout's next block, in the middle of the rotation

    monkeypatch.setattr(Soundtrack, "finish", finish_and_the_next_block_at_once)
    frame = np.zeros((48, 64, 3), np.uint8)
    for _ in range(10):
        sink.show(frame)
        track.write(np.zeros(1600, np.int16))
    for _ in range(6):  # the first of these rotates
        sink.show(frame)
        track.write(loud)
    sink.close()
    decoded = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
                             capture_output=True, check=True).stdout
    sound = np.frombuffer(decoded, np.int16)
    assert len(sound) > 0.4 * 16000
    assert np.count_nonzero(np.abs(sound) > 1000) > 0.3 * 16000, "the second segment's answer is not in its sound"
