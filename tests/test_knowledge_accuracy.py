"""Accuracy of the venue knowledge on the labelled question sets (tests/data), and the accuracy tool.

The sets hold rephrasings of the curated entries, recogniser-style and misspelt questions, questions
only the fact lines answer, venue questions the knowledge does not cover, and small talk. The
required accuracy is written in each set (``min_accuracy``); whatever the accuracy, a venue question
the knowledge does not cover must never get a curated answer. Both the lexical matcher alone and the
development config's matching by meaning (knowledge.semantic, the real minilm-l6 engine) are checked;
the calibration set, on which the semantic thresholds were chosen, is only checked with them.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from talkerd.config import load_config
from talkerd.errors import ExitCode
from talkerd.answer.knowledge import MatchKind, VenueKnowledge
from talkerd.answer.knowledge.evaluate import Ending, LabelledQuestion, Outcome, accuracy, endings, evaluate, load_questions
from talkerd.answer.knowledge.matcher import Match
from talkerd.answer.knowledge import load_knowledge
from tests.conftest import DEFAULT_CONFIG, ROOT
from tests.semantic_helpers import export_minilm, semantic_config

DATA = ROOT / "tests" / "data"
SETS = [DATA / "venue_questions.toml", DATA / "venue_questions_heldout.toml"]
CALIBRATION = DATA / "venue_questions_calibration.toml"
TOOL = ROOT / "tools" / "knowledge_accuracy.py"


@pytest.fixture(scope="module")
def knowledge():
    config = load_config(DEFAULT_CONFIG)
    return VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer)


@pytest.fixture(scope="module")
def semantic_config_path(tmp_path_factory):
    """The development config, its minilm-l6 engine exported into a build folder of this module's own."""
    engines = export_minilm(tmp_path_factory.mktemp("engines"))
    return semantic_config(tmp_path_factory.mktemp("config") / "talkerd.toml", engines)


@pytest.fixture(scope="module")
def semantic_knowledge(semantic_config_path):
    return load_knowledge(load_config(semantic_config_path))


def test_the_main_set_is_big_and_varied_enough():
    questions = load_questions(SETS[0]).questions
    assert len(questions) >= 30
    # Ambiguous questions are in the calibration set (the lexical matcher was not built for them),
    # emergencies in their own sets.
    assert {q.kind for q in questions} == set(MatchKind) - {MatchKind.AMBIGUOUS, MatchKind.EMERGENCY}
    assert {"rephrased", "asr", "typo", "out", "smalltalk"} <= {q.style for q in questions}
    config = load_config(DEFAULT_CONFIG)
    entry_questions = {q.lower().strip("?!. ") for e in config.venue.entries for q in e.questions}
    copies = [q.text for q in questions if q.text.lower().strip("?!. ") in entry_questions]
    assert copies == [], "the set must rephrase the entries, not copy them"
    topics = {e.topic for e in config.venue.entries}
    assert {q.topic for q in questions if q.topic} <= topics


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_accuracy_reaches_the_documented_minimum(knowledge, path):
    question_set = load_questions(path)
    outcomes = evaluate(knowledge, question_set.questions)
    wrong = [(o.question.text, o.question.kind.value, o.match.kind.value, o.match.topic) for o in outcomes if not o.correct]
    assert accuracy(outcomes) >= question_set.min_accuracy, wrong


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_no_uncovered_venue_question_gets_a_curated_answer(knowledge, path):
    outcomes = evaluate(knowledge, load_questions(path).questions)
    uncovered = [o for o in outcomes if o.question.kind is MatchKind.UNKNOWN]
    assert len(uncovered) >= 9
    assert [o.question.text for o in uncovered if o.match.kind is MatchKind.CURATED] == []


@pytest.mark.parametrize("path", [*SETS, CALIBRATION], ids=lambda p: p.stem)
def test_matching_by_meaning_reaches_the_minimum_with_no_false_confident_answer(semantic_knowledge, path):
    question_set = load_questions(path)
    outcomes = evaluate(semantic_knowledge, question_set.questions)
    wrong = [(o.question.text, o.question.kind.value, o.match.kind.value, o.match.topic) for o in outcomes if not o.correct]
    assert accuracy(outcomes) >= question_set.min_accuracy, wrong
    assert [o.question.text for o in outcomes if o.false_confident] == []


def test_small_talk_never_gets_a_curated_or_unknown_answer(knowledge):
    for path in SETS:
        for outcome in evaluate(knowledge, load_questions(path).questions):
            if outcome.question.kind is MatchKind.SMALLTALK:
                assert outcome.match.kind is MatchKind.SMALLTALK, outcome.question.text


