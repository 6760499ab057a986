"""Audio playout and the audio clock that the face follows.

Input: ``SpeechChunk``s. The playout writes them to the speaker (PyAudio) or to a null output paced
in real time, and writes silence in between so the device's sample clock never stops. The clock
answers "which mouth pose belongs to the sample leaving the speaker now?" — the renderer draws that,
so the lips follow the audio actually heard, device latency included, not the wall time of the turn.
"""
from __future__ import annotations

import bisect
import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..audio import Backoff, PortAudioHost, StreamSpec, portaudio
from ..config import AudioConfig
from ..errors import ComponentUnavailable
from ..messages import EndOfTurn, Mark, SpeechChunk
from ..mouth import REST, MouthSample, frame_at

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_RATE = 22050
"""The output's rate when no voice is loaded to set it, and the rate recordings are played at."""
AUDIBLE_LEVEL = 328
"""The int16 amplitude (-40 dBFS) from which a sample counts as heard: the trace's ``first_sound``."""


class OutputMode(str, enum.Enum):
    """Where speech is played (``--output``)."""

    AUTO = "auto"
    """The speaker when one opens, else nothing (the playout keeps time on its own clock)."""
    SPEAKER = "speaker"
    """The same today: a missing speaker is a reported state, never a refusal to start."""
    NONE = "none"
    """No audio output; the face still animates against a clock."""


