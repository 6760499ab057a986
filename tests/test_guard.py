"""The grounding guard on the venue of configs/default.toml: unit checks, the answerer with a scripted
LLM stream, and the real SmolLM2 on questions the venue knowledge does not cover."""
from __future__ import annotations

import logging
import re

import pytest

from talkerd.answer.answerer import Answerer, VenueSnapshot
from talkerd.answer.clauses import split_text
from talkerd.answer.dialogue import Dialogue, system_prompt
from talkerd.answer.guard import BlockReason, GroundingGuard, topics, venue_texts
from talkerd.answer.knowledge import VenueKnowledge
from talkerd.answer.knowledge.matcher import MatchKind
from talkerd.bench.inventions import answer_all
from talkerd.config import GuardConfig, load_config
from talkerd.messages import Route

from .conftest import MODELS, ROOT
from .pipeline_fakes import harness  # noqa: F401  (the pipeline fixture)
from .semantic_helpers import embedder, engines, semantic_config  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def guard(default_config):
    c = default_config
    return GroundingGuard.for_venue(c.guard, c.persona, c.venue, c.llm)


@pytest.fixture(scope="module")
def knowledge(default_config):
    c = default_config
    return VenueKnowledge(c.venue, c.knowledge, c.persona.unknown_answer)


QUESTION = "Who can help me find a book?"

INVENTED = [
    ("Our manager, John Smith, is happy to help.", "name 'John'"),
    ("We have 500 books in stock.", "number '500'"),
    ("The building is 12 years old.", "number '12 years'"),
    ("We open at 7:30 on weekdays.", "time '7:30'"),
    ("Readings start at 9 pm on Thursdays.", "time '9 pm'"),
    ("Call us on 555 014 7321.", "phone '555 014 7321'"),
    ("The café is on the third floor.", "place 'third floor'"),
    ("Coffee is $3.20.", "number '3.20'"),
    ("Ask at the information desk.", "place 'desk'"),
]
"""LLM clauses with a claim the venue does not make, and the claim the guard names."""

TRUE_RESTATEMENTS = [
    "We open at 9 a.m. and close at 8 p.m.",
    "We close at 20:00 from Monday to Saturday.",
    "On Sundays we're open from ten until six.",
    "The café is upstairs on the first floor.",
    "The Bridge Street car park is a 2 minute walk away.",
    "Schools get 10 percent off orders of ten books or more.",
    "I'm Ava, the welcome assistant at Riverside Books.",
    "Gift wrapping is free at the counter.",
    "I'm sorry, I don't know that.",
    "Please ask a member of staff.",
]
"""What the venue says, in other words: the guard must let these through."""

OUT_OF_CONTEXT = [
    # The venue's numbers on other things: "two pounds eighty" is the coffee's, "11" story time's.
    ("A hot chocolate is two pounds eighty.", "How much is a hot chocolate?", "number 'two'"),
    ("The readings are on Thursdays at 11.", "When are the readings?", "number '11'"),
    # A part about nothing in particular is about what was asked: 30 is the days for a return.
    ("The answer is 30.", "How many books do you have?", "number '30'"),
]
IN_CONTEXT = [
    ("A coffee is two pounds eighty, and a slice of cake three fifty.", "How much is a coffee?"),
    ("Story time is on Saturdays at 11.", "Is there story time?"),
    ("Our gift cards go from 5 to 100 pounds.", "Do you sell gift cards?"),
    ("We open at 9 and close at 8.", "What are your hours?"),
]


@pytest.mark.parametrize("clause, claim", INVENTED)
def test_an_invented_claim_is_blocked_and_named(guard, clause, claim):
    block = guard.check(clause, QUESTION)
    assert (block.reason, block.detail) == (BlockReason.UNSUPPORTED, claim)


@pytest.mark.parametrize("clause", TRUE_RESTATEMENTS)
def test_a_true_restatement_passes(guard, clause):
    assert guard.check(clause, QUESTION) is None


@pytest.mark.parametrize("clause, question, claim", OUT_OF_CONTEXT)
def test_a_number_of_the_venue_said_of_something_else_is_blocked(guard, clause, question, claim):
    block = guard.check(clause, question)
    assert block is not None and (block.reason, block.detail) == (BlockReason.OUT_OF_CONTEXT, claim)


@pytest.mark.parametrize("clause, question", IN_CONTEXT)
def test_a_number_said_of_what_the_venue_says_it_of_passes(guard, clause, question):
    assert guard.check(clause, question) is None


