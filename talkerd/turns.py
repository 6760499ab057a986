"""The one owner of which turn is being answered (the pipeline's registry of turns)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .messages import Mark, Turn

log = logging.getLogger(__name__)


class TurnRegistry:
    """Which turn is being answered: ``begin`` supersedes the one before, ``cancel`` and ``finish`` end a
    turn exactly once, and ``on_end`` hears of every turn that finished (not of cancelled ones)."""

    def __init__(self, on_end: Callable[[Turn], None], on_cancel: Callable[[Turn], None] = lambda turn: None) -> None:
        self._on_end = on_end
        self._on_cancel = on_cancel
        self._lock = threading.Lock()
        self._current: Turn | None = None

    @property
    def current(self) -> Turn | None:
        with self._lock:
            return self._current

    @property
    def busy(self) -> bool:
        """A turn is being answered (begun, neither finished nor cancelled)."""
        turn = self.current
        return turn is not None and not turn.done.is_set()

    def begin(self, turn: Turn) -> None:
        with self._lock:
            previous, self._current = self._current, turn
        if previous is not None:
            self.cancel(previous)

    def cancel(self, turn: Turn) -> None:
        with self._lock:
            if turn.done.is_set():
                return
            turn.cancel()
            turn.done.set()
        log.info("turn %d cancelled", turn.id, extra={"turn_id": turn.id})
        self._on_cancel(turn)

    def cancel_current(self) -> None:
        turn = self.current
        if turn is not None:
            self.cancel(turn)

    def finish(self, turn: Turn, at: float) -> None:
        """The playout played the turn's last sample (``at``: when it leaves the speaker)."""
        with self._lock:
            if turn.done.is_set():
                return
            turn.mark(Mark.TURN_END, at)
            turn.done.set()
        self._on_end(turn)
