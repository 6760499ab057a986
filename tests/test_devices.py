"""Audio devices that disappear and come back, in a private PulseAudio whose only devices the tests
may take away: the speaker mid-sentence (the turn still finishes, the speaker is reopened) and the
microphone while listening (reported, retried, back)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from .conftest import ROOT

SINK = "talkerd_unplug_test"

PLAYER = r"""
import sys, threading, time
import numpy as np
from talkerd.config import AudioConfig
from talkerd.messages import EndOfTurn, SpeechChunk, Turn, TurnSource
from talkerd.pipeline import TurnRegistry
from talkerd.speak.playout import Playout, PyAudioOutput

rate = 22050
config = AudioConfig(reconnect_s=0.5)
def state(name, detail):
    print("state", name, detail, flush=True)
playout = Playout(PyAudioOutput(config, rate), rate, config, reopen=lambda: PyAudioOutput(config, rate), on_state=state,
                  on_turn_end=TurnRegistry(lambda turn: None).finish)
stop = threading.Event()
threading.Thread(target=playout.run, args=(stop,), daemon=True).start()
turn = Turn(TurnSource.SAY)
tone = (3000 * np.sin(np.arange(3 * rate) * 2 * np.pi * 220 / rate)).astype(np.int16)
mouth = np.zeros((90, 4), np.float32)
playout.queue.put(SpeechChunk(turn, tone, rate, mouth, 30))
playout.queue.put(EndOfTurn(turn))
print("playing", flush=True)
print("turn done" if turn.done.wait(20) else "turn stuck", flush=True)
before = playout.clock.playing_position()
time.sleep(1.0)
print("clock advanced", playout.clock.playing_position() - before > 0.5 * rate, flush=True)
deadline = time.monotonic() + 15
while time.monotonic() < deadline and playout.description == "none":
    time.sleep(0.2)
print("output", playout.description, flush=True)
stop.set()
"""


@pytest.fixture
def private_pulse(tmp_path):
    """A PulseAudio server of this test's own, whose only devices the test may take away."""
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed")
    runtime = tmp_path / "runtime"
    (runtime / "pulse").mkdir(parents=True)
    script = tmp_path / "private.pa"
    script.write_text(f"load-module module-native-protocol-unix auth-anonymous=1 socket={runtime}/pulse/native\n")
    env = {
        **os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
        "PULSE_STATE_PATH": str(runtime / "pulse"), "PULSE_SERVER": f"unix:{runtime}/pulse/native", "HOME": str(tmp_path),
    }
    env.pop("PULSE_SINK", None)
    server = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit=yes", "-n", "-F", str(script)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    yield env
    server.terminate()
    server.wait(10)


def load_sink(env) -> str:
    return subprocess.run(
        ["pactl", "load-module", "module-null-sink", f"sink_name={SINK}", "rate=22050", "channels=1", "norewinds=1"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()


def test_speaker_lost_mid_sentence_then_back(private_pulse):
    env = private_pulse
    module = load_sink(env)
    player = subprocess.Popen([sys.executable, "-c", PLAYER], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert player.stdout.readline().strip() == "playing"
        time.sleep(1.0)  # a third of the way into the sentence
        subprocess.run(["pactl", "unload-module", module], env=env, check=True)  # the only speaker is gone
        time.sleep(2.0)
        load_sink(env)  # plugged back in
        out, err = player.communicate(timeout=60)
    finally:
        if player.poll() is None:
            player.kill()
    lines = ["playing"] + out.splitlines()
    assert player.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert any(line.startswith("state unavailable speaker lost") for line in lines), lines
    assert "turn done" in lines
    assert "clock advanced True" in lines
    assert any(line.startswith("state ok") for line in lines), lines
    assert lines[-1].startswith("output speaker:")


LISTENER = r"""
import threading, time
from talkerd.listen.sources import MicSource
from talkerd.config import AudioConfig

def state(name, detail):
    print("state", name, detail, flush=True)
source = MicSource(AudioConfig(reconnect_s=0.5), on_state=state)
stop = threading.Event()
threading.Timer(12, stop.set).start()
frames = gaps = 0
for frame in source.frames(stop):
    if frame is None:
        gaps += 1
        if gaps == 1:
            print("gap", flush=True)
        continue
    frames += 1
    if frames == 25:
        print("listening", flush=True)
    if gaps and frames > 25 + 25:
        print("back", flush=True)
        stop.set()
"""


def test_microphone_lost_then_back(private_pulse):
    env = private_pulse
    module = load_sink(env)  # its monitor is the only source: the "microphone"
    listener = subprocess.Popen([sys.executable, "-c", LISTENER], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while (line := listener.stdout.readline().strip()) != "listening":
            assert line, f"the microphone never delivered audio: {listener.stderr.read()[-2000:]}"
            lines.append(line)
        subprocess.run(["pactl", "unload-module", module], env=env, check=True)  # unplugged
        time.sleep(2.0)
        load_sink(env)  # plugged back in
        out, err = listener.communicate(timeout=60)
    finally:
        if listener.poll() is None:
            listener.kill()
    lines += out.splitlines()
    assert listener.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert any(line.startswith("state unavailable microphone") for line in lines), lines
    assert "gap" in lines  # the listener was told, so the pipeline drops any half utterance
    assert lines[-1] == "back"
    assert [line.split()[1] for line in lines if line.startswith("state")][-1] == "ok"
