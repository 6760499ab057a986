"""The conversation pipeline: worker threads joined by bounded queues.

listener: audio frames → endpointer → vosk → Question
brain:    Question → venue knowledge → curated text or streamed LLM text → Clauses
speech:   Clause → TTS chunks → mouth track (TTS durations or face engine) → SpeechChunks
playout:  SpeechChunks → speaker, and the audio clock the renderer follows

Each item carries its Turn; a cancelled turn's items are dropped at every boundary.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from .clauses import split_text, stream_clauses
from .components import Components
from .messages import Clause, Mark, Question, Turn, TurnSource
from .playout import Playout
from .stats import LatencyStats
from .speech import SpeechMaker

log = logging.getLogger(__name__)

PREROLL_S = 0.4
ECHO_TAIL_S = 0.3  # audio kept from before the endpointer's decision, so the first word is not clipped


class Pipeline:
    def __init__(self, parts: Components, source, playout: Playout) -> None:
        self.parts = parts
        self.source = source
        self.playout = playout
        self.speech = SpeechMaker(parts, playout.clock.sample_rate, self.config.render.fps)
        self.questions: queue.Queue[Question] = queue.Queue(maxsize=8)
        self.clauses: queue.Queue[Clause] = queue.Queue(maxsize=32)
        self.stats = LatencyStats()
        self.partial_text = ""
        self.turns_done = 0
        self.last_turn: Turn | None = None
        self.current_turn: Turn | None = None
        self.heartbeats: dict[str, float] = {}
        self.question_filter: Callable[[str], str] = lambda heard: heard
        """Maps the recognised text to the question asked; the benchmark substitutes its script."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._turn_lock = threading.Lock()
        self.stages: tuple[str, ...] = ()

    @property
    def config(self):
        """The current config (a reload may replace it between turns)."""
        return self.parts.config

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        workers: dict[str, Callable[[], None]] = {
            "listener": self._listen,
            "brain": self._think,
            "speech": self._speak,
            "playout": lambda: self.playout.run(self._stop),
        }
        if not self.source.has_audio:
            del workers["listener"]
        self.stages = tuple(workers)
        for name, target in workers.items():
            thread = threading.Thread(target=self._guard(name, target), name=f"talkerd-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self.current_turn is not None:
            self.current_turn.cancel()
        for thread in self._threads:
            thread.join(timeout)

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception:
                # A dead worker stops the watchdog (its heartbeat goes stale) and systemd restarts us.
                log.exception("worker %s died", name, extra={"STAGE": name})
                self.parts.set_state(name, "unavailable", "worker stopped after an internal error")
                raise

        return run

    def beat(self, stage: str) -> None:
        self.heartbeats[stage] = time.monotonic()

    def stage_heartbeats(self) -> dict[str, float]:
        beats = dict(self.heartbeats)
        beats["playout"] = self.playout.heartbeat
        return beats

    # -- entry points -----------------------------------------------------------------------------
    def ask(self, text: str, source: TurnSource = TurnSource.TYPED) -> Turn:
        """Answer a typed question aloud (enters the pipeline at "final text")."""
        turn = Turn(source, question=text.strip())
        turn.mark(Mark.ASR_FINAL)
        self._begin(turn)
        self.questions.put(Question(turn, turn.question))
        return turn

    def say(self, text: str) -> Turn:
        """Speak the given text as is (enters the pipeline at the TTS)."""
        turn = Turn(TurnSource.SAY, route="say")
        turn.mark(Mark.FIRST_CLAUSE)
        self._begin(turn)
        self._emit_text(turn, text)
        return turn

    def play(self, audio: np.ndarray, sample_rate: int, description: str) -> Turn:
        """Play recorded audio with lip sync from the face engine (no phoneme durations exist)."""
        turn = Turn(TurnSource.PLAY, question=description, route="play")
        turn.mark(Mark.FIRST_CLAUSE)
        self._begin(turn)

        def feed() -> None:
            for chunk in self.speech.from_recording(turn, audio, sample_rate):
                if turn.is_cancelled:
                    return
                self.playout.queue.put(chunk)

        threading.Thread(target=feed, name=f"talkerd-play-{turn.id}", daemon=True).start()
        return turn

    def _begin(self, turn: Turn) -> None:
        """Make ``turn`` the one being answered; the one before it, queued or speaking, is cancelled."""
        with self._turn_lock:
            previous, self.current_turn = self.current_turn, turn
        if previous is not None and not previous.done.is_set():
            self.cancel(previous)

    def _interrupt(self) -> None:
        """Barge-in: the visitor speaks over the avatar."""
        turn = self.current_turn
        if turn is not None and not turn.done.is_set():
            self.cancel(turn)

    def cancel(self, turn: Turn) -> None:
        turn.cancel()
        self.playout.flush(turn)
        turn.done.set()
        log.info("turn %d cancelled", turn.id, extra={"TURN_ID": turn.id})

    # -- listener ---------------------------------------------------------------------------------
    def _listen(self) -> None:
        endpointer, asr = self.parts.endpointer, self.parts.asr
        preroll: list[bytes] = []
        preroll_frames = None
        for frame in self.source.frames(self._stop):
            self.beat("listener")
            if frame is None:  # the microphone is gone: drop any half utterance
                if endpointer is not None and endpointer.in_speech:
                    endpointer.reset()
                preroll, self.partial_text = [], ""
                continue
            if endpointer is None or asr is None:
                continue
            if preroll_frames is None:
                preroll_frames = max(1, int(PREROLL_S / frame.duration_s))
            if not self.config.audio.barge_in and self._avatar_speaking():
                # Without echo cancellation the microphone would hear the avatar: ignore it meanwhile.
                if endpointer.in_speech:
                    endpointer.reset()
                continue
            was_speaking = endpointer.in_speech
            event = endpointer.feed(frame)
            if not was_speaking:
                preroll = (preroll + [frame.pcm])[-preroll_frames:]
            if event is None:
                if endpointer.in_speech:
                    self._partial(asr.accept(frame.pcm))
                continue
            if endpointer.in_speech:  # speech started
                if self.config.audio.barge_in:
                    self._interrupt()
                asr.start()
                for pcm in preroll:
                    asr.accept(pcm)
                preroll = []
            else:
                self._finish_utterance(event.utterance, asr)

    def _partial(self, text: str | None) -> None:
        if text is not None:
            self.partial_text = text

    def _finish_utterance(self, utterance, asr) -> None:
        turn = Turn(TurnSource.VOICE)
        turn.mark(Mark.SPEECH_END, utterance.speech_end)
        recognition = asr.finish()
        turn.mark(Mark.ASR_FINAL)
        self.partial_text = ""
        log.info("heard %r", recognition.text, extra={"TURN_ID": turn.id, "STAGE": "asr"})
        turn.question = self.question_filter(recognition.text)
        if turn.question:
            self._begin(turn)
            self.questions.put(Question(turn, turn.question))

    def _avatar_speaking(self) -> bool:
        """True while a turn is being answered, and for a moment after its last sample left the speaker
        (the room's echo of it must not count as a visitor speaking)."""
        turn = self.current_turn
        if turn is None:
            return False
        if not turn.done.is_set():
            return True
        end = turn.marks.get(Mark.TURN_END)
        return end is not None and time.monotonic() < end + ECHO_TAIL_S

    # -- brain ------------------------------------------------------------------------------------
    def _think(self) -> None:
        while not self._stop.is_set():
            self.beat("brain")
            try:
                question = self.questions.get(timeout=0.5)
            except queue.Empty:
                continue
            turn = question.turn
            if turn.is_cancelled:
                continue
            try:
                self._answer(turn, question.text)
            except Exception:
                # One bad question must not stop the brain: end this turn and take the next.
                log.exception("could not answer %r", question.text, extra={"TURN_ID": turn.id, "STAGE": "brain"})
                turn.decided.set()
                self.clauses.put(Clause(turn, "", -1, last=True))

    def _answer(self, turn: Turn, text: str) -> None:
        from .knowledge import MatchKind

        persona = self.config.persona
        knowledge = self.parts.knowledge
        match = knowledge.match(text) if knowledge is not None else None
        turn.mark(Mark.KNOWLEDGE)
        turn.route = match.kind.value if match is not None else "smalltalk"
        log.info("question %r → %s", text, turn.route, extra={"TURN_ID": turn.id, "STAGE": "knowledge"})
        if match is not None and match.kind in (MatchKind.CURATED, MatchKind.UNKNOWN):
            self._emit_text(turn, match.answer)
            return
        facts = match.facts if match is not None else ()
        if self.parts.dialogue is None:
            fallback = facts[0] if facts else persona.unknown_answer
            self._emit_text(turn, fallback)
            return
        self._emit_stream(turn, self._llm_pieces(turn, text, facts))

    def _llm_pieces(self, turn: Turn, text: str, facts: tuple[str, ...]) -> Iterator[str]:
        dialogue = self.parts.dialogue
        try:
            for piece in dialogue.answer(text, facts, cancelled=lambda: turn.is_cancelled or self._stop.is_set()):
                turn.mark(Mark.FIRST_TOKEN)
                self.beat("brain")
                yield piece
        except Exception:  # llama.cpp failures surface as several types; the visitor hears an apology
            log.exception("the LLM failed", extra={"TURN_ID": turn.id, "STAGE": "llm"})
            yield " " + self.config.persona.apology
            return
        stats = dialogue.last_stats
        if stats is not None and stats.timed_out:
            yield ". " + self.config.persona.apology

    def _emit_text(self, turn: Turn, text: str) -> None:
        self._emit_stream(turn, iter([text]), split=True)

    def _emit_stream(self, turn: Turn, pieces: Iterator[str], split: bool = False) -> None:
        clauses = split_text(next(pieces, "")) if split else stream_clauses(pieces)
        index = 0
        for index, text in enumerate(clauses):
            if turn.is_cancelled:
                return
            turn.mark(Mark.FIRST_CLAUSE)
            turn.answer_clauses.append(text)
            self.clauses.put(Clause(turn, text, index, last=False))
        log.info("answer %r", turn.answer, extra={"TURN_ID": turn.id, "STAGE": "brain"})
        turn.decided.set()
        self.clauses.put(Clause(turn, "", index + 1, last=True))

    # -- speech -----------------------------------------------------------------------------------
    def _speak(self) -> None:
        while not self._stop.is_set():
            self.beat("speech")
            try:
                clause = self.clauses.get(timeout=0.5)
            except queue.Empty:
                continue
            if clause.turn.is_cancelled:
                continue
            try:
                for chunk in self.speech.from_clause(clause):
                    self.beat("speech")
                    self.playout.queue.put(chunk)
            except Exception as exc:
                # Skip the clause, keep the turn and the worker going; status shows the failure.
                log.exception("could not speak %r", clause.text, extra={"TURN_ID": clause.turn.id, "STAGE": "tts"})
                self.parts.set_state("tts", "degraded", f"failed on a clause: {exc}")

    def finish_turn(self, turn: Turn) -> None:
        """Called by the playout when a turn's last chunk has been played."""
        self.turns_done += 1
        self.last_turn = turn
        self.stats.add(turn)
        log.info(
            "turn %d done: %s",
            turn.id,
            turn.latencies_ms(),
            extra={"TURN_ID": turn.id, "STAGE": "turn", "LATENCY_MS": turn.latencies_ms().get(Mark.AUDIO_OUT.value)},
        )

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> dict:
        last = self.last_turn
        return {
            "components": self.parts.snapshot(),
            "input": getattr(self.source, "description", "none"),
            "output": getattr(self.playout, "description", ""),
            "partial_transcript": self.partial_text,
            "turns": self.turns_done,
            "speaking": self._avatar_speaking(),
            "last_turn": None
            if last is None
            else {
                "id": last.id,
                "source": last.source.value,
                "question": last.question,
                "route": last.route,
                "answer": last.answer,
                "clauses": list(last.answer_clauses),
                "latency_ms": last.latencies_ms(),
            },
            "latency_ms": self.stats.summary(),
        }
