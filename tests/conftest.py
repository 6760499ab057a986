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


def pytest_collection_modifyitems(config, items):
    """``runs_first`` tests first and ``runs_last`` tests last, the rest in their usual order: the
    fresh-machine daemon is started at the beginning and checked at the end of the whole session."""
    rank = {"runs_first": 0, "runs_last": 2}
    items.sort(key=lambda item: min((rank[m.name] for m in item.iter_markers() if m.name in rank), default=1))


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


# -- rendering: a licence-clean portrait drawn here, and screenshots of the test X server -------------
PORTRAIT_MOUTH = (240, 430)
PORTRAIT_EYES = ((170, 260), (310, 260))


def draw_portrait_image(path: Path) -> Path:
    """A simple face (480x600) drawn with OpenCV, for portrait mode: skin, eyes with dark irises, red lips."""
    import cv2

    image = np.full((600, 480, 3), (200, 215, 225), np.uint8)
    cv2.ellipse(image, (240, 300), (185, 240), 0, 0, 360, (40, 55, 90), -1, cv2.LINE_AA)  # hair
    cv2.ellipse(image, (240, 330), (165, 215), 0, 0, 360, (150, 180, 225), -1, cv2.LINE_AA)  # skin
    for x, y in PORTRAIT_EYES:
        cv2.ellipse(image, (x, y), (30, 18), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        cv2.circle(image, (x, y), 13, (60, 50, 40), -1, cv2.LINE_AA)
        cv2.circle(image, (x, y), 6, (15, 15, 15), -1, cv2.LINE_AA)
    cv2.ellipse(image, PORTRAIT_MOUTH, (55, 18), 0, 0, 360, (90, 80, 190), -1, cv2.LINE_AA)
    cv2.line(image, (187, 430), (293, 430), (60, 45, 110), 2, cv2.LINE_AA)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def portrait_description(tmp_path) -> Path:
    """A portrait description (TOML) and its image in ``tmp_path``."""
    draw_portrait_image(tmp_path / "face.png")
    (left, right), (mx, my) = PORTRAIT_EYES, PORTRAIT_MOUTH
    text = (f'image = "face.png"\n[mouth]\ncenter = [{mx}, {my}]\nwidth = 110\nheight = 36\n'
            f"[eyes]\nleft = [{left[0]}, {left[1]}]\nright = [{right[0]}, {right[1]}]\nradius = 30\n")
    (tmp_path / "portrait.toml").write_text(text)
    return tmp_path / "portrait.toml"


@pytest.fixture
def screenshot(needs_display):
    """Returns a function that grabs the whole test X screen as a BGR array (xwd + ImageMagick)."""
    import cv2

    if shutil.which("xwd") is None or shutil.which("convert") is None:
        pytest.skip("needs xwd (x11-apps) and convert (imagemagick)")

    def grab() -> np.ndarray:
        xwd = subprocess.run(["xwd", "-root", "-silent"], check=True, capture_output=True).stdout
        png = subprocess.run(["convert", "xwd:-", "png:-"], input=xwd, check=True, capture_output=True).stdout
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)

    return grab


def piper_speech(text: str):
    """The real Piper voice speaking ``text`` with phoneme alignments (noise off): its first chunk."""
    piper = pytest.importorskip("piper")
    model = MODELS / "en_US-joe-medium.onnx"
    if not model.exists():
        pytest.skip(f"{model} is not provisioned (scripts/setup.sh)")
    voice = piper.PiperVoice.load(str(model), include_alignments=True)
    config = piper.SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    return next(iter(voice.synthesize(text, config, include_alignments=True)))