class PyAudioOutput:
    """A blocking output stream on the named device, opened through the process's PortAudio host."""

    def __init__(self, config: AudioConfig, sample_rate: int, host: PortAudioHost | None = None) -> None:
        spec = StreamSpec(config.output_device, output=True, rate=sample_rate, frames_per_buffer=sample_rate * config.output_buffer_ms // 1000)
        try:
            self._stream = (host or portaudio()).open(spec)
        except ComponentUnavailable as exc:
            raise ComponentUnavailable(f"speaker {config.output_device!r}: {exc.message}") from None
        self.description = f"speaker:{config.output_device}"
        self.audible = True

    @property
    def latency_s(self) -> float:
        return self._stream.latency_s

    def speaking(self, busy: bool) -> None:
        """While speech plays, PortAudio is not re-initialised for another device (that would be heard)."""
        self._stream.busy = busy

    def write(self, samples: np.ndarray) -> None:
        self._stream.write(samples.tobytes())

    def close(self) -> None:
        self._stream.close()


class NullOutput:
    """No speaker: consumes audio at real-time pace so the clock and the video still run."""

    description = "none"
    latency_s = 0.0
    audible = False

    def speaking(self, busy: bool) -> None:
        pass

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._deadline = time.monotonic()

    def write(self, samples: np.ndarray) -> None:
        self._deadline = max(self._deadline, time.monotonic() - 0.1) + len(samples) / self._rate
        time.sleep(max(0.0, self._deadline - time.monotonic()))

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Placed:
    start: int  # sample position of the chunk's first sample on the output clock
    chunk: SpeechChunk


class AudioClock:
    """Maps monotonic time to the sample leaving the speaker, and that sample to a mouth pose."""

    def __init__(self, sample_rate: int, latency_s: float, block: int, lead_s: float = 0.0) -> None:
        self.sample_rate = sample_rate
        self.latency_s = latency_s
        self.lead_s = lead_s
        """Mouth poses are taken this far ahead of the sound (see ``render.lip_lead_ms``)."""
        self._block = block
        self._lock = threading.Lock()
        self._written = 0
        self._written_at = time.monotonic()
        self._placed: list[_Placed] = []

    def wrote(self, samples: int) -> None:
        with self._lock:
            self._written += samples
            self._written_at = time.monotonic()

    def place(self, chunk: SpeechChunk) -> int:
        """Record that ``chunk`` starts at the next sample written; returns that position."""
        with self._lock:
            self._placed.append(_Placed(self._written, chunk))
            # Keep a few seconds of history only.
            horizon = self._written - 10 * self.sample_rate
            while len(self._placed) > 2 and self._placed[0].start + len(self._placed[0].chunk.audio) < horizon:
                self._placed.pop(0)
            return self._written

    def playing_position(self, now: float | None = None) -> float:
        """Sample index leaving the speaker at ``now``: what was written, minus what is still buffered.

        Between two writes the position advances with the time since the last one (at most one
        block: the writer blocks while the device drains, so it is never further behind than that).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            since_write = min(max(0.0, now - self._written_at) * self.sample_rate, self._block)
            return self._written - self.latency_s * self.sample_rate + since_write

    def sample(self, now: float | None = None) -> MouthSample:
        position = self.playing_position((time.monotonic() if now is None else now) + self.lead_s)
        with self._lock:
            starts = [placed.start for placed in self._placed]
            index = bisect.bisect_right(starts, position) - 1
            if index < 0:
                return MouthSample(REST, False, None)
            placed = self._placed[index]
        offset = position - placed.start
        chunk = placed.chunk
        if offset >= len(chunk.audio) or chunk.turn.is_cancelled:
            return MouthSample(REST, False, None)
        frame = min(frame_at(offset / chunk.sample_rate, chunk.fps), len(chunk.mouth) - 1)
        mouth = chunk.mouth[frame] if frame >= 0 else REST
        return MouthSample(mouth, True, chunk.turn)


class Playout:
    """The playout worker: one thread writing speech or silence in blocks of ``output_buffer_ms``."""

    def __init__(
        self,
        output,
        sample_rate: int,
        config: AudioConfig,
        *,
        lip_lead_s: float = 0.0,
        on_turn_end: Callable[[object, float], None] = lambda turn, at: None,
        reopen: Callable[[], object] | None = None,
        on_state: Callable[[str, str], None] = lambda state, detail: None,
        tap: Callable[[np.ndarray], None] | None = None,
        maxsize: int = 64,
    ) -> None:
        self._output = output
        self.on_turn_end = on_turn_end
        self._reopen = reopen
        """Opens the real speaker again; None when audio output is off on purpose."""
        self._on_state = on_state
        self._tap = tap
        """Also gets every block played (a video file's soundtrack)."""
        self._backoff = Backoff(config.reconnect_s, config.reconnect_max_s)
        self._retry_at = time.monotonic() + self._backoff.next()
        self._rate = sample_rate
        self._block = sample_rate * config.output_buffer_ms // 1000
        self.clock = AudioClock(sample_rate, output.latency_s, self._block, lip_lead_s)
        self.queue: queue.Queue[SpeechChunk | EndOfTurn] = queue.Queue(maxsize=maxsize)
        self._silence = np.zeros(self._block, dtype=np.int16)
        self.liveness = None
        """Beaten while the playout runs (the pipeline sets it: the watchdog, or plain heartbeats)."""

    @property
    def description(self) -> str:
        return self._output.description

    @property
    def audible(self) -> bool:
        """Whether what is played now can reach the microphone (a speaker lost mid-answer cannot)."""
        return self._output.audible

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._beat()
            self._maybe_reopen()
            try:
                chunk = self.queue.get_nowait()
            except queue.Empty:
                self._output.speaking(False)
                self._write(self._silence)
                continue
            if chunk.turn.is_cancelled:
                continue
            if isinstance(chunk, EndOfTurn):
                self.on_turn_end(chunk.turn, time.monotonic() + self.clock.latency_s)
                continue
            self._output.speaking(True)
            self._play(chunk)
        try:
            self._output.close()
        except ComponentUnavailable as exc:  # shutting down: the process is about to let go of it anyway
            log.warning("speaker not closed cleanly: %s", exc.message)

    def _beat(self) -> None:
        if self.liveness is not None:
            self.liveness.heartbeat("playout")

    def _play(self, chunk: SpeechChunk) -> None:
        if len(chunk.audio) == 0:
            return
        if chunk.sample_rate != self._rate:
            raise ValueError(f"speech at {chunk.sample_rate} Hz on a {self._rate} Hz output")
        self.clock.place(chunk)
        now = time.monotonic()
        chunk.turn.mark(Mark.AUDIO_WRITTEN, now)
        chunk.turn.mark(Mark.AUDIO_OUT, now + self.clock.latency_s)
        if Mark.FIRST_SOUND not in chunk.turn.marks:
            audible = np.flatnonzero(np.abs(chunk.audio.astype(np.int32)) >= AUDIBLE_LEVEL)
            if audible.size:
                chunk.turn.mark(Mark.FIRST_SOUND, now + self.clock.latency_s + int(audible[0]) / self._rate)
        for start in range(0, len(chunk.audio), self._block):
            if chunk.turn.is_cancelled:
                return
            self._write(chunk.audio[start : start + self._block])
            self._beat()

    def _write(self, samples: np.ndarray) -> None:
        try:
            self._output.write(samples)
        except OSError as exc:
            self._lost(exc)
            self._output.write(samples)
        self.clock.wrote(len(samples))
        if self._tap is not None:
            self._tap(samples)

    def _lost(self, exc: OSError) -> None:
        """The speaker went away: go on against a real-time null output (the face keeps its clock)."""
        self._retry_at = time.monotonic() + self._backoff.next()
        log.warning("speaker lost (%s); playing to nothing and trying it again", exc)
        self._on_state("unavailable", f"speaker lost: {exc}")
        try:
            self._output.close()
        except OSError as close_error:
            log.debug("closing the lost speaker failed too: %s", close_error)
        self._switch(NullOutput(self._rate))

    def _maybe_reopen(self) -> None:
        if self._reopen is None or not isinstance(self._output, NullOutput) or time.monotonic() < self._retry_at:
            return
        try:
            output = self._reopen()
        except ComponentUnavailable as exc:
            log.debug("speaker still unavailable: %s", exc.message)
            self._retry_at = time.monotonic() + self._backoff.next()
            return
        self._backoff.reset()
        self._switch(output)
        self._on_state("ok", f"latency {output.latency_s * 1000:.0f} ms")

    def _switch(self, output) -> None:
        self._output = output
        self.clock.latency_s = output.latency_s
