"""Emergencies come first: the safety intents on the real venue knowledge of configs/default.toml."""
from __future__ import annotations

import numpy as np
import pytest

from talkerd.answer.answerer import Answerer, VenueSnapshot
from talkerd.answer.knowledge import VenueKnowledge
from talkerd.answer.knowledge.evaluate import accuracy, evaluate, load_questions
from talkerd.answer.knowledge.semantic import SemanticIndex
from talkerd.answer.safety import SafetyIntents
from talkerd.config import SafetyConfig, SafetyIntent, parse_config
from talkerd.errors import ConfigError
from talkerd.messages import Route
from talkerd.tomlfile import read_toml

from .conftest import DEFAULT_CONFIG, ROOT

EMERGENCIES = ROOT / "tests" / "data" / "emergency_questions.toml"
VENUE_SETS = [ROOT / "tests" / "data" / "venue_questions.toml", ROOT / "tests" / "data" / "venue_questions_heldout.toml"]

NEAR_MISSES = [
    "Where is the first aid kit sold?",          # first aid, but shopping
    "Do you sell fire extinguishers?",           # fire, as a product
    "where is the fire exit",                    # fire, as a place
    "Is there a smoking area?",                  # smoke
    "Do you have books about heart health?",     # heart
    "I lost my phone, is there a lost and found?",  # lost, not a child
    "where can I find my son a birthday present",   # find my son, no negation
    "Is it safe to leave my bike outside?",      # safe
    "My kids love the children's section.",      # children
    "Do you have picture books about firefighters?",
    "Is the café nut free? My son has an allergy.",
    "Where is the emergency exit?",
]
"""Venue questions that share words with an emergency and are none."""


class NoDialogue:
    """Stands for the LLM (llama.cpp): an emergency must never reach it, so any call fails the test."""

    last_stats = None

    def answer(self, question, facts=(), *, cancelled=lambda: False, record=True):
        raise AssertionError(f"the LLM was asked {question!r}")

    def set_persona(self, persona, venue) -> None:
        pass


@pytest.fixture(scope="module")
def config():
    data = read_toml(DEFAULT_CONFIG, "config file")
    data["safety"] = {"emergency_number": "112", "staff_place": "the till"}
    return parse_config(data, base_dir=DEFAULT_CONFIG.parent)


@pytest.fixture(scope="module")
def answerer(config):
    knowledge = VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer)
    return Answerer(VenueSnapshot.of(config, knowledge), NoDialogue())


def _spoken(answerer, question):
    reply = answerer.reply(question)
    return reply.route, " ".join(reply.clauses())


def test_every_emergency_paraphrase_gets_its_intents_answer_with_the_venues_number(answerer, config):
    intents = {intent.name: intent for intent in config.safety.intents}
    questions = load_questions(EMERGENCIES).questions
    assert {q.topic for q in questions} == set(intents)
    for question in questions:
        route, text = _spoken(answerer, question.text)
        expected = intents[question.topic].answer.format(emergency_number="112", staff_place="the till")
        assert (route, text) == (Route.EMERGENCY, expected), question.text
        assert "112" in text and "{" not in text


def test_chest_pain_with_a_medicine_question_is_a_medical_emergency(answerer):
    route, text = _spoken(answerer, "I have chest pain, which pills should I take?")
    assert route is Route.EMERGENCY
    assert "medical emergency" in text and "112" in text


def test_the_question_set_loader_and_evaluation_know_emergencies(config):
    question_set = load_questions(EMERGENCIES)
    knowledge = VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer)
    outcomes = evaluate(knowledge, question_set.questions, SafetyIntents(config.safety))
    assert accuracy(outcomes) >= question_set.min_accuracy == 1.0
    # Without the safety intents the venue knowledge alone cannot answer them.
    assert accuracy(evaluate(knowledge, question_set.questions)) == 0.0


@pytest.mark.parametrize("question", NEAR_MISSES)
def test_a_near_miss_is_no_emergency(answerer, question):
    reply = answerer.reply(question)
    assert reply.route is not Route.EMERGENCY


def test_no_venue_question_of_the_labelled_sets_is_taken_for_an_emergency(config):
    safety = SafetyIntents(config.safety)
    questions = [q.text for path in VENUE_SETS for q in load_questions(path).questions]
    assert len(questions) > 100
    assert [q for q in questions if safety.match(q) is not None] == []


