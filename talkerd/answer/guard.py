"""The grounding guard: every clause the LLM writes is checked before it is spoken.

A clause is not spoken when it

1. says a blocked word or phrase (``guard.blocked_words``: swearing, insults);
2. touches a blocked topic (``guard.blocked_topics``: politics, competitors);
3. reads out the LLM's instructions: most of its word pairs are the system prompt's, and at least
   ``MIN_INSTRUCTION_PAIRS`` of them are the instructions' own (not in the venue knowledge or the
   persona's texts: "I'm Ava, the welcome assistant" is an introduction, "You are Ava" a read-out);
4. makes a claim (``claims``: a number, time, price, phone number, day, name or place) that neither
   the venue knowledge (facts and curated entries), the persona nor the visitor's question supports.

The first failing clause ends the LLM's answer (the generator is closed, so llama.cpp stops); what the
turn says instead is the answerer's choice (``Answerer``: the best matching fact as written, else the
persona's honest "I don't know").
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..config import GuardConfig, LlmConfig, PersonaConfig, VenueConfig
from .claims import claims, supported_keys
from .clauses import split_text
from .dialogue import system_prompt
from .knowledge.text import stem, words

log = logging.getLogger(__name__)

MAX_CLAUSE_WORDS = 200
"""Words of a clause looked at for word pairs (clauses are cut far shorter)."""
MIN_INSTRUCTION_PAIRS = 2
"""A clause must repeat at least this many word pairs found only in the instructions to count as reading
them out."""


class BlockReason(str, enum.Enum):
    BLOCKED_WORD = "blocked_word"
    BLOCKED_TOPIC = "blocked_topic"
    INSTRUCTIONS = "instructions"
    UNSUPPORTED = "unsupported_claim"


@dataclass(frozen=True)
class Block:
    """Why a clause was not spoken."""

    reason: BlockReason
    detail: str
    """The word, the topic, the share of instruction pairs, or the claim (kind and text)."""
    clause: str


def _stems(text: str) -> list[str]:
    return [stem(w) for w in words(text, MAX_CLAUSE_WORDS)]


def _pairs(text: str) -> set[tuple[str, str]]:
    plain = words(text, MAX_CLAUSE_WORDS * 10)
    return set(zip(plain, plain[1:]))


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return n > 0 and any(list(haystack[i: i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def venue_texts(persona: PersonaConfig, venue: VenueConfig) -> list[str]:
    """Everything the venue and the persona say is true: what an LLM clause may repeat."""
    texts = [venue.name, *venue.facts, *venue.aliases]
    texts += [persona.name, persona.role, persona.style, persona.greeting, persona.unknown_answer, persona.apology]
    for entry in venue.entries:
        texts += [entry.topic, entry.answer, *entry.questions, *entry.keywords]
    for word, same in venue.synonyms.items():
        texts += [word, *same]
    return texts


class GroundingGuard:
    """The checks on LLM clauses for one venue snapshot (the venue's support is computed once)."""

    def __init__(self, config: GuardConfig, grounding: Iterable[str], instructions: str) -> None:
        self._config = config
        grounding = list(grounding)
        self._supported = supported_keys(grounding)
        known_pairs = set().union(*(_pairs(text) for text in grounding))
        self._prompt_pairs = _pairs(instructions)
        self._instruction_pairs = self._prompt_pairs - known_pairs
        self._blocked_words = [(w, _stems(w)) for w in config.blocked_words]
        self._blocked_topics = [(topic, _stems(w)) for topic, marks in config.blocked_topics.items() for w in marks]

    @classmethod
    def for_venue(cls, config: GuardConfig, persona: PersonaConfig, venue: VenueConfig, llm: LlmConfig) -> "GroundingGuard":
        return cls(config, venue_texts(persona, venue), system_prompt(persona, venue, llm))

    def check(self, clause: str, question: str) -> Block | None:
        """Why ``clause`` must not be spoken in answer to ``question``, or None when it may."""
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
        supported = self._supported | supported_keys([question])
        for claim in claims(clause):
            if not claim.keys & supported:
                return Block(BlockReason.UNSUPPORTED, f"{claim.kind.value} {claim.text!r}", clause)
        return None

    def guarded(self, clauses: Iterator[str], question: str, fallback: str, *, turn_id: int | None = None,
                on_block: Callable[[Block], None] = lambda block: None) -> Iterator[str]:
        """``clauses`` as long as they pass; at the first that fails, the LLM is stopped and ``fallback``
        is spoken instead."""
        try:
            for clause in clauses:
                block = self.check(clause, question)
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
