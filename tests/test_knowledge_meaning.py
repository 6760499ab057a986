"""Matching by meaning on the real sentence encoder and both venues' configs, where the encoder alone
goes wrong: days of the week (``knowledge.days``; an entry about other days than the question's is
weighed down), a price or a person asked for that the answer lacks (``knowledge.asked_for``), and typos
(the encoder reads the question with them corrected)."""
from __future__ import annotations

import pytest

from talkerd.answer.knowledge import MatchKind, VenueKnowledge
from talkerd.answer.knowledge.days import conflict, days_named
from talkerd.answer.knowledge.parts import brief
from talkerd.config import load_config
from tests.conftest import DEFAULT_CONFIG, ROOT
from tests.semantic_helpers import embedder, engines, semantic_config  # noqa: F401 (fixtures)

MUSEUM_CONFIG = ROOT / "configs" / "venues" / "calderford-museum.toml"
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


@pytest.mark.parametrize("text, days", [
    ("Are you open on Sundays?", {SUN}),
    ("Opening hours: Tuesday–Sunday 10:00–17:00", {TUE, WED, THU, FRI, SAT, SUN}),
    ("Monday till Friday, and Saturdays", {MON, TUE, WED, THU, FRI, SAT}),
    ("from Friday to Monday", {FRI, SAT, SUN, MON}),
    ("Do you open early on weekdays?", {MON, TUE, WED, THU, FRI}),
    ("at the weekend", {SAT, SUN}),
    ("Saturdays and Sundays", {SAT, SUN}),
    ("Are you open on Easter Monday or Good Friday?", set()),
    ("Open every day except Mondays", {MON, TUE, WED, THU, FRI, SAT, SUN}),
    ("Mon–Fri 9:00–17:30", {MON, TUE, WED, THU, FRI}),
    ("Tea on the sun terrace, where we sat", set()),
    ("What time do you open today?", set()),
])
def test_days_named(text, days):
    assert days_named(text) == frozenset(days)


def test_conflict_needs_days_on_both_sides_and_none_shared():
    assert conflict(frozenset({SAT}), frozenset({SUN}))
    assert not conflict(frozenset({SAT, SUN}), frozenset({SUN}))
    assert not conflict(frozenset(), frozenset({SUN}))
    assert not conflict(frozenset({SAT}), frozenset())


def _knowledge(source, engines, embedder, folder):
    config = load_config(semantic_config(folder / "talkerd.toml", engines, source))
    return VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer, embedder)


@pytest.fixture(scope="module")
def riverside(engines, embedder, tmp_path_factory):
    return _knowledge(DEFAULT_CONFIG, engines, embedder, tmp_path_factory.mktemp("riverside"))


@pytest.fixture(scope="module")
def museum(engines, embedder, tmp_path_factory):
    return _knowledge(MUSEUM_CONFIG, engines, embedder, tmp_path_factory.mktemp("museum"))


# Each was answered with the entry about another day (Riverside's "sunday hours", the museum's
# "mondays"): the encoder sees "open on Saturday" and "open on Sunday" as nearly one sentence.
@pytest.mark.parametrize("venue, question, topic", [
    ("riverside", "are you open on saturday mornings", "opening time"),
    ("riverside", "Do you open early on weekdays?", "opening time"),
    ("riverside", "Do you open on a Sunday morning?", "sunday hours"),   # the right day still wins
    ("museum", "Are you open on Sunday mornings?", "opening hours"),
    ("museum", "Can we visit on a Monday?", "mondays"),
    # Its answer names Thursday in passing ("until 20:00 on Thursdays"): it is not about days.
    ("museum", "What time do you close on Sundays?", "closing time"),
])
def test_a_question_gets_the_entry_for_its_day(request, venue, question, topic):
    match = request.getfixturevalue(venue).match(question)
    assert (match.kind, match.topic) == (MatchKind.CURATED, topic)


def test_an_entry_for_another_day_is_never_spoken_for_the_question(riverside):
    # No entry covers Wednesday evenings as asked; the Sunday one came first by meaning before.
    match = riverside.match("Can I come in on a Wednesday evening?")
    sunday = next(entry.answer for entry in riverside._entries if entry.topic == "sunday hours")
    assert match.topic != "sunday hours" and brief(sunday) not in (match.answer or "")


# Each was answered, as written, with an entry that has no price or names no one: story time's day and
# hour for its price, the café's floor for who runs it, the museum's address for who founded it.
@pytest.mark.parametrize("venue, question, wrong", [
    ("riverside", "how much is story time for the kids", "children"),
    ("riverside", "how much is the parking in bridge street", "parking"),
    ("riverside", "who runs the café", "cafe"),
    ("riverside", "Who is the author at Thursday's reading?", "events"),
    ("museum", "Who founded the museum?", "address"),
    ("museum", "How much is a coffee in the café?", "cafe menu"),  # "gluten-free" is no price
])
def test_an_answer_without_what_is_asked_for_is_not_spoken_as_written(request, venue, question, wrong):
    """``wrong``: the entry it was answered with before."""
    match = request.getfixturevalue(venue).match(question)
    # The LLM with the facts (guarded) or the honest "I don't know"; never that entry as written.
    assert match.kind in (MatchKind.FACTS, MatchKind.UNKNOWN), (wrong, match)


@pytest.mark.parametrize("venue, question, topic", [
    ("riverside", "How much is a coffee in the café?", "cafe menu"),  # "two pounds eighty"
    ("riverside", "how much is the reader card", "loyalty card"),  # "free"
    ("riverside", "Who can help me find a book?", "finding a book"),  # asks for help, not a name
    ("museum", "Do I have to pay for the guided tour?", "guided tours"),
    ("museum", "How much is parking at Canal Street?", "parking"),
])
def test_an_answer_with_what_is_asked_for_still_is(request, venue, question, topic):
    match = request.getfixturevalue(venue).match(question)
    assert (match.kind, match.topic) == (MatchKind.CURATED, topic)


def test_the_encoder_reads_the_question_with_its_typos_corrected(museum):
    # As typed, the encoder finds "pushchiar park" nearest the car park; corrected, it is the pushchairs.
    assert museum._index.corrected(["do", "you", "have", "a", "pushchiar", "park"])[4] == "pushchair"
    match = museum.match("Do you have a pushchiar park?")
    assert (match.kind, match.topic) == (MatchKind.CURATED, "pushchairs")


@pytest.mark.parametrize("venue, question, topic", [
    # The encoder finds each as close to the opening hours as to its own entry: the words decide the tie.
    ("riverside", "When does the store close?", "closing time"),
    ("museum", "When does the museum close?", "closing time"),
    ("museum", "Where is the museum shop?", "shop"),
    # A remark before the question is no second question ("a bit lost" is not lost property).
    ("museum", "Sorry to bother you, I'm a bit lost, where are the toilets?", "toilets"),
])
def test_a_question_the_encoder_finds_close_to_two_entries_gets_its_own(request, venue, question, topic):
    match = request.getfixturevalue(venue).match(question)
    assert (match.kind, match.topic) == (MatchKind.CURATED, topic)


def test_two_questions_in_one_are_both_answered_even_when_the_whole_looks_like_one(riverside):
    match = riverside.match("when are you open and when do you close")
    assert match.kind is MatchKind.AMBIGUOUS
    for topic in ("opening time", "closing time"):
        answer = next(entry.answer for entry in riverside._entries if entry.topic == topic)
        assert brief(answer) in match.answer