def test_configured_intents_replace_the_defaults():
    safety = SafetyIntents(SafetyConfig(emergency_number="112", intents=[
        SafetyIntent(name="flood", examples=["water everywhere"], answer="Move upstairs and call {emergency_number}."),
    ]))
    found = safety.match("There is water everywhere in the basement!")
    assert (found.intent, found.answer, found.by) == ("flood", "Move upstairs and call 112.", "words")
    assert safety.match("someone collapsed") is None


def test_an_unknown_placeholder_names_the_field():
    data = read_toml(DEFAULT_CONFIG, "config file")
    data["safety"] = {"intents": [{"name": "x", "examples": ["help"], "answer": "Call {police_number}."}]}
    with pytest.raises(ConfigError, match=r"safety\.intents\.0\.answer.*police_number"):
        parse_config(data, base_dir=DEFAULT_CONFIG.parent)


class TableEmbedder:
    """Stands for the ``SentenceEmbedder`` (all-MiniLM-L6-v2, tested with its engine): unit vectors from
    a table, so that the test decides which texts mean the same; every other text gets an axis of its
    own, orthogonal to all the rest."""

    def __init__(self, meanings: dict[str, int], dim: int = 512) -> None:
        self._meanings = dict(meanings)
        self._dim = dim

    def embed(self, texts):
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            axis = self._meanings.setdefault(text, len(self._meanings) + 16)
            out[row, axis] = 1.0
        return out


def test_with_an_embedder_an_emergency_is_matched_by_meaning_when_no_words_match():
    question = "my grandad went grey and slid off his chair"
    plain = SafetyIntents(SafetyConfig())
    assert plain.match(question) is None
    embedder = TableEmbedder({"collapsed": 0, question: 0, "what time do you open": 1})
    safety = SafetyIntents(SafetyConfig(), embedder=embedder)
    found = safety.match(question)
    assert (found.intent, found.by, found.example) == ("medical", "meaning", "collapsed")
    assert safety.match("what time do you open") is None


def test_an_emergency_is_logged_with_its_turn(answerer, caplog):
    with caplog.at_level("INFO", logger="talkerd.answer.answerer"):
        answerer.reply("there's smoke coming from the toilets", turn_id=12)
    [record] = [r for r in caplog.records if getattr(r, "stage", None) == "safety"]
    assert record.turn_id == 12 and "fire" in record.getMessage()


class VectorEmbedder:
    """Stands for the ``SentenceEmbedder`` (all-MiniLM-L6-v2, tested with its engine in
    tests/test_safety_by_meaning.py): each text's unit vector is given by the test, so that it sets the
    cosines exactly: to the example on axis 0, to the venue's text on axis 1."""

    def __init__(self, to_example: dict[str, tuple[float, float]]) -> None:
        self._cosines = {"collapsed": (1.0, 0.0), "where is the cafe": (0.0, 1.0), **to_example}

    def embed(self, texts):
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for row, text in enumerate(texts):
            example, venue = self._cosines[text]
            out[row] = (example, venue, np.sqrt(1.0 - example ** 2 - venue ** 2))
        return out


def test_an_emergency_far_from_the_venue_is_matched_below_the_absolute_score():
    config = SafetyConfig(intents=[SafetyIntent(name="medical", examples=["collapsed"], answer="Call for help.")])
    far, near, faint = "he went grey and slid to the floor", "where do I go for a sit down", "my shoes are wet"
    embedder = VectorEmbedder({far: (0.45, 0.1), near: (0.45, 0.4), faint: (0.3, 0.0)})
    venue = SemanticIndex(embedder, [["where is the cafe"]])
    assert config.venue_floor <= 0.45 < config.semantic_score and 0.3 < config.venue_floor
    alone = SafetyIntents(config, embedder)
    beside = SafetyIntents(config, embedder, venue)
    assert alone.match(far) is None
    found = beside.match(far)
    assert (found.intent, found.by, found.score) == ("medical", "meaning beside the venue", pytest.approx(0.45, abs=1e-6))
    assert beside.match(near) is None      # only 0.05 closer to the example than to the venue's text
    assert beside.match(faint) is None     # far from the venue, but too far from any emergency too
    empty = SafetyIntents(config, embedder, SemanticIndex(embedder, []))
    assert empty.match(far) is None        # a venue without texts: nothing to weigh against


def test_venue_floor_must_be_below_the_absolute_score():
    with pytest.raises(ValueError, match="venue_floor"):
        SafetyConfig(venue_floor=0.6, semantic_score=0.6)
