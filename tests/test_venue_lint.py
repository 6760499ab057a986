"""The venue lint (``knowledge.lint``) on small venues and the real matcher by words."""
from __future__ import annotations

from talkerd.answer.knowledge import VenueKnowledge
from talkerd.answer.knowledge.lint import own_questions, shared_keywords, venue_warnings
from talkerd.config import KnowledgeConfig, VenueConfig, VenueEntry


def _venue(*entries: VenueEntry) -> VenueConfig:
    return VenueConfig(name="Test Venue", entries=list(entries))


def test_a_keyword_two_entries_list_is_named_once_with_both_entries_compared_as_stems():
    venue = _venue(
        VenueEntry(topic="closing time", questions=["When do you close?"], answer="At 8.", keywords=["late", "close"]),
        VenueEntry(topic="late opening", questions=["Are you open late?"], answer="Thursdays.", keywords=["lates"]),
        VenueEntry(topic="parking", questions=["Is there parking?"], answer="Yes.", keywords=["car park"]),
    )
    [warning] = shared_keywords(venue)
    assert warning.code == "shared_keyword"
    assert "'late'" in warning.message and "'closing time'" in warning.message and "'late opening'" in warning.message


def test_an_entry_whose_question_goes_elsewhere_or_to_an_emergency_is_named():
    venue = _venue(
        VenueEntry(topic="toilets", questions=["Where are the toilets?"], answer="Upstairs."),
        VenueEntry(topic="about us", questions=["How are you?"], answer="We are a bookshop."),
        VenueEntry(topic="first aid", questions=["Someone collapsed, where is first aid?"], answer="At the desk."),
    )
    knowledge = VenueKnowledge(venue, KnowledgeConfig(), "I don't know.")
    emergency = {"Someone collapsed, where is first aid?": object()}.get
    warnings = own_questions(venue, knowledge.match, emergency)
    assert [w.code for w in warnings] == ["own_question", "own_question"]
    about, first_aid = (w.message for w in warnings)
    assert "'about us'" in about and "smalltalk" in about
    assert "'first aid'" in first_aid and "emergency" in first_aid
    assert venue_warnings(_venue(venue.entries[0]), knowledge.match) == []
