"""tools/render_samples.py: the frames and the clip a person looks at before deploying the avatar."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from talkerd.render import mouth_opening

from .conftest import MODELS, ROOT


@pytest.mark.slow
def test_samples_show_each_shape_and_a_clip_of_a_spoken_sentence(tmp_path):
    if not (MODELS / "en_US-joe-medium.onnx").exists():
        pytest.skip("the Piper voice is not provisioned (scripts/setup.sh)")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "render_samples.py"), "--out", str(tmp_path),
                             "--text", "Bob met Pam by the map."], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    names = {"silent", "mouth_open", "mouth_closed", "mouth_round", "mouth_wide", "blink"}
    images = {name: cv2.imread(str(tmp_path / f"{name}.png")) for name in names}
    assert all(image is not None and image.shape == (720, 1280, 3) for image in images.values())
    for a in names:
        for b in names - {a}:
            assert np.abs(images[a].astype(int) - images[b]).mean() > 0.02, (a, b)
    capture = cv2.VideoCapture(str(tmp_path / "turn.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) > 60  # a second of idle either side of the sentence
    # The mouth box of the 1280x720 default avatar (head sway moves it by a few pixels at most).
    box = (569, 385, 142, 118)
    openings = np.array([mouth_opening(f, box) for f in frames])
    assert openings[:25].max() < 0.01 and openings[-20:].max() < 0.01  # idle: closed
    assert openings[30:-30].max() > 0.05  # speaking: open


def test_bench_prints_draw_times_for_both_sizes():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "render_samples.py"), "--bench"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1280x720" in result.stdout and "1920x1080" in result.stdout and "p99" in result.stdout


def test_a_bad_portrait_is_an_error_with_the_config_exit_code(tmp_path):
    (tmp_path / "p.toml").write_text('image = "none.png"\n')
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "render_samples.py"), "--out", str(tmp_path),
                             "--no-clip", "--portrait", str(tmp_path / "p.toml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 78 and "p.toml" in result.stderr and "Traceback" not in result.stderr
