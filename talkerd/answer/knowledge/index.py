"""Lexical retrieval over the venue's curated entries and fact lines.

Every text becomes a list of canonical terms (stemmed words, synonym phrases folded onto one term,
stop words dropped). A term's weight is its BM25 inverse document frequency over the entries and fact
lines, so a word that names one topic ("wifi") counts far more than one that appears everywhere
("book"). A word the knowledge has never seen gets the highest weight of all: it is the strongest sign
that the question is about something the venue knowledge does not cover.

A document's score for a question is a number in 0..1:

    coverage  = weight of the question's terms found in the document / weight of all its terms
                (a term found only in an entry's answer text counts ``ANSWER_FIELD``; one that was
                corrected from a typo counts ``CORRECTED``)
    precision = for the entry's closest curated question, the share of its weight the visitor used
    score     = COVERAGE_SHARE × coverage + (1 − COVERAGE_SHARE) × precision     (entries)
    score     = coverage                                                          (fact lines)

Coverage decides whether the question is answered at all; precision separates two entries that both
cover it ("open on Sunday" covers both opening time and Sunday hours; Sunday hours is asked closer).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from .text import is_stop_word, stem, words

ANSWER_FIELD = 0.6
"""A question term found only in an entry's answer text is weaker evidence than one in its questions,
topic or keywords."""
CORRECTED = 0.85
"""A term recognised only after correcting a typo is trusted a little less."""
COVERAGE_SHARE = 0.8
"""Weight of coverage against precision in an entry's score."""
KNOWLEDGE_WORDS = 100_000
"""Word limit for the venue's own texts (a bound, not a cut: answers and facts are far shorter)."""
MIN_CORRECTABLE = 4
"""Shorter words are never corrected: one edit turns most three-letter words into other words."""
MAX_CORRECTABLE = 24
"""Longer "words" are noise, not typos."""
CORRECTION_CACHE = 4096
"""Corrections remembered (unknown words recur: names, misrecognitions)."""


def _max_edits(word: str) -> int:
    return 1 if len(word) <= 7 else 2


def _plausible(word: str, correction: str) -> bool:
    # A four-letter word is one substitution away from many others ("life" → "lift"); only a swap of
    # two letters ("opne" → "open") is taken as a typo there.
    return len(word) > MIN_CORRECTABLE or sorted(word) == sorted(correction)


@dataclass(frozen=True)
class Term:
    """One canonical term of a question."""

    text: str
    """The canonical form (a stem, or a synonym group's key)."""
    quality: float = 1.0
    """1 as heard; ``CORRECTED`` when it was a typo of this vocabulary term."""


@dataclass(frozen=True)
class Document:
    """One entry or fact line, as sets of terms."""

    strong: frozenset[str]
    """Terms of the entry's questions, topic and keywords, or of a whole fact line."""
    weak: frozenset[str]
    """Terms only in the entry's answer text."""
    questions: tuple[frozenset[str], ...]
    """Each curated question's terms (empty for a fact line)."""


class Analyzer:
    """Words → canonical terms: the venue's synonym phrases folded onto their group's key, the venue's
    own names (aliases) and stop words dropped, everything else stemmed."""

    def __init__(
        self,
        synonyms: Mapping[str, Sequence[str]],
        aliases: Sequence[str],
        phrases: Iterable[str] = (),
    ) -> None:
        self._phrases: dict[tuple[str, ...], str | None] = {}
        for phrase in phrases:  # several words that only mean the entry's topic together ("book club")
            self._add_phrase(phrase, " ".join(stem(w) for w in words(phrase, KNOWLEDGE_WORDS)))
        for key, values in synonyms.items():
            canonical = " ".join(stem(w) for w in words(key, KNOWLEDGE_WORDS))
            for phrase in (key, *values):
                self._add_phrase(phrase, canonical)
        for alias in aliases:
            self._add_phrase(alias, None)
        self._longest = max((len(p) for p in self._phrases), default=1)
        self.phrase_stems = frozenset(part for phrase in self._phrases for part in phrase)
        """Every stem that is part of a synonym or alias phrase."""

    def _add_phrase(self, phrase: str, canonical: str | None) -> None:
        stems = tuple(stem(w) for w in words(phrase, KNOWLEDGE_WORDS))
        if stems:
            self._phrases[stems] = canonical

    def terms(self, text: str) -> list[str]:
        """Terms of the venue's own text (entries, facts): never cut short, unlike a visitor's question."""
        return [term for term, _ in self.terms_of(words(text, KNOWLEDGE_WORDS))]

    def terms_of(self, plain: Sequence[str], quality: Sequence[float] | None = None) -> list[tuple[str, float]]:
        """Canonical terms of already-normalised words, longest phrase first, each with the lowest
        quality of the words it came from."""
        quality = quality if quality is not None else [1.0] * len(plain)
        stems = [stem(w) for w in plain]
        out: list[tuple[str, float]] = []
        i = 0
        while i < len(plain):
            for n in range(min(self._longest, len(plain) - i), 0, -1):
                key = tuple(stems[i : i + n])
                if key in self._phrases:
                    canonical = self._phrases[key]
                    if canonical is not None:
                        out.append((canonical, min(quality[i : i + n])))
                    i += n
                    break
            else:
                if not is_stop_word(plain[i]):
                    out.append((stems[i], quality[i]))
                i += 1
        return out


