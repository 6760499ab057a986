"""The answerer: the one home of the routing policy. A question → a ``Reply``: its route and its text,
fixed or streamed from the LLM, cut into clauses.

In order: the venue knowledge decides (curated answer, facts for the LLM, honest "I don't know", or
small talk); a curated or unknown answer is spoken as written; without an LLM a facts question gets its
best fact as written (or "I don't know"); otherwise the LLM answers, and a failure or a timeout ends
the answer with the persona's apology. The daemon and the benchmark both answer through here.

The persona and the venue knowledge are one snapshot (``VenueSnapshot``), swapped as a whole on reload
so that a turn sees one consistent version.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .clauses import split_text, stream_clauses
from .conversation import Conversation, EndReason
from ..messages import Route
from ..stages import Dialogue, Knowledge

log = logging.getLogger(__name__)

_FIXED_ROUTES = {Route.CURATED, Route.UNKNOWN}


@dataclass(frozen=True)
class VenueSnapshot:
    """What a reload replaces, as one value: the persona's texts and the venue knowledge."""

    persona: object
    """``config.PersonaConfig``: name, unknown answer, apology, greeting."""
    venue: object
    """``config.VenueConfig``: what the LLM's fixed prompt is made from."""
    knowledge: Knowledge | None


@dataclass(frozen=True)
class Reply:
    route: Route
    pieces: Iterator[str]
    streamed: bool
    """True for LLM text (cut into clauses as it arrives), False for a fixed text."""
    opening: str = ""
    """Said first: the persona's greeting when this question opened a conversation."""

    def clauses(self) -> Iterator[str]:
        yield from split_text(self.opening) if self.opening else ()
        yield from stream_clauses(self.pieces) if self.streamed else split_text("".join(self.pieces))


class Answerer:
    def __init__(self, snapshot: VenueSnapshot, dialogue: Dialogue | None, conversation: Conversation | None = None) -> None:
        self._snapshot = snapshot
        self._dialogue = dialogue
        self.conversation = conversation
        """The visitor's conversation (its end forgets the dialogue's history); none: one endless one."""
        self._lock = threading.Lock()

    @property
    def snapshot(self) -> VenueSnapshot:
        with self._lock:
            return self._snapshot

    def swap(self, snapshot: VenueSnapshot) -> None:
        """Reload: the next question sees the new persona and knowledge; one being answered keeps its own."""
        with self._lock:
            self._snapshot = snapshot
            if self._dialogue is not None:
                self._dialogue.set_persona(snapshot.persona, snapshot.venue)
        if self.conversation is not None:
            self.conversation.end(EndReason.RELOAD)

    def reply(self, question: str, *, cancelled: Callable[[], bool] = lambda: False,
              on_token: Callable[[], None] = lambda: None, record: bool = True) -> Reply:
        snapshot = self.snapshot
        opening = self._opening(snapshot.persona)
        match = snapshot.knowledge.match(question) if snapshot.knowledge is not None else None
        route = Route(match.kind.value) if match is not None else Route.SMALLTALK
        if route in _FIXED_ROUTES:
            return Reply(route, iter([match.answer]), streamed=False, opening=opening)
        facts = match.facts if match is not None else ()
        if self._dialogue is None:
            return Reply(route, iter([facts[0] if facts else snapshot.persona.unknown_answer]), streamed=False, opening=opening)
        return Reply(route, self._llm(question, facts, snapshot.persona, cancelled, on_token, record), streamed=True,
                     opening=opening)

    def prepare_next(self) -> None:
        """Between questions (the brain's idle time): evaluate the history ahead of the next question."""
        prefill = getattr(self._dialogue, "prefill", None)  # a dialogue that cannot prefill has nothing to do
        if prefill is None:
            return
        try:
            prefill()
        except Exception:  # llama.cpp failures surface as several types; the next turn prepares itself
            log.exception("evaluating the history ahead failed", extra={"stage": "llm"})

    def _opening(self, persona) -> str:
        """The greeting, when this question opens a new visitor's conversation and the config asks for it."""
        if self.conversation is None or not self.conversation.question():
            return ""
        return persona.greeting if self.conversation.greets else ""

    def _llm(self, question, facts, persona, cancelled, on_token, record) -> Iterator[str]:
        try:
            for piece in self._dialogue.answer(question, facts, cancelled=cancelled, record=record):
                on_token()
                yield piece
        except Exception:  # llama.cpp failures surface as several types; the visitor hears an apology
            log.exception("the LLM failed on %r", question, extra={"stage": "llm"})
            yield " " + persona.apology
            return
        stats = self._dialogue.last_stats
        if stats is not None and getattr(stats, "timed_out", False):
            yield ". " + persona.apology
