"""The answerer: the one home of the routing policy. A question → a ``Reply``: its route and its text,
fixed or streamed from the LLM, cut into clauses.

In order: an emergency (``safety``) is answered with its configured text, before anything else and
never by the LLM; then the venue knowledge decides (curated answer, facts for the LLM, honest "I don't
know", or small talk); a curated, ambiguous (two entries, briefly) or unknown answer is spoken as
written; a facts question that asks for a price or a person no fact gives (``asked_for``) is answered
"I don't know"; without an LLM a facts question gets its best fact as written (or "I don't know");
otherwise the LLM answers, and a failure or a timeout ends
the answer with the persona's apology. Every clause the LLM writes passes the grounding guard
(``guard``) first; at the first that fails, the LLM is stopped and the turn ends with the best matching
fact as written, or the persona's "I don't know" when no fact matched. The daemon and the benchmark
both answer through here.

The persona and the venue knowledge are one snapshot (``VenueSnapshot``), swapped as a whole on reload
so that a turn sees one consistent version.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .clauses import split_text, stream_clauses
from .conversation import Conversation, EndReason
from .guard import Block, GroundingGuard, says_yes_or_no, topics
from .knowledge.asked_for import Asked, asked_for, gives, lacks
from .safety import SafetyIntents
from ..messages import Route
from ..stages import Dialogue, Knowledge

log = logging.getLogger(__name__)

_FIXED_ROUTES = {Route.CURATED, Route.AMBIGUOUS, Route.UNKNOWN}


@dataclass(frozen=True)
class VenueSnapshot:
    """What a reload replaces, as one value: the persona's texts and the venue knowledge."""

    persona: object
    """``config.PersonaConfig``: name, unknown answer, apology, greeting."""
    venue: object
    """``config.VenueConfig``: what the LLM's fixed prompt is made from."""
    knowledge: Knowledge | None
    safety: SafetyIntents | None = None
    """The emergencies, matched before the venue knowledge; None for none."""
    guard: GroundingGuard | None = None
    """The checks on every LLM clause; None when ``guard.enabled`` is off."""

    @classmethod
    def of(cls, config, knowledge: Knowledge | None) -> VenueSnapshot:
        """The snapshot of a ``config.Config``: its persona, venue, safety intents and guard. The safety
        intents match by meaning too when the knowledge has a sentence embedder (``knowledge.semantic``),
        weighed against the venue's own texts."""
        guard = GroundingGuard.for_venue(config.guard, config.persona, config.venue, config.llm) if config.guard.enabled else None
        safety = SafetyIntents(config.safety, getattr(knowledge, "embedder", None), getattr(knowledge, "semantic_index", None))
        return cls(config.persona, config.venue, knowledge, safety, guard)


def fixed_answers(persona, venue, emergencies: tuple[str, ...], *, facts_as_written: bool) -> tuple[str, ...]:
    """Every text the answerer may speak word for word: the emergencies' answers, the curated answers,
    the persona's fixed texts, and the fact lines when there is no LLM to phrase them (the speech cache
    renders these ahead)."""
    entries, facts = (venue.entries, venue.facts) if venue is not None else ((), ())
    texts = list(emergencies) + [entry.answer for entry in entries]
    texts += [persona.unknown_answer, persona.apology, persona.greeting]
    if facts_as_written:
        texts += list(facts)
    return tuple(text for text in texts if text.strip())


@dataclass(frozen=True)
class Decision:
    """Where a question goes (``Answerer.decide``)."""

    route: Route
    text: str | None
    """The answer spoken as written (an emergency's, a curated, ambiguous or unknown answer, a fact
    without an LLM); None when the LLM answers."""
    facts: tuple[str, ...] = ()
    """For the LLM: the matched venue facts."""
    fallback: str = ""
    """For the LLM: what the turn ends with when the guard stops it (the best fact, else "I don't know")."""
    emergency: object | None = None
    """``safety.Emergency`` when the question is one."""


@dataclass(frozen=True)
class Reply:
    route: Route
    pieces: Iterator[str]
    streamed: bool
    """True for LLM text (cut into clauses as it arrives), False for a fixed text."""
    check: Callable[[Iterator[str]], Iterator[str]] | None = None
    """For LLM text: the grounding guard over its clauses."""
    opening: str = ""
    """Said first: the persona's greeting when this question opened a conversation."""

    def clauses(self) -> Iterator[str]:
        yield from split_text(self.opening) if self.opening else ()
        if not self.streamed:
            yield from split_text("".join(self.pieces))
            return
        clauses = stream_clauses(self.pieces)
        yield from self.check(clauses) if self.check is not None else clauses


