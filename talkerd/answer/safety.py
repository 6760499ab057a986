"""Emergencies first: a question that says someone is hurt, something is burning, a child is lost or a
visitor feels unsafe is answered at once with the venue's configured text, before the venue knowledge
and never by the LLM.

Matching is by meaning as far as the kiosk can judge it:

- by words, with the venue knowledge's normalisation and stemming (``knowledge.text``): an example
  matches when its words occur in the question in order, at most one word apart ("there is a fire"
  in "there's a big fire"), or when it has two or more content words and all of them occur close
  together in any order ("chest pain" in "pain in my chest"). Negations stay content words, so "can't
  find my son" is an emergency and "where can I find my son a present" is not;
- with a sentence embedder (``knowledge.semantic.SentenceEmbedder``) when one is given: a question at
  least ``safety.semantic_score`` similar (cosine) to an example matches too;
- and, given the venue's own texts embedded (``knowledge.semantic.SemanticIndex``), relative to the
  venue: a question at least ``safety.venue_floor`` similar to an example and ``safety.venue_margin``
  closer to it than to any entry question or fact line. A visitor's emergency is said in countless ways
  and its similarity to the nearest example is often low (0.35–0.5), as low as some venue questions
  reach; but a venue question is closer still to what the venue answers, and an emergency is not.
  Small talk alone ("hey, how is it going") is never weighed this way: the venue's texts do not cover it.

The first intent in the configured order that matches wins.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import SafetyConfig, SafetyIntent
from .knowledge.cues import strip_small_talk
from .knowledge.text import is_stop_word, stem, words

MAX_QUESTION_WORDS = 60
"""Words of a question looked at (an emergency is said in its first few)."""
MAX_GAP = 1
"""Words allowed between two consecutive words of an example said as a phrase."""
SPAN_SLACK = 3
"""Extra words allowed around an example's content words said in any order."""
FILLERS = frozenset("a an the um uh uhm er erm oh please just really".split())
"""Words dropped from both sides before phrase matching: they carry nothing and vary freely."""
NEGATIONS = frozenset({"not", "no", "never"})
"""Stop words that still count as content: they turn "find my son" into "can't find my son"."""


@dataclass(frozen=True)
class SafetyMatch:
    """An emergency recognised in a question."""

    intent: str
    """The intent's name."""
    answer: str
    """Its answer, placeholders filled: what is spoken."""
    example: str
    """The example that matched (by words) or came closest (by meaning)."""
    by: str
    """"words", "meaning" (close to an example) or "meaning beside the venue" (close enough to an
    example, and much closer to it than to anything the venue answers)."""
    score: float
    """1 for a match by words; the cosine similarity for one by meaning."""


@dataclass(frozen=True)
class _Example:
    intent: SafetyIntent
    text: str
    phrase: tuple[str, ...]
    """Its stems without fillers, in order."""
    content: frozenset[str]
    """Its content stems (stop words dropped, negations kept)."""


def _stems(text: str) -> list[str]:
    return [stem(w) for w in words(text, MAX_QUESTION_WORDS) if w not in FILLERS]


def _content(text: str) -> frozenset[str]:
    plain = words(text, MAX_QUESTION_WORDS)
    return frozenset(stem(w) for w in plain if w in NEGATIONS or not is_stop_word(w))


def _said_as_phrase(phrase: Sequence[str], question: Sequence[str]) -> bool:
    """``phrase`` occurs in ``question`` in order, each word at most ``MAX_GAP`` words after the last."""
    for start, word in enumerate(question):
        if word != phrase[0]:
            continue
        at = start
        for want in phrase[1:]:
            window = question[at + 1: at + 2 + MAX_GAP]
            if want not in window:
                break
            at = at + 1 + window.index(want)
        else:
            return True
    return False


def _said_in_any_order(content: frozenset[str], question: Sequence[str]) -> bool:
    """Two or more content words, all within a short span of the question."""
    if len(content) < 2 or not content.issubset(question):
        return False
    positions = [i for i, word in enumerate(question) if word in content]
    # The tightest window holding every content word at least once.
    best = len(question)
    for left in range(len(positions)):
        seen: set[str] = set()
        for right in range(left, len(positions)):
            seen.add(question[positions[right]])
            if seen == content:
                best = min(best, positions[right] - positions[left] + 1)
                break
    return best <= len(content) + SPAN_SLACK


class SafetyIntents:
    """The configured emergencies, prepared once; ``match`` is a few list scans per example."""

    def __init__(self, config: SafetyConfig, embedder: Any | None = None, venue_texts: Any | None = None) -> None:
        """``embedder``: a ``SentenceEmbedder`` to match by meaning too; ``venue_texts``: the venue's
        ``SemanticIndex`` (made with the same embedder), to match relative to the venue too."""
        self._config = config
        self._venue_texts = venue_texts
        self._examples = [
            _Example(intent, text, tuple(_stems(text)), _content(text))
            for intent in config.intents for text in intent.examples
        ]
        self._examples = [e for e in self._examples if e.phrase]
        self._embedder = embedder
        self._vectors = embedder.embed([e.text for e in self._examples]) if embedder is not None and self._examples else None

    def match(self, question: str) -> SafetyMatch | None:
        """The emergency ``question`` speaks of, or None."""
        return self._by_words(question) or self._by_meaning(question)

    def _by_words(self, question: str) -> SafetyMatch | None:
        stems = _stems(question)
        for example in self._examples:
            if _said_as_phrase(example.phrase, stems) or _said_in_any_order(example.content, stems):
                return self._answer(example, "words", 1.0)
        return None

    def _by_meaning(self, question: str) -> SafetyMatch | None:
        if self._vectors is None or not question.strip():
            return None
        vector = self._embedder.embed([question])[0]
        scores = self._vectors @ vector
        best = int(scores.argmax())
        score = float(scores[best])
        if score >= self._config.semantic_score:
            return self._answer(self._examples[best], "meaning", score)
        if self._far_from_the_venue(question, vector, score):
            return self._answer(self._examples[best], "meaning beside the venue", score)
        return None

    def _far_from_the_venue(self, question: str, vector, score: float) -> bool:
        if self._venue_texts is None or score < self._config.venue_floor:
            return False
        if not strip_small_talk(" ".join(words(question, MAX_QUESTION_WORDS)))[0]:
            return False
        closest = self._venue_texts.closest(vector)
        if closest < 0.0:  # a venue without texts: nothing to weigh against, so no match this way
            return False
        return score - closest >= self._config.venue_margin

    def answers(self) -> tuple[str, ...]:
        """Every emergency's answer as it is spoken (the speech cache renders them ahead)."""
        return tuple(self._filled(intent) for intent in self._config.intents)

    def _filled(self, intent) -> str:
        return intent.answer.format(emergency_number=self._config.emergency_number, staff_place=self._config.staff_place)

    def _answer(self, example: _Example, by: str, score: float) -> SafetyMatch:
        return SafetyMatch(example.intent.name, self._filled(example.intent), example.text, by, score)
