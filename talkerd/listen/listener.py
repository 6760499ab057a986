"""The listener: audio frames → "speech started" and "heard" events, and the partial transcript.

Policy that lives here: the audio from just before the endpointer's start (``PREROLL_S``) goes to the
recogniser too, so the first word is not clipped; without barge-in the microphone is ignored while the
avatar speaks (it would hear the avatar), and any half utterance is dropped when the device goes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..messages import AudioFrame
from ..stages import Recogniser

log = logging.getLogger(__name__)

PREROLL_S = 0.4


@dataclass(frozen=True)
class SpeechStarted:
    """The visitor started speaking."""


@dataclass(frozen=True)
class Heard:
    """An utterance ended and was recognised."""

    text: str
    speech_end: float
    """Monotonic time of the last voiced frame."""
    final_at: float
    """Monotonic time the recogniser's final text was ready."""


class Listener:
    def __init__(self, endpointer, recogniser: Recogniser, *, barge_in: bool) -> None:
        self._endpointer = endpointer
        self._asr = recogniser
        self.barge_in = barge_in
        """Fixed at start: a reload does not change it (it needs echo cancellation set up)."""
        self.partial_text = ""
        self._preroll: list[bytes] = []
        self._preroll_frames: int | None = None

    def lost(self) -> None:
        """The microphone is gone: drop any half utterance."""
        if self._endpointer.in_speech:
            self._endpointer.reset()
        self._preroll, self.partial_text = [], ""

    def feed(self, frame: AudioFrame, *, avatar_speaking: bool) -> SpeechStarted | Heard | None:
        if self._preroll_frames is None:
            self._preroll_frames = max(1, int(PREROLL_S / frame.duration_s))
        if avatar_speaking and not self.barge_in:
            if self._endpointer.in_speech:
                self._endpointer.reset()
            return None
        was_speaking = self._endpointer.in_speech
        event = self._endpointer.feed(frame)
        if not was_speaking:
            self._preroll = (self._preroll + [frame.pcm])[-self._preroll_frames :]
        if event is None:
            if self._endpointer.in_speech:
                partial = self._asr.accept(frame.pcm)
                if partial is not None:
                    self.partial_text = partial
            return None
        if self._endpointer.in_speech:
            self._asr.start()
            for pcm in self._preroll:
                self._asr.accept(pcm)
            self._preroll = []
            return SpeechStarted()
        recognition = self._asr.finish()
        self.partial_text = ""
        return Heard(recognition.text, event.utterance.speech_end, time.monotonic())