def test_a_yes_or_a_no_to_a_venue_question_needs_a_venue_sentence_that_gives_it(guard, default_config):
    married = "The answer is yes, you can get married in the shop."
    block = guard.check(married, "Can I get married here?", about_venue=True)
    assert (block.reason, block.detail) == (BlockReason.VERDICT, "marri, shop")
    assert guard.check("Yes.", "Can I get married here?", about_venue=True).reason is BlockReason.VERDICT
    assert guard.check(married, "Can I get married here?") is None  # conversation, not the venue
    assert guard.check("Yes, we sell jigsaw puzzles.", "Do you sell jigsaw puzzles?", about_venue=True) is None
    # Every content word must be in one venue sentence: "a stamp for every book" has stamps, not letters.
    assert guard.check("No, we do not sell stamps for letters.", "Do you sell stamps?", about_venue=True).reason is BlockReason.VERDICT
    # A "not" is a no in other words: it needs a venue sentence that says it, too.
    absent = guard.check("The Bridge Street cash machine is not located nearby.", "Is there a cash machine nearby?", about_venue=True)
    assert absent.reason is BlockReason.VERDICT
    assert guard.check("We don't have our own car park.", "Do you have a car park?", about_venue=True) is None
    # A no needs a venue sentence that says no: the shop sells jigsaw puzzles.
    for denial in ("No.", "You do not know.", "No, we don't sell jigsaw puzzles."):
        assert guard.check(denial, "Do you sell jigsaw puzzles?", about_venue=True).reason is BlockReason.VERDICT, denial
    assert guard.check("I'm not sure what you mean.", "What's the weather like?") is None  # conversation
    # Only what the venue says is so counts: "cash machine" = "atm" among the synonyms is no cash machine.
    assert "cash machine" in default_config.venue.synonyms
    yes = guard.check("Yes, there is a cash machine nearby.", "Is there a cash machine nearby?", about_venue=True)
    assert yes.reason is BlockReason.VERDICT


def test_a_stopped_answer_falls_back_to_a_fact_about_the_question_or_the_honest_unknown(default_config, engines, embedder, tmp_path):
    # By meaning the knowledge matches stamps weakly to the gift cards: its best fact, "Yes, our gift cards
    # …", would say yes to the stamps.
    config = load_config(semantic_config(tmp_path / "talkerd.toml", engines))
    meaning = VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer, embedder)
    question = "Do you sell stamps for letters?"
    assert meaning.match(question).facts[0].startswith("Yes, our gift cards")
    dialogue = ScriptedDialogue("Yes, we sell stamps for letters at the counter.")
    blocks = []
    reply = Answerer(VenueSnapshot.of(config, meaning), dialogue).reply(question, on_block=blocks.append)
    assert list(reply.clauses()) == split_text(default_config.persona.unknown_answer)
    assert [b.reason for b in blocks] == [BlockReason.VERDICT]


def test_a_time_of_another_thing_inside_a_list_of_times_is_blocked():
    museum = load_config(ROOT / "configs" / "venues" / "calderford-museum.toml")
    guard = GroundingGuard.for_venue(museum.guard, museum.persona, museum.venue, museum.llm)
    question = "What's the name of the beam engine?"
    # The engine is in steam at 11:00 and 14:00 at weekends; 14:30 is the tours' time, every day.
    invented = guard.check("You can see it in steam every day at 11:00 and 14:30 on Saturdays and Sundays.", question, about_venue=True)
    assert (invented.reason, invented.detail) == (BlockReason.OUT_OF_CONTEXT, "time '14:30'")
    assert guard.check("You can see it in steam at 11:00 and 14:00 on Saturdays and Sundays.", question, about_venue=True) is None
    playground = "The answer to the question is yes, there is a playground outside the Calderford Museum of Industry."
    assert guard.check(playground, "Is there a playground outside?", about_venue=True).reason is BlockReason.VERDICT


def test_the_question_supports_what_the_visitor_said(guard):
    clause = "Yes, you can stay for 45 minutes."
    assert guard.check(clause, QUESTION).detail == "number '45'"
    assert guard.check(clause, "Can I stay for 45 minutes?") is None


def test_the_instructions_are_blocked_and_the_persona_is_not(guard, default_config):
    c = default_config
    prompt = system_prompt(c.persona, c.venue, c.llm)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", prompt) if s]
    assert len(sentences) >= 4
    for sentence in sentences:
        block = guard.check(sentence, QUESTION)
        assert block is not None and block.reason is BlockReason.INSTRUCTIONS, sentence
    for text in (c.persona.unknown_answer, c.persona.apology):
        assert guard.check(text, QUESTION) is None


