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
from .endpointer import EndpointKind
from ..stages import Recogniser

log = logging.getLogger(__name__)

PREROLL_S = 0.4


@dataclass(frozen=True)
class SpeechStarted:
    """The visitor started speaking."""


@dataclass(frozen=True)
class Paused:
    """The visitor paused mid-utterance; ``text`` is what the recogniser has of it so far."""

    text: str


@dataclass(frozen=True)
class Resumed:
    """The visitor went on speaking after a pause."""


@dataclass(frozen=True)
class Heard:
    """An utterance ended and was recognised."""

    text: str
    speech_end: float
    """Monotonic time of the last voiced frame."""
    declared_at: float
    """Monotonic time the endpointer declared the utterance over."""
    final_at: float
    """Monotonic time the recogniser's final text was ready."""


class Listener:
    def __init__(self, endpointer, recogniser: Recogniser, *, barge_in: bool, idle_after_s: float = 20.0) -> None:
        """``idle_after_s``: quiet for this long (no speech heard), the recogniser is told it is idle."""
        self._endpointer = endpointer
        self._asr = recogniser
        self.barge_in = barge_in
        """Fixed at start: a reload does not change it (it needs echo cancellation set up)."""
        self._idle_after_s = idle_after_s
        self._quiet_since: float | None = None
        """Capture time of the last frame of speech (or of the first frame heard)."""
        self._told_idle = False
        self.partial_text = ""
        self._preroll: list[bytes] = []
        self._preroll_frames: int | None = None

    def lost(self) -> None:
        """The microphone is gone: drop any half utterance."""
        self._drop_utterance()
        self._preroll, self.partial_text = [], ""

    def warm_up(self, audio, sample_rate: int) -> None:
        """Speech for every fresh recogniser to decode before it takes over (``Recogniser.warm_up``)."""
        self._asr.warm_up(audio, sample_rate)

    def close(self) -> None:
        self._asr.close()

    def _drop_utterance(self) -> None:
        if self._endpointer.in_speech:
            self._endpointer.reset()
            self._asr.abandon()

    def feed(self, frame: AudioFrame, *, avatar_speaking: bool) -> SpeechStarted | Paused | Resumed | Heard | None:
        if self._preroll_frames is None:
            self._preroll_frames = max(1, int(PREROLL_S / frame.duration_s))
        if avatar_speaking:
            self._quiet_since, self._told_idle = frame.captured_at, False  # the avatar talking is not quiet
        if avatar_speaking and not self.barge_in:
            self._drop_utterance()
            return None
        was_speaking = self._endpointer.in_speech
        event = self._endpointer.feed(frame)
        self._note_quiet(frame, event)
        if not was_speaking:
            self._preroll = (self._preroll + [frame.pcm])[-self._preroll_frames :]
        if event is None or event.kind in _WITHIN_SPEECH:
            if self._endpointer.in_speech:
                partial = self._asr.accept(frame.pcm)
                if partial is not None:
                    self.partial_text = partial
            return None if event is None else _WITHIN_SPEECH[event.kind](self)
        if self._endpointer.in_speech:
            self._asr.start()
            for pcm in self._preroll:
                self._asr.accept(pcm)
            self._preroll = []
            return SpeechStarted()
        declared_at = time.monotonic()
        recognition = self._asr.finish()
        self.partial_text = ""
        return Heard(recognition.text, event.utterance.speech_end, declared_at, time.monotonic())

    def _note_quiet(self, frame: AudioFrame, event) -> None:
        """Tell the recogniser once per quiet spell that nobody has spoken for ``idle_after_s``."""
        if event is not None or self._endpointer.in_speech or self._quiet_since is None:
            self._quiet_since, self._told_idle = frame.captured_at, False
        elif not self._told_idle and frame.captured_at - self._quiet_since >= self._idle_after_s:
            self._told_idle = True
            self._asr.idle()


_WITHIN_SPEECH = {
    EndpointKind.PAUSE: lambda listener: Paused(listener.partial_text),
    EndpointKind.RESUMED: lambda listener: Resumed(),
}
"""The endpointer's events inside an utterance, and what the listener reports for each."""
