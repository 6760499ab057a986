"""One conversation per visitor, on real llama.cpp (SmolLM2): what one visitor said never reaches the
prompt llama.cpp evaluates for the next; answers stay within the spoken-length caps."""
from __future__ import annotations

import re

import pytest

from talkerd.answer.answerer import Answerer, VenueSnapshot
from talkerd.answer.conversation import Conversation, EndReason
from talkerd.answer.dialogue import Dialogue
from talkerd.answer.prompt_cache import Reuse
from talkerd.answer.spoken_length import SpeechCaps
from talkerd.config import ConversationConfig
from talkerd.control.api import ControlApi
from talkerd.control.client import COMMANDS
from talkerd.events import EventBus, EventKind

from .conftest import MODELS
from .pipeline_fakes import harness  # noqa: F401  (the pipeline on fakes, as pipeline_fakes.py builds it)


class Clock:
    """A monotonic clock the test moves by hand, so the idle time passes without waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def dialogue(default_config):
    llm = default_config.llm.model_copy(update={"model": MODELS / "smollm2-135m-instruct-q4_1.gguf"})
    d = Dialogue.load(llm, default_config.persona, default_config.venue)
    d.warm_up()
    yield d
    d.close()


def kiosk(default_config, dialogue, *, greet=False, greeting="", idle_end_s=45.0):
    """An answerer with its conversation, as build_pipeline wires them, on a hand-moved clock."""
    clock, events = Clock(), EventBus()
    watch = events.subscribe()
    forget = dialogue.reset if dialogue is not None else (lambda: None)
    conversation = Conversation(ConversationConfig(idle_end_s=idle_end_s, greet=greet), events, forget=forget, clock=clock)
    persona = default_config.persona.model_copy(update={"greeting": greeting})
    answerer = Answerer(VenueSnapshot(persona, default_config.venue, None), dialogue, conversation)
    return answerer, conversation, clock, watch


def ask(answerer: Answerer, question: str) -> str:
    return " ".join(answerer.reply(question).clauses())


def events_of(watch) -> list[dict]:
    out = []
    while (event := watch.next(0.01)) is not None:
        out.append(event.to_dict())
    return out


def test_the_next_visitor_after_the_idle_time_gets_no_trace_of_the_first(default_config, dialogue):
    answerer, conversation, clock, watch = kiosk(default_config, dialogue)
    first = ask(answerer, "Hello, my name is Zebulon. Do you have books about volcanoes?")
    assert first
    clock.now += 10
    ask(answerer, "And where would I find them?")
    # Within one visit the history is in llama.cpp's own context (so the check below can fail).
    assert "Zebulon" in dialogue.evaluated_text()

    clock.now += 46  # the first visitor walked away
    assert conversation.end_if_idle()
    ask(answerer, "Where is the exit?")
    seen = dialogue.evaluated_text()  # detokenised from the model's input ids: what it attended to
    assert "Zebulon" not in seen and "volcano" not in seen.lower()
    first_sentence = re.split(r"(?<=[.!?])\s", first)[0]
    assert first_sentence not in seen
    assert "Where is the exit?" in seen
    # Tokens evaluated for the first visitor are never shifted into the second one's context.
    assert dialogue.last_stats.reuse is not Reuse.SHIFTED

    kinds = [(e["kind"], e.get("reason")) for e in events_of(watch)]
    assert kinds == [("conversation_start", None), ("conversation_end", "idle"), ("conversation_start", None)]


def test_an_expired_conversation_ends_before_the_next_question_even_without_the_timer(default_config, dialogue):
    answerer, conversation, clock, watch = kiosk(default_config, dialogue, idle_end_s=5)
    ask(answerer, "My favourite colour is turquoise. What is yours?")
    clock.now += 6  # no idle check ran: the next question itself ends the old conversation
    ask(answerer, "Do you sell maps?")
    assert "turquoise" not in dialogue.evaluated_text()
    assert [e["kind"] for e in events_of(watch)] == ["conversation_start", "conversation_end", "conversation_start"]


def test_an_answer_being_generated_when_the_conversation_ends_is_not_remembered(default_config, dialogue):
    answerer, conversation, clock, _ = kiosk(default_config, dialogue)
    pieces = iter(answerer.reply("Tell me about your café, I am Bartholomew.").pieces)
    next(pieces)
    assert conversation.end(EndReason.REQUEST)["reason"] == "request"
    for _ in pieces:
        pass
    assert dialogue.messages("next")[1:] == [{"role": "user", "content": "next"}]


def test_a_new_conversation_opens_with_the_greeting(default_config):
    answerer, conversation, clock, _ = kiosk(default_config, None, greet=True, greeting="Hello, I'm Ava. How can I help?")
    first = list(answerer.reply("Where are the toilets?").clauses())
    second = list(answerer.reply("And the café?").clauses())
    assert first[:2] == ["Hello, I'm Ava.", "How can I help?"] and len(first) > 2
    assert "Hello, I'm Ava." not in second
    conversation.end(EndReason.REQUEST)
    assert list(answerer.reply("Hi?").clauses())[0] == "Hello, I'm Ava."


def test_no_greeting_without_greet_or_without_a_text(default_config):
    for greet, greeting in ((False, "Hello, I'm Ava."), (True, "")):
        answerer, *_ = kiosk(default_config, None, greet=greet, greeting=greeting)
        assert "Hello" not in " ".join(answerer.reply("Where are the toilets?").clauses())


def test_end_conversation_is_a_restricted_control_method():
    assert COMMANDS["end-conversation"][0] == "conversation.end"
    assert "conversation.end" in ControlApi.RESTRICTED

    class Daemon:
        """Stands for the daemon: the control API only reaches its pipeline's end_conversation."""

        class pipeline:
            @staticmethod
            def end_conversation():
                return {"ended": 3, "reason": "request", "questions": 2}

    handlers = ControlApi(Daemon()).handlers()
    assert handlers["conversation.end"]({}) == {"ended": 3, "reason": "request", "questions": 2}


