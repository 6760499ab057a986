"""Typed, immutable messages that pass between pipeline stages, and the turn they belong to.

Every message carries its ``Turn``; a stage drops any message whose turn has been cancelled, so a
barge-in or a shutdown stops a turn at every stage boundary.
"""
from __future__ import annotations

import enum
import itertools
import threading
import time
from dataclasses import dataclass, field

import numpy as np

MOUTH_CHANNELS = ("jaw_open", "lips_closed", "lips_round", "lips_wide")
"""The mouth blendshape set, in the column order of every mouth track (values 0..1):
jaw_open opens the mouth, lips_closed presses the lips together (p, b, m), lips_round rounds and
narrows them (o, u, w), lips_wide spreads them (i, e)."""


class Mark(str, enum.Enum):
    """The points of a turn's latency trace, in pipeline order."""

    SPEECH_END = "speech_end"
    ASR_FINAL = "asr_final"
    KNOWLEDGE = "knowledge"
    FIRST_TOKEN = "first_token"
    FIRST_CLAUSE = "first_clause"
    FIRST_AUDIO = "first_audio"
    FIRST_FACE = "first_face"
    AUDIO_OUT = "audio_out"
    FIRST_LIP_FRAME = "first_lip_frame"
    TURN_END = "turn_end"


class TurnSource(str, enum.Enum):
    VOICE = "voice"
    TYPED = "typed"
    SAY = "say"
    PLAY = "play"


_turn_ids = itertools.count(1)


@dataclass(eq=False)
class Turn:
    """One question and its answer. Shared by reference; only its trace and cancel flag change."""

    source: TurnSource
    id: int = field(default_factory=lambda: next(_turn_ids))
    marks: dict[Mark, float] = field(default_factory=dict)
    question: str = ""
    answer_clauses: list[str] = field(default_factory=list)
    """The clauses spoken so far, in order."""
    route: str = ""
    """How the question was answered (curated, facts, unknown, smalltalk, say, play)."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    decided: threading.Event = field(default_factory=threading.Event)
    """Set once the whole answer text is known (before it has all been spoken), or the turn ended."""

    def mark(self, point: Mark, at: float | None = None) -> None:
        """Record the first time ``point`` is reached (later calls keep the first)."""
        self.marks.setdefault(point, time.monotonic() if at is None else at)

    @property
    def answer(self) -> str:
        return " ".join(self.answer_clauses)

    def cancel(self) -> None:
        self.cancelled.set()
        self.decided.set()

    def wait_decided(self, timeout: float) -> bool:
        """Wait until the answer is decided or the turn has ended; True when it was decided."""
        deadline = time.monotonic() + timeout
        while not self.decided.wait(0.05):
            if self.done.is_set() or time.monotonic() > deadline:
                break
        return self.decided.is_set() and not self.is_cancelled

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()

    def start(self) -> float | None:
        """The moment the turn's latency is measured from: end of speech, else the first mark."""
        if Mark.SPEECH_END in self.marks:
            return self.marks[Mark.SPEECH_END]
        return min(self.marks.values(), default=None)

    def latencies_ms(self) -> dict[str, float]:
        """Each mark's time since the turn's start, in milliseconds."""
        start = self.start()
        if start is None:
            return {}
        return {m.value: round((t - start) * 1000.0, 1) for m, t in sorted(self.marks.items(), key=lambda kv: kv[1])}


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
    last: bool


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
    last: bool = False
    """The final chunk of the turn."""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate
