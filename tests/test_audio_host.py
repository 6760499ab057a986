"""The one PortAudio owner: real PortAudio with no sound server at all, and in the test PulseAudio.

With no sound server and no sound card, the microphone's reconnect loop and the speaker's reopen retry
at once, forever. Each used to create and terminate its own PortAudio instance, and two threads inside
PortAudio's initialise/terminate corrupted the heap within seconds (a segfault or ``free(): invalid
next size``). Through the host they are serialised: the process stays up and reports both devices
unavailable.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from talkerd.audio import Backoff, PortAudioHost, StreamSpec
from talkerd.errors import ComponentUnavailable

from .conftest import ROOT

HAMMER = r"""
import sys, threading, time
from talkerd.audio import PortAudioHost
from talkerd.listen.sources import MicSource
from talkerd.config import AudioConfig
from talkerd.bench.lipsync import AudioCapture
from talkerd.speak.playout import NullOutput, Playout, PyAudioOutput

seconds = float(sys.argv[1])
host = PortAudioHost(min_rescan_s=0.0)  # re-initialise on every failed open: the worst case
config = AudioConfig(reconnect_s=0.001, reconnect_max_s=0.001)
states = {"microphone": set()}
speaker_attempts = []

def reopen_speaker():
    speaker_attempts.append(1)
    return PyAudioOutput(config, 22050, host=host)

stop = threading.Event()

def listen():
    for frame in MicSource(config, lambda s, d: states["microphone"].add(s), host=host).frames(stop):
        pass

playout = Playout(NullOutput(22050), 22050, config, reopen=reopen_speaker)
threads = [threading.Thread(target=listen), threading.Thread(target=playout.run, args=(stop,))]
for thread in threads:
    thread.start()
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        host.devices(output=True)
    except Exception:
        pass
    time.sleep(0.001)
stop.set()
for thread in threads:
    thread.join(5)
print("microphone", sorted(states["microphone"]), "speaker-attempts", len(speaker_attempts), "initialisations", host.initialisations, flush=True)
"""


def no_sound_server_env(tmp_path) -> dict:
    """The environment of a machine without a sound server: PulseAudio's socket points nowhere."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PULSE_SERVER": f"unix:{tmp_path}/no-such-server", "HOME": str(tmp_path)}
    env.pop("TALKERD_TEST_PULSE", None)
    return env


def test_reconnect_loops_with_no_devices_do_not_crash_the_process(tmp_path):
    pytest.importorskip("pyaudio")
    run = subprocess.run([sys.executable, "-c", HAMMER, "6"], env=no_sound_server_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stderr[-3000:]}"
    words = next(line for line in run.stdout.splitlines() if line.startswith("microphone")).split()
    assert words[1] == "['unavailable']", words
    # Both loops really retried, and PortAudio was re-initialised over and over meanwhile.
    assert int(words[3]) > 20 and int(words[5]) > 20, words


@pytest.mark.usefixtures("needs_pulse")
def test_a_rescan_for_a_missing_device_keeps_the_other_stream_working():
    """The microphone asks for a device that is not there; the host re-initialises PortAudio and the
    speaker stream, opened before, is reopened under its user and keeps playing."""
    host = PortAudioHost(min_rescan_s=0.0)
    speaker = host.open(StreamSpec("default", output=True, rate=16000, frames_per_buffer=320))
    before = host.initialisations
    written = 0
    stop = threading.Event()
    errors: list[BaseException] = []

    def play() -> None:
        nonlocal written
        block = (np.sin(np.arange(320) / 5) * 3000).astype(np.int16).tobytes()
        try:
            while not stop.is_set():
                speaker.write(block)
                written += 1
        except BaseException as exc:  # recorded for the assertion below
            errors.append(exc)

    player = threading.Thread(target=play)
    player.start()
    try:
        for _ in range(5):
            with pytest.raises(ComponentUnavailable, match="no-such-microphone"):
                host.open(StreamSpec("no-such-microphone", output=False, rate=16000, frames_per_buffer=320))
        at_rescans = written
        time.sleep(0.5)
    finally:
        stop.set()
        player.join(5)
        host.shutdown()
    assert not errors, errors
    assert host.initialisations == before + 5
    assert written > at_rescans, "the speaker stopped playing after PortAudio was re-initialised"


@pytest.mark.usefixtures("needs_pulse")
def test_no_rescan_while_the_speaker_is_busy():
    host = PortAudioHost(min_rescan_s=0.0)
    speaker = host.open(StreamSpec("default", output=True, rate=16000, frames_per_buffer=320))
    try:
        speaker.busy = True
        before = host.initialisations
        with pytest.raises(ComponentUnavailable, match="idle"):
            host.open(StreamSpec("no-such-microphone", output=False, rate=16000, frames_per_buffer=320))
        assert host.initialisations == before
        assert speaker.is_open
    finally:
        host.shutdown()


def test_backoff_doubles_up_to_its_maximum_and_resets():
    backoff = Backoff(0.5, 2.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_capture_clock_stamps_audio_by_its_samples_not_by_when_it_was_read():
    from talkerd.audio import CaptureClock

    clock = CaptureClock(16000, latency_s=0.04)
    for step in range(1, 51):  # a second of 20 ms blocks, each read as it arrives
        heard = clock.read(320, now=100.0 + step * 0.02)
        assert heard == pytest.approx(100.0 + step * 0.02 - 0.04)
    # The reader stalls for 300 ms, then drains 15 waiting blocks in one burst at t = 101.3 s.
    burst = [clock.read(320, now=101.3) for _ in range(15)]
    assert burst[0] == pytest.approx(101.02 - 0.04) and burst[-1] == pytest.approx(101.3 - 0.04)
    assert np.allclose(np.diff(burst), 0.02)  # the audio keeps its own spacing
    # An overflow dropped 100 ms: after the window the clock follows the device again.
    now = 101.3
    for _ in range(int(CaptureClock.WINDOW_S / 0.02) + 5):
        now += 0.02
        heard = clock.read(320, now=now + 0.1)
    assert heard == pytest.approx(now + 0.1 - 0.04)


@pytest.mark.usefixtures("needs_pulse")
def test_a_reader_that_fell_behind_gets_the_time_its_audio_was_heard():
    from talkerd.audio import PortAudioHost, StreamSpec

    host = PortAudioHost()
    stream = host.open(StreamSpec("default", output=False, rate=16000, frames_per_buffer=320))
    try:
        for _ in range(25):
            stream.read(320)
        time.sleep(0.3)  # the reader is busy elsewhere; the sound server keeps the audio
        stream.read(320)
        late_by = time.monotonic() - stream.captured_at()
        assert late_by >= 0.25, f"stamped {late_by * 1000:.0f} ms ago: the read time, not the audio's"
    finally:
        stream.close()
        host.shutdown()
