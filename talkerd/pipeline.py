"""The conversation pipeline: threads, bounded queues and turns — the stages' policy lives in the stages.

listener: audio frames → Listener → Question                  (listen/listener.py)
          (at a pause: a held, speculative Question            (speculation.py))
brain:    Question → Answerer → Clauses, then EndOfTurn      (answer/answerer.py)
speech:   Clause → SpeechMaker → SpeechChunks                 (speech.py)
playout:  SpeechChunks → speaker; EndOfTurn finishes the turn (playout.py)

Every item carries its Turn; a cancelled turn's items are dropped at every boundary; a held (speculative)
turn's items wait at the brain and the speech stage until it is released or cancelled. The turn registry
owns which turn is being answered: a new one supersedes the one before (queued or speaking), a visitor
who speaks over the avatar (barge-in) cancels it, the playout finishes it.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from .answer.answerer import Answerer
from .answer.clauses import split_text
from .answer.conversation import EndReason
from .events import EventBus, EventKind
from .listen.listener import Heard, Listener, Paused, Resumed, SpeechStarted
from .listen.warm_up import WarmUpSpeech
from .messages import AnswerRecord, Clause, EndOfTurn, Mark, Question, Route, Turn, TurnSource
from .speak.playout import Playout
from .speak.speech_maker import SpeechMaker
from .speculation import Outcome, Speculation
from .stages import AudioSource, Liveness
from .stats import LatencyStats
from .turns import TurnRegistry

log = logging.getLogger(__name__)

ECHO_TAIL_S = 0.3
"""After an answer, the microphone is ignored this long more (the room's echo of it)."""
WORKER_POLL_S = 0.5

Health = Callable[[str, str, str], None]
"""(stage, state, detail): how the pipeline reports a stage that failed."""


class Heartbeats:
    """The last heartbeat of each stage, for a pipeline that no watchdog watches (the bench, tests)."""

    def __init__(self) -> None:
        self.beats: dict[str, float] = {}

    def heartbeat(self, stage: str, at: float | None = None) -> None:
        self.beats[stage] = time.monotonic() if at is None else at


class Pipeline:
    def __init__(self, *, source: AudioSource, listener: Listener | None, answerer: Answerer, speech: SpeechMaker,
                 playout: Playout, health: Health = lambda stage, state, detail: None, liveness: Liveness | None = None,
                 events: EventBus | None = None, speculate: bool = False, warm_up_questions: int = 0) -> None:
        """``speculate``: answer what the visitor has said so far at each short pause (``speculation.py``);
        ``warm_up_questions``: venue questions the voice says for the recogniser's warm-up (``warm_up.py``)."""
        self.source = source
        self.listener = listener
        self.answerer = answerer
        self.speech = speech
        self.playout = playout
        self._health = health
        self.questions: queue.Queue[Question] = queue.Queue(maxsize=8)
        self.clauses: queue.Queue[Clause | EndOfTurn] = queue.Queue(maxsize=32)
        self.events = events or EventBus()
        self.speculation = Speculation(speculate)
        self.turns = TurnRegistry(self._finished, lambda turn: self.events.publish(EventKind.CANCELLED, turn_id=turn.id))
        self.stats = LatencyStats()
        self.turns_done = 0
        self.last_turn: Turn | None = None
        self.liveness = liveness or Heartbeats()
        playout.liveness = self.liveness
        self.question_filter: Callable[[str], str] = lambda heard: heard
        """Maps the recognised text to the question asked; the benchmark substitutes its script."""
        self.on_turn_end: Callable[[Turn], None] = lambda turn: None
        """Called after the pipeline's own bookkeeping for every finished turn."""
        self._stop = threading.Event()
        self._muted = threading.Event()
        self._threads: list[threading.Thread] = []
        self._on_listener_event: dict[type, Callable] = {
            SpeechStarted: self._speech_started, Paused: self._paused, Heard: self._heard,
            Resumed: lambda resumed: self._drop_speculation(Outcome.RESUMED),
        }
        playout.on_turn_end = self.turns.finish
        self._warm_up_questions = warm_up_questions if listener is not None else 0
        self.warm_up = WarmUpSpeech(speech.said, listener.warm_up if listener is not None else lambda audio, rate: None)
        self._prepare_ahead()

    def _prepare_ahead(self) -> None:
        """What the speech worker makes in its idle time: the fixed answers, then the warm-up speech."""
        self.speech.prerender(self.answerer.fixed_clauses())
        self.warm_up.want(self.answerer.example_questions(self._warm_up_questions))

    def swap_venue(self, snapshot) -> None:
        """Reload: the next question sees the new persona and venue knowledge (``Answerer.swap``), and
        their fixed answers are rendered ahead anew."""
        self.answerer.swap(snapshot)
        self._prepare_ahead()

    # -- lifecycle --------------------------------------------------------------------------------
    def stages_to_start(self) -> tuple[str, ...]:
        """The workers ``start`` runs (no listener without audio)."""
        return tuple(self._workers())

    def start(self) -> None:
        workers = self._workers()
        for name, target in workers.items():
            thread = threading.Thread(target=self._guard(name, target), name=f"talkerd-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _workers(self) -> dict[str, Callable[[], None]]:
        workers: dict[str, Callable[[], None]] = {
            "listener": self._listen,
            "brain": lambda: self._serve("brain", self.questions, self._answer, self._answer_failed,
                                         idle=self._brain_idle),
            "speech": lambda: self._serve("speech", self.clauses, self._speak, self._clause_failed, idle=self._prerender),
            "playout": lambda: self.playout.run(self._stop),
        }
        if not self.source.has_audio:
            del workers["listener"]
        return workers

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every worker, waiting at most ``timeout`` in all (not per worker): a hung one is named and
        left behind (workers are daemon threads), so a stop never takes longer than this."""
        self._stop.set()
        self._drop_speculation(Outcome.LOST)
        self.turns.cancel_current()
        if self.listener is not None:
            self.listener.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        if stuck:
            log.warning("worker(s) did not stop within %.1f s: %s", timeout, ", ".join(stuck))

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception:
                # A dead worker stops the watchdog (its heartbeat goes stale) and systemd restarts us.
                log.exception("worker %s died", name, extra={"stage": name})
                self._health(name, "unavailable", "worker stopped after an internal error")
                raise

        return run

    def _serve(self, name: str, inbox: queue.Queue, handle: Callable, failed: Callable,
               idle: Callable[[], bool | None] = lambda: False) -> None:
        """The worker loop: take an item, drop it if its turn was cancelled, handle it; a failure ends
        the item (``failed``), never the worker. Whenever the inbox stayed empty, ``idle`` does a piece of
        background work (returning True when there is more: then it runs again at once)."""
        more = False
        while not self._stop.is_set():
            self.beat(name)
            try:
                item = inbox.get(timeout=0.0 if more else WORKER_POLL_S)
            except queue.Empty:
                more = bool(idle())
                continue
            if item.turn.is_cancelled:
                continue
            try:
                handle(item)
            except Exception as exc:
                log.exception("%s failed on turn %d", name, item.turn.id, extra={"turn_id": item.turn.id, "stage": name})
                failed(item, exc)

    def beat(self, stage: str) -> None:
        self.liveness.heartbeat(stage)

    # -- entry points -----------------------------------------------------------------------------
    def ask(self, text: str, source: TurnSource = TurnSource.TYPED) -> Turn:
        """Answer a typed question aloud (enters the pipeline at "final text")."""
        turn = Turn(source, question=text.strip())
        turn.mark(Mark.ASR_FINAL)
        self._visitor_active()
        self._begin(turn)
        self.questions.put(Question(turn, turn.question))
        return turn

    def say(self, text: str) -> Turn:
        """Speak the given text as is (enters the pipeline at the TTS)."""
        turn = Turn(TurnSource.SAY, question=text)
        turn.mark(Mark.FIRST_CLAUSE)
        self._begin(turn)
        self._emit(turn, Route.SAY, split_text(text))
        return turn

    def play(self, audio: np.ndarray, sample_rate: int, description: str) -> Turn:
        """Play recorded audio with lip sync from the face engine (no phoneme durations exist)."""
        turn = Turn(TurnSource.PLAY, question=description)
        turn.mark(Mark.FIRST_CLAUSE)
        self._begin(turn)
        turn.publish(AnswerRecord(Route.PLAY, ()))

        def feed() -> None:
            for chunk in self.speech.from_recording(turn, audio, sample_rate):
                if turn.is_cancelled:
                    return
                self.playout.queue.put(chunk)
            self.playout.queue.put(EndOfTurn(turn))

        threading.Thread(target=feed, name=f"talkerd-play-{turn.id}", daemon=True).start()
        return turn

    def _begin(self, turn: Turn) -> None:
        """A turn begun from outside the listener (typed, said, played) supersedes the one being answered,
        and any speculation (the brain and the speech stage would otherwise wait on it first)."""
        self._drop_speculation(Outcome.SUPERSEDED)
        self.turns.begin(turn)

    # -- listener ---------------------------------------------------------------------------------
    def set_muted(self, muted: bool) -> dict:
        """``talkerctl mute``/``unmute``: the microphone stays open (and its state reported), unheard."""
        if muted and not self._muted.is_set():
            self._muted.set()
            log.info("microphone muted", extra={"stage": "listener"})
        elif not muted and self._muted.is_set():
            self._muted.clear()
            log.info("microphone unmuted", extra={"stage": "listener"})
        return {"muted": self._muted.is_set()}

    def end_conversation(self) -> dict:
        """``talkerctl end-conversation``: forget the visitor's conversation now."""
        conversation = self.answerer.conversation
        return conversation.end(EndReason.REQUEST) if conversation is not None else {"ended": None}

    def _brain_idle(self) -> None:
        """No question waiting: end a conversation gone idle, then let the LLM get ahead."""
        if self.answerer.conversation is not None:
            self.answerer.conversation.end_if_idle()
        self.answerer.prepare_next()

    def _visitor_active(self) -> None:
        if self.answerer.conversation is not None:
            self.answerer.conversation.activity()

    def cancel(self) -> dict:
        """``talkerctl cancel``: stop the answer being spoken; None when nothing was being answered."""
        turn = self.turns.current
        cancelled = turn is not None and not turn.done.is_set()
        if cancelled:
            self.turns.cancel(turn)
        return {"cancelled": turn.id if cancelled else None}

    def _listen(self) -> None:
        for frame in self.source.frames(self._stop):
            self.beat("listener")
            if self.listener is None:
                continue  # no recogniser loaded: the microphone is still kept open and its state reported
            if self._muted.is_set() or frame is None:  # muted, or the microphone is gone
                self.listener.lost()  # what was half heard is dropped
                self._drop_speculation(Outcome.LOST)
                continue
            partial = self.listener.partial_text
            event = self.listener.feed(frame, avatar_speaking=self._avatar_heard())
            if self.listener.partial_text != partial and self.listener.partial_text:
                self.events.publish(EventKind.PARTIAL, text=self.listener.partial_text)
            if event is not None:
                self._on_listener_event[type(event)](event)

    def _speech_started(self, started: SpeechStarted) -> None:
        self._visitor_active()
        if self.listener.barge_in:
            self.turns.cancel_current()

    def _paused(self, paused: Paused) -> None:
        """Answer what was said so far, held until the turn ends (not while another turn is answered)."""
        self._drop_speculation(Outcome.SUPERSEDED)
        if not self.speculation.enabled or not paused.text.strip() or self.turns.busy:
            return
        turn = Turn(TurnSource.VOICE, question=self.question_filter(paused.text))
        turn.mark(Mark.PAUSE)
        self.speculation.begin(turn, self.answerer.decide(turn.question).text)
        self.events.publish(EventKind.SPECULATION, turn_id=turn.id, outcome=Outcome.HELD.value, text=turn.question)
        self.questions.put(Question(turn, turn.question))

    def _drop_speculation(self, outcome: Outcome) -> None:
        turn = self.speculation.drop()
        if turn is not None:
            log.info("speculation dropped (%s)", outcome.value, extra={"turn_id": turn.id, "stage": "speculation"})
            self.events.publish(EventKind.SPECULATION, turn_id=turn.id, outcome=outcome.value)

    def _heard(self, heard: Heard) -> None:
        log.info("heard %r", heard.text, extra={"stage": "asr"})
        question = self.question_filter(heard.text)
        held = self.speculation.claim(question, lambda: self.answerer.decide(question).text)
        if held is None:
            self._drop_speculation(Outcome.DIFFERS)
        else:
            held.question = question  # the final's words (the same, or answered by the same text)
        turn = held or Turn(TurnSource.VOICE, question=question)
        turn.mark(Mark.SPEECH_END, heard.speech_end)
        turn.mark(Mark.END_OF_TURN, heard.declared_at)
        turn.mark(Mark.ASR_FINAL, heard.final_at)
        if not turn.question:
            return
        self._visitor_active()
        self.turns.begin(turn)
        self.events.publish(EventKind.HEARD, turn_id=turn.id, text=turn.question)
        if held is None:
            self.questions.put(Question(turn, turn.question))
            return
        if self.answerer.conversation is not None:
            self.answerer.conversation.question()  # counted now that it is asked (the held reply only looked)
        held.release()
        log.info("speculation used", extra={"turn_id": held.id, "stage": "speculation"})
        self.events.publish(EventKind.SPECULATION, turn_id=held.id, outcome=Outcome.USED.value)

    def _avatar_speaking(self) -> bool:
        """True while a turn is being answered, and for a moment after its last sample left the speaker."""
        turn = self.turns.current
        if turn is None:
            return False
        if not turn.done.is_set():
            return True
        end = turn.marks.get(Mark.TURN_END)
        return end is not None and time.monotonic() < end + ECHO_TAIL_S

    def _avatar_heard(self) -> bool:
        """The avatar is speaking into a speaker the microphone can hear (the echo the listener ignores).

        A speaker lost mid-answer plays to nothing: the face goes on, but a visitor who asks meanwhile
        must be heard, or the kiosk ignores them until an answer nobody hears has run its course.
        """
        return self._avatar_speaking() and self.playout.audible

    @property
    def partial_text(self) -> str:
        return self.listener.partial_text if self.listener is not None else ""

    # -- brain ------------------------------------------------------------------------------------
    def _answer(self, question: Question) -> None:
        turn = question.turn

        def token() -> None:
            turn.mark(Mark.FIRST_TOKEN)
            self.beat("brain")

        def blocked(block) -> None:
            self.events.publish(EventKind.GUARD, turn_id=turn.id, reason=block.reason.value, detail=block.detail,
                                clause=block.clause)

        reply = self.answerer.reply(question.text, cancelled=lambda: turn.is_cancelled or self._stop.is_set(), on_token=token,
                                    turn_id=turn.id, on_block=blocked, tentative=turn.held)
        turn.mark(Mark.KNOWLEDGE)
        log.info("question %r → %s", question.text, reply.route.value, extra={"turn_id": turn.id, "stage": "knowledge"})
        self.events.publish(EventKind.ROUTE, turn_id=turn.id, route=reply.route.value)
        self._emit(turn, reply.route, reply.clauses())

    def _emit(self, turn: Turn, route: Route, clauses) -> None:
        """Queue the clauses for speech as they come, publish the answer, then the end of the turn."""
        spoken: list[str] = []
        clauses = iter(clauses)
        try:
            for index, text in enumerate(clauses):
                if turn.is_cancelled:
                    return
                turn.mark(Mark.FIRST_CLAUSE)
                spoken.append(text)
                self.clauses.put(Clause(turn, text, index))
                if not turn.wait_released(self._stop, lambda: self.beat("brain")):
                    return  # a speculation that was not used: its LLM answer stops here
        finally:
            getattr(clauses, "close", lambda: None)()  # the LLM lets go of its context now, not when collected
        answer = AnswerRecord(route, tuple(spoken))
        log.info("answer %r", answer.text, extra={"turn_id": turn.id, "stage": "brain"})
        turn.publish(answer)
        self.events.publish(EventKind.ANSWER, turn_id=turn.id, route=route.value, text=answer.text)
        self.clauses.put(EndOfTurn(turn))

    def _answer_failed(self, question: Question, exc: Exception) -> None:
        """One bad question must not stop the brain: end this turn (with no answer) and take the next."""
        self.events.publish(EventKind.ERROR, stage="brain", turn_id=question.turn.id, message=str(exc))
        self.clauses.put(EndOfTurn(question.turn))

    # -- speech -----------------------------------------------------------------------------------
    def _prerender(self) -> bool:
        """While no visitor is being answered, render one fixed clause ahead, else say one warm-up
        question (either stops the moment a visitor is answered)."""
        if self._answering() or not self.clauses.empty():
            return False
        def interrupted() -> bool:
            return self._answering() or self._stop.is_set()

        return self.speech.prerender_one(interrupted=interrupted) or self.warm_up.make_one(interrupted)

    def _answering(self) -> bool:
        return self.turns.busy or self.speculation.active

    def _speak(self, item: Clause | EndOfTurn) -> None:
        if isinstance(item, EndOfTurn):
            self.playout.queue.put(item)
            return
        for chunk in self.speech.from_clause(item):
            self.beat("speech")
            if not item.turn.wait_released(self._stop, lambda: self.beat("speech")):
                return  # a speculation that was not used: not a sample of it is played
            self.playout.queue.put(chunk)

    def _clause_failed(self, clause: Clause | EndOfTurn, exc: Exception) -> None:
        """Skip the clause, keep the turn and the worker going; status shows the failure."""
        self._health("tts", "degraded", f"failed on a clause: {exc}")
        self.events.publish(EventKind.ERROR, stage="tts", turn_id=clause.turn.id, message=str(exc))

    # -- turns ------------------------------------------------------------------------------------
    def _finished(self, turn: Turn) -> None:
        self._visitor_active()  # the idle time counts from the end of the answer
        self.turns_done += 1
        self.last_turn = turn
        self.stats.add(turn)
        self.events.publish(EventKind.TURN_END, turn_id=turn.id, latency_ms=turn.latencies_ms())
        log.info(
            "turn %d done: %s", turn.id, turn.latencies_ms(),
            extra={"turn_id": turn.id, "stage": "turn", "latency_ms": turn.latencies_ms().get(Mark.AUDIO_OUT.value)},
        )
        self.on_turn_end(turn)

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> dict:
        last = self.last_turn
        return {
            "input": getattr(self.source, "description", "none"),
            "output": getattr(self.playout, "description", ""),
            "partial_transcript": self.partial_text,
            "turns": self.turns_done,
            "speaking": self._avatar_speaking(),
            "muted": self._muted.is_set(),
            "conversation": self.answerer.conversation.status() if self.answerer.conversation is not None else None,
            "last_turn": None if last is None else turn_record(last),
            "latency_ms": self.stats.summary(),
            "prerendered": self.speech.cache.status() if self.speech.cache is not None else None,
            "warm_up_pending": self.warm_up.pending,
        }


def turn_record(turn: Turn) -> dict:
    """A turn as status and the control replies show it."""
    answer = turn.answer_record
    return {
        "id": turn.id,
        "source": turn.source.value,
        "question": turn.question,
        "route": answer.route.value if answer is not None else None,
        "answer": answer.text if answer is not None else "",
        "clauses": list(answer.clauses) if answer is not None else [],
        "latency_ms": turn.latencies_ms(),
    }
