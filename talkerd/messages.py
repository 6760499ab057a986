"""Typed, immutable messages that pass between pipeline stages, and the turn they belong to.

Every message carries its ``Turn``; a stage drops any message whose turn has been cancelled, so a
barge-in or a shutdown stops a turn at every stage boundary.
"""
from __future__ import annotations

import enum
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np



class Mark(str, enum.Enum):
    """The points of a turn's latency trace, in pipeline order."""

    PAUSE = "pause"
    """A speculative turn only: the visitor paused and the answer to what they had said so far was
    begun and held (before ``speech_end``, so its latency is negative)."""
    SPEECH_END = "speech_end"
    """The last voiced frame of the question (its capture time)."""
    END_OF_TURN = "end_of_turn"
    """The endpointer declared the turn over; from here to ``asr_final`` is vosk's finalisation."""
    ASR_FINAL = "asr_final"
    KNOWLEDGE = "knowledge"
    FIRST_TOKEN = "first_token"
    FIRST_CLAUSE = "first_clause"
    FIRST_AUDIO = "first_audio"
    """The first chunk of speech is synthesised; from ``first_clause``: the voice's first window."""
    FIRST_FACE = "first_face"
    AUDIO_WRITTEN = "audio_written"
    """The first sample is handed to the speaker; to ``audio_out``: the output buffer and the device."""
    AUDIO_OUT = "audio_out"
    """The first sample leaves the speaker."""
    FIRST_SOUND = "first_sound"
    """The first audible sample leaves the speaker; from ``audio_out``: the voice's leading silence."""
    FIRST_LIP_FRAME = "first_lip_frame"
    TURN_END = "turn_end"


class TurnSource(str, enum.Enum):
    VOICE = "voice"
    TYPED = "typed"
    SAY = "say"
    PLAY = "play"


class Route(str, enum.Enum):
    """How a turn was answered."""

    EMERGENCY = "emergency"
    """A safety intent's answer, as configured (matched before anything else, never the LLM)."""
    CURATED = "curated"
    """The venue's curated answer, word for word."""
    AMBIGUOUS = "ambiguous"
    """Two curated entries fitted the question about equally: the first sentence of each, as written."""
    FACTS = "facts"
    """The LLM, given the matched venue facts."""
    UNKNOWN = "unknown"
    """The persona's honest "I don't know"."""
    SMALLTALK = "smalltalk"
    """The LLM, as conversation."""
    SAY = "say"
    """Given text, spoken as is (``talkerctl say``, the greeting)."""
    PLAY = "play"
    """A recording (``talkerctl play``)."""


@dataclass(frozen=True)
class AnswerRecord:
    """What a turn's answer was: published once, when the whole text is known."""

    route: Route
    clauses: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.clauses)


_turn_ids = itertools.count(1)


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass(eq=False)
class Turn:
    """The part of a turn that every stage shares: its id, source, question, cancel token and latency
    trace (locked: marks come from several threads). The answer is published once (``publish``); the
    pipeline's turn registry decides when the turn is done."""

    source: TurnSource
    question: str = ""
    id: int = field(default_factory=lambda: next(_turn_ids))
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    """Set by the turn registry once, when the turn is finished or cancelled."""
    decided: threading.Event = field(default_factory=threading.Event)
    """Set once the answer is published (before it has all been spoken), or the turn was cancelled."""
    _gate: threading.Event = field(default_factory=_open_gate, repr=False)
    """Clear while the turn is a speculation: prepared, but nothing of it may be heard until ``release``."""
    _marks: dict[Mark, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _answer: AnswerRecord | None = field(default=None, repr=False)

    def mark(self, point: Mark, at: float | None = None) -> None:
        """Record the first time ``point`` is reached (later calls keep the first)."""
        with self._lock:
            self._marks.setdefault(point, time.monotonic() if at is None else at)

    @property
    def marks(self) -> dict[Mark, float]:
        """A copy of the trace."""
        with self._lock:
            return dict(self._marks)

    def publish(self, answer: AnswerRecord) -> None:
        """Publish what the answer is; only the first call counts."""
        with self._lock:
            if self._answer is None:
                self._answer = answer
        self.decided.set()

    @property
    def answer_record(self) -> AnswerRecord | None:
        return self._answer

    @property
    def answer(self) -> str:
        return self._answer.text if self._answer is not None else ""

    @property
    def route(self) -> Route | None:
        return self._answer.route if self._answer is not None else None

    def cancel(self) -> None:
        self.cancelled.set()
        self.decided.set()
        self._gate.set()  # a stage waiting on a held turn wakes and sees it cancelled

    def hold(self) -> None:
        """Make this turn a speculation: its stages prepare it but wait before it can be heard."""
        self._gate.clear()

    def release(self) -> None:
        """The speculation was right: the turn goes on as an ordinary one."""
        self._gate.set()

    @property
    def held(self) -> bool:
        return not self._gate.is_set()

    def wait_released(self, stop: threading.Event, beat: Callable[[], None] = lambda: None) -> bool:
        """Wait while the turn is held (beating ``beat`` for the watchdog); True when it may go on, False
        when it was cancelled or the pipeline is stopping."""
        while not self._gate.wait(0.2):
            beat()
            if stop.is_set():
                return False
        return not self.cancelled.is_set() and not stop.is_set()

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()

    def wait_decided(self, timeout: float) -> bool:
        """Wait until the answer is published or the turn has ended; True when it was published."""
        deadline = time.monotonic() + timeout
        while not self.decided.wait(0.05):
            if self.done.is_set() or time.monotonic() > deadline:
                break
        return self._answer is not None and not self.is_cancelled

    def start(self) -> float | None:
        """The moment the turn's latency is measured from: end of speech, else the first mark."""
        marks = self.marks
        if Mark.SPEECH_END in marks:
            return marks[Mark.SPEECH_END]
        return min(marks.values(), default=None)

    def latencies_ms(self) -> dict[str, float]:
        """Each mark's time since the turn's start, in milliseconds."""
        start = self.start()
        if start is None:
            return {}
        return {m.value: round((t - start) * 1000.0, 1) for m, t in sorted(self.marks.items(), key=lambda kv: kv[1])}


@dataclass(frozen=True)
class EndOfTurn:
    """Follows a turn's last clause, and its last speech chunk: the playout finishes the turn on it."""

    turn: Turn


@dataclass(frozen=True)
class AudioFrame:
    """A block of captured audio: 16-bit mono PCM."""

    pcm: bytes
    sample_rate: int
    captured_at: float
    """Monotonic time of the frame's last sample."""

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True)
class Utterance:
    """The end of a visitor's utterance, as the endpointer saw it."""

    speech_start: float
    speech_end: float
    """Monotonic time of the last voiced frame."""
    declared_at: float
    """Monotonic time the endpointer declared the end (after the silence)."""
    ended_by: str = "silence"
    """What ended it: "turn model" (complete at a short pause), "silence" or "length"."""


@dataclass(frozen=True)
class Question:
    turn: Turn
    text: str


@dataclass(frozen=True)
class Clause:
    """A piece of the answer that is spoken as one unit."""

    turn: Turn
    text: str
    index: int


@dataclass(frozen=True)
class PhonemeTiming:
    phoneme: str
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class SpeechChunk:
    """Audio of (part of) a clause with the mouth track that goes with it."""

    turn: Turn
    audio: np.ndarray
    """int16 mono samples."""
    sample_rate: int
    mouth: np.ndarray
    """float32 [frames, len(MOUTH_CHANNELS)], one row per video frame from the chunk's first sample."""
    fps: int
    text: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate
