"""Mouth tracks from phoneme timings: the real Piper phonemizer and durations, and hand-made timings."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from talkerd.speak import visemes
from talkerd.messages import PhonemeTiming
from talkerd.mouth import MOUTH_CHANNELS
from talkerd.speak.phonemes import PREFIX_MARKS, fold_marks

ROOT = Path(__file__).resolve().parent.parent
VOICE = ROOT / "var/models/en_US-joe-medium.onnx"
JAW, LIPS, ROUND, WIDE = range(len(MOUTH_CHANNELS))


def timings(*entries: tuple[str, float]) -> list[PhonemeTiming]:
    """(phoneme, seconds) in order → back-to-back timings."""
    result, at = [], 0.0
    for phoneme, seconds in entries:
        result.append(PhonemeTiming(phoneme, at, seconds))
        at += seconds
    return result


@pytest.fixture(scope="module")
def bob():
    """'Bob met Pam by the map.' spoken by the real Piper voice, noise off so it is repeatable."""
    if not VOICE.exists():
        pytest.skip("Piper voice not provisioned (scripts/setup.sh)")
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(str(VOICE), include_alignments=True)
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    (chunk,) = list(voice.synthesize("Bob met Pam by the map.", config, include_alignments=True))
    pairs = [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments]
    return visemes.timings_from_alignments(pairs, chunk.sample_rate), len(chunk.audio_int16_array) / chunk.sample_rate


def closed_runs(closed: np.ndarray) -> int:
    return int(np.sum(closed[1:] & ~closed[:-1]) + (1 if len(closed) and closed[0] else 0))


@pytest.mark.parametrize("fps", [25, 30])
def test_bob_met_pam_closes_on_every_bilabial_and_opens_on_vowels(bob, fps):
    phonemes, duration = bob
    assert "ˈ" in [p.phoneme for p in phonemes], "the phonemizer should emit stress marks as entries"
    track = visemes.mouth_track(phonemes, fps, duration)
    segments = visemes.fold_phonemes(phonemes)
    assert [s.phoneme for s in segments if not s.is_pause] == list("bɑbmɛtpæmbaɪðəmæp")
    times = (np.arange(len(track)) + 0.5) / fps
    closed = track[:, LIPS] >= 0.99
    for seg in segments:
        near = (times >= seg.start_s - 1 / fps) & (times < seg.end_s + 1 / fps)
        if seg.is_bilabial:
            assert closed[near].any(), f"{seg.phoneme} at {seg.start_s:.3f} s never closes"
            inside = (times >= seg.start_s) & (times < seg.end_s)
            assert closed[inside].all()
        elif seg.phoneme in "ɑæɛa" and seg.end_s - seg.start_s >= 2 / fps:
            middle = int((seg.start_s + seg.end_s) / 2 * fps)
            assert track[middle, JAW] >= 0.45 and track[middle, LIPS] < 0.5, seg
    # adjacent bilabials (b-m in "Bob met", m-b in "Pam by") close once; the others separately
    bilabial_runs = 0
    previous = None
    for seg in segments:
        if seg.is_bilabial and not (previous is not None and previous.is_bilabial):
            bilabial_runs += 1
        previous = seg
    assert closed_runs(closed) == bilabial_runs == 6


def test_silence_and_punctuation_give_the_rest_pose():
    track = visemes.mouth_track(timings(("^", 0.2), (".", 0.3), (" ", 0.4), ("$", 0.2)), 30, 1.5)
    assert track.shape == (45, 4)
    assert np.all(track == 0.0)
    assert np.all(visemes.mouth_track([], 30, 0.7) == 0.0)
    # speech then a long pause: the mouth returns to rest and stays there
    speech = visemes.mouth_track(timings(("^", 0.1), ("ɑ", 0.3), (",", 0.5), ("$", 0.1)), 30, 1.0)
    assert speech[7, JAW] > 0.8
    assert np.all(speech[int(0.55 * 30) :] == 0.0)


@pytest.mark.parametrize("duration, fps", [(1.0, 30), (1.01, 30), (0.999, 30), (0.0, 30), (2.345, 25), (0.01, 60)])
def test_frame_count_is_ceil_of_duration_times_fps(duration, fps):
    track = visemes.mouth_track(timings(("ɑ", 0.3)), fps, duration)
    assert track.shape == (math.ceil(duration * fps - 1e-9), len(MOUTH_CHANNELS))
    assert track.dtype == np.float32


def test_stress_and_length_marks_are_folded_into_their_vowel():
    marked = timings(("m", 0.08), ("ˈ", 0.08), ("ɑ", 0.1), ("ː", 0.08), ("m", 0.08))
    plain = timings(("m", 0.08), ("ɑ", 0.26), ("m", 0.08))
    segments = visemes.fold_phonemes(marked)
    assert [(s.phoneme, round(s.start_s, 3), round(s.end_s, 3)) for s in segments] == [
        ("m", 0.0, 0.08), ("ɑ", 0.08, 0.34), ("m", 0.34, 0.42)]
    np.testing.assert_array_equal(visemes.mouth_track(marked, 100, 0.42), visemes.mouth_track(plain, 100, 0.42))
    # a stress mark's time never reads as a mouth closing mid-word
    track = visemes.mouth_track(marked, 100, 0.42)
    assert track[12:30, JAW].min() > 0.5


def test_short_word_gap_is_shared_long_one_is_a_pause():
    short = visemes.mouth_track(timings(("ɑ", 0.2), (" ", 0.06), ("ɑ", 0.2)), 100, 0.46)
    assert short[:, JAW][10:36].min() > 0.8
    long = visemes.mouth_track(timings(("ɑ", 0.2), (" ", 0.4), ("ɑ", 0.2)), 100, 0.8)
    assert np.all(long[35:45] == 0.0)


def test_bilabial_shorter_than_a_frame_still_closes_one_frame():
    # the m lies between two frame centres at 25 fps (centres at 0.02 + k * 0.04)
    phonemes = timings(("ɑ", 0.205), ("m", 0.012), ("ɑ", 0.2))
    track = visemes.mouth_track(phonemes, 25, 0.417)
    assert not visemes.bilabial_frames(phonemes, 25, 0.417).any()
    closed = np.flatnonzero(track[:, LIPS] >= 0.99)
    assert list(closed) == [5]
    assert track[5, JAW] < 0.05


def test_shapes_cross_fade_without_popping():
    track = visemes.mouth_track(timings(("ɑ", 0.3), ("i", 0.3)), 100, 0.6)
    jaw = track[:, JAW]
    steps = np.abs(np.diff(jaw))
    assert steps.max() < 0.2, "a shape change must spread over several frames"
    between = (jaw < 0.84) & (jaw > 0.26)
    assert between.sum() >= 6
    assert jaw[15] == pytest.approx(0.85) and jaw[45] == pytest.approx(0.25)
    assert track[45, WIDE] == pytest.approx(0.8)


def test_round_and_wide_lips_follow_the_vowel():
    track = visemes.mouth_track(timings(("u", 0.3), ("i", 0.3)), 100, 0.6)
    assert track[15, ROUND] > 0.8 and track[15, WIDE] < 0.1
    assert track[45, WIDE] > 0.7 and track[45, ROUND] < 0.1


def test_unknown_phoneme_gets_a_neutral_open_mouth_and_a_debug_log(caplog):
    visemes.shape_of.cache_clear()
    with caplog.at_level(logging.DEBUG, logger="talkerd.speak.visemes"):
        track = visemes.mouth_track(timings(("ʘ", 0.3)), 100, 0.3)
    assert track[15] == pytest.approx(np.array(visemes.NEUTRAL_OPEN, dtype=np.float32))
    assert any("ʘ" in record.getMessage() for record in caplog.records)


def test_diphthong_as_one_entry_and_combining_marks():
    assert visemes.shape_of("aɪ") == visemes.VISEMES["aɪ"]
    # syllabic n (n + combining vertical line) is an n; the mark arrives separately from Piper too
    assert visemes.shape_of("n̩") == visemes.VISEMES["n"]
    segments = visemes.fold_phonemes(timings(("ʔ", 0.05), ("n", 0.05), ("\u0329", 0.05)))
    assert [(s.phoneme, round(s.end_s, 2)) for s in segments] == [("ʔ", 0.05), ("n", 0.15)]


def test_every_table_entry_is_a_valid_shape():
    for phoneme, shape in visemes.VISEMES.items():
        assert len(shape) == len(MOUTH_CHANNELS), phoneme
        assert all(0.0 <= v <= 1.0 for v in shape), phoneme


def test_bad_fps_is_a_clear_error():
    with pytest.raises(ValueError, match="fps"):
        visemes.mouth_track(timings(("ɑ", 0.3)), 0, 0.3)


def test_folding_is_done_once_and_keeps_every_second(bob):
    """The TTS's timings arrive folded; the mouth folds again: the one mark rule must be idempotent
    and move time between phonemes without losing any."""
    phonemes, _ = bob
    folded = fold_marks(phonemes)
    assert fold_marks(folded) == folded
    assert sum(p.duration_s for p in folded) == pytest.approx(sum(p.duration_s for p in phonemes))
    assert not any(p.phoneme in PREFIX_MARKS for p in folded)
    assert [s.phoneme for s in visemes.fold_phonemes(folded)] == [s.phoneme for s in visemes.fold_phonemes(phonemes)]
