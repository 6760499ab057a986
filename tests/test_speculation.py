"""Speculative answers on the real ``Pipeline``: prepared at a pause, heard only if the final agrees.

The seams are the fakes in pipeline_fakes.py (vosk, the knowledge, llama.cpp, the voice, the speaker), each with
its own tests on the real thing; the endpointer's real pause and resume events are tested in
test_listening. Assertions are on turn records, their traces and what reached the speaker.
"""
from __future__ import annotations

import threading
import time

import pytest

from talkerd.events import EventKind
from talkerd.messages import Mark, Route, TurnSource
from talkerd.speculation import Speculation, same_words

from .pipeline_fakes import WAIT_S, FakeDialogue, Harness


class CountingDialogue:
    """Stands for llama.cpp's ``Dialogue``: a two-sentence answer, word by word, noting what it gave out
    and whether its stream was closed (the real one lets go of llama.cpp's context there)."""

    text = "Once upon a time there was a kiosk. It answered every visitor kindly."

    def __init__(self) -> None:
        self.questions: list[str] = []
        self.given: list[str] = []
        self.closed = threading.Event()
        self.last_stats = None

    def answer(self, question, facts=(), *, cancelled=lambda: False, record=True):
        self.questions.append(question)
        try:
            for word in self.text.split(" "):
                if cancelled():
                    return
                self.given.append(word)
                yield word + " "
        finally:
            self.closed.set()

    def set_persona(self, persona, venue) -> None:
        pass


@pytest.fixture
def harness():
    made: list[Harness] = []

    def make(**options) -> Harness:
        made.append(Harness(mic=True, **options))
        return made[-1]

    yield make
    for h in made:
        h.stop()


def speculations(watcher) -> list[tuple[int, str]]:
    events = []
    while (event := watcher.next(0.2)) is not None:
        if event.kind is EventKind.SPECULATION:
            events.append((event.fields["turn_id"], event.fields["outcome"]))
    return events


def keep_held(h: Harness) -> list:
    """The turns the pipeline holds, kept for the test after the pipeline has let go of them."""
    held, begin = [], h.pipeline.speculation.begin
    h.pipeline.speculation.begin = lambda turn, *rest: (held.append(turn), begin(turn, *rest))[-1]
    return held


def pause_after(h: Harness, partial: str) -> None:
    """The visitor says ``partial`` and pauses; returns once the held answer's first chunk is ready."""
    h.recogniser.partial = partial
    h.mic.speak(b"S")
    h.mic.speak(b"P")
    h.wait(lambda: h.tts.spoken)


def test_a_held_answer_plays_once_the_final_agrees_and_was_ready_before_it(harness):
    h = harness()
    watcher = h.pipeline.events.subscribe()
    pause_after(h, "where are the toilets")
    time.sleep(0.2)
    assert h.speaker.samples == 0 and h.finished == []  # prepared, not a sample heard
    h.recogniser.text = "Where are the toilets?"  # the final: the same words
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    (turn,) = h.finished
    assert turn.route is Route.CURATED and turn.answer == "The toilets are on the left." and h.speaker.samples > 0
    assert h.tts.spoken == ["The toilets are on the left."]  # synthesised once, during the pause
    marks = turn.marks
    assert marks[Mark.PAUSE] < marks[Mark.FIRST_AUDIO] < marks[Mark.ASR_FINAL] <= marks[Mark.AUDIO_WRITTEN]
    assert speculations(watcher) == [(turn.id, "held"), (turn.id, "used")]


def test_a_held_fixed_answer_is_used_when_the_final_gets_the_same_answer_in_other_words(harness):
    h = harness()
    pause_after(h, "where are the")  # the recogniser had not caught the last word yet
    h.recogniser.text = "where are the toilets"
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    (turn,) = h.finished
    assert turn.question == "where are the toilets" and turn.answer == "The toilets are on the left."
    assert Mark.PAUSE in turn.marks and h.tts.spoken == ["The toilets are on the left."]


