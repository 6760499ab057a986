"""Where the visitor's audio comes from: a microphone, a WAV file played at real-time pace, or nothing.

Output: ``AudioFrame``s of ``audio.frame_ms`` at ``audio.capture_rate``, 16-bit mono. A missing or lost
microphone is a state, not a crash: the source reports it and reopens the device every
``audio.reconnect_s`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import Backoff, PortAudioHost, StreamSpec, portaudio, read_wav_mono, speech_end_index
from ..config import AudioConfig
from ..errors import ComponentUnavailable
from ..messages import AudioFrame

log = logging.getLogger(__name__)

StateCallback = Callable[[str, str], None]
"""Called with (state, detail) when a device comes or goes: state is "ok" or "unavailable"."""


class SilenceSource:
    """No audio input: nothing to listen to (typed questions still work)."""

    description = "none"
    has_audio = False

    def frames(self, stop: threading.Event) -> Iterator[AudioFrame | None]:
        stop.wait()
        return iter(())


class WavSource:
    """Plays WAV files into the pipeline at real-time pace, with silence between and after them.

    ``queue_wav`` may be called while running (the benchmark does); ``speech_ended`` records the
    monotonic time at which each file's last voiced sample was delivered.
    """

    def __init__(self, config: AudioConfig, paths: list[Path] = ()) -> None:
        self._rate = config.capture_rate
        self._frame = config.capture_rate * config.frame_ms // 1000
        self._pending: list[tuple[np.ndarray, int]] = []
        self._lock = threading.Lock()
        self.speech_ended: list[float] = []
        self.description = "wav:" + ",".join(str(p) for p in paths)
        for path in paths:
            self.queue_wav(path)

    def queue_wav(self, path: Path) -> None:
        audio = read_wav_mono(Path(path), self._rate)
        with self._lock:
            self._pending.append((audio, speech_end_index(audio, self._rate)))

    def _next_audio(self) -> tuple[np.ndarray, int] | None:
        with self._lock:
            return self._pending.pop(0) if self._pending else None

    has_audio = True

    def frames(self, stop: threading.Event) -> Iterator[AudioFrame | None]:
        silence = np.zeros(self._frame, dtype=np.int16)
        deadline = time.monotonic()
        current, end_index, position = None, 0, 0
        while not stop.is_set():
            if current is None and (item := self._next_audio()) is not None:
                (current, end_index), position = item, 0
            if current is not None:
                block = current[position : position + self._frame]
                block = np.pad(block, (0, self._frame - len(block)))
            else:
                block = silence
            # A frame is stamped with the moment its last sample "happened" (its real-time deadline),
            # as a microphone's would be: a listener that falls behind then shows up as latency.
            deadline += self._frame / self._rate
            time.sleep(max(0.0, deadline - time.monotonic()))
            if current is not None:
                if position < end_index <= position + self._frame:
                    self.speech_ended.append(deadline - (position + self._frame - end_index) / self._rate)
                position += self._frame
                if position >= len(current):
                    current = None
            yield AudioFrame(block.tobytes(), self._rate, deadline)


class MicSource:
    """A capture device chosen by name, opened through the process's PortAudio host and reopened
    whenever it is missing or lost."""

    def __init__(self, config: AudioConfig, on_state: StateCallback = lambda state, detail: None, host: PortAudioHost | None = None) -> None:
        self._config = config
        self._frame = config.capture_rate * config.frame_ms // 1000
        self._on_state = on_state
        self._host = host or portaudio()
        self.description = f"mic:{config.input_device}"

    has_audio = True

    def frames(self, stop: threading.Event) -> Iterator[AudioFrame | None]:
        """Frames while the device works; None once per retry while it does not (the listener stays
        alive and its heartbeat fresh: a missing microphone is not a reason to restart the daemon)."""
        backoff = Backoff(self._config.reconnect_s, self._config.reconnect_max_s)
        while not stop.is_set():
            try:
                for frame in self._capture(stop):
                    backoff.reset()
                    yield frame
            except (OSError, ComponentUnavailable) as exc:
                # The state callback reports the change once; retries are only worth a debug line.
                delay = backoff.next()
                self._on_state("unavailable", f"microphone {self._config.input_device!r}: {exc}")
                log.debug("microphone unavailable (%s); retrying in %.1f s", exc, delay)
                retry_at = time.monotonic() + delay
                while not stop.is_set() and time.monotonic() < retry_at:
                    yield None  # at least once a second: the listener's heartbeat stays fresh
                    stop.wait(min(1.0, max(0.0, retry_at - time.monotonic())))

    def _capture(self, stop: threading.Event) -> Iterator[AudioFrame]:
        spec = StreamSpec(self._config.input_device, output=False, rate=self._config.capture_rate, frames_per_buffer=self._frame)
        stream = self._host.open(spec)
        try:
            self._on_state("ok", f"microphone {self._config.input_device!r}")
            while not stop.is_set():
                pcm = stream.read(self._frame)
                # Stamped with when the last sample was spoken, not when it was read.
                yield AudioFrame(pcm, self._config.capture_rate, stream.captured_at())
        finally:
            stream.close()


@dataclass(frozen=True)
class InputChoice:
    """``talkerd run --input``, parsed once (by the CLI): where audio comes from, and whether typed
    questions are read from stdin."""

    audio: str
    """"mic", "wav" or "none"."""
    wav: Path | None = None
    typed: str = "never"
    """"always" (``stdin``), "auto" (when stdin is a terminal, a pipe or a file) or "never"."""

    @classmethod
    def parse(cls, value: str) -> InputChoice:
        """``mic``, ``wav:PATH`` (the file must exist), ``stdin``, ``none`` or ``auto``; ValueError otherwise."""
        choices = {"auto": cls("mic", typed="auto"), "mic": cls("mic"), "stdin": cls("none", typed="always"), "none": cls("none")}
        if value in choices:
            return choices[value]
        if value.startswith("wav:"):
            path = Path(value[4:])
            if not path.is_file():
                raise ValueError(f"no such WAV file: {path}")
            return cls("wav", wav=path)
        raise ValueError(f"{value!r}: expected mic, wav:PATH, stdin, none or auto")

    @property
    def has_audio(self) -> bool:
        return self.audio != "none"


def open_source(choice: InputChoice, config: AudioConfig, on_state: StateCallback) -> SilenceSource | WavSource | MicSource:
    if choice.audio == "mic":
        return MicSource(config, on_state)
    if choice.audio == "wav":
        return WavSource(config, [choice.wav])
    return SilenceSource()