def test_blocked_words_and_topics(default_config):
    c = default_config
    config = GuardConfig(blocked_topics={"competitors": ["Big Box Books", "Pageturners"]})
    guard = GroundingGuard.for_venue(config, c.persona, c.venue, c.llm)
    assert guard.check("That is a stupid question.", QUESTION).reason is BlockReason.BLOCKED_WORD
    block = guard.check("You could try Big Box Books in town.", QUESTION)
    assert (block.reason, block.detail) == (BlockReason.BLOCKED_TOPIC, "competitors")
    # Setting the topics replaces the defaults (politics).
    assert guard.check("Who you vote for is up to you.", QUESTION) is None
    default = GroundingGuard.for_venue(GuardConfig(), c.persona, c.venue, c.llm)
    assert default.check("Who you vote for is up to you.", QUESTION).detail == "politics"


def test_a_disabled_guard_is_not_built(default_config, knowledge):
    config = default_config.model_copy(update={"guard": GuardConfig(enabled=False)})
    assert VenueSnapshot.of(config, knowledge).guard is None
    assert VenueSnapshot.of(default_config, knowledge).guard is not None


class ScriptedDialogue:
    """Stands for the LLM dialogue (llama.cpp, tested in test_dialogue.py): streams a fixed text in
    short pieces, the way tokens arrive, and notes whether the answerer stopped it early."""

    last_stats = None

    def __init__(self, text: str) -> None:
        self.text = text
        self.stopped_early = False
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def answer(self, question, facts=(), *, cancelled=lambda: False, record=True):
        self.asked.append((question, facts))
        pieces = re.findall(r"\S+\s*", self.text)
        for number, piece in enumerate(pieces, start=1):
            try:
                yield piece
            except GeneratorExit:
                self.stopped_early = number < len(pieces)
                raise

    def set_persona(self, persona, venue) -> None:
        pass


FACTS_QUESTION = "What floor is the poetry section on?"
CHAT_QUESTION = "What's the chef called?"


def test_an_invented_clause_is_not_spoken_and_the_turn_ends_with_the_best_fact(default_config, knowledge, caplog):
    dialogue = ScriptedDialogue("The poetry section is on the ground floor, next to fiction. Our manager is "
                                "John Smith. He starts at 7:30 every day, and we have 500 poetry books. Enjoy!")
    answerer = Answerer(VenueSnapshot.of(default_config, knowledge), dialogue)
    blocks = []
    with caplog.at_level(logging.WARNING, logger="talkerd.answer.guard"):
        reply = answerer.reply(FACTS_QUESTION, turn_id=41, on_block=blocks.append)
        spoken = list(reply.clauses())
    best_fact = knowledge.match(FACTS_QUESTION).facts[0]
    assert reply.route is Route.FACTS
    assert spoken == ["The poetry section is on the ground floor,", "next to fiction.", *split_text(best_fact)]
    assert dialogue.stopped_early, "the LLM must be stopped at the first failing clause"
    assert [(b.reason, b.detail) for b in blocks] == [(BlockReason.UNSUPPORTED, "name 'John'")]
    [record] = [r for r in caplog.records if getattr(r, "stage", None) == "guard"]
    assert record.turn_id == 41 and "John" in record.getMessage()


def test_without_a_matching_fact_the_turn_ends_with_the_honest_unknown(default_config, knowledge):
    dialogue = ScriptedDialogue("Our chef is called Marco Rossi and he has cooked here for 15 years.")
    answerer = Answerer(VenueSnapshot.of(default_config, knowledge), dialogue)
    reply = answerer.reply(CHAT_QUESTION)
    assert reply.route is Route.SMALLTALK
    assert list(reply.clauses()) == split_text(default_config.persona.unknown_answer)


@pytest.mark.parametrize("question", [
    "how much does the bus cost to get to you",  # the buses' stop has no fare
    "how much is story time for the kids",  # story time's day and hour are not its price
    "What's the price of a hot chocolate?",  # the café's prices are a coffee's and a slice of cake's
    "Who is the author at Thursday's reading?",  # that there are readings names no one
])
def test_a_price_or_a_person_no_fact_gives_is_the_honest_unknown_without_the_llm(default_config, knowledge, question):
    # Each matches facts about what it asks about, none with the price or the person it asks for.
    match = knowledge.match(question)
    assert match.kind is MatchKind.FACTS and any(topics(fact) & topics(question) for fact in match.facts)
    dialogue = ScriptedDialogue("Yes, it is 5 pounds.")
    reply = Answerer(VenueSnapshot.of(default_config, knowledge), dialogue).reply(question)
    assert reply.route is Route.UNKNOWN
    assert list(reply.clauses()) == split_text(default_config.persona.unknown_answer)
    assert dialogue.asked == []
    assert Answerer(VenueSnapshot.of(default_config, knowledge), None).decide(question).text == default_config.persona.unknown_answer


