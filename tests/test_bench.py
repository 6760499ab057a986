"""The lip-sync lag estimator, and `talkerd bench` end to end on the real pipeline."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from talkerd.bench.lipsync import estimate_lag

from .conftest import DEFAULT_CONFIG, ROOT


def syllables(times: np.ndarray, seed: int = 3) -> np.ndarray:
    """A speech-like loudness contour: random syllables of 120–250 ms with pauses."""
    rng = np.random.default_rng(seed)
    level = np.zeros_like(times)
    t = times[0]
    while t < times[-1]:
        length = rng.uniform(0.12, 0.25)
        level += np.where((times >= t) & (times < t + length), np.sin(np.pi * (times - t) / length) ** 2, 0.0)
        t += length + rng.uniform(0.02, 0.2)
    return level


@pytest.mark.parametrize("lag_ms", [-60, 0, 40, 120])
def test_estimate_lag_recovers_a_known_shift(lag_ms):
    audio_times = np.arange(0.0, 6.0, 1 / 16000)[::20]  # the envelope's sample times
    level = syllables(audio_times)
    video_times = np.arange(0.0, 6.0, 1 / 30)  # 30 fps: each frame shows the sound of lag ms before
    opening = np.interp(video_times - lag_ms / 1000, audio_times, level)
    estimate = estimate_lag(np.column_stack([video_times, opening]), audio_times, level)
    assert abs(estimate.lag_ms - lag_ms) <= 10
    assert estimate.correlation > 0.8


def test_estimate_lag_refuses_tracks_that_barely_overlap():
    times = np.arange(0, 1.0, 0.01)
    with pytest.raises(ValueError):
        estimate_lag(np.column_stack([times, times]), times + 5, times)


@pytest.mark.slow
@pytest.mark.usefixtures("needs_pulse")
def test_bench_reports_streaming_floor_sequential_and_lip_sync(tmp_path):
    report = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "talkerd", "--log-level", "WARNING", "bench", "--config", str(DEFAULT_CONFIG), "--turns", "2", "--json", str(report)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(report.read_text())
    assert "time to first audio / floor" in result.stdout and summary["machine"] in result.stdout
    assert summary["turns"] == 2
    min_silence = 600  # configs/default.toml's endpointer (the default)
    for turn in summary["per_turn"]:
        # Measured from the true end of speech in the WAV, so it includes the endpointer's wait.
        assert turn["ttfa_ms"] >= min_silence
        assert turn["floor_parts_ms"]["min_silence"] == min_silence
        assert turn["floor_ms"] >= min_silence + turn["floor_parts_ms"]["asr_final"]
        stages = turn["stages_ms"]
        assert stages["asr_final"] <= stages["audio_out"] <= stages["turn_end"]
    assert summary["ratio_ttfa_over_floor"] > 0 and summary["ratio_sequential_over_streaming"] > 0
    assert summary["lip_sync"] == "measured"
    assert len(summary["lag_ms"]["per_turn"]) == 2
    assert summary["render"]["frames"] > 0
    # The avatar is on screen before the models are warm (systemd hears both from the daemon itself).
    assert 0 < summary["startup"]["first_frame_s"] < summary["startup"]["ready_s"], summary["startup"]
    assert "process start → avatar" in result.stdout
    tts = summary["tts_first_chunk"]
    assert tts["words"] >= 40 and tts["chunks"] > 1
    assert 0 < tts["first_chunk_ms"] < tts["streamed_total_ms"]


def test_a_bench_names_its_question_only_for_an_utterance_something_was_heard_in():
    """A microphone's click heard as an empty utterance must stay no question (a kiosk ignores it), or
    the bench would answer a phantom question and miss the real one spoken over its answer."""
    from talkerd.bench import named

    assert named("Is there parking?", "주차 있어요") == "Is there parking?"
    assert named("Is there parking?", "  ") == "  " and named("Is there parking?", "") == ""