@pytest.mark.parametrize("how", ["resumed", "differs"])
def test_a_held_answer_the_visitor_did_not_ask_is_never_heard(harness, how):
    h = harness()
    watcher = h.pipeline.events.subscribe()
    held = keep_held(h)
    pause_after(h, "where are the")
    if how == "resumed":
        h.mic.speak(b"R")  # the visitor goes on speaking
    h.recogniser.text = "facts when do you open"
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    (turn,) = h.finished
    assert turn.question == "facts when do you open" and turn.route is Route.FACTS
    (speculation,) = held
    assert speculations(watcher) == [(speculation.id, "held"), (speculation.id, how)]
    assert speculation.is_cancelled and speculation.id != turn.id
    assert Mark.FIRST_AUDIO in speculation.marks and Mark.AUDIO_WRITTEN not in speculation.marks  # made, never played
    assert h.tts.spoken[0] == "The toilets are on the left." and "The toilets are on the left." not in turn.answer


def test_a_held_llm_answer_stops_after_its_first_clause_and_a_dropped_one_lets_go_of_the_llm(harness):
    dialogue = CountingDialogue()
    h = harness(dialogue=dialogue)
    pause_after(h, "tell me a story")
    time.sleep(0.3)
    first_sentence = len("Once upon a time there was a kiosk.".split())
    # The clause splitter must see the next word to know the sentence ended: at most one word more.
    assert first_sentence <= len(dialogue.given) <= first_sentence + 1
    assert not dialogue.closed.is_set()
    h.mic.speak(b"R")
    assert dialogue.closed.wait(WAIT_S)
    assert h.speaker.samples == 0 and h.finished == []


def test_a_held_llm_answer_goes_on_to_its_end_when_used(harness):
    dialogue = CountingDialogue()
    h = harness(dialogue=dialogue)
    pause_after(h, "tell me a story")
    h.recogniser.text = "tell me a story"
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    (turn,) = h.finished
    assert turn.route is Route.SMALLTALK and turn.answer == CountingDialogue.text
    assert dialogue.questions == ["tell me a story"]  # asked once, during the pause


def test_without_speculation_a_pause_prepares_nothing(harness):
    h = harness(speculate=False)
    h.recogniser.partial = "where are the toilets"
    h.mic.speak(b"S")
    h.mic.speak(b"P")
    time.sleep(0.3)
    assert h.tts.spoken == [] and h.pipeline.questions.empty()
    h.mic.speak(b"E")
    h.wait(lambda: h.finished)
    assert h.finished[0].source is TurnSource.VOICE and h.finished[0].route is Route.CURATED


def test_a_pause_while_another_answer_is_being_given_prepares_nothing(harness):
    """A question typed while the visitor speaks is answered; their pause does not get in its way."""
    h = harness(barge_in=True, dialogue=FakeDialogue("one two three four five six seven eight", delay_s=0.05))
    h.recogniser.partial = "where are the toilets"
    h.mic.speak(b"S")
    h.wait(lambda: h.pipeline.partial_text)
    typed = h.pipeline.ask("tell me a story")
    h.mic.speak(b"P")
    assert typed.done.wait(WAIT_S) and not typed.is_cancelled
    assert h.tts.spoken[0].startswith("one") and not h.pipeline.speculation.active


def test_the_agreement_rule():
    assert same_words("Where are the toilets?", "where are  the toilets")
    assert same_words("what's on", "What's on?")
    assert not same_words("where are the", "where are the toilets")
    speculation = Speculation(enabled=True)
    from talkerd.messages import Turn

    turn = Turn(TurnSource.VOICE, question="where are the toilets")
    speculation.begin(turn, None)
    assert turn.held and speculation.active
    assert speculation.claim("where is the exit", lambda: None) is None and speculation.active  # not this one
    assert speculation.claim("Where are the toilets?", lambda: None) is turn and not speculation.active
    other = Turn(TurnSource.VOICE, question="x")
    speculation.begin(other, None)
    assert speculation.drop() is other and other.is_cancelled and not other.held  # a waiter wakes
    # An answer spoken as written is the same answer whatever words led to it; an LLM answer is not.
    fixed = Turn(TurnSource.VOICE, question="toilets")
    speculation.begin(fixed, "The toilets are on the left.")
    assert speculation.claim("toilets please", lambda: "The café is upstairs.") is None
    assert speculation.claim("toilets please", lambda: "The toilets are on the left.") is fixed


def test_a_typed_question_does_not_wait_behind_a_held_answer(harness):
    h = harness()
    held = keep_held(h)
    pause_after(h, "where are the toilets")
    typed = h.pipeline.ask("facts: when do you open?")
    assert typed.done.wait(WAIT_S) and not typed.is_cancelled and typed.route is Route.FACTS
    assert held[0].is_cancelled and Mark.AUDIO_WRITTEN not in held[0].marks