class TermIndex:
    """Documents, term weights, and the vocabulary that typos are corrected against."""

    def __init__(self, analyzer: Analyzer, documents: Sequence[Document], surface: Iterable[str]) -> None:
        self.analyzer = analyzer
        self.documents = tuple(documents)
        df: Counter[str] = Counter()
        for doc in self.documents:
            df.update(doc.strong | doc.weak)
        n = len(self.documents)
        self._idf = {term: self._bm25_idf(n, count) for term, count in df.items()}
        self.unknown_weight = self._bm25_idf(n, 0)
        self.vocabulary = tuple(sorted(self._idf))
        self._surface = tuple(sorted({w for w in surface if len(w) >= MIN_CORRECTABLE and not is_stop_word(w)}))
        self._corrections: dict[str, str | None] = {}

    @staticmethod
    def _bm25_idf(n: int, df: int) -> float:
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def weight(self, term: str) -> float:
        return self._idf.get(term, self.unknown_weight)

    def knows(self, term: str) -> bool:
        return term in self._idf

    # -- questions --------------------------------------------------------------------------------
    def query(self, plain: Sequence[str]) -> list[Term]:
        """The distinct terms of a visitor's (normalised) words, with split words rejoined and typos
        corrected against the words the venue knowledge uses."""
        corrected, quality = self._corrected(plain)
        terms: dict[str, float] = {}
        for text, q in self.analyzer.terms_of(corrected, quality):
            terms[text] = max(terms.get(text, 0.0), q)
        return [Term(text, q) for text, q in terms.items()]

    def corrected(self, plain: Sequence[str]) -> list[str]:
        """The visitor's words with split words rejoined and typos corrected (what the encoder should read:
        it knows "pushchair", not "pushchiar")."""
        return self._corrected(plain)[0]

    def _corrected(self, plain: Sequence[str]) -> tuple[list[str], list[float]]:
        corrected: list[str] = []
        quality: list[float] = []
        for word in self._rejoin(plain):
            fixed = self._correct(word)
            corrected.append(fixed or word)
            quality.append(CORRECTED if fixed else 1.0)
        return corrected, quality

    def _rejoin(self, plain: Sequence[str]) -> list[str]:
        # The recogniser often splits a word the venue uses in one piece ("up stairs", "wheel chair").
        out: list[str] = []
        i = 0
        while i < len(plain):
            if i + 1 < len(plain) and self.knows(stem(plain[i] + plain[i + 1])):
                if not (self.knows(stem(plain[i])) and self.knows(stem(plain[i + 1]))):
                    out.append(plain[i] + plain[i + 1])
                    i += 2
                    continue
            out.append(plain[i])
            i += 1
        return out

    def _correct(self, word: str) -> str | None:
        """The venue's word that ``word`` is a typo of, or None when it is not one."""
        if not MIN_CORRECTABLE <= len(word) <= MAX_CORRECTABLE or not word.isalpha() or is_stop_word(word):
            return None
        stemmed = stem(word)
        if self.knows(stemmed) or stemmed in self.analyzer.phrase_stems:
            return None
        if word not in self._corrections:
            if len(self._corrections) >= CORRECTION_CACHE:  # a kiosk runs for months: stay bounded
                self._corrections.clear()
            found = process.extractOne(word, self._surface, scorer=OSA.distance, score_cutoff=_max_edits(word))
            self._corrections[word] = found[0] if found is not None and _plausible(word, found[0]) else None
        return self._corrections[word]

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, terms: Iterable[Term], doc: Document) -> float:
        terms = list(terms)
        total = sum(self.weight(t.text) for t in terms)
        if total <= 0.0:
            return 0.0
        covered = 0.0
        for t in terms:
            field = 1.0 if t.text in doc.strong else ANSWER_FIELD if t.text in doc.weak else 0.0
            covered += self.weight(t.text) * field * t.quality
        coverage = covered / total
        if not doc.questions:
            return coverage
        asked = {t.text for t in terms}
        precision = max((self._share(q, asked) for q in doc.questions), default=0.0)
        return COVERAGE_SHARE * coverage + (1.0 - COVERAGE_SHARE) * precision

    def _share(self, question: frozenset[str], asked: set[str]) -> float:
        total = sum(self.weight(t) for t in question)
        return sum(self.weight(t) for t in question & asked) / total if total > 0.0 else 0.0
