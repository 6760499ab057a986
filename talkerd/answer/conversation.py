"""One conversation per visitor: the LLM's history belongs to the person in front of the kiosk.

A conversation opens with a visitor's first question and ends ``[conversation] idle_end_s`` seconds
after the last sign of them (speech, a typed question, the end of the avatar's answer to them), on
request (``talkerctl end-conversation``) or on reload. Its end forgets the history, so nothing one
visitor said reaches the next. An expired conversation is also ended the moment the next question
arrives, before it is answered, so a late timer can never carry one visitor's words to the next.
"""
from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..events import EventBus, EventKind

log = logging.getLogger(__name__)


class EndReason(str, enum.Enum):
    IDLE = "idle"
    REQUEST = "request"
    RELOAD = "reload"


@dataclass
class _Open:
    """The conversation going on (mutable; only ``Conversation`` touches it, under its lock)."""

    id: int
    started: float
    last_activity: float
    questions: int = 0


class Conversation:
    def __init__(self, config, events: EventBus, *, forget: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``config``: ``config.ConversationConfig``; ``forget`` drops the history (the dialogue's reset)."""
        self._config = config
        self._events = events
        self._forget = forget
        self._clock = clock
        self._lock = threading.Lock()
        self._open: _Open | None = None
        self._ids = itertools.count(1)

    @property
    def greets(self) -> bool:
        return self._config.greet

    def question(self) -> bool:
        """A visitor asks (spoken or typed): True when this opens a new conversation."""
        self.end_if_idle()
        now = self._clock()
        with self._lock:
            opened = self._open is None
            if opened:
                self._open = _Open(next(self._ids), now, now)
            self._open.questions += 1
            self._open.last_activity = now
            conversation_id = self._open.id
        if opened:
            log.info("conversation %d started", conversation_id, extra={"stage": "conversation"})
            self._events.publish(EventKind.CONVERSATION_START, conversation_id=conversation_id)
        return opened

    def would_open(self) -> bool:
        """Whether a question now would open a new conversation (nothing is counted)."""
        self.end_if_idle()
        with self._lock:
            return self._open is None

    def activity(self) -> None:
        """A sign of the visitor (speech began, an answer to them ended): keeps an open conversation."""
        self.end_if_idle()
        with self._lock:
            if self._open is not None:
                self._open.last_activity = self._clock()

    def end_if_idle(self) -> bool:
        with self._lock:
            idle = self._open is not None and self._clock() - self._open.last_activity >= self._config.idle_end_s
        return idle and self.end(EndReason.IDLE)["ended"] is not None

    def end(self, reason: EndReason) -> dict:
        """End the conversation now (nothing happens when none is open); its history is forgotten."""
        with self._lock:
            ended, self._open = self._open, None
            self._forget()  # under the lock: a question arriving now opens on an empty history
        if ended is None:
            return {"ended": None}
        duration = self._clock() - ended.started
        log.info("conversation %d ended (%s) after %d question(s), %.0f s", ended.id, reason.value, ended.questions,
                 duration, extra={"stage": "conversation"})
        self._events.publish(EventKind.CONVERSATION_END, conversation_id=ended.id, reason=reason.value,
                             questions=ended.questions, duration_s=round(duration, 1))
        return {"ended": ended.id, "reason": reason.value, "questions": ended.questions}

    def status(self) -> dict:
        with self._lock:
            current = self._open
            if current is None:
                return {"open": None}
            return {"open": current.id, "questions": current.questions,
                    "idle_s": round(self._clock() - current.last_activity, 1), "idle_end_s": self._config.idle_end_s}
