"""The visitor's question → how to answer it: curated, from facts via the LLM, "I don't know", or chat.

Decision, in order (``cues`` documents the small-talk and venue-cue tables):

1. no words at all (empty, only punctuation)                   → UNKNOWN, the persona's unknown answer
   words only in another script (e.g. a Korean recogniser)    → SMALLTALK: only the LLM can read them
2. only small talk                                             → SMALLTALK (the LLM chats)
3. the best entry scores ≥ ``knowledge.confident_score``       → CURATED, that entry's answer as written,
   … but no kind of evidence puts it ``ambiguity_margin``
     ahead of the next entry (only with ``semantic``)         → AMBIGUOUS, both entries briefly
4. an entry or fact line scores ≥ ``knowledge.weak_score``     → FACTS, the best few answers and fact lines
5. a venue cue is present                                      → UNKNOWN, the persona's unknown answer
6. anything else                                               → SMALLTALK
7. a question's parts (``parts``) are matched alone: when 3 did not hold for the whole, one part with a
   curated answer is the venue question wrapped in other words (that answer); parts with curated
   answers of two topics are two questions (AMBIGUOUS, both briefly), even when the whole was
   confident, counting then only the parts that ask ("when are you open and when do you close"), not
   remarks around a question ("I'm a bit lost, where are the toilets").

A document's score is the lexical one (``index``); with ``knowledge.semantic`` it is the better of that
and its meaning score: the cosine between the question and the document's closest text (``semantic``)
mapped linearly so that ``semantic_floor`` scores 0 and ``semantic_confident`` scores
``confident_score`` (capped at 1). Either kind of evidence alone can make a match confident; the margin
to the next entry then decides whether it is unambiguous. An entry about days of the week (its topic
or questions name some) whose answer names only other days than the question does (``days``), and an
entry whose answer lacks the price or the person the question asks for (``asked_for``), score
``MISMATCH_WEIGHT`` of that: it may still inform the LLM, but is never answered as written on the
strength of the other words.
"""
from __future__ import annotations

import dataclasses
import enum
import logging
from dataclasses import dataclass

import numpy as np

from ...config import KnowledgeConfig, VenueConfig, VenueEntry
from .asked_for import asked_for, gives, lacks
from .cues import strip_small_talk, venue_cues
from .days import conflict, days_named
from .index import KNOWLEDGE_WORDS, Analyzer, Document, Term, TermIndex
from .parts import asks, brief, question_parts
from .semantic import SemanticIndex, SentenceEmbedder
from .text import MAX_WORD_CHARS, words

log = logging.getLogger(__name__)

MISMATCH_WEIGHT = 0.5
"""The share of its score an entry keeps when its answer is about other days than the question's, or
lacks what the question asks for: below any confident score, above the weak one when its other
evidence is strong."""


class MatchKind(str, enum.Enum):
    """How a question is answered."""

    CURATED = "curated"
    AMBIGUOUS = "ambiguous"
    """Two curated entries fit about equally well: both are answered, briefly, as written."""
    FACTS = "facts"
    UNKNOWN = "unknown"
    SMALLTALK = "smalltalk"
    EMERGENCY = "emergency"
    """Never the venue knowledge's verdict: an emergency is recognised before it (``answer.safety``);
    labelled question sets and their evaluation use it."""


@dataclass(frozen=True)
class Match:
    """The knowledge stage's verdict on one question."""

    kind: MatchKind
    score: float
    """The best entry's (or, for FACTS, entry's or fact line's) score, 0..1."""
    answer: str | None
    """The curated answer (CURATED) or the persona's unknown answer (UNKNOWN); None otherwise."""
    facts: tuple[str, ...]
    """For FACTS: the best entries' answers and fact lines, best first, for the LLM's prompt."""
    topic: str | None
    """The best entry's topic (CURATED, and FACTS when an entry matched at least weakly)."""
    reason: str = ""
    """Why, in a few words, for the log and the accuracy tool."""


@dataclass(frozen=True)
class _Candidate:
    score: float
    """The better of the two kinds of evidence."""
    text: str
    topic: str | None
    lexical: float = 0.0
    """The words' score alone."""
    meaning: float = 0.0
    """The meaning's score alone (0 without ``knowledge.semantic``)."""

    def ahead_of(self, rival: "_Candidate", margin: float) -> bool:
        """Whether one kind of evidence on its own prefers this over ``rival`` by ``margin``. Both scores
        close together on the better evidence is not enough for ambiguity: "opening hours" and "closing
        time" mean nearly the same to the encoder, but the words tell them apart."""
        return max(self.score - rival.score, self.lexical - rival.lexical, self.meaning - rival.meaning) >= margin


def _both(score: float, answers: tuple[str, str], topic: str | None, reason: str) -> Match:
    """Two curated entries in one reply: the first sentence of each, as written."""
    return Match(MatchKind.AMBIGUOUS, score, " ".join(brief(answer) for answer in answers), (), topic, reason)