def test_what_a_facts_turn_ends_with_is_judged_by_the_label():
    unknown, cafe = "I don't know.", "The café is upstairs."
    labelled = [
        LabelledQuestion("how much is a hot chocolate", MatchKind.UNKNOWN),
        LabelledQuestion("who runs the café", MatchKind.UNKNOWN),
        LabelledQuestion("is there coffee upstairs", MatchKind.CURATED, "café"),
        LabelledQuestion("can I get a snack", MatchKind.CURATED, "café"),
        LabelledQuestion("is there a lift to the café", MatchKind.CURATED, "café"),
        LabelledQuestion("do you sell maps", MatchKind.FACTS),
        LabelledQuestion("where are the toilets", MatchKind.CURATED, "toilets"),  # matched confidently: not counted
    ]
    routes = [MatchKind.FACTS] * 6 + [MatchKind.CURATED]
    outcomes = [Outcome(q, Match(kind, 0.5, None, (), None)) for q, kind in zip(labelled, routes)]
    said = {"how much is a hot chocolate": unknown, "who runs the café": cafe, "is there coffee upstairs": cafe,
            "can I get a snack": "Maps are by the door.", "is there a lift to the café": unknown,
            "do you sell maps": "Maps are by the door."}
    ended = endings(outcomes, said.__getitem__, unknown, {"café": cafe, "toilets": "By the stairs."})
    assert ended == {
        Ending.HONEST: ["how much is a hot chocolate"], Ending.NON_ANSWER: ["who runs the café"],
        Ending.RIGHT: ["is there coffee upstairs"], Ending.OTHER_FACT: ["can I get a snack"],
        Ending.LOST: ["is there a lift to the café"], Ending.A_FACT: ["do you sell maps"],
    }


def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=ROOT)


def test_the_tool_prints_the_table_and_the_accuracy_by_kind(tmp_path, semantic_config_path):
    figures = tmp_path / "figures.json"
    result = _tool(str(semantic_config_path), str(SETS[0]), "--json", str(figures), "--rounds", "1")
    assert result.returncode == ExitCode.OK, result.stderr
    questions = load_questions(SETS[0]).questions
    table_rows = [line for line in result.stdout.splitlines() if line[:4].strip().isdigit()]
    assert len(table_rows) == len(questions)
    assert "accuracy by expected kind" in result.stdout
    for kind in {q.kind for q in questions}:
        assert f"  {kind.value}" in result.stdout
    assert "false confident answers to uncovered venue questions: 0" in result.stdout
    assert "matching by words and meaning (minilm-l6)" in result.stdout
    data = json.loads(figures.read_text())
    assert data["accuracy"] >= data["required"]
    assert sum(group["total"] for group in data["by_kind"].values()) == len(questions)
    assert data["match_time"]["mean_us"] > 0
    ended = [text for texts in data["fallback_endings"].values() for text in texts]
    assert ended and set(data["fallback_endings"]) <= {e.value for e in Ending}
    assert len(set(ended)) == len(ended) and set(ended) <= {q.text for q in questions}
    assert "what a facts question ends with when the guard stops the LLM (or there is none): " in result.stdout


def test_the_tool_fails_when_the_accuracy_is_below_the_minimum(tmp_path, semantic_config_path):
    strict = tmp_path / "strict.toml"
    strict.write_text('min_accuracy = 1.0\n[[question]]\ntext = "where are the toilets"\nkind = "smalltalk"\n')
    result = _tool(str(semantic_config_path), str(strict))
    assert result.returncode == ExitCode.FAILURE
    assert "0/1" in result.stdout


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('[[question]]\ntext = "hi"\nkind = "chat"\n', "question 1: kind"),
        ('[[question]]\ntext = ""\nkind = "smalltalk"\n', "question 1: text"),
        ('[[question]]\ntext = "hi"\nkind = "smalltalk"\nanswer = "x"\n', "question 1: unknown key 'answer'"),
        ('min_accuracy = 2\n[[question]]\ntext = "hi"\nkind = "smalltalk"\n', "min_accuracy"),
        ("question = 3\n", "[[question]]"),
        ("[[question]\n", "not valid TOML"),
        ("question = [1, 2]\n", "question 1: expected a [[question]] table"),
        (None, "Is a directory"),
    ],
)
def test_a_bad_question_set_is_named_with_usage_exit_code(tmp_path, content, named):
    bad = tmp_path / "bad.toml"
    bad.mkdir() if content is None else bad.write_text(content)
    result = _tool(str(DEFAULT_CONFIG), str(bad))
    assert result.returncode == ExitCode.USAGE
    assert str(bad) in result.stderr and named in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_config_gives_the_config_exit_code(tmp_path):
    broken = tmp_path / "talkerd.toml"
    broken.write_text(DEFAULT_CONFIG.read_text().replace("confident_score = 0.62", "confident_score = 7"))
    result = _tool(str(broken), str(SETS[0]))
    assert result.returncode == ExitCode.CONFIG
    assert "knowledge.confident_score" in result.stderr
    assert "Traceback" not in result.stderr
    missing = _tool(str(tmp_path / "nope.toml"), str(SETS[0]))
    assert missing.returncode == ExitCode.CONFIG
