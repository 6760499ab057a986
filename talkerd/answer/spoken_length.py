"""How long an LLM answer may be when it is spoken: the one home of that policy.

A kiosk answer is heard, not read: at most ``[llm] max_sentences`` sentences and ``max_speech_s``
seconds of speech (converted to words at ``speech_words_per_s``), cut at a sentence end, and stopped as
soon as the text starts repeating itself (small models loop).

Feed the streamed pieces to ``SpokenLength``; it returns the text that may be spoken now and says when
to stop generating. The first sentence is released as it streams (it sets the time to first audio);
later sentences are held until they are complete, so that one which would pass a cap or repeat an
earlier one is never started.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s+(?=[\"'(]?[A-Z0-9])")
"""A sentence end followed by the start of another sentence (so "9 a.m. and" does not end one)."""
_ABBREVIATION = re.compile(r"\b(?:mr|mrs|ms|dr|st|no|nr|approx|e\.g|i\.e|vs|etc)\.\s*$", re.IGNORECASE)
_WORD = re.compile(r"[\w'’]+")

LOOP_NGRAM = 6
"""A run of this many words seen before in the answer: the model is looping."""
SIMILAR_SENTENCE = 0.6
"""A sentence sharing this share of its word trigrams with the earlier text repeats it."""


class StopReason(str, enum.Enum):
    SENTENCES = "sentences"
    SPEECH_TIME = "speech_time"
    REPETITION = "repetition"


@dataclass(frozen=True)
class SpeechCaps:
    max_sentences: int
    max_words: int

    @staticmethod
    def from_config(llm) -> "SpeechCaps":
        """``llm``: ``config.LlmConfig``."""
        return SpeechCaps(llm.max_sentences, max(1, int(llm.max_speech_s * llm.speech_words_per_s)))


def words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def has_loop(tokens: list[str], n: int = LOOP_NGRAM) -> bool:
    grams = _ngrams(tokens, n)
    return len(set(grams)) < len(grams)


def repeats(sentence: str, earlier: str) -> bool:
    """True when ``sentence`` says again what ``earlier`` said (word for word or nearly)."""
    new, old = words(sentence), words(earlier)
    if not new:
        return False
    if has_loop(old + new):
        return True
    grams = _ngrams(new, 3)
    if not grams:
        return " ".join(new) in " ".join(old)
    seen = set(_ngrams(old, 3))
    return sum(gram in seen for gram in grams) / len(grams) >= SIMILAR_SENTENCE


class SpokenLength:
    """One answer's length policy. ``feed`` each piece; stop generating once ``stopped`` is set."""

    def __init__(self, caps: SpeechCaps) -> None:
        self._caps = caps
        self._sentences: list[str] = []
        self._pending = ""
        """Text of the sentence being generated."""
        self._released_pending = 0
        """How much of ``_pending`` was already released (the first sentence streams)."""
        self.released = ""
        """Everything released so far: what is spoken and what the history remembers."""
        self.stopped: StopReason | None = None

    def feed(self, piece: str) -> str:
        if self.stopped is not None:
            return ""
        self._pending += piece
        out = [self._close_sentences()]
        if self.stopped is None:
            out.append(self._stream_or_hold())
        return self._release("".join(out))

    def finish(self) -> str:
        """The stream ended: its last, unterminated sentence is judged like any other."""
        if self.stopped is not None or not self._pending.strip():
            return ""
        return self._release(self._close(self._pending))

    def _release(self, text: str) -> str:
        self.released += text
        return text

    def _close_sentences(self) -> str:
        out = []
        while self.stopped is None and (end := self._sentence_end()) is not None:
            sentence, self._pending = self._pending[:end], self._pending[end:]
            out.append(self._close(sentence))
        return "".join(out)

    def _sentence_end(self) -> int | None:
        for match in _SENTENCE_END.finditer(self._pending):
            if not _ABBREVIATION.search(self._pending[: match.end()]):
                return match.end()
        return None

    def _close(self, sentence: str) -> str:
        """A whole sentence: released (its rest, if it streamed) unless it breaks a cap or repeats."""
        earlier = "".join(self._sentences)
        streamed, self._released_pending = self._released_pending, 0
        if has_loop(words(earlier + sentence)) or (self._sentences and repeats(sentence, earlier)):
            self.stopped = StopReason.REPETITION
            return ""
        if len(words(earlier + sentence)) > self._caps.max_words:
            self.stopped = StopReason.SPEECH_TIME
            return self._cut_first(sentence, streamed) if not self._sentences else ""
        self._sentences.append(sentence)
        if len(self._sentences) >= self._caps.max_sentences:
            self.stopped = StopReason.SENTENCES
        return sentence[streamed:]

    def _stream_or_hold(self) -> str:
        """The unfinished sentence: the first streams (up to the caps), later ones wait to be whole."""
        pending_words = words(self._pending)
        if self._sentences:
            if has_loop(words("".join(self._sentences)) + pending_words):
                self.stopped = StopReason.REPETITION
            return ""
        if has_loop(pending_words):
            self.stopped = StopReason.REPETITION
            return ""
        if len(pending_words) > self._caps.max_words:
            self.stopped = StopReason.SPEECH_TIME
            return self._cut_first(self._pending, self._released_pending)
        # Release all but a possibly unfinished last word.
        cut = len(self._pending) if self._pending[-1:].isspace() else self._pending.rfind(" ") + 1
        cut = max(cut, self._released_pending)
        text = self._pending[self._released_pending:cut]
        self._released_pending = cut
        return text

    def _cut_first(self, sentence: str, streamed: int) -> str:
        """One first sentence longer than all the speech allowed: end it at the last word that fits."""
        cut = _end_of_word(sentence, self._caps.max_words)
        return sentence[streamed:max(cut, streamed)].rstrip() + "."


def _end_of_word(text: str, count: int) -> int:
    """Index just after the ``count``-th word of ``text``."""
    matches = list(_WORD.finditer(text))
    return matches[count - 1].end() if len(matches) >= count else len(text)