def test_a_fallback_with_the_price_asked_for_is_spoken(default_config, knowledge):
    question = "how much is coffee on the first floor"
    reply = Answerer(VenueSnapshot.of(default_config, knowledge), ScriptedDialogue("A coffee is 5 pounds.")).reply(question)
    assert reply.route is Route.FACTS
    spoken = " ".join(reply.clauses())
    assert "A coffee is two pounds eighty" in spoken and "5 pounds" not in spoken


def test_an_llm_reading_out_its_prompt_is_never_heard(default_config, knowledge):
    c = default_config
    prompt = system_prompt(c.persona, c.venue, c.llm)
    answerer = Answerer(VenueSnapshot.of(c, knowledge), ScriptedDialogue(prompt))
    spoken = " ".join(answerer.reply(CHAT_QUESTION).clauses())
    assert spoken == c.persona.unknown_answer
    assert c.llm.instructions not in spoken and "speak to visitors" not in spoken


def test_an_emergency_never_reaches_the_llm(default_config, knowledge):
    dialogue = ScriptedDialogue("Take two aspirin.")
    answerer = Answerer(VenueSnapshot.of(default_config, knowledge), dialogue)
    reply = answerer.reply("I have chest pain, which pills should I take?")
    assert reply.route is Route.EMERGENCY
    assert "aspirin" not in " ".join(reply.clauses())
    assert dialogue.asked == []


UNCOVERED = [
    "What's your phone number?",
    "What is your email address?",
    "Can you recommend a good novel?",
    "How old is the building?",
    "What floor is the poetry section on?",
    "How many staff work here?",
    "What year was the old bridge built?",
    "What's the chef called?",
    "How big is the shop?",
    "Tell me something about the town",
    "What's the best seller this week?",
]
"""Questions the facts do not answer, which reach the LLM (small talk, or a weak match with facts)."""


@pytest.fixture(scope="module")
def smollm(default_config):
    llm = default_config.llm.model_copy(update={"model": MODELS / "smollm2-135m-instruct-q4_1.gguf", "max_answer_tokens": 48})
    dialogue = Dialogue.load(llm, default_config.persona, default_config.venue)
    yield dialogue
    dialogue.close()


def test_no_clause_smollm2_speaks_carries_an_unsupported_claim(default_config, knowledge, smollm):
    answerer = Answerer(VenueSnapshot.of(default_config, knowledge), smollm)
    support = " ".join(venue_texts(default_config.persona, default_config.venue))
    found = answer_all(answerer, UNCOVERED, support)  # the oracle: digit runs and capitalised words
    assert all(a.through_llm for a in found), [(a.question, a.route) for a in found]
    assert all(a.spoken for a in found)
    assert [(a.question, a.spoken, a.unsupported) for a in found if a.unsupported] == []
    print(f"\nSmolLM2 on {len(UNCOVERED)} uncovered questions: {sum(bool(a.blocked) for a in found)} answers cut by the guard")


def test_the_pipeline_publishes_each_block_with_its_turn(harness):
    """The real pipeline (tests/pipeline_fakes.py): a guard event for the turn, and the turn's
    published answer is what was spoken."""
    from .pipeline_fakes import WAIT_S, FakeDialogue, FakeKnowledge

    h = harness(dialogue=FakeDialogue("We open at 9. Ask John Smith at the door."))
    snapshot = h.pipeline.answerer.snapshot
    guard = GroundingGuard(GuardConfig(), ["We open at 9.", snapshot.persona.unknown_answer], instructions="")
    h.pipeline.answerer.swap(VenueSnapshot(snapshot.persona, None, FakeKnowledge(), guard=guard))
    events = h.pipeline.events.subscribe()
    turn = h.pipeline.ask("facts: when do you open?")
    assert turn.done.wait(WAIT_S)
    assert turn.answer == "We open at 9. We open at 9."
    seen = []
    while (event := events.next(WAIT_S)) is not None and event.kind.value != "turn_end":
        seen.append(event)
    [block] = [e.fields for e in seen if e.kind.value == "guard"]
    assert block == {"turn_id": turn.id, "reason": "unsupported_claim", "detail": "name 'John'",
                     "clause": "Ask John Smith at the door."}
