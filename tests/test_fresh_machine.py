"""``make run`` on a fresh machine: no sound server, no sound card, no display, questions typed or piped.

The daemon is started exactly as ``make run`` starts it (every option on ``auto``) in an environment
with no PulseAudio to reach and no ``DISPLAY``, with a pipe on its stdin. The first test (run before
all others) types two questions; the last one (after all others, so the daemon has been up for the
whole test session and at least ``STAY_UP_S``) types a third, stops it, and reads the avatar video back: its picture (the mouth moving) and its sound track.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT
from .daemon_harness import write_config

STAY_UP_S = float(os.environ.get("TALKERD_TEST_STAY_UP_S", "600"))
"""How long the daemon must have been up when the last test checks it (ten minutes by default)."""
NAME = "Ava"


class BareDaemon:
    """``talkerd run --config F`` with stdin and stdout as pipes; stdout lines kept with their times."""

    def __init__(self, folder: Path) -> None:
        self.video = folder / "avatar.mp4"
        config = write_config(folder, {'video_path = "../out/avatar.mp4"': f'video_path = "{self.video}"'})
        self.log_path = folder / "talkerd.log"
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "PULSE_SINK", "PULSE_SOURCE")}
        env.update(PULSE_SERVER=f"unix:{folder}/no-sound-server", XDG_RUNTIME_DIR=str(folder), HOME=str(folder))
        self.started = time.monotonic()
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "talkerd", "run", "--config", str(config)], cwd=ROOT, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
            )
        self.lines: list[tuple[float, str]] = []
        self._new_line = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._new_line:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._new_line.notify_all()

    def wait_line(self, prefix: str, after: int = 0, timeout: float = 180) -> tuple[int, float, str]:
        """The first stdout line from index ``after`` on that starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for index, (at, line) in enumerate(self.lines[after:], after):
                    if line.startswith(prefix):
                        return index, at, line
                if self.process.poll() is not None or not self._new_line.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"no line {prefix!r} on stdout: {self.lines}\n{self.log()}")

    def ask(self, question: str) -> tuple[float, str]:
        """Type ``question``; (seconds until its answer was printed, the printed answer)."""
        after = len(self.lines)
        typed = time.monotonic()
        self.process.stdin.write(question + "\n")
        self.process.stdin.flush()
        _, at, line = self.wait_line(f"{NAME}:", after)
        return at - typed, line[len(NAME) + 1 :].strip()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="session")
def bare_daemon(tmp_path_factory):
    daemon = BareDaemon(tmp_path_factory.mktemp("fresh-machine"))
    yield daemon
    if daemon.process.poll() is None:
        daemon.process.kill()
        daemon.process.wait()


@pytest.mark.runs_first
def test_a_bare_machine_answers_typed_questions_at_once(bare_daemon):
    bare_daemon.wait_line("Type a question")
    log = bare_daemon.log()
    assert "speaker: unavailable" in log and "microphone: unavailable" in log, log
    assert "Traceback" not in log, log
    # The answer is printed as soon as it is decided: long before its 4-second sentence has been spoken.
    waited, answer = bare_daemon.ask("What time does the store open?")
    assert answer.startswith("We open at 9 in the morning"), answer
    assert waited < 3.0, f"the answer was printed {waited:.1f} s after the question"
    _, answer = bare_daemon.ask("Is there parking?")
    assert "car park" in answer, answer


@pytest.mark.runs_last
@pytest.mark.timeout(STAY_UP_S + 600)
def test_a_bare_machine_stays_up_and_its_video_shows_the_avatar_speaking(bare_daemon):
    import cv2

    from talkerd.config import load_config
    from talkerd.render import make_avatar
    from talkerd.render.readback import mouth_opening

    remaining = STAY_UP_S - (time.monotonic() - bare_daemon.started)
    if remaining > 0:
        time.sleep(remaining)
    assert bare_daemon.process.poll() is None, f"talkerd exited with {bare_daemon.process.returncode}:\n{bare_daemon.log()}"
    _, answer = bare_daemon.ask("Are you open on Sundays?")
    assert "10 in the morning" in answer, answer
    time.sleep(5)  # the spoken answer goes into the video
    bare_daemon.process.terminate()
    assert bare_daemon.process.wait(15) == 0, bare_daemon.log()
    assert "Traceback" not in bare_daemon.log()

    avatar = make_avatar(load_config(ROOT / "configs" / "default.toml").render)
    avatar.draw(0.0, np.zeros(4, np.float32))  # places the mouth box
    box = avatar.mouth_box
    openings = []
    for path in (bare_daemon.video.with_name("avatar.prev.mp4"), bare_daemon.video):
        assert path.exists() or path.name.endswith("prev.mp4"), path
        video = cv2.VideoCapture(str(path))
        while (frame := video.read()[1]) is not None:
            openings.append(mouth_opening(frame, box))
        video.release()
    openings = np.array(openings)
    # The video keeps real time (frames not drawn in time are repeated), in segments of 600 s, the last two kept.
    assert len(openings) >= 0.9 * 30 * min(STAY_UP_S, 600), f"only {len(openings)} frames of video"
    # The mouth is closed most of the time (its lip line alone) and wide open while an answer is spoken.
    closed = np.median(openings)
    assert closed < 0.05 and (openings > 3 * closed).sum() > 30, (closed, (openings > 3 * closed).sum())

    # And the answers can be heard in it: its sound track holds the spoken answers.
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (scripts/setup.sh)")
    sound = np.concatenate([_sound_of(path) for path in (bare_daemon.video.with_name("avatar.prev.mp4"), bare_daemon.video) if path.exists()])
    loud_s = np.count_nonzero(np.abs(sound) > 1000) / 16000
    assert loud_s > 1.0, f"only {loud_s:.2f} s of the sound track is louder than silence"
    assert abs(len(sound) / 16000 - len(openings) / 30) < 3.0, (len(sound) / 16000, len(openings) / 30)


def _sound_of(video: Path) -> np.ndarray:
    decoded = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(video), "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
                             capture_output=True, check=True)
    return np.frombuffer(decoded.stdout, np.int16)
