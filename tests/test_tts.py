"""The streaming Piper TTS on the real split engines through the engine runtime (ONNX Runtime here),
compared with the single Piper model and with piper-tts's own phonemizer and alignments."""
from __future__ import annotations

import numpy as np
import pytest

from talkerd.errors import ConfigError
from talkerd.speak.phonemes import PREFIX_MARKS, Phonemizer
from talkerd.speak.tts import SAMPLES_PER_FRAME, PiperTts, TtsChunk, plan_windows
from tests.conftest import MODELS

SHORT = "Hello."
MEDIUM = "We open at nine in the morning, Monday to Saturday, and at ten on Sundays."
LONG = ("Welcome to Riverside Books, where you will find thousands of new and second hand titles, a quiet "
        "reading room upstairs, a children's corner with weekly story time, and a small cafe that serves fresh "
        "coffee, tea and cakes every day until six in the evening.")
SILENCE_MS = 120


# --- window planning (no models) --------------------------------------------------------------------


@pytest.mark.parametrize("frames", [1, 40, 111, 112, 113, 200, 1191])
def test_windows_tile_the_sentence_and_keep_context(frames):
    window, overlap = 112, 24
    plans = plan_windows(frames, window, overlap)
    assert plans[0].start == 0 and plans[-1].end == frames
    for before, after in zip(plans, plans[1:]):
        assert before.end == after.start  # contiguous, no frame twice
    for plan in plans:
        assert plan.window_start <= plan.start < plan.end <= plan.window_start + window
        assert plan.window_start >= 0
        if frames >= window:
            assert plan.window_start + window <= frames  # never padded when the sentence fills a window
        # context on each side, unless the window is flush with the sentence's edge
        assert plan.start - plan.window_start >= overlap or plan.window_start == 0
        assert plan.window_start + window - plan.end >= overlap or plan.end == frames


def test_a_window_no_wider_than_its_overlaps_is_refused():
    with pytest.raises(ValueError, match="leaves nothing"):
        plan_windows(100, 48, 24)


# --- the real engines -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tts(default_config):
    """The voice as the single model speaks, its own durations kept (``max_leading_silence_ms`` off)."""
    cfg = default_config.tts.model_copy(update={"sentence_silence_ms": SILENCE_MS, "noise_scale": 0.0,
                                                "noise_w": 0.0, "length_scale": 1.0, "max_leading_silence_ms": None})
    engine = PiperTts.load(cfg, default_config.engines)
    engine.warm_up()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def piper_voice():
    """piper-tts's own voice object: the single full model and Piper's phonemizer and alignments."""
    from piper import PiperVoice

    return PiperVoice.load(MODELS / "en_US-joe-medium.onnx", include_alignments=True)


def _full_model_audio(piper_voice, ids) -> np.ndarray:
    """The single model's float audio with the noise scales at 0 (scales [0, 1, 0])."""
    from piper import SynthesisConfig

    config = SynthesisConfig(noise_scale=0.0, length_scale=1.0, noise_w_scale=0.0)
    return np.asarray(piper_voice.phoneme_ids_to_audio(list(ids), config), dtype=np.float64).reshape(-1)


def _collect(tts, text, **kwargs) -> list[TtsChunk]:
    return list(tts.synthesize(text, **kwargs))


pytestmark = pytest.mark.slow


@pytest.mark.parametrize("text", [SHORT, MEDIUM, LONG], ids=["short", "medium", "long"])
def test_phoneme_ids_are_piper_tts_own(text, tts, piper_voice):
    ours = [list(s.ids) for s in Phonemizer(tts.voice.espeak_voice, tts.voice.id_map).sentences(text)]
    theirs = [piper_voice.phonemes_to_ids(p) for p in piper_voice.phonemize(text)]
    assert ours == theirs


@pytest.mark.parametrize("text", [SHORT, MEDIUM, LONG], ids=["short", "medium", "long"])
def test_streamed_audio_equals_the_single_model(text, tts, piper_voice):
    (sentence,) = Phonemizer(tts.voice.espeak_voice, tts.voice.id_map).sentences(text)
    expected = _full_model_audio(piper_voice, sentence.ids) * 32767
    chunks = _collect(tts, text)
    audio = np.concatenate([c.audio for c in chunks]).astype(np.float64)
    silence = round(SILENCE_MS * tts.sample_rate / 1000)
    assert len(audio) == len(expected) + silence
    assert not audio[len(expected):].any()  # the sentence silence, at the end of the last chunk
    error = np.linalg.norm(audio[: len(expected)] - expected) / np.linalg.norm(expected)
    assert error < 1e-3, f"relative L2 error {error:.2e}"
    assert len(text.split()) < 40 or len(chunks) > 5
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(c.audio.dtype == np.int16 and c.sample_rate == 22050 for c in chunks)


