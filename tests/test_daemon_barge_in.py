"""A visitor who speaks while the avatar talks interrupts it (`audio.barge_in = true`).

The daemon listens to the test PulseAudio's FIFO microphone (which does not hear the speaker, as an
echo-cancelled microphone would not); the test speaks a question into it, waits until the avatar is
answering, and speaks again. Real PyAudio, Silero VAD, vosk, llama.cpp and Piper.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from talkerd.audio import read_wav_mono

from .conftest import espeak_wav
from .daemon_harness import DaemonProcess, write_config

RATE = 16000
FRAME = 320


class FifoMicrophone:
    """Feeds the PulseAudio pipe source at real-time pace: silence, or whatever is queued."""

    def __init__(self, path: str) -> None:
        self._fifo = open(path, "wb")  # noqa: SIM115 — held open for the whole test, closed in stop()
        self._pending = np.zeros(0, np.int16)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def say(self, audio: np.ndarray) -> None:
        with self._lock:
            self._pending = np.concatenate([self._pending, audio])

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                block, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            block = np.pad(block, (0, FRAME - len(block)))
            self._fifo.write(block.tobytes())
            self._fifo.flush()
            deadline += FRAME / RATE
            time.sleep(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._fifo.close()


@pytest.mark.usefixtures("needs_pulse")
def test_speaking_over_the_avatar_cancels_its_answer(tmp_path):
    fifo = os.environ.get("TALKERD_TEST_MIC_FIFO")
    if not fifo:
        pytest.skip("needs the FIFO microphone of scripts/with-test-services.sh")
    question = read_wav_mono(espeak_wav("Hello! Could you tell me a long story about this bookshop?", tmp_path / "q1.wav"), RATE)
    interruption = read_wav_mono(espeak_wav("Sorry, one more thing please.", tmp_path / "q2.wav"), RATE)
    config = write_config(tmp_path, extra="\n[audio]\nbarge_in = true\n")
    microphone = FifoMicrophone(fifo)
    process = DaemonProcess(config, "--input", "mic", "--display", "none", "--output", "speaker",
                            env={"DISPLAY": "", "PULSE_SOURCE": "fifo_mic"})
    try:
        process.wait_ready()
        process.wait_prerendered()
        microphone.say(question)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not process.call("status")["speaking"]:
            time.sleep(0.1)
        assert process.call("status")["speaking"], f"the avatar never started answering:\n{process.log()}"
        time.sleep(1.0)  # well into the answer
        microphone.say(interruption)
        deadline = time.monotonic() + 60
        status = process.call("status")
        while time.monotonic() < deadline and status["turns"] < 1:
            time.sleep(0.3)
            status = process.call("status")
    finally:
        process.stop()
        microphone.stop()
    log = process.log()
    # The first answer was cut off; only the answer to the interruption was spoken to its end.
    assert "cancelled" in log, log[-3000:]
    assert status["turns"] == 1, status
    last = status["last_turn"]
    assert last["source"] == "voice" and last["answer"]
    assert last["latency_ms"]["speech_end"] == 0.0
