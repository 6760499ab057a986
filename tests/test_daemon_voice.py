"""A spoken question, played into the test PulseAudio's virtual microphone, is answered out loud.

Real daemon, real PyAudio capture and playback through PulseAudio, real Silero VAD, real vosk (the
Korean model: the words are not understood, so we assert a non-empty final and its timing), real
llama.cpp and Piper. The answer is captured from the virtual speaker and matched against what the
TTS produces for the answer's first clause.
"""
from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from talkerd.audio import read_wav_mono

from .conftest import espeak_wav
from .daemon_harness import DaemonProcess, write_config

RATE = 16000


def best_alignment(needle: np.ndarray, haystack: np.ndarray) -> float:
    """Highest normalised correlation of ``needle`` against any stretch of ``haystack``."""
    needle = needle.astype(np.float64)
    haystack = haystack.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(needle) + len(haystack))))
    correlation = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)[: len(haystack) - len(needle) + 1]
    energy = np.convolve(haystack**2, np.ones(len(needle)), mode="valid")
    normalised = correlation / (np.sqrt(energy * np.sum(needle**2)) + 1e-9)
    return float(normalised.max())


@pytest.mark.usefixtures("needs_pulse")
def test_spoken_question_is_answered_aloud(tmp_path, default_config):
    question = espeak_wav("Hello there. What time does the store open today?", tmp_path / "question.wav")
    config = write_config(tmp_path)
    process = DaemonProcess(config, "--input", "mic", "--display", "none", "--output", "speaker", env={"DISPLAY": ""})
    capture = tmp_path / "speaker.wav"
    recorder = None
    try:
        status = process.wait_ready()
        process.wait_prerendered()  # the speech measured below has the CPU to itself
        assert status["components"]["microphone"]["state"] == "ok", status["components"]
        assert status["components"]["speaker"]["state"] == "ok", status["components"]
        recorder = subprocess.Popen(
            ["parecord", "--device=spk.monitor", "--rate=16000", "--channels=1", "--format=s16le", "--file-format=wav", str(capture)]
        )
        time.sleep(0.5)
        subprocess.run(["paplay", "--device=spk", str(question)], check=True, timeout=30)
        deadline = time.monotonic() + 90
        last = None
        while time.monotonic() < deadline:
            status = process.call("status")
            last = status.get("last_turn")
            if last and last["source"] == "voice":
                break
            time.sleep(0.3)
        assert last and last["source"] == "voice", f"no spoken turn finished:\n{process.log()}"
        time.sleep(1.0)
    finally:
        if recorder is not None:
            recorder.terminate()
            recorder.wait(10)
        process.stop()

    # vosk produced a final text, after the end of speech, and the answer followed it.
    assert last["question"].strip()
    latency = last["latency_ms"]
    assert 0 < latency["asr_final"] < latency["audio_out"] < latency["turn_end"]
    assert latency["asr_final"] >= default_config.endpointer.min_silence_ms * 0.8
    assert last["answer"].strip()

    # What left the speaker is the TTS's speech of the answer: the longest clause as the daemon spoke
    # it (the most distinctive stretch), and of it the first chunk the TTS made — played without a
    # break, whereas a busy machine may leave a gap between two chunks.
    from talkerd.speak.tts import PiperTts

    tts = PiperTts.load(default_config.tts, default_config.engines)
    clause = max(last["clauses"], key=len)
    expected = next(iter(tts.synthesize(clause))).audio
    expected = read_wav_mono_array(expected, tts.sample_rate, RATE, tmp_path)
    heard = read_wav_mono(capture, RATE)
    assert np.abs(heard).max() > 1000, "the virtual speaker captured only silence"
    assert len(expected) > RATE // 2, f"the first chunk of {clause!r} is too short to look for"
    assert best_alignment(expected, heard) > 0.9


def read_wav_mono_array(samples: np.ndarray, rate: int, target: int, folder) -> np.ndarray:
    from .conftest import write_wav

    return read_wav_mono(write_wav(folder / "expected.wav", samples, rate), target)