def test_first_chunk_leaves_before_the_sentence_is_done(tts):
    assert len(LONG.split()) >= 40
    before = tts.audio_runs
    runs_at_chunk = [tts.audio_runs - before for _ in tts.synthesize(LONG)]
    assert len(runs_at_chunk) > 5
    assert runs_at_chunk[0] == 1  # the first chunk left after one audio-engine run of many
    assert runs_at_chunk == list(range(1, len(runs_at_chunk) + 1))  # every chunk right after its run


def test_chunk_offsets_are_contiguous(tts):
    chunks = _collect(tts, LONG)
    position = 0
    for chunk in chunks:
        assert chunk.offset_s == pytest.approx(position / tts.sample_rate)
        position += len(chunk.audio)
        assert len(chunk.audio) % SAMPLES_PER_FRAME == 0 or chunk.last


def test_phoneme_timings_tile_the_audio_and_fold_marks(tts):
    timed = tts.phonemes_for(LONG)
    audio_s = sum(len(c.audio) for c in _collect(tts, LONG)) / tts.sample_rate
    assert sum(p.duration_s for p in timed) == pytest.approx(audio_s, abs=1e-6)
    for before, after in zip(timed, timed[1:]):
        assert after.start_s == pytest.approx(before.start_s + before.duration_s, abs=1e-9)
        assert after.start_s > before.start_s
    symbols = [p.phoneme for p in timed]
    assert not any(s in PREFIX_MARKS or s == "ː" for s in symbols), "a mark was left as a phoneme of its own"
    assert "ˈɛ" in symbols and "uː" in symbols  # stress folded forward, length folded back
    assert symbols[0] == "^" and symbols[-1] == "_"  # leading silence ... sentence silence


def test_timings_agree_with_piper_tts_alignments(tts, piper_voice):
    from piper import SynthesisConfig

    config = SynthesisConfig(noise_scale=0.0, length_scale=1.0, noise_w_scale=0.0, normalize_audio=False)
    (chunk,) = piper_voice.synthesize(MEDIUM, config, include_alignments=True)
    boundaries = set(np.cumsum([a.num_samples for a in chunk.phoneme_alignments]).tolist())
    timed = tts.phonemes_for(MEDIUM)[:-1]  # without the sentence silence
    ours = [round((p.start_s + p.duration_s) * tts.sample_rate) for p in timed]
    assert ours[-1] == max(boundaries)
    assert set(ours) <= boundaries  # folding only merges Piper's own segments


def test_each_chunk_carries_the_phonemes_it_overlaps(tts):
    timed = tts.phonemes_for(LONG)
    for chunk in _collect(tts, LONG):
        begin, end = chunk.offset_s, chunk.offset_s + chunk.duration_s
        expected = [p for p in timed if p.start_s < end and p.start_s + p.duration_s > begin]
        assert list(chunk.phonemes) == expected


@pytest.mark.parametrize("text", ["", "   ", " \n\t "])
def test_nothing_to_say_yields_nothing(text, tts):
    assert _collect(tts, text) == []
    assert tts.phonemes_for(text) == ()


def test_cancelling_stops_between_chunks(tts):
    cancelled = False
    received = []
    before = tts.audio_runs
    for chunk in tts.synthesize(LONG, cancelled=lambda: cancelled):
        received.append(chunk)
        cancelled = True  # a barge-in while the first chunk plays
    assert len(received) == 1 and not received[0].last
    assert tts.audio_runs - before == 1  # the engine did not run again


def test_several_sentences_continue_one_timeline(tts):
    text = "Hello there. How are you today?"
    chunks = _collect(tts, text)
    silence = round(SILENCE_MS * tts.sample_rate / 1000)
    timed = tts.phonemes_for(text)
    assert [p.phoneme for p in timed].count("_") == 2  # one sentence silence each
    assert sum(len(c.audio) for c in chunks) / tts.sample_rate == pytest.approx(sum(p.duration_s for p in timed))
    assert not chunks[0].audio[-silence:].any()
    assert chunks[-1].last and sum(c.last for c in chunks) == 1


def test_noise_scales_zero_is_repeatable_and_otherwise_varies(tts, default_config):
    first = np.concatenate([c.audio for c in _collect(tts, MEDIUM)])
    again = np.concatenate([c.audio for c in _collect(tts, MEDIUM)])
    np.testing.assert_array_equal(first, again)
    lively_cfg = tts.cfg.model_copy(update={"noise_scale": 0.667, "noise_w": 0.8})
    lively = PiperTts.load(lively_cfg, default_config.engines)
    try:
        one = np.concatenate([c.audio for c in _collect(lively, MEDIUM)])
        two = np.concatenate([c.audio for c in _collect(lively, MEDIUM)])
    finally:
        lively.close()
    assert len(one) != len(two) or not np.array_equal(one, two)


