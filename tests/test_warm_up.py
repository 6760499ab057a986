"""The recogniser's warm-up speech: the venue's questions, said by the voice in the speech worker's idle
time after the fixed answers, and given to the listener. the fakes in pipeline_fakes.py stand for the voice and
vosk (``FakeRecogniser.warmed_on`` keeps what it was given; the real renewal is in test_asr_renewal)."""
from __future__ import annotations

import numpy as np

from talkerd.answer.answerer import VenueSnapshot
from talkerd.config import PersonaConfig, VenueConfig, VenueEntry
from talkerd.listen.warm_up import WarmUpSpeech

from .pipeline_fakes import RATE, FakeKnowledge, harness  # noqa: F401 (the fixture)


def venue(*topics: str) -> VenueConfig:
    return VenueConfig(name="Test venue", entries=[
        VenueEntry(topic=topic, questions=[f"Where is the {topic}?", f"Is there a {topic}?"], answer=f"The {topic} is upstairs.")
        for topic in topics])


def test_the_voice_says_the_first_question_of_each_entry_for_the_recogniser_after_the_fixed_answers(harness):
    h = harness(mic=True, venue=venue("café", "lift", "shop"), warm_up_questions=2, prerender=True)
    h.wait(lambda: getattr(h.recogniser, "warmed_on", None))
    [(audio, rate)] = h.recogniser.warmed_on
    assert rate == RATE and len(audio) == 2
    spoken = h.tts.spoken
    assert spoken[-2:] == ["Where is the café?", "Where is the lift?"]
    # FakeTts: 10 ms of tone per character, all of it given.
    assert [len(a) for a in audio] == [len(text) * RATE // 100 for text in spoken[-2:]]
    assert "The café is upstairs." in spoken[:-2], "the fixed answers are rendered first"
    assert h.pipeline.status()["warm_up_pending"] == 0


def test_a_reload_says_the_new_venues_questions(harness):
    h = harness(mic=True, venue=venue("café"), warm_up_questions=5)
    h.wait(lambda: getattr(h.recogniser, "warmed_on", None))
    persona = PersonaConfig(name="Ava", unknown_answer="?", apology="Sorry.", greeting="")
    h.pipeline.swap_venue(VenueSnapshot(persona, venue("garden", "museum"), FakeKnowledge()))
    h.wait(lambda: len(h.recogniser.warmed_on) == 2)
    assert h.tts.spoken[-2:] == ["Where is the garden?", "Where is the museum?"]
    assert len(h.recogniser.warmed_on[-1][0]) == 2


def test_no_warm_up_without_a_microphone_or_when_set_to_none(harness):
    for options in ({"mic": False, "warm_up_questions": 3}, {"mic": True, "warm_up_questions": 0}):
        h = harness(venue=venue("café"), **options)
        assert h.pipeline.status()["warm_up_pending"] == 0
        turn = h.pipeline.ask("Where is the café?")  # the speech worker has been idle meanwhile
        assert turn.done.wait(10)
        assert not any(text.endswith("?") for text in h.tts.spoken)


def test_a_question_interrupted_is_said_again_and_one_the_voice_fails_on_is_left_out():
    given = []
    calls = []

    def say(text, interrupted):
        calls.append(text)
        return None if text == "fails?" else (np.zeros(len(text), np.int16), 8000)

    warm_up = WarmUpSpeech(say, lambda audio, rate: given.append((audio, rate)))
    warm_up.want(["one?", "fails?", "three?"])
    assert warm_up.make_one(lambda: True)  # a visitor came: nothing kept, "one?" is said again
    assert warm_up.pending == 3 and not given
    while warm_up.make_one(lambda: False):
        pass
    assert calls == ["one?", "one?", "fails?", "three?"]
    [(audio, rate)] = given
    assert rate == 8000 and [len(a) for a in audio] == [4, 6]


