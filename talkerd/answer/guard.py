"""The grounding guard: every clause the LLM writes is checked before it is spoken.

A clause is not spoken when it

1. says a blocked word or phrase (``guard.blocked_words``: swearing, insults);
2. touches a blocked topic (``guard.blocked_topics``: politics, competitors);
3. reads out the LLM's instructions: most of its word pairs are the system prompt's, and at least
   ``MIN_INSTRUCTION_PAIRS`` of them are the instructions' own (not in the venue knowledge or the
   persona's texts: "I'm Ava, the welcome assistant" is an introduction, "You are Ava" a read-out);
4. makes a claim (``claims``: a number, time, price, phone number, day, name or place) that neither
   the venue knowledge (facts and curated entries), the persona nor the visitor's question supports;
   a number or a time (prices among them) must be supported by a sentence that is about something the
   clause is about too (shares a content word with it): SmolLM2 takes the venue's own numbers and puts
   them on other things ("A sandwich is £3", from "Audio guides are £3");
5. answers a venue question (one the knowledge matched only weakly) with a yes or a no that no venue
   sentence gives: a verdict clause ("Yes, …", "No, …", "The answer is yes, …") must have every content
   word of it in one sentence of the venue's texts ("Yes, we sell jigsaw puzzles" holds, "The answer is
   yes, you can get married at the museum" does not).

The first failing clause ends the LLM's answer (the generator is closed, so llama.cpp stops); what the
turn says instead is the answerer's choice (``Answerer``: the best matching fact as written, else the
persona's honest "I don't know").
"""
from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..config import GuardConfig, LlmConfig, PersonaConfig, VenueConfig
from .claims import TENS, UNITS, Claim, ClaimKind, claims, supported_keys
from .clauses import split_text
from .dialogue import system_prompt
from .knowledge.parts import statement_parts
from .knowledge.text import is_stop_word, stem, words

log = logging.getLogger(__name__)

MAX_CLAUSE_WORDS = 200
"""Words of a clause looked at for word pairs (clauses are cut far shorter)."""
MIN_INSTRUCTION_PAIRS = 2
"""A clause must repeat at least this many word pairs found only in the instructions to count as reading
them out."""
IN_CONTEXT = frozenset({ClaimKind.NUMBER, ClaimKind.TIME})
"""Claims that hold only beside what the clause is about: a number is true of one thing, not of all."""
NOT_TOPICS = frozenset(stem(w) for w in (
    *UNITS, *TENS, "hundred", "thousand", "pound", "pounds", "pence", "penny", "dollar", "dollars", "euro",
    "euros", "cent", "cents", "am", "pm", "morning", "evening", "afternoon", "every", "day", "days", "daily", "week",
    "weekend", "today", "tonight", "tomorrow", "answer", "question",
))
"""Words that say how much or when, not what of: no topic for a number's context."""
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")
_VERDICT = re.compile(r"^(yes|yeah|yep|no|nope)\b|^the answer( to (the|this|that|your) question)? is (yes|no)\b")
"""A clause that says yes or no (over its normalised words)."""
_DENIAL = re.compile(r"\b(not|no|never|none|nothing|nobody|nowhere)\b")
"""A clause that says something is not so ("The Bridge Street cash machine is not located nearby"): a no
in other words (over its normalised words, where "don't" is "do not")."""


class BlockReason(str, enum.Enum):
    BLOCKED_WORD = "blocked_word"
    BLOCKED_TOPIC = "blocked_topic"
    INSTRUCTIONS = "instructions"
    UNSUPPORTED = "unsupported_claim"
    OUT_OF_CONTEXT = "claim_out_of_context"
    """A number the venue says, but of something else."""
    VERDICT = "unsupported_verdict"
    """A yes or a no (or a "not") to a venue question that the venue's texts do not give."""


@dataclass(frozen=True)
class Block:
    """Why a clause was not spoken."""

    reason: BlockReason
    detail: str
    """The word, the topic, the share of instruction pairs, or the claim (kind and text)."""
    clause: str


def _stems(text: str) -> list[str]:
    return [stem(w) for w in words(text, MAX_CLAUSE_WORDS)]


def topics(text: str) -> frozenset[str]:
    """The stems of what ``text`` is about: its words but function words, numbers and units."""
    return frozenset(stem(w) for w in words(text, MAX_CLAUSE_WORDS)
                     if not is_stop_word(w) and not w.isdigit() and stem(w) not in NOT_TOPICS)


def _denies(text: str) -> bool:
    return _DENIAL.search(" ".join(words(text, MAX_CLAUSE_WORDS))) is not None


def says_yes_or_no(text: str) -> bool:
    """``text`` opens with a yes or a no ("Yes, …", "No, …", "The answer is yes, …")."""
    return _VERDICT.search(" ".join(words(text, MAX_CLAUSE_WORDS))) is not None


@dataclass(frozen=True)
class _Sentence:
    """One sentence of the venue's texts: the keys it supports and what it is about."""

    keys: frozenset[str]
    topics: frozenset[str]
    denies: bool
    """It says that something is not so: only such a sentence gives a no."""