def _about_the_question(facts: tuple[str, ...], question: str, venue, wanted: Asked) -> str | None:
    """The first of ``facts`` about something ``question`` is about (a content word in common, the
    words of the venue's name aside) that gives what it asks for; one that opens with a yes or a no only
    when it has every content word of the question: spoken as written, "Yes, our Riverside reader card
    is free. You get a stamp for every book …" would say yes to "Do you sell stamps for letters?". A
    question that asks for a price or a person (``asked_for``) is not answered by a fact without one
    (for a price: in a part of the fact about what was asked): "How much does the bus cost?" gets "I
    don't know", not where the buses stop, nor "How much is a coffee in the café?" the price of a
    membership that gives 10 % off in the café."""
    asked = topics(question) - (topics(venue.name) if venue is not None else frozenset())
    for fact in facts:
        about = topics(fact)
        if not about & asked or (wanted and lacks(wanted, gives(fact, asked))):
            continue
        if asked <= about or not says_yes_or_no(fact):
            return fact
    return None


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

    def fixed_clauses(self) -> tuple[str, ...]:
        """The clauses of every fixed answer, exactly as ``Reply.clauses`` cuts them when spoken."""
        snapshot = self.snapshot
        emergencies = snapshot.safety.answers() if snapshot.safety is not None else ()
        texts = fixed_answers(snapshot.persona, snapshot.venue, emergencies, facts_as_written=self._dialogue is None)
        return tuple(clause for text in texts for clause in split_text(text))

    def example_questions(self, limit: int) -> tuple[str, ...]:
        """What visitors ask here: the first question of each curated entry, at most ``limit``."""
        venue = self.snapshot.venue
        entries = venue.entries if venue is not None else ()
        return tuple(entry.questions[0] for entry in entries if entry.questions)[:limit]

    def decide(self, question: str) -> Decision:
        """The route ``question`` takes, and the words it is answered with when they are fixed. Pure:
        nothing is counted or remembered (the pipeline also asks it to compare two transcripts)."""
        snapshot = self.snapshot
        emergency = snapshot.safety.match(question) if snapshot.safety is not None else None
        if emergency is not None:
            return Decision(Route.EMERGENCY, emergency.answer, emergency=emergency)
        match = snapshot.knowledge.match(question) if snapshot.knowledge is not None else None
        route = Route(match.kind.value) if match is not None else Route.SMALLTALK
        if route in _FIXED_ROUTES:
            return Decision(route, match.answer)
        facts = match.facts if match is not None else ()
        # Without an LLM, and when the guard stops it: the best matching fact as written that is about
        # something the question is about (not only the venue's own name), else "I don't know".
        wanted = asked_for(question)
        about = _about_the_question(facts, question, snapshot.venue, wanted)
        if route is Route.FACTS and wanted and about is None:
            # A venue question, and no fact gives the price or the person asked for: the LLM could only
            # invent one (which the guard stops) or answer something else ("The director is the head of
            # the museum").
            return Decision(Route.UNKNOWN, snapshot.persona.unknown_answer)
        best_fact = about or snapshot.persona.unknown_answer
        if self._dialogue is None:
            return Decision(route, best_fact)
        return Decision(route, None, facts, best_fact)

    def reply(self, question: str, *, cancelled: Callable[[], bool] = lambda: False,
              on_token: Callable[[], None] = lambda: None, record: bool = True, turn_id: int | None = None,
              on_block: Callable[[Block], None] = lambda block: None, tentative: bool = False) -> Reply:
        """How to answer ``question``; ``turn_id`` goes into the safety and guard log lines, ``on_block``
        hears of every clause the guard stops. ``tentative``: a speculation, which may never be asked — the
        conversation is looked at, not counted (the pipeline counts the question if it is used)."""
        snapshot = self.snapshot
        decision = self.decide(question)
        emergency = decision.emergency
        if emergency is not None:
            log.info("emergency %r (by %s: %r, %.2f)", emergency.intent, emergency.by, emergency.example,
                     emergency.score, extra={"stage": "safety", "turn_id": turn_id})
            return Reply(Route.EMERGENCY, iter([emergency.answer]), streamed=False)
        opening = self._opening(snapshot.persona, tentative)
        if decision.text is not None:
            return Reply(decision.route, iter([decision.text]), streamed=False, opening=opening)
        pieces = self._llm(question, decision.facts, snapshot.persona, cancelled, on_token, record)
        check = None
        if snapshot.guard is not None:
            check = functools.partial(snapshot.guard.guarded, question=question, fallback=decision.fallback,
                                      turn_id=turn_id, on_block=on_block, about_venue=decision.route is Route.FACTS)
        return Reply(decision.route, pieces, streamed=True, check=check, opening=opening)

    def prepare_next(self) -> None:
        """Between questions (the brain's idle time): evaluate the history ahead of the next question."""
        prefill = getattr(self._dialogue, "prefill", None)  # a dialogue that cannot prefill has nothing to do
        if prefill is None:
            return
        try:
            prefill()
        except Exception:  # llama.cpp failures surface as several types; the next turn prepares itself
            log.exception("evaluating the history ahead failed", extra={"stage": "llm"})

    def _opening(self, persona, tentative: bool) -> str:
        """The greeting, when this question opens a new visitor's conversation and the config asks for it."""
        if self.conversation is None:
            return ""
        if not (self.conversation.would_open() if tentative else self.conversation.question()):
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
