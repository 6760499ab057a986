"""The second venue (configs/venues/calderford-museum.toml) and the held-out and emergency question sets.

The accuracy on these sets is reported (README, "A second venue"), not asserted yet; what is checked here
is that the museum's config loads with today's code, that each of its entries answers its own questions,
that the sets are the size and mix they claim and never copy an entry's question, and that the
emergency sets name only the agreed safety intents.
"""
from __future__ import annotations

import sys

import pytest

from talkerd.answer.knowledge import MatchKind, VenueKnowledge
from talkerd.answer.knowledge.evaluate import load_questions
from talkerd.config import SafetyConfig, load_config
from tests.conftest import DEFAULT_CONFIG, ROOT

if sys.version_info >= (3, 11):
    import tomllib  # novermin (Python 3.11+; tomli below for 3.10)
else:
    import tomli as tomllib  # type: ignore[no-redef]

DATA = ROOT / "tests" / "data"
MUSEUM_CONFIG = ROOT / "configs" / "venues" / "calderford-museum.toml"
EMERGENCY_INTENTS = {intent.name for intent in SafetyConfig().intents}  # the built-in intents

# set file, its config, the fewest questions it must hold
HELD_OUT = [
    ("calderford_museum_questions_heldout.toml", MUSEUM_CONFIG, 90),
    ("venue_questions_heldout2.toml", DEFAULT_CONFIG, 80),
]
EMERGENCIES = [("calderford_museum_emergencies.toml", 10), ("venue_emergencies.toml", 15), ("venue_emergencies_heldout2.toml", 20),
               ("venue_emergencies_heldout3.toml", 20)]


@pytest.fixture(scope="module")
def museum():
    return load_config(MUSEUM_CONFIG)


def test_the_museum_config_is_a_whole_config_of_its_own(museum):
    assert museum.venue.name == "Calderford Museum of Industry"
    assert museum.llm.model.exists() and museum.tts.voice_config.exists()
    assert len(museum.venue.entries) >= 30


def test_every_museum_entry_answers_its_own_questions(museum):
    knowledge = VenueKnowledge(museum.venue, museum.knowledge, museum.persona.unknown_answer)
    wrong = []
    for entry in museum.venue.entries:
        for question in entry.questions:
            match = knowledge.match(question)
            if (match.kind, match.topic) != (MatchKind.CURATED, entry.topic):
                wrong.append((question, match.kind.value, match.topic))
    assert not wrong


@pytest.mark.parametrize(("name", "config_path", "fewest"), HELD_OUT)
def test_a_held_out_set_has_the_claimed_mix_and_copies_no_entry_question(name, config_path, fewest):
    question_set = load_questions(DATA / name)
    questions = question_set.questions
    assert len(questions) >= fewest and question_set.min_accuracy == 0.0
    assert {"rephrased", "asr", "typo", "out", "noise", "smalltalk"} <= {q.style for q in questions}
    assert all(q.kind is MatchKind.UNKNOWN for q in questions if q.style == "out")
    config = load_config(config_path)
    topics = {e.topic for e in config.venue.entries}
    assert {q.topic for q in questions if q.kind is MatchKind.CURATED} <= topics
    entry_questions = {q.lower().strip("?!. ") for e in config.venue.entries for q in e.questions}
    assert not [q.text for q in questions if q.text.lower().strip("?!. ") in entry_questions]


@pytest.mark.parametrize("name", ["venue_uncovered_heldout.toml", "calderford_museum_uncovered_heldout.toml"])
def test_an_uncovered_set_holds_only_uncovered_questions(name):
    questions = load_questions(DATA / name).questions
    assert len(questions) >= 20 and {q.kind for q in questions} == {MatchKind.UNKNOWN}
    assert len({q.text for q in questions}) == len(questions)


def test_the_museum_tuning_set_loads():
    question_set = load_questions(DATA / "calderford_museum_questions.toml")
    assert len(question_set.questions) >= 30


@pytest.mark.parametrize(("name", "fewest"), EMERGENCIES)
def test_an_emergency_set_names_only_the_agreed_intents(name, fewest):
    with (DATA / name).open("rb") as handle:
        rows = tomllib.load(handle)["question"]
    assert len(rows) >= fewest
    assert {row["kind"] for row in rows} == {"emergency"}
    assert {row["topic"] for row in rows} == EMERGENCY_INTENTS
