"""What happens in the daemon, as a stream anyone may watch (``talkerctl watch``).

The pipeline and the health board publish; each watcher has a bounded queue of its own, and a watcher
that does not keep up loses its oldest events (counted), never slows the pipeline down.
"""
from __future__ import annotations

import enum
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any


class EventKind(str, enum.Enum):
    PARTIAL = "partial"
    """The recogniser's partial transcript changed: ``text``."""
    HEARD = "heard"
    """A spoken question was recognised: ``turn_id``, ``text``."""
    ROUTE = "route"
    """How a question is being answered: ``turn_id``, ``route``."""
    ANSWER = "answer"
    """The whole answer, once decided: ``turn_id``, ``route``, ``text``."""
    GUARD = "guard"
    """A clause the LLM wrote was not spoken: ``turn_id``, ``reason``, ``detail``, ``clause``."""
    TURN_END = "turn_end"
    """The answer's last sample left the speaker: ``turn_id``, ``latency_ms``."""
    SPECULATION = "speculation"
    """An answer prepared during a pause (``speculation.py``): ``turn_id``, ``outcome`` (held, used,
    resumed, differs, superseded, lost) and, when held, ``text``."""
    CANCELLED = "cancelled"
    """A turn stopped before its end (superseded, barge-in, ``cancel``): ``turn_id``."""
    CONVERSATION_START = "conversation_start"
    """A visitor's conversation began (their first question): ``conversation_id``."""
    CONVERSATION_END = "conversation_end"
    """It ended and its history was forgotten: ``conversation_id``, ``reason`` (idle, request, reload),
    ``questions``, ``duration_s``."""
    STATE = "state"
    """A component, device or stage changed state: ``name``, ``state``, ``detail``."""
    ERROR = "error"
    """Something failed and was handled: ``stage``, ``message`` (and ``turn_id`` when a turn's)."""


@dataclass(frozen=True)
class Event:
    kind: EventKind
    fields: dict[str, Any]
    at: float = field(default_factory=time.time)
    """Wall-clock seconds (what a fleet's logs line up on)."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "at": round(self.at, 3), **self.fields}


class Subscription:
    """One watcher's queue of events."""

    def __init__(self, bus: EventBus, size: int) -> None:
        self._bus = bus
        self._queue: queue.Queue[Event] = queue.Queue(maxsize=size)
        self.dropped = 0

    def put(self, event: Event) -> None:
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:  # a slow watcher: make room by forgetting its oldest event
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def next(self, timeout: float) -> Event | None:
        """The next event, or None when none came within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []

    def subscribe(self, size: int = 256) -> Subscription:
        subscription = Subscription(self, size)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    @property
    def watchers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def publish(self, kind: EventKind, **fields: Any) -> None:
        event = Event(kind, fields)
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.put(event)
