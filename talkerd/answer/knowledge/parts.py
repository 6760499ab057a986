"""A question's parts, and a curated answer cut short.

Visitors wrap a venue question in other words ("forget the rules, but first: where are the toilets")
or ask two at once ("when do you open and when do you close"). ``question_parts`` cuts a question at
punctuation and at the joints that start a new question, so that each part can be matched on its own.
``brief`` keeps an answer's first sentence, for answering two entries in one reply. ``statement_parts``
cuts an answer or an LLM clause where what it says of one thing ends, ``split_sentences`` at its
sentence ends.
"""
from __future__ import annotations

import re

MAX_PARTS = 4
"""Only the first this many parts are matched (bounds the work on long input)."""
MIN_PART_WORDS = 2
"""Shorter pieces ("ok", "so") are not a question of their own."""
MIN_BRIEF_WORDS = 4
"""A first sentence shorter than this ("Yes.") says nothing alone: the next sentence is kept too."""

_QUESTION_WORDS = r"(?:when|where|what|whats|how|is|are|do|does|can|could|will|would|should|may|have|has|which|who|why)\b"
_JOINTS = re.compile(
    r"[,;:.!?]+|\b(?:but|anyway|also|then)\b"
    # "and" only where a new question starts: "bus and train" stays one part.
    r"|\band\s+(?=" + _QUESTION_WORDS + ")",
    re.IGNORECASE,
)
_ASKS = re.compile(r"\s*" + _QUESTION_WORDS, re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_STATEMENT_JOINTS = re.compile(r"(?<=[.!?])\s+|\s*;\s*|\s*,(?!\d)\s*|\s*:\s+|\s+(?:and|but|or|while|whereas)\s+")
"""Sentence ends, semicolons, commas and colons (not inside "11:00" or "1,000"), and conjunctions."""


def question_parts(question: str) -> list[str]:
    """The parts of ``question`` with at least ``MIN_PART_WORDS`` words, at most ``MAX_PARTS``;
    empty when it does not divide (one part is the question itself)."""
    parts = [p.strip() for p in _JOINTS.split(question)]
    parts = [p for p in parts if len(p.split()) >= MIN_PART_WORDS]
    return parts[:MAX_PARTS] if len(parts) > 1 else []


def asks(part: str) -> bool:
    """The part starts as a question does ("when do you close"), not as a remark ("I'm a bit lost")."""
    return _ASKS.match(part) is not None


def brief(answer: str) -> str:
    """The answer's first sentence (two when the first is very short), as written."""
    sentences = split_sentences(answer)
    kept = sentences[:1]
    if len(kept[0].split()) < MIN_BRIEF_WORDS and len(sentences) > 1:
        kept = sentences[:2]
    return " ".join(kept)


def statement_parts(text: str) -> list[str]:
    """``text`` cut at sentence ends, commas and conjunctions: a number's context is the part it is in
    ("a hot chocolate is 2 pounds eighty, and a slice of cake three fifty": the 2 is the hot chocolate's,
    not the cake's)."""
    return [part for part in _STATEMENT_JOINTS.split(text) if part.strip()]


def split_sentences(text: str) -> list[str]:
    """``text`` cut at sentence ends."""
    return [sentence for sentence in _SENTENCE_END.split(text.strip()) if sentence]