def _pairs(text: str) -> set[tuple[str, str]]:
    plain = words(text, MAX_CLAUSE_WORDS * 10)
    return set(zip(plain, plain[1:]))


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return n > 0 and any(list(haystack[i: i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def venue_statements(persona: PersonaConfig, venue: VenueConfig) -> list[str]:
    """What the venue and the persona say is so: the facts, the curated answers, the persona's texts."""
    return [venue.name, *venue.facts, *(entry.answer for entry in venue.entries),
            persona.name, persona.role, persona.style, persona.greeting, persona.unknown_answer, persona.apology]


def venue_texts(persona: PersonaConfig, venue: VenueConfig) -> list[str]:
    """Every word the venue and the persona use: what an LLM clause may repeat (a name, a number). Only
    the statements (``venue_statements``) say that something is so: an entry's questions, its keywords
    and the synonyms ask or name things ("cash machine" = "atm" is no cash machine)."""
    texts = venue_statements(persona, venue) + list(venue.aliases)
    for entry in venue.entries:
        texts += [entry.topic, *entry.questions, *entry.keywords]
    for word, same in venue.synonyms.items():
        texts += [word, *same]
    return texts


class GroundingGuard:
    """The checks on LLM clauses for one venue snapshot (the venue's support is computed once)."""

    def __init__(self, config: GuardConfig, grounding: Iterable[str], instructions: str,
                 statements: Iterable[str] | None = None) -> None:
        """``grounding``: every text a claim may come from; ``statements``: those of them that say
        something is so, which a number's context and a yes or a no must come from (default: all)."""
        self._config = config
        grounding = list(grounding)
        self._supported = supported_keys(grounding)
        # Each sentence alone: a number is true of what its own sentence is about (an entry's questions
        # would widen that to every word they use, and "The answer is 30" would pass for books).
        self._sentences = [_Sentence(supported_keys([sentence]), topics(sentence), _denies(sentence))
                           for text in (grounding if statements is None else statements)
                           for sentence in _SENTENCE.split(text) if sentence.strip()]
        known_pairs = set().union(*(_pairs(text) for text in grounding))
        self._prompt_pairs = _pairs(instructions)
        self._instruction_pairs = self._prompt_pairs - known_pairs
        self._blocked_words = [(w, _stems(w)) for w in config.blocked_words]
        self._blocked_topics = [(topic, _stems(w)) for topic, marks in config.blocked_topics.items() for w in marks]

    @classmethod
    def for_venue(cls, config: GuardConfig, persona: PersonaConfig, venue: VenueConfig, llm: LlmConfig) -> "GroundingGuard":
        return cls(config, venue_texts(persona, venue), system_prompt(persona, venue, llm),
                   venue_statements(persona, venue))

    def check(self, clause: str, question: str, *, about_venue: bool = False) -> Block | None:
        """Why ``clause`` must not be spoken in answer to ``question``, or None when it may.
        ``about_venue``: the question is about the venue (a weak knowledge match), not conversation."""
        stems = _stems(clause)
        for word, marks in self._blocked_words:
            if _contains(stems, marks):
                return Block(BlockReason.BLOCKED_WORD, word, clause)
        for topic, marks in self._blocked_topics:
            if _contains(stems, marks):
                return Block(BlockReason.BLOCKED_TOPIC, topic, clause)
        pairs = _pairs(clause)
        from_prompt = pairs & self._prompt_pairs
        if (len(pairs & self._instruction_pairs) >= MIN_INSTRUCTION_PAIRS
                and len(from_prompt) >= self._config.instructions_overlap * len(pairs)):
            return Block(BlockReason.INSTRUCTIONS, f"{len(from_prompt)} of {len(pairs)} word pairs", clause)
        asked = supported_keys([question])
        checked = [claim for claim in claims(clause) if not claim.keys & asked]  # the visitor said the rest
        for claim in checked:
            if not claim.keys & self._supported:
                return Block(BlockReason.UNSUPPORTED, f"{claim.kind.value} {claim.text!r}", clause)
        asked_about = topics(question)
        for claim in checked:
            if claim.kind in IN_CONTEXT and not self._in_context(claim, clause, asked_about):
                return Block(BlockReason.OUT_OF_CONTEXT, f"{claim.kind.value} {claim.text!r}", clause)
        denial = about_venue and _denies(clause)
        if about_venue and (denial or says_yes_or_no(clause)):
            said = topics(clause) or asked_about  # a bare "Yes." says yes to the question
            # A no needs a sentence that says no: "jigsaw puzzles" in what the shop sells gives no "No."
            if not any(said <= s.topics and (s.denies or not denial) for s in self._sentences):
                return Block(BlockReason.VERDICT, ", ".join(sorted(said)), clause)
        return None

    def _in_context(self, claim: Claim, clause: str, asked_about: frozenset[str]) -> bool:
        """A venue sentence supports the claim and is about something the claim's part of the clause is
        about; a part about nothing in particular ("The answer is 18.") is about what was asked."""
        part = next((p for p in statement_parts(clause) if claim.text in p), clause)
        about = topics(part) or asked_about
        return any(claim.keys & s.keys and (not about or about & s.topics) for s in self._sentences)

    def guarded(self, clauses: Iterator[str], question: str, fallback: str, *, turn_id: int | None = None,
                on_block: Callable[[Block], None] = lambda block: None, about_venue: bool = False) -> Iterator[str]:
        """``clauses`` as long as they pass; at the first that fails, the LLM is stopped and ``fallback``
        is spoken instead."""
        try:
            for clause in clauses:
                block = self.check(clause, question, about_venue=about_venue)
                if block is None:
                    yield clause
                    continue
                log.warning("guard: not spoken (%s: %s): %r", block.reason.value, block.detail, clause,
                            extra={"stage": "guard", "turn_id": turn_id})
                on_block(block)
                yield from split_text(fallback)
                return
        finally:
            close = getattr(clauses, "close", None)
            if close is not None:
                close()