def _days_of(entry: VenueEntry) -> frozenset[int]:
    """The days an entry is for: those its answer speaks of (what the visitor hears; "Are you open at the
    weekend?" may lead to an answer about Sundays alone), when its topic or questions are about days at
    all. An answer that names a day in passing ("until 20:00 on Thursdays") is not for that day alone."""
    about_days = days_named(" ".join((entry.topic, *entry.questions)))
    return days_named(entry.answer) if about_days else frozenset()


class VenueKnowledge:
    """The venue's entries and facts, indexed once; ``match`` is then a few set operations per entry."""

    def __init__(self, venue: VenueConfig, knowledge: KnowledgeConfig, unknown_answer: str,
                 embedder: SentenceEmbedder | None = None) -> None:
        """``embedder``: with one, questions are matched by meaning too (``knowledge.semantic``); the
        entries' questions and the fact lines are embedded here, once."""
        self._config = knowledge
        self._unknown_answer = unknown_answer
        keyword_phrases = [k for entry in venue.entries for k in entry.keywords if len(k.split()) > 1]
        analyzer = Analyzer(venue.synonyms, venue.aliases, keyword_phrases)
        self._entries = venue.entries
        documents = [self._entry_document(analyzer, entry) for entry in venue.entries]
        documents += [Document(frozenset(analyzer.terms(fact)), frozenset(), ()) for fact in venue.facts]
        self._facts = venue.facts
        self._days = [_days_of(entry) for entry in venue.entries] + [frozenset() for _ in venue.facts]
        # Only curated answers, spoken as written, are weighed down for lacking what is asked for.
        self._gives = [gives(entry.answer) for entry in venue.entries] + [None for _ in venue.facts]
        self._index = TermIndex(analyzer, documents, self._surface_words(venue))
        cue_texts = [entry.topic for entry in venue.entries] + [k for e in venue.entries for k in e.keywords]
        self._cue_terms = frozenset(t for text in cue_texts + list(knowledge.venue_cues) for t in analyzer.terms(text))
        # Words alone often score two entries alike ("what time do you close" is also the café's
        # question without "café"); the lexical ranking was tuned to pick between them, so the margin
        # only applies where the meaning can tell the entries apart.
        self._margin = knowledge.ambiguity_margin if embedder is not None else 0.0
        self.embedder = embedder
        """The sentence embedder (None without ``semantic``), for other matching by meaning to share."""
        self.engines: tuple = tuple(getattr(embedder, "engines", ()))
        """The embedder's inference engines, for the health board (none without ``semantic``)."""
        self._semantic = None if embedder is None else SemanticIndex(
            embedder, [list(entry.questions) or [entry.topic] for entry in venue.entries] + [[f] for f in venue.facts])
        log.debug("venue knowledge: %d entries, %d facts, %d terms", len(venue.entries), len(venue.facts),
                  len(self._index.vocabulary))

    @property
    def semantic_index(self) -> SemanticIndex | None:
        """The entries' questions and the fact lines embedded (None without ``semantic``): what the
        safety intents weigh an emergency's closeness against."""
        return self._semantic

    @staticmethod
    def _entry_document(analyzer: Analyzer, entry: VenueEntry) -> Document:
        questions = tuple(frozenset(analyzer.terms(q)) for q in entry.questions)
        strong = frozenset().union(*questions, analyzer.terms(entry.topic), *(analyzer.terms(k) for k in entry.keywords))
        return Document(strong, frozenset(analyzer.terms(entry.answer)) - strong, questions)

    @staticmethod
    def _surface_words(venue: VenueConfig) -> set[str]:
        """Every word the venue knowledge is written in: what a typo may be corrected to."""
        texts = list(venue.facts) + [t for group in venue.synonyms.items() for t in (group[0], *group[1])]
        for entry in venue.entries:
            texts += [entry.topic, entry.answer, *entry.questions, *entry.keywords]
        return {w for text in texts for w in words(text, KNOWLEDGE_WORDS)}

    def match(self, question: str) -> Match:
        """Decide how to answer ``question`` (recognised or typed text, any case or punctuation)."""
        match = self._decide(question)
        log.debug("knowledge: %s (%.2f, %s): %s", match.kind.value, match.score, match.topic, match.reason)
        return match

    def _decide(self, question: str) -> Match:
        match = self._decide_whole(question)
        if match.kind is MatchKind.AMBIGUOUS:
            return match
        # A confident whole may still be two questions ("when are you open and when do you close"): then
        # only parts that ask count, not remarks around the question ("I'm a bit lost, where are …").
        confident = match.kind is MatchKind.CURATED
        curated: dict[str, Match] = {}
        for part in question_parts(question):
            if confident and not asks(part):
                continue
            part_match = self._decide_whole(part)
            if part_match.kind is MatchKind.CURATED and part_match.topic is not None:
                curated.setdefault(part_match.topic, part_match)
        if confident and len(curated) < 2:
            return match
        if len(curated) == 1:
            (part_match,) = curated.values()
            return dataclasses.replace(part_match, reason="the venue part of a longer question")
        if len(curated) > 1:
            first, second = list(curated.values())[:2]
            return _both(min(first.score, second.score), (first.answer, second.answer), first.topic,
                         f"two questions: {first.topic}, {second.topic}")
        return match

    def _decide_whole(self, question: str) -> Match:
        plain = words(question, self._config.max_words)
        if not plain:
            if any(ch.isalpha() for ch in question[: self._config.max_words * MAX_WORD_CHARS]):
                # Words in a script the matcher cannot read (another language's recogniser): the
                # language model may understand them; the curated knowledge cannot judge them.
                return Match(MatchKind.SMALLTALK, 0.0, None, (), None, "no words in a script the knowledge reads")
            return self._unknown(0.0, "no words in the question")
        rest, small_talk = strip_small_talk(" ".join(plain))
        terms = self._index.query(rest.split())
        if not terms and small_talk:
            return Match(MatchKind.SMALLTALK, 0.0, None, (), None, "small talk: " + ", ".join(small_talk))
        candidates = self._rank(terms, self._as_meant(question, plain))
        entries = [c for c in candidates if c.topic is not None]
        best_entry = entries[0] if entries else None
        if best_entry is not None and best_entry.score >= self._config.confident_score:
            rival = entries[1] if len(entries) > 1 else None
            if rival is not None and not best_entry.ahead_of(rival, self._margin):
                return _both(best_entry.score, (best_entry.text, rival.text), best_entry.topic,
                             f"ambiguous: {best_entry.topic} or {rival.topic}")
            return Match(MatchKind.CURATED, best_entry.score, best_entry.text, (), best_entry.topic, "confident match")
        if candidates and candidates[0].score >= self._config.weak_score:
            return self._facts_match(candidates, best_entry)
        best = candidates[0].score if candidates else 0.0
        cues = venue_cues(rest) + (("venue words",) if self._cue_terms.intersection(t.text for t in terms) else ())
        if cues:
            return self._unknown(best, "venue question (" + ", ".join(cues) + ") not in the knowledge")
        return Match(MatchKind.SMALLTALK, best, None, (), None, "no venue cue")

    def _as_meant(self, question: str, plain: list[str]) -> str:
        """The question for the encoder: as asked, or with its typos corrected when it had some."""
        corrected = self._index.corrected(plain)
        return question if corrected == plain else " ".join(corrected)

    def _rank(self, terms: list[Term], question: str) -> list[_Candidate]:
        """Entries' answers and fact lines by score, best first (entries before facts on a tie, then the
        better words)."""
        lexical = np.asarray([self._index.score(terms, document) for document in self._index.documents])
        meaning, cosine = self._meaning(question)
        if self._semantic is not None:  # words that matched a text of quite another meaning
            lexical = lexical * np.clip(cosine / self._config.semantic_veto, 0.0, 1.0)
        days, wanted = days_named(question), asked_for(question)
        weights = np.asarray([
            MISMATCH_WEIGHT if conflict(days, about) or (wanted and given is not None and lacks(wanted, given)) else 1.0
            for about, given in zip(self._days, self._gives)
        ])
        lexical, meaning = lexical * weights, meaning * weights
        texts = [(entry.answer, entry.topic) for entry in self._entries] + [(fact, None) for fact in self._facts]
        candidates = [_Candidate(float(max(lex, mean)), text, topic, float(lex), float(mean))
                      for lex, mean, (text, topic) in zip(lexical, meaning, texts) if max(lex, mean) > 0.0]
        # On a tie (both capped at 1, say), the words decide: the encoder finds "When does the store
        # close?" as close to the opening time's questions as to its own entry's; the words do not.
        candidates.sort(key=lambda c: (-c.score, c.topic is None, -c.lexical))
        return candidates

    def _meaning(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """Every document's meaning score (module docstring) and cosine; zeros without ``knowledge.semantic``."""
        if self._semantic is None:
            zeros = np.zeros(len(self._index.documents))
            return zeros, zeros
        config = self._config
        cosine = self._semantic.similarities(question).astype(np.float64)
        slope = config.confident_score / (config.semantic_confident - config.semantic_floor)
        return np.clip((cosine - config.semantic_floor) * slope, 0.0, 1.0), cosine

    def _facts_match(self, candidates: list[_Candidate], best_entry: _Candidate | None) -> Match:
        facts: list[str] = []
        for candidate in candidates:
            if candidate.text not in facts:
                facts.append(candidate.text)
            if len(facts) == self._config.facts_for_llm:
                break
        weak = self._config.weak_score
        topic = best_entry.topic if best_entry is not None and best_entry.score >= weak else None
        return Match(MatchKind.FACTS, candidates[0].score, None, tuple(facts), topic, "weak match")

    def _unknown(self, score: float, reason: str) -> Match:
        return Match(MatchKind.UNKNOWN, score, self._unknown_answer, (), None, reason)
