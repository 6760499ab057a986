"""The seams between the pipeline's stages, as Protocols: what the pipeline needs of each, nothing more.

The real implementations (vosk, the venue knowledge, llama.cpp, the Piper engines, the face engine,
PyAudio) satisfy these; ``tests/test_pipeline.py`` runs the real ``Pipeline`` on small fakes of each.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from .messages import AudioFrame, PhonemeTiming


class Recogniser(Protocol):
    """Speech to text (vosk): one utterance at a time."""

    def start(self) -> None: ...

    def accept(self, pcm: bytes) -> str | None:
        """Feed 16-bit audio; the partial text when it changed, else None."""

    def finish(self):
        """End the utterance; an object with ``.text``."""

    def abandon(self) -> None:
        """The utterance begun is dropped without a final text."""

    def idle(self) -> None:
        """Nobody has spoken for a while: the moment for housekeeping that would slow a turn."""

    def warm_up(self, audio, sample_rate: int) -> None:
        """Speech (int16 arrays) for every fresh recogniser to decode before it is used."""

    def close(self) -> None:
        """Stop background work (a renewal under way)."""


class Knowledge(Protocol):
    """The venue's knowledge: a question's match (``knowledge.Match``)."""

    def match(self, question: str): ...


class Dialogue(Protocol):
    """The LLM conversation: streamed text pieces for a question and its facts."""

    last_stats: object | None

    def answer(self, question: str, facts: tuple[str, ...] = (), *, cancelled: Callable[[], bool] = ..., record: bool = True) -> Iterator[str]: ...

    def set_persona(self, persona, venue) -> None: ...

    def reset(self) -> None:
        """Forget the history: the visitor's conversation ended."""


class SynthesisedPiece(Protocol):
    audio: np.ndarray
    sample_rate: int
    phonemes: tuple[PhonemeTiming, ...]
    offset_s: float


class Synthesiser(Protocol):
    """Text to speech, one clause at a time, chunk by chunk."""

    sample_rate: int

    def synthesize(self, text: str, *, cancelled: Callable[[], bool] = ...) -> Iterator[SynthesisedPiece]: ...


class MouthEngine(Protocol):
    """Audio to a mouth track at the video frame rate (the face engine)."""

    def mouth_track(self, audio: np.ndarray, sample_rate: int, fps: int) -> np.ndarray: ...


class AudioSource(Protocol):
    """Where the visitor's audio comes from; None items mark a device that is gone."""

    description: str
    has_audio: bool

    def frames(self, stop: threading.Event) -> Iterator[AudioFrame | None]: ...


class AudioOutput(Protocol):
    """Where speech goes: a blocking writer of int16 samples."""

    description: str
    latency_s: float
    audible: bool
    """False when the audio goes nowhere a microphone could hear it (no speaker, or a lost one)."""

    def write(self, samples: np.ndarray) -> None: ...

    def speaking(self, busy: bool) -> None: ...

    def close(self) -> None: ...


class Liveness(Protocol):
    """What every worker beats while it is alive, waiting included (the systemd watchdog)."""

    def heartbeat(self, stage: str, at: float | None = None) -> None: ...
