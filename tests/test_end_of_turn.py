"""End of turn: the Whisper features, the endpointer asking at each short pause, and the real Smart Turn
engine, on synthetic speech. Its decisions on recordings of people: tests/test_turn_on_people.py."""
from __future__ import annotations

import numpy as np
import pytest

from talkerd.config import EndpointerConfig
from talkerd.listen.end_of_turn import FRAMES, N_MELS, RATE, WINDOW_S, SmartTurn, log_mel_features, mel_filters
from talkerd.listen.endpointer import EnergyDetector, Endpointer
from talkerd.messages import AudioFrame

from .conftest import espeak_wav
from .test_listening import FRAME, frames_of
from talkerd.audio import read_wav_mono


def test_a_tone_lights_the_mel_band_around_its_frequency():
    t = np.arange(3 * RATE) / RATE
    features = log_mel_features((0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert features.shape == (N_MELS, FRAMES) and features.dtype == np.float32
    band = int(features[:, -100:].mean(axis=1).argmax())
    peak_hz = np.linspace(0, RATE / 2, mel_filters().shape[1])[mel_filters()[band].argmax()]
    assert abs(peak_hz - 1000) < 100, peak_hz
    # Shorter than the window: padded in front with silence, so the first frames carry the floor only.
    assert np.ptp(features[:, :400]) < 1e-6 and np.ptp(features[:, -100:]) > 1.0


def test_features_keep_only_the_last_eight_seconds():
    rng = np.random.default_rng(3)
    long = rng.standard_normal(12 * RATE).astype(np.float32) * 0.1
    assert np.array_equal(log_mel_features(long), log_mel_features(long[-WINDOW_S * RATE:]))


class ScriptedTurn:
    """Stands for Smart Turn (its real side: test_the_real_engine_gives_a_probability): says complete
    with the probability the test sets, and keeps the audio it was asked about."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.asked: list[np.ndarray] = []

    def complete_probability(self, audio: np.ndarray) -> float:
        self.asked.append(audio)
        return self.probability


def speech_then_silence(speech_s: float, silence_s: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    voiced = (rng.standard_normal(int(speech_s * RATE)) * 6000).astype(np.int16)
    return np.concatenate([voiced, np.zeros(int(silence_s * RATE), np.int16)])


def ends(turn: ScriptedTurn, audio: np.ndarray, **settings):
    config = EndpointerConfig(vad="energy", **settings)
    endpointer = Endpointer(config, EnergyDetector(), turn)
    events = [(frame, e) for frame in frames_of(audio) if (e := endpointer.feed(frame)) is not None]
    return [(frame, e) for frame, e in events if e.utterance is not None]


def test_a_complete_turn_ends_at_the_short_pause():
    turn = ScriptedTurn(0.9)
    ((frame, event),) = ends(turn, speech_then_silence(1.5, 1.0), pause_ms=200, min_silence_ms=600)
    utterance = event.utterance
    assert utterance.ended_by == "turn model"
    assert 0.2 <= utterance.declared_at - utterance.speech_end < 0.3
    assert len(turn.asked) == 1
    # It was asked about the audio up to the pause: the speech and the 200 ms of silence after it.
    heard = turn.asked[0]
    assert len(heard) == int(frame.captured_at * RATE) and np.abs(heard[-3200:]).max() == 0.0


def test_an_unfinished_turn_waits_for_the_longest_silence_and_is_asked_once_per_pause():
    turn = ScriptedTurn(0.1)
    audio = np.concatenate([speech_then_silence(1.0, 0.4), speech_then_silence(1.0, 1.0)])
    ((_, event),) = ends(turn, audio, pause_ms=200, min_silence_ms=600)
    assert event.utterance.ended_by == "silence"
    assert event.utterance.declared_at - event.utterance.speech_end >= 0.6
    assert len(turn.asked) == 2  # the mid-sentence pause and the final one, each once


def test_a_pause_is_announced_once_and_so_is_the_speech_after_it():
    """The pause and resume events that speculative answers follow, with and without a turn model."""
    from talkerd.listen.endpointer import EndpointKind

    audio = np.concatenate([speech_then_silence(1.0, 0.4), speech_then_silence(1.0, 1.0)])
    for turn in (None, ScriptedTurn(0.1)):
        endpointer = Endpointer(EndpointerConfig(vad="energy", pause_ms=200, min_silence_ms=600), EnergyDetector(), turn)
        events = [(f, e) for f in frames_of(audio) if (e := endpointer.feed(f)) is not None]
        kinds = [e.kind for _, e in events]
        assert kinds == [EndpointKind.SPEECH_START, EndpointKind.PAUSE, EndpointKind.RESUMED, EndpointKind.PAUSE,
                         EndpointKind.UTTERANCE_END]
        (first_pause, _), (resumed, _) = events[1], events[2]
        assert 1.2 - 0.03 <= first_pause.captured_at <= 1.2 + 0.03 and 1.4 <= resumed.captured_at <= 1.45


def test_the_window_is_at_most_eight_seconds():
    turn = ScriptedTurn(0.9)
    ends(turn, speech_then_silence(11.0, 0.5), pause_ms=200, min_silence_ms=600, max_utterance_s=20)
    assert WINDOW_S * RATE <= len(turn.asked[0]) < WINDOW_S * RATE + FRAME


@pytest.fixture(scope="module")
def smart_turn(default_config):
    engine = SmartTurn.load(default_config.engines, default_config.endpointer.turn_engine)
    yield engine
    engine.close()


def test_the_real_engine_gives_a_probability(smart_turn, tmp_path):
    speech = read_wav_mono(espeak_wav("What time does the store open?", tmp_path / "q.wav"), RATE)
    audio = np.concatenate([speech, np.zeros(RATE // 5, np.int16)]).astype(np.float32) / 32768
    first = smart_turn.complete_probability(audio)
    assert 0.0 <= first <= 1.0 and smart_turn.complete_probability(audio) == first  # deterministic
    assert smart_turn.complete_probability(audio[: len(audio) // 2]) != first  # it hears what is said


def test_the_real_endpointer_never_ends_before_the_pause(default_config, smart_turn, tmp_path):
    speech = read_wav_mono(espeak_wav("Where are the toilets, please?", tmp_path / "q.wav"), RATE)
    audio = np.concatenate([np.zeros(RATE // 2, np.int16), speech, np.zeros(RATE, np.int16)])
    config = default_config.endpointer
    from talkerd.listen.endpointer import make_detector

    endpointer = Endpointer(config, make_detector(config), smart_turn)
    ended = [e.utterance for f in frames_of(audio) if (e := endpointer.feed(f)) is not None and e.utterance]
    assert len(ended) == 1 and ended[0].ended_by in ("turn model", "silence")
    assert ended[0].declared_at - ended[0].speech_end >= config.pause_ms / 1000 - 0.03
    assert endpointer.last_turn_probability is not None


def test_a_missing_end_of_turn_engine_leaves_the_silence_rule(default_config, caplog):
    from talkerd.registry import component

    assert component("endpointer").load(default_config).engines == ()  # off by default: the silence rule
    endpointer_config = default_config.endpointer.model_copy(update={"end_of_turn": "smart-turn", "turn_engine": "no-such-engine"})
    config = default_config.model_copy(update={"endpointer": endpointer_config})
    endpointer = component("endpointer").load(config)
    assert endpointer.engines == ()
    assert "end of turn by silence only" in caplog.text and "no-such-engine" in caplog.text
    frame = AudioFrame(np.zeros(FRAME, np.int16).tobytes(), RATE, 0.02)
    assert endpointer.feed(frame) is None