QUESTIONS = (
    "Tell me everything about the history of books, in detail.",
    "Can you recommend some good books for a long holiday?",
    "What can I do here on a rainy afternoon?",
    "Tell me a long story about a dragon who loves reading.",
)


def sentences(text: str) -> int:
    """Sentence ends followed by a capital or the end (an independent count, not the policy's)."""
    return len(re.findall(r"[.!?…]+[\"')]*(?=\s+[\"'(]?[A-Z0-9]|\s*$)", text.strip()))


@pytest.mark.parametrize("max_sentences, max_speech_s", [(2, 10.0), (1, 3.0)])
def test_real_answers_never_exceed_the_caps(default_config, dialogue, max_sentences, max_speech_s):
    config = dialogue._config.model_copy(update={"max_sentences": max_sentences, "max_speech_s": max_speech_s})
    capped = Dialogue(dialogue._llm, config, dialogue._system)
    caps = SpeechCaps.from_config(config)
    stops = set()
    for question in QUESTIONS:
        text = "".join(capped.answer(question, record=False))
        words = re.findall(r"[\w'’]+", text)
        assert 0 < len(words) <= caps.max_words, text
        assert sentences(text) <= max_sentences, text
        stops.add(capped.last_stats.stopped)
    assert stops - {None}  # the caps really cut some of these answers, not only the model's own end


def test_conversation_events_are_readable_in_watch():
    from talkerd.control.text_output import event_line

    bus = EventBus()
    watch = bus.subscribe()
    conversation = Conversation(ConversationConfig(), bus, forget=lambda: None)
    conversation.question()
    conversation.end(EndReason.REQUEST)
    lines = [event_line(e.to_dict()) for e in (watch.next(0.1), watch.next(0.1))]
    assert "conversation_start" in lines[0] and "conversation_id=1" in lines[0]
    assert "conversation_end" in lines[1] and "reason=request" in lines[1]
    assert conversation.status() == {"open": None}


def test_the_pipeline_ends_an_idle_conversation_on_its_own_and_on_request(harness):
    """The pipeline's brain worker checks the idle time while no question waits; ``end_conversation``
    (``talkerctl end-conversation``) ends one at once. Fakes from pipeline_fakes.py stand for the stages."""
    h = harness()
    clock, forgotten = Clock(), []
    watch = h.pipeline.events.subscribe()
    h.pipeline.answerer.conversation = Conversation(ConversationConfig(idle_end_s=45), h.pipeline.events,
                                                    forget=lambda: forgotten.append(clock.now), clock=clock)
    h.pipeline.ask("Where are the toilets?")
    h.wait(lambda: h.finished)
    assert h.pipeline.status()["conversation"]["open"] == 1
    clock.now += 44
    h.pipeline.ask("And the café?")  # a question keeps the conversation going
    h.wait(lambda: len(h.finished) == 2)
    clock.now += 46
    h.wait(lambda: h.pipeline.status()["conversation"] == {"open": None})
    assert forgotten == [clock.now]
    h.pipeline.ask("Hello?")
    h.wait(lambda: len(h.finished) == 3)
    assert h.pipeline.end_conversation() == {"ended": 2, "reason": "request", "questions": 1}
    assert h.pipeline.end_conversation() == {"ended": None}
    ends = [e.fields for e in iter(lambda: watch.next(0.01), None) if e.kind is EventKind.CONVERSATION_END]
    assert [(e["conversation_id"], e["reason"], e["questions"]) for e in ends] == [(1, "idle", 2), (2, "request", 1)]


def test_after_the_end_the_prefill_leaves_nothing_of_the_visitor_in_llama_cpp(default_config, dialogue):
    answerer, conversation, clock, _ = kiosk(default_config, dialogue)
    ask(answerer, "I am Philomena and I like poetry. Any tips?")
    answerer.prepare_next()
    assert "Philomena" in dialogue.evaluated_text()
    conversation.end(EndReason.REQUEST)
    answerer.prepare_next()  # the brain's idle work after the end
    assert "Philomena" not in dialogue.evaluated_text() and "poetry" not in dialogue.evaluated_text()
