"""The safety intents by meaning on the real sentence encoder (minilm-l6 on ONNX Runtime) and the real
venue knowledge of configs/default.toml: an emergency far from everything the venue answers is
recognised below the absolute similarity, and no venue question or small talk becomes one."""
from __future__ import annotations

import pytest

from talkerd.answer.answerer import Answerer, VenueSnapshot
from talkerd.answer.knowledge import VenueKnowledge
from talkerd.answer.knowledge.evaluate import load_questions
from talkerd.answer.safety import SafetyIntents
from talkerd.config import SafetyConfig, load_config
from talkerd.messages import Route
from tests.conftest import ROOT
from tests.semantic_helpers import embedder, engines, semantic_config  # noqa: F401 (fixtures)
from tests.test_safety import NEAR_MISSES, NoDialogue

DATA = ROOT / "tests" / "data"
VENUE_SETS = ["venue_questions.toml", "venue_questions_heldout.toml", "venue_questions_heldout2.toml",
              "venue_questions_calibration.toml", "venue_near_emergencies.toml"]

FAR_FROM_THE_VENUE = [  # from venue_emergencies_heldout3.toml, which calibrated venue_floor and venue_margin
    ("a plug is sparking behind the counter", "fire"),
    ("there's blood everywhere he fell through the glass door", "medical"),
    ("there's a guy shouting at people and he's got a bottle in his hand", "unsafe"),
]


@pytest.fixture(scope="module")
def config(engines, tmp_path_factory):
    return load_config(semantic_config(tmp_path_factory.mktemp("config") / "talkerd.toml", engines))


@pytest.fixture(scope="module")
def knowledge(config, embedder):
    return VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer, embedder)


@pytest.fixture(scope="module")
def alone(config, knowledge):
    return SafetyIntents(config.safety, knowledge.embedder)


@pytest.fixture(scope="module")
def beside(config, knowledge):
    return SafetyIntents(config.safety, knowledge.embedder, knowledge.semantic_index)


@pytest.mark.parametrize("question, intent", FAR_FROM_THE_VENUE)
def test_an_emergency_far_from_the_venue_is_recognised(alone, beside, question, intent):
    assert alone.match(question) is None
    found = beside.match(question)
    assert (found.intent, found.by) == (intent, "meaning beside the venue")
    assert found.score < SafetyConfig().semantic_score


def test_weighing_against_the_venue_takes_no_venue_question_for_an_emergency(alone, beside):
    questions = [q.text for name in VENUE_SETS for q in load_questions(DATA / name).questions] + NEAR_MISSES
    assert len(questions) > 250
    taken = [q for q in questions if beside.match(q) is not None]
    assert taken == [q for q in questions if alone.match(q) is not None]


def test_small_talk_is_never_weighed_against_the_venue(alone, beside, knowledge):
    question = "hey how is it going"  # nearer an emergency's example than any venue text, by more than the margin
    vector = knowledge.embedder.embed([question])[0]
    example = float((beside._vectors @ vector).max())
    assert example >= SafetyConfig().venue_floor
    assert example - knowledge.semantic_index.closest(vector) >= SafetyConfig().venue_margin
    assert beside.match(question) is None


def test_the_answerer_weighs_emergencies_against_its_venue(config, knowledge):
    answerer = Answerer(VenueSnapshot.of(config, knowledge), NoDialogue())
    question, intent = FAR_FROM_THE_VENUE[0]
    reply = answerer.reply(question)
    [fire] = [i for i in config.safety.intents if i.name == intent]
    expected = fire.answer.format(emergency_number=config.safety.emergency_number, staff_place=config.safety.staff_place)
    assert (reply.route, " ".join(reply.clauses())) == (Route.EMERGENCY, expected)
