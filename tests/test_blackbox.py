"""``talkerd bench --black-box``: its instrument, its end-of-turn sweep, and one run against a
known-delay echo and the real daemon on a private PulseAudio."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from talkerd.bench.ear import WINDOW, Spoken, first_sound
from talkerd.bench.private_pulse import RATE

from .conftest import DEFAULT_CONFIG, ROOT

BLOCK = 320


def _blocks(audio: np.ndarray, first_block_ends_at: float) -> list[tuple[float, np.ndarray]]:
    """``audio`` cut as the speaker recorder keeps it: blocks stamped with their last sample's time."""
    return [(first_block_ends_at + i / RATE * BLOCK, audio[start : start + BLOCK])
            for i, start in enumerate(range(0, len(audio) - BLOCK + 1, BLOCK))]


def _tone(seconds: float) -> np.ndarray:
    return (8000 * np.sin(2 * np.pi * 300 * np.arange(int(seconds * RATE)) / RATE)).astype(np.int16)


def test_the_first_sound_is_found_where_it_was_played_and_only_after_the_moment():
    onset = 27_500  # samples: not on a block or a window boundary
    audio = np.concatenate([np.zeros(RATE // 10, np.int16), _tone(0.2), np.zeros(onset - RATE // 10 - RATE // 5, np.int16),
                            _tone(0.5)])
    blocks = _blocks(audio, first_block_ends_at=100.0)
    start = 100.0 - (BLOCK - 1) / RATE  # when the first sample was heard
    found = first_sound(blocks, after=start + 0.5)  # after the first tone, before the second
    assert found is not None
    # The start of the first loud 10 ms window: the onset is inside it.
    assert -WINDOW / RATE < found - (start + onset / RATE) <= 1e-9
    assert -WINDOW / RATE < first_sound(blocks, after=start) - (start + RATE // 10 / RATE) <= 1e-9
    assert first_sound(_blocks(np.zeros(RATE, np.int16), 100.0), after=99.0) is None


def test_a_spoken_sample_is_placed_back_from_when_its_last_block_was_written():
    spoken = Spoken(last_written_at=50.0, padded_samples=3 * BLOCK)
    assert spoken.time_of(3 * BLOCK) == 50.0
    assert spoken.time_of(0) == pytest.approx(50.0 - 3 * BLOCK / RATE)


def test_the_endpointer_sweep_cuts_a_pause_longer_than_its_silence_and_waits_longer_with_more(tmp_path, default_config):
    """The real endpointer and VAD on espeak speech, on a simulated clock."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from talkerd.bench.blackbox import make_utterances
    from talkerd.bench.turn_tradeoff import Setting, sweep

    plain, paused = make_utterances(tmp_path)
    short, long = Setting("silence", 400), Setting("silence", 1000)
    rows = {row["setting"]: row for row in sweep(default_config, plain[:3], paused, settings=(short, long))}
    cut_short, cut_long = (rows[s.label]["false_cut_off_by_pause_ms"] for s in (short, long))
    assert cut_short[800] == 1.0 and cut_short[600] == 1.0  # any pause past 400 ms of silence (and the VAD's lag) ends the turn
    assert cut_long == {400: 0.0, 600: 0.0, 800: 0.0}
    wait_short, wait_long = rows[short.label]["wait_p50_ms"], rows[long.label]["wait_p50_ms"]
    assert 400 <= wait_short < 600 and 1000 <= wait_long < 1200 and 500 <= wait_long - wait_short <= 700


def test_llm_turns_compare_the_turns_after_the_cold_one_with_the_last_ones():
    from talkerd.bench.blackbox import Measured, summarize_llm_turns

    # 13 turns of 3 questions: turn 1 is cold (9000 ms); turns 2-7 take 1000-1050, the last six 1500-1550;
    # one of them went unanswered and one by a fixed answer.
    latencies = [9000.0] + [1000.0 + 10 * i for i in range(6)] + [1500.0 + 10 * i for i in range(5)] + [None]
    routes = ["smalltalk"] * 10 + ["unknown", "facts", None]
    figures = [Measured("talkerd", f"q{i % 3}", route, 0, ms, False) for i, (ms, route) in enumerate(zip(latencies, routes))]
    summary = summarize_llm_turns(figures, questions=3)
    assert (summary["early_turns"], summary["late_turns"]) == ([2, 7], [8, 13])
    assert summary["early_p50_ms"] == 1025.0 and summary["late_p50_ms"] == 1520.0
    assert summary["late_over_early"] == round(1520.0 / 1025.0, 2)
    assert summary["routes"] == {"LLM": 11, "fixed": 1, "unanswered": 1} and summary["unanswered"] == 1
    # Per question, in the same windows: q0 is turns 4 and 7 early (1020, 1050), 10 late (1520; 13 unanswered).
    assert summary["by_question"]["q0"] == {"early_p50_ms": 1035.0, "late_p50_ms": 1520.0}


def _black_box(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkerd", "bench", "--config", str(DEFAULT_CONFIG), "--black-box", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_too_few_llm_turns_to_compare_is_a_usage_error():
    run = _black_box("--llm-turns", "12")
    assert run.returncode == 2 and "--llm-turns at least 13" in run.stdout


@pytest.mark.parametrize("ignored", [["--questions", "2"], ["--no-baseline"]])
def test_llm_turns_refuse_the_options_they_would_ignore(ignored):
    run = _black_box("--llm-turns", "13", *ignored)
    assert run.returncode == 2 and "it takes neither --questions nor --no-baseline" in run.stdout


@pytest.mark.slow
def test_the_black_box_bench_times_a_known_echo_and_the_daemon_from_outside(tmp_path):
    for tool in ("pulseaudio", "pactl", "pacmd", "parecord", "espeak-ng"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh)")
    report_path = tmp_path / "blackbox.json"
    run = subprocess.run(
        [sys.executable, "-m", "talkerd", "--log-level", "WARNING", "bench", "--config", str(DEFAULT_CONFIG),
         "--black-box", "--rounds", "1", "--questions", "1", "--no-baseline", "--json", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    report = json.loads(report_path.read_text())
    print(run.stdout)
    # The echo is PulseAudio's own loopback: the instrument must find each known delay, to within the
    # loopback's own adjustment and its 10 ms windows.
    for row in report["calibration"]:
        assert row["heard"] == row["of"], row
        assert abs(row["error_ms_median"]) <= 60, row
    turns = [t for t in report["per_turn"] if t["system"] == "talkerd"]
    whole = [t for t in turns if not t["pause_ms"]]
    assert [t["question"] for t in whole] == ["What time does the store open?"]
    # The whole question was answered with its curated entry, after the visitor had finished.
    assert all(t["route"] == "curated" and t["latency_ms"] is not None and t["latency_ms"] > 0 and not t["cut_off"]
               for t in whole), whole
    # Its answer was prepared during the visitor's last pause and used (the bench names the question, so
    # the partial transcript at the pause and the final ask the same).
    assert all(t["speculated"] is True for t in whole), whole
    # The same question in two parts, at each pause length: answered each time, from the curated entry.
    paused = [t for t in turns if t["pause_ms"]]
    assert sorted(t["pause_ms"] for t in paused) == [400, 600, 800]
    assert all(t["latency_ms"] is not None and t["route"] == "curated" for t in paused), paused
