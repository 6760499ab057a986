"""Warm-up speech for the recogniser: the venue's own questions, said by the kiosk's voice.

A fresh vosk recogniser decodes its first utterance at about real time on a 2-core CPU (its lookahead
graph is composed as it goes), then at a quarter of it; the renewal (``asr.py``) has every fresh one
decode this speech first, so the visitor who comes after a start or a renewal does not wait for it.
The speech is made one question at a time in the speech worker's idle time, after the fixed answers
are pre-rendered, and given to the listener as a whole.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

Say = Callable[[str, Callable[[], bool]], "tuple[np.ndarray, int] | None"]
"""A text → its audio and sample rate (None when the voice could not say it), stopping early when asked."""


class WarmUpSpeech:
    def __init__(self, say: Say, give: Callable[[Sequence[np.ndarray], int], None]) -> None:
        """``say``: the voice; ``give``: where the finished speech goes (``Listener.warm_up``)."""
        self._say = say
        self._give = give
        self._lock = threading.Lock()  # ``want`` comes from a reload, ``make_one`` from the speech worker
        self._pending: list[str] = []
        self._made: list[np.ndarray] = []
        self._rate = 0

    def want(self, questions: Sequence[str]) -> None:
        """The questions to say (a reload replaces them, and what was made of the old ones)."""
        with self._lock:
            self._pending, self._made = list(questions), []

    @property
    def pending(self) -> int:
        """Questions still to be said."""
        with self._lock:
            return len(self._pending)

    def make_one(self, interrupted: Callable[[], bool]) -> bool:
        """Say the next question; False when there is none. One ``interrupted`` is kept for later."""
        with self._lock:
            if not self._pending:
                return False
            text = self._pending[0]
        said = self._say(text, interrupted)
        if interrupted():
            return True
        with self._lock:
            if not self._pending or self._pending[0] != text:
                return True  # a reload came meanwhile
            self._pending.pop(0)
            if said is not None and len(said[0]):
                self._made.append(said[0])
                self._rate = said[1]
            finished = None if self._pending or not self._made else (tuple(self._made), self._rate)
        if finished is not None:
            log.info("warm-up speech ready: %d questions, %.1f s", len(finished[0]),
                     sum(len(a) for a in finished[0]) / finished[1], extra={"stage": "asr"})
            self._give(*finished)
        return True
