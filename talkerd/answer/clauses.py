"""Cuts a stream of LLM text into clauses the TTS can speak one at a time.

The first clause is cut as early as it reads naturally (a comma after a few words) because it sets
the time to first audio; later clauses prefer whole sentences, which sound better.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_SOFT_BREAK = re.compile(r"[,;:—–]\s")
_CHAT_MARKUP = re.compile(r"[*_#`]+|<[^>]*>")

FIRST_CLAUSE_MIN_WORDS = 3
LATER_CLAUSE_MIN_WORDS = 8
MAX_CLAUSE_WORDS = 30


def clean_for_speech(text: str) -> str:
    """Drop markdown and tags an LLM may emit; collapse white space."""
    return " ".join(_CHAT_MARKUP.sub("", text).split())


class ClauseSplitter:
    """Feed text pieces; get back the clauses they complete. ``flush()`` returns the remainder."""

    def __init__(self) -> None:
        self._buffer = ""
        self._emitted = 0

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        clauses = []
        while (cut := self._find_cut()) is not None:
            clause = clean_for_speech(self._buffer[:cut])
            self._buffer = self._buffer[cut:]
            if clause:
                clauses.append(clause)
                self._emitted += 1
        return clauses

    def flush(self) -> str | None:
        clause = clean_for_speech(self._buffer)
        self._buffer = ""
        return clause or None

    def _find_cut(self) -> int | None:
        sentence = _SENTENCE_END.search(self._buffer)
        if sentence is not None and _word_count(self._buffer[: sentence.end()]) >= 1:
            return sentence.end()
        min_words = FIRST_CLAUSE_MIN_WORDS if self._emitted == 0 else LATER_CLAUSE_MIN_WORDS
        for soft in _SOFT_BREAK.finditer(self._buffer):
            if _word_count(self._buffer[: soft.end()]) >= min_words:
                return soft.end()
        if _word_count(self._buffer) > MAX_CLAUSE_WORDS:
            # No punctuation for a long time: cut at the last space so speech can start.
            return self._buffer.rstrip().rfind(" ") + 1 or None
        return None


def _word_count(text: str) -> int:
    return len(text.split())


def split_text(text: str) -> list[str]:
    """Split a whole text into clauses (for ``say`` and curated answers)."""
    splitter = ClauseSplitter()
    clauses = splitter.feed(text + " ")
    rest = splitter.flush()
    return clauses + ([rest] if rest else [])


def stream_clauses(pieces: Iterable[str]) -> Iterator[str]:
    """Clauses as the pieces complete them. A consumer that stops early (``close()``) closes ``pieces``
    too, so that the LLM behind them stops generating."""
    splitter = ClauseSplitter()
    try:
        for piece in pieces:
            yield from splitter.feed(piece)
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    rest = splitter.flush()
    if rest:
        yield rest
