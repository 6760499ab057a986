"""Venue knowledge on the real development config: routing, the curated answer following the config,
synonyms, inflections, typos, recogniser-style text, small talk, and hostile input."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from talkerd.config import KnowledgeConfig, VenueConfig, VenueEntry, load_config
from talkerd.answer.knowledge import MatchKind, VenueKnowledge
from talkerd.answer.knowledge.text import stem, words
from tests.conftest import DEFAULT_CONFIG


@pytest.fixture(scope="module")
def config():
    return load_config(DEFAULT_CONFIG)


@pytest.fixture(scope="module")
def knowledge(config):
    return VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer)


def _answer_of(config, topic: str) -> str:
    return next(entry.answer for entry in config.venue.entries if entry.topic == topic)


def test_the_entry_question_gets_its_curated_answer(config, knowledge):
    match = knowledge.match("What time does the store open?")
    assert match.kind is MatchKind.CURATED
    assert match.topic == "opening time"
    assert match.answer == _answer_of(config, "opening time")
    assert match.facts == ()


def test_changing_the_opening_hour_in_the_config_changes_the_answer(tmp_path: Path):
    text = DEFAULT_CONFIG.read_text()
    assert "We open at 9 in the morning" in text
    changed = tmp_path / "talkerd.toml"
    changed.write_text(text.replace("We open at 9 in the morning", "We open at 7 in the morning"))
    config = load_config(changed)
    knowledge = VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer)
    for question in ("What time does the store open?", "when do you guys open in the morning"):
        match = knowledge.match(question)
        assert match.kind is MatchKind.CURATED, question
        assert "7 in the morning" in match.answer
        assert "9 in the morning" not in match.answer


@pytest.mark.parametrize("question", ["when does it open", "what are the opening times", "are you opened yet",
                                      "what time does the shop opens"])
def test_inflections_meet(knowledge, question):
    assert knowledge.match(question).topic == "opening time"


def test_the_stemmer_joins_inflections_and_keeps_words_apart():
    assert {stem(w) for w in ("open", "opens", "opening", "opened")} == {"open"}
    assert {stem(w) for w in ("close", "closes", "closing", "closed")} == {"clos"}
    assert stem("shopping") == stem("shop")
    assert stem("buses") == stem("bus")
    assert stem("children") == stem("child")
    assert stem("toilets") != stem("tickets")


def test_contractions_accents_and_curly_apostrophes_normalise_alike():
    assert words("What’s the CAFÉ’s Wi-Fi?", 60) == words("whats the cafes wi fi", 60)
    assert words("Where's it?", 60) == ["where", "is", "it"]


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("where is the loo", "toilets"),  # synonym
        ("wheres the rest room", "toilets"),  # phrase synonym, recogniser contraction
        ("do you have wi fi", "wifi"),  # recogniser splits the word
        ("can i take a buggy up stairs", "accessibility"),  # synonym + split word
        ("do you sell book tokens", "gift cards"),  # phrase synonym onto a phrase key
        ("where is riverside books", "address"),  # the venue's own name is an alias, not a topic
        ("What time do you opne?", "opening time"),  # swapped letters
        ("Is the shop wheelchiar accessible?", "accessibility"),  # typo
    ],
)
def test_synonyms_split_words_and_typos_reach_the_entry(knowledge, question, topic):
    match = knowledge.match(question)
    assert (match.kind, match.topic) == (MatchKind.CURATED, topic)


def test_greetings_around_a_venue_question_are_ignored(knowledge):
    match = knowledge.match("hi there good morning where are the toilets thank you")
    assert (match.kind, match.topic) == (MatchKind.CURATED, "toilets")


@pytest.mark.parametrize("question", ["good morning", "Hello!", "thanks a lot", "what's your name",
                                      "tell me a joke about books", "are you a robot", "how are you today"])
def test_small_talk_goes_to_the_llm_even_with_venue_words_in_it(knowledge, question):
    # "good morning" holds a keyword of the opening-time entry; a joke about books mentions books.
    match = knowledge.match(question)
    assert match.kind is MatchKind.SMALLTALK, match
    assert match.answer is None and match.facts == ()


def test_a_general_question_without_venue_cues_is_conversation(knowledge):
    assert knowledge.match("what is the capital of france").kind is MatchKind.SMALLTALK


@pytest.mark.parametrize("question", ["Do you sell umbrellas?", "who is the manager", "can i bring my dog",
                                      "is there a cash machine near here", "do you have a photocopier"])
def test_uncovered_venue_questions_get_the_honest_unknown_answer(config, knowledge, question):
    match = knowledge.match(question)
    assert match.kind is MatchKind.UNKNOWN, match
    assert match.answer == config.persona.unknown_answer
    assert match.topic is None


def test_a_fact_line_without_an_entry_goes_to_the_llm_with_that_line_first(config, knowledge):
    match = knowledge.match("Do you sell jigsaw puzzles?")
    assert match.kind is MatchKind.FACTS
    assert match.answer is None
    assert "jigsaw puzzles" in match.facts[0]
    assert 1 <= len(match.facts) <= config.knowledge.facts_for_llm


def test_a_weak_entry_match_hands_the_entry_answer_to_the_llm(config, knowledge):
    match = knowledge.match("what time do you shut on a weekday")  # "weekday" is in no entry
    assert match.kind is MatchKind.FACTS
    assert config.knowledge.weak_score <= match.score < config.knowledge.confident_score
    assert match.facts[0] == _answer_of(config, "closing time")
    assert match.topic == "closing time"
    assert len(set(match.facts)) == len(match.facts)


@pytest.mark.parametrize("question", ["", "   ", "?!...", "¿¡", "\n\t"])
def test_a_question_without_words_is_not_sent_anywhere(config, knowledge, question):
    match = knowledge.match(question)
    assert match.kind is MatchKind.UNKNOWN
    assert match.answer == config.persona.unknown_answer
    assert match.score == 0.0


def test_words_in_another_script_go_to_the_llm(knowledge):
    # The development recogniser is Korean; the curated knowledge reads only Latin script.
    match = knowledge.match("가게는 몇 시에 열어요")
    assert match.kind is MatchKind.SMALLTALK
    assert match.answer is None


def test_very_long_input_is_cut_to_the_configured_words(config, knowledge):
    long_question = "where are the toilets " + "please " * 200_000
    match = knowledge.match(long_question)
    assert (match.kind, match.topic) == (MatchKind.CURATED, "toilets")
    # Past the word limit nothing counts: the question below is never seen.
    hidden = "la " * config.knowledge.max_words + "where are the toilets"
    assert knowledge.match(hidden).topic is None


def test_unreadable_bytes_and_digits_do_not_break_matching(knowledge):
    assert knowledge.match("\x00\x01 12 34 \ufffd").kind in (MatchKind.UNKNOWN, MatchKind.SMALLTALK)
    assert knowledge.match("a" * 1_000_000).kind is MatchKind.SMALLTALK
    assert knowledge.match("toilet" * 100_000).kind is not MatchKind.CURATED


def test_match_is_immutable(knowledge):
    match = knowledge.match("where are the toilets")
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.kind = MatchKind.UNKNOWN  # type: ignore[misc]


def _small_venue(**knowledge_fields) -> VenueKnowledge:
    venue = VenueConfig(
        name="Harbour Museum",
        facts=["The museum shop sells postcards and models of ships."],
        entries=[
            VenueEntry(topic="tickets", questions=["How much is a ticket?", "Is entry free?"],
                       answer="Entry is free; the special exhibition is eight pounds."),
            VenueEntry(topic="audio guide", questions=["Do you have an audio guide?"],
                       answer="Audio guides are at the desk for three pounds.", keywords=["headphones"]),
        ],
        synonyms={"ticket": ["admission"]},
    )
    return VenueKnowledge(venue, KnowledgeConfig(**knowledge_fields), "Sorry, I don't know. Please ask at the desk.")


def test_another_venue_works_from_its_own_config_alone():
    museum = _small_venue()
    assert museum.match("how much is admission").topic == "tickets"
    assert museum.match("have you got headphones").topic == "audio guide"
    assert museum.match("do you sell ship models").kind is MatchKind.FACTS
    assert museum.match("is there a cafe").kind is MatchKind.UNKNOWN


def test_the_integrators_cue_words_make_a_question_a_venue_question():
    question = "what about the lighthouse"
    assert _small_venue().match(question).kind is MatchKind.SMALLTALK
    assert _small_venue(venue_cues=["lighthouse"]).match(question).kind is MatchKind.UNKNOWN


def test_thresholds_come_from_the_config():
    question = "is the special exhibition on today"  # a partial match of the tickets entry
    lenient = _small_venue(confident_score=0.3, weak_score=0.2).match(question)
    strict = _small_venue(confident_score=0.99, weak_score=0.98).match(question)
    assert lenient.kind is MatchKind.CURATED
    assert strict.kind is MatchKind.UNKNOWN


def test_long_answers_and_facts_are_indexed_whole():
    # The word limit bounds a visitor's question, not the venue's own texts.
    filler = "and we are very glad to help you with anything at all " * 20
    venue = VenueConfig(
        name="Harbour Museum",
        facts=[filler + "the telescope on the roof opens at noon"],
        entries=[VenueEntry(topic="lockers", questions=["Where can I put my bag?"], answer=filler + "lockers are by the entrance")],
    )
    museum = VenueKnowledge(venue, KnowledgeConfig(max_words=8), "I don't know.")
    assert museum.match("lockers").topic == "lockers"
    assert museum.match("telescope").kind is MatchKind.FACTS


def test_a_venue_with_no_knowledge_still_answers_honestly():
    empty = VenueKnowledge(VenueConfig(name="Pop-up"), KnowledgeConfig(), "I don't know, sorry.")
    assert empty.match("where are the toilets").kind is MatchKind.UNKNOWN
    assert empty.match("hello").kind is MatchKind.SMALLTALK


@pytest.mark.parametrize(
    ("replace", "by", "named"),
    [
        ('weak_score = 0.40', 'weak_score = 0.9', "knowledge.weak_score"),
        ('aliases = ["shop",', 'aliases = ["  ", "shop",', "venue.aliases"),
        ('lift = ["elevator"]', 'lift = ["elevator", "loo"]', "venue.synonyms"),
        ('topic = "wifi"', 'topic = " "', "venue.entries.9.topic"),
        ('facts_for_llm = 3', 'facts_for_llm = 0', "knowledge.facts_for_llm"),
        ('[knowledge]', '[knowledge]\nmatch_mode = "fuzzy"', "knowledge.match_mode: unknown key"),
    ],
)
def test_bad_knowledge_config_names_the_field(tmp_path, replace, by, named):
    from talkerd.errors import ConfigError, ExitCode

    text = DEFAULT_CONFIG.read_text()
    assert replace in text
    bad = tmp_path / "talkerd.toml"
    bad.write_text(text.replace(replace, by, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert named in caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG


def test_the_kiosk_profile_ships_the_same_venue_knowledge(config):
    # Both shipped profiles describe the example venue; a kiosk answering differently from the
    # development machine would make every accuracy figure here meaningless for it.
    kiosk = load_config(DEFAULT_CONFIG.parent / "jetson-agx-orin-32gb.toml")
    assert kiosk.venue == config.venue
    assert kiosk.knowledge == config.knowledge