def test_length_scale_slows_speech(tts, default_config):
    slow = PiperTts.load(tts.cfg.model_copy(update={"length_scale": 1.5}), default_config.engines)
    try:
        slow_s = sum(p.duration_s for p in slow.phonemes_for(MEDIUM))
    finally:
        slow.close()
    normal_s = sum(p.duration_s for p in tts.phonemes_for(MEDIUM))
    assert 1.3 < (slow_s - SILENCE_MS / 1000) / (normal_s - SILENCE_MS / 1000) < 1.7


def test_a_sentence_too_long_for_the_text_engine_is_cut_between_words(tts):
    phonemizer = Phonemizer(tts.voice.espeak_voice, tts.voice.id_map, max_ids=101)
    parts = phonemizer.sentences(LONG)
    assert len(parts) > 1 and all(len(p.ids) <= 101 for p in parts)
    assert all(p.phonemes[0] == " " for p in parts[1:])  # each cut is at a word gap
    whole = Phonemizer(tts.voice.espeak_voice, tts.voice.id_map).sentences(LONG)[0]
    assert sum((list(p.phonemes) for p in parts), []) == list(whole.phonemes)


def test_a_broken_voice_config_names_the_field(tmp_path, default_config):
    broken = tmp_path / "voice.onnx.json"
    broken.write_text('{"audio": {}}')
    with pytest.raises(ConfigError, match="tts.voice_config"):
        PiperTts.load(default_config.tts.model_copy(update={"voice_config": broken}), default_config.engines)
    with pytest.raises(ConfigError, match="no such file"):
        PiperTts.load(default_config.tts.model_copy(update={"voice_config": tmp_path / "absent.json"}), default_config.engines)


def test_benchmark_reports_first_chunk_against_the_whole_model(tts):
    from talkerd.bench.tts_chunks import BENCH_TEXT, measure_first_chunk_ratio

    result = measure_first_chunk_ratio(tts, BENCH_TEXT, repeats=1)
    assert result["words"] >= 40 and result["chunks"] > 5
    assert result["audio_s"] == pytest.approx(sum(p.duration_s for p in tts.phonemes_for(BENCH_TEXT)), abs=0.01)
    assert result["first_chunk_ratio"] == pytest.approx(result["first_chunk_ms"] / result["whole_model_ms"], abs=2e-3)
    print(f"\nfirst chunk {result['first_chunk_ms']} ms, whole model {result['whole_model_ms']} ms, "
          f"ratio {result['first_chunk_ratio']}")


def test_an_overlap_that_fills_the_window_is_a_config_error(default_config):
    cfg = default_config.tts.model_copy(update={"chunk_overlap_frames": 56})
    with pytest.raises(ConfigError, match="tts.chunk_overlap_frames"):
        PiperTts.load(cfg, default_config.engines)


def test_the_health_board_lists_the_loaded_engines(tts, default_config):
    """`talkerctl status`'s engines come from the parts the daemon holds, not from a global list."""
    from talkerd.components import Components

    board = Components(default_config, tts=tts).engine_board()
    assert set(board) == {default_config.tts.text_engine, default_config.tts.audio_engine}
    for entry in board.values():
        assert entry["state"] == "ok" and entry["backend"] == "onnxruntime" and entry["memory_mb"] >= 0
    assert Components(default_config).engine_board() == {}  # a part that did not load holds no engine


def test_a_long_silence_before_a_sentence_is_shortened_and_nothing_else_changes(tts, default_config):
    """The voice gives the start of "This sounds like a medical emergency." 0.75 s of silence."""
    from talkerd.speak.playout import AUDIBLE_LEVEL

    text = "This sounds like a medical emergency."
    capped = PiperTts.load(tts.cfg.model_copy(update={"max_leading_silence_ms": 40}), default_config.engines)
    try:
        def first_sound_s(engine) -> float:
            audio = np.concatenate([c.audio for c in engine.synthesize(text)]).astype(np.int32)
            return int(np.flatnonzero(np.abs(audio) >= AUDIBLE_LEVEL)[0]) / engine.sample_rate

        own, short = tts.phonemes_for(text), capped.phonemes_for(text)
        assert own[1].start_s > 0.5 and first_sound_s(tts) > 0.5  # the voice's own lead
        assert short[1].start_s <= 0.04 and first_sound_s(capped) < 0.1
        cut = own[1].start_s - short[1].start_s
        # Every phoneme after the lead keeps its duration, moved earlier by the cut.
        assert [(p.phoneme, round(p.start_s - cut, 4), round(p.duration_s, 6)) for p in own[1:]] == \
               [(p.phoneme, round(p.start_s, 4), round(p.duration_s, 6)) for p in short[1:]]
    finally:
        capped.close()
