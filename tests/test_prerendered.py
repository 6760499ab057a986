"""Pre-rendered speech: fixed answers made ahead with the real voice, played without running it, kept
on disk per voice, given up for a visitor, and renewed on reload (the pipeline with its fakes)."""
from __future__ import annotations

import numpy as np
import pytest

from talkerd.answer.answerer import Answerer, VenueSnapshot
from talkerd.config import AudioConfig, FaceConfig, PersonaConfig, VenueConfig, VenueEntry
from talkerd.messages import Clause, Mark, Turn, TurnSource
from talkerd.pipeline import Pipeline
from talkerd.speak.playout import Playout
from talkerd.speak.prerendered import FILE_SUFFIX, SpeechCache
from talkerd.speak.speech_maker import SpeechMaker
from talkerd.speak.tts import PiperTts

from .pipeline_fakes import RATE, FakeKnowledge, FakeTts, FastSpeaker

TEXT = "We open at 9 in the morning, Monday to Saturday."
FPS = 30


@pytest.fixture(scope="module")
def tts(default_config):
    engine = PiperTts.load(default_config.tts, default_config.engines)
    yield engine
    engine.close()


def maker(tts, cache, fps: int = FPS) -> SpeechMaker:
    return SpeechMaker(tts, None, FaceConfig(source="durations"), tts.sample_rate, fps, cache)


def spoken(speech: SpeechMaker, text: str = TEXT) -> tuple[np.ndarray, np.ndarray, Turn]:
    turn = Turn(TurnSource.TYPED)
    chunks = list(speech.from_clause(Clause(turn, text, 0)))
    return np.concatenate([c.audio for c in chunks]), np.concatenate([c.mouth for c in chunks]), turn


def test_a_prerendered_clause_plays_what_the_voice_says_without_running_it(tts):
    speech = maker(tts, SpeechCache(None, 64))
    speech.prerender([TEXT])
    assert speech.prerender_one() and not speech.prerender_one()  # one clause wanted, then nothing to do
    runs = tts.audio_runs
    audio, mouth, turn = spoken(speech)
    assert tts.audio_runs == runs, "the voice ran for a clause that was ready"
    live_audio, live_mouth, _ = spoken(maker(tts, None))
    assert tts.audio_runs > runs
    # noise_scale 0 makes the voice repeatable: the cache holds exactly what it would have said
    assert np.array_equal(audio, live_audio) and np.array_equal(mouth, live_mouth)
    assert turn.marks.get(Mark.FIRST_AUDIO) is not None and turn.marks.get(Mark.FIRST_FACE) is not None


def test_prerendered_clauses_are_kept_on_disk_per_voice(tts, tmp_path):
    first = maker(tts, SpeechCache(tmp_path, 64))
    first.prerender([TEXT])
    first.prerender_one()
    assert len(list(tmp_path.glob("*" + FILE_SUFFIX))) == 1
    restarted = maker(tts, SpeechCache(tmp_path, 64))
    restarted.prerender([TEXT])
    runs = tts.audio_runs
    assert restarted.prerender_one() and tts.audio_runs == runs, "a restart loads the clause from disk"
    assert np.array_equal(spoken(restarted)[0], spoken(first)[0])
    # Another frame rate is another mouth track: that voice renders its own and never plays this file.
    other = maker(tts, SpeechCache(tmp_path, 64), fps=25)
    other.prerender([TEXT])
    other.prerender_one()
    assert tts.audio_runs > runs and len(list(tmp_path.glob("*" + FILE_SUFFIX))) == 2


def test_a_torn_cache_file_is_rendered_again(tts, tmp_path):
    speech = maker(tts, SpeechCache(tmp_path, 64))
    speech.prerender([TEXT])
    speech.prerender_one()
    (path,) = tmp_path.glob("*" + FILE_SUFFIX)
    path.write_bytes(path.read_bytes()[:100])  # a power cut while an older version was copying it
    again = maker(tts, SpeechCache(tmp_path, 64))
    again.prerender([TEXT])
    runs = tts.audio_runs
    assert again.prerender_one() and tts.audio_runs > runs
    assert again.cache.get(TEXT) is not None and again.cache.load(TEXT) is not None  # the file was replaced


def test_a_visitor_interrupts_prerendering_and_nothing_half_made_is_kept(tts):
    speech = maker(tts, SpeechCache(None, 64))
    speech.prerender([TEXT])
    speech.prerender_one(interrupted=lambda: True)
    assert speech.cache.get(TEXT) is None and speech.cache.next_wanted() == TEXT  # tried again later


def test_clauses_over_the_memory_limit_are_spoken_live(tts):
    speech = maker(tts, SpeechCache(None, limit_mb=0.01))
    speech.prerender([TEXT])
    speech.prerender_one()
    assert speech.cache.get(TEXT) is None and speech.cache.status()["skipped"] == 1
    assert len(spoken(speech)[0]) > 0


# -- the pipeline (fakes from pipeline_fakes.py) ---------------------------------------------------------------
def venue(answer: str) -> VenueConfig:
    return VenueConfig(name="Riverside Books", entries=[VenueEntry(topic="toilets", questions=["Where are the toilets?"],
                                                                   answer=answer, keywords=["toilet"])])


def test_the_pipeline_renders_fixed_answers_while_idle_and_again_after_a_reload():
    persona = PersonaConfig(name="Ava", unknown_answer="I don't know, please ask staff.", apology="Sorry.", greeting="Hello!")
    answer = "The toilets are on the left."
    tts = FakeTts()
    speech = SpeechMaker(tts, None, FaceConfig(), RATE, FPS, SpeechCache(None, 64))
    pipeline = Pipeline(source=type("Silence", (), {"description": "none", "has_audio": False})(), listener=None,
                        answerer=Answerer(VenueSnapshot(persona, venue(answer), FakeKnowledge(answer)), None),
                        speech=speech, playout=Playout(FastSpeaker(), RATE, AudioConfig(output_buffer_ms=20)))
    finished: list[Turn] = []
    pipeline.on_turn_end = finished.append
    pipeline.start()
    try:
        wait(lambda: speech.cache.status()["pending"] == 0)
        assert set(tts.spoken) == {answer, "I don't know, please ask staff.", "Sorry.", "Hello!"}
        rendered = len(tts.spoken)
        pipeline.ask("where are the toilets")
        wait(lambda: finished)
        assert len(tts.spoken) == rendered, "the curated answer played from the cache"
        moved = "The toilets moved upstairs."
        pipeline.swap_venue(VenueSnapshot(persona, venue(moved), FakeKnowledge(moved)))
        wait(lambda: speech.cache.get(moved) is not None)
        assert speech.cache.get(answer) is None  # the old answer is let go
        assert pipeline.status()["prerendered"]["ready"] == 4
    finally:
        pipeline.stop()


def wait(condition, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_fixed_answers_include_every_emergency_answer_as_spoken(default_config):
    from talkerd.answer.answerer import split_text
    from talkerd.answer.safety import SafetyIntents

    answerer = Answerer(VenueSnapshot.of(default_config, None), dialogue=None)
    clauses = set(answerer.fixed_clauses())
    for answer in SafetyIntents(default_config.safety).answers():
        assert default_config.safety.emergency_number in answer or default_config.safety.staff_place in answer
        assert set(split_text(answer)) <= clauses
    for entry in default_config.venue.entries:
        assert set(split_text(entry.answer)) <= clauses
