"""Speculative answers: what the pipeline prepares while the visitor pauses.

At each short pause (``endpointer.pause_ms``) the recogniser's partial transcript is answered ahead as a
held turn (``Turn.hold``): the brain routes it and writes its first clause (an LLM answer's first clause
is generated), the speech stage synthesises its first chunk (a pre-rendered answer's is ready at once),
and both wait. When the turn ends and the final question says the same words — or, for an answer
spoken as written, gets the very same answer —, the held turn is released and plays at once; when the
visitor goes on speaking, or the final asks something else, it is cancelled before a sound of it is
made, and nothing of it is kept in the LLM's history.

One speculation at a time, owned by the listener thread (the pipeline's ``_listen``).
"""
from __future__ import annotations

import enum
import logging
import re
import threading
from collections.abc import Callable

from .messages import Turn

log = logging.getLogger(__name__)

_NOT_WORD = re.compile(r"[^\w']+")


class Outcome(str, enum.Enum):
    """What became of a speculation (the ``speculation`` event's ``outcome``)."""

    HELD = "held"
    """Begun at a pause, waiting."""
    USED = "used"
    """The final transcript agreed: it became the turn."""
    RESUMED = "resumed"
    """Dropped: the visitor went on speaking."""
    DIFFERS = "differs"
    """Dropped: the final transcript said something else."""
    SUPERSEDED = "superseded"
    """Dropped: a later pause began a new one."""
    LOST = "lost"
    """Dropped: the microphone went away, was muted, or the pipeline is stopping."""


def same_words(a: str, b: str) -> bool:
    """Whether two transcripts say the same words (case, punctuation and spacing aside)."""
    return _NOT_WORD.sub(" ", a.lower()).split() == _NOT_WORD.sub(" ", b.lower()).split()


class Speculation:
    """The held turn and the words it answers."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()  # ``active`` is read by the speech worker
        self._held: Turn | None = None
        self._answer: str | None = None

    @property
    def active(self) -> bool:
        """A held turn is being prepared or waits."""
        with self._lock:
            return self._held is not None

    def begin(self, turn: Turn, answer: str | None) -> None:
        """Hold ``turn``, the answer to the question so far (``turn.question``); ``answer``: its words
        when they are fixed (None for the LLM's). The caller drops any speculation before."""
        turn.hold()
        with self._lock:
            self._held, self._answer = turn, answer
        log.info("speculating on %r", turn.question, extra={"turn_id": turn.id, "stage": "speculation"})

    def claim(self, question: str, answer_of_final: Callable[[], str | None]) -> Turn | None:
        """The held turn when the final ``question`` agrees with it: the same words, or the same fixed
        answer (``answer_of_final``, asked only then). It is no longer held here: the caller registers
        and releases it. None when there is none to use."""
        with self._lock:
            turn, answer = self._held, self._answer
        if turn is None or turn.is_cancelled:
            return None
        if not same_words(turn.question, question) and (answer is None or answer != answer_of_final()):
            return None
        with self._lock:
            if self._held is not turn:
                return None
            self._held = None
        return turn

    def drop(self) -> Turn | None:
        """Cancel the held turn, if any, and return it."""
        with self._lock:
            turn, self._held = self._held, None
        if turn is not None:
            turn.cancel()
        return turn
