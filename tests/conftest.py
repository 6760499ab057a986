"""Shared fixtures: the repository's paths, the development config, and spoken test audio."""
from __future__ import annotations

import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "default.toml"
MODELS = ROOT / "var" / "models"


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return path


def espeak_wav(text: str, path: Path) -> Path:
    """Real speech from espeak-ng (22.05 kHz mono WAV)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="session")
def default_config():
    from talkerd.config import load_config

    return load_config(DEFAULT_CONFIG)


@pytest.fixture
def needs_pulse():
    if os.environ.get("TALKERD_TEST_PULSE") != "1":
        pytest.skip("needs the test PulseAudio server (run through scripts/with-test-services.sh)")


@pytest.fixture
def needs_display():
    if os.environ.get("TALKERD_TEST_DISPLAY") != "1" or not os.environ.get("DISPLAY"):
        pytest.skip("needs the test X server (run through scripts/with-test-services.sh)")
