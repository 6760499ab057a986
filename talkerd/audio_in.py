"""Where the visitor's audio comes from: a microphone, a WAV file played at real-time pace, or nothing.

Output: ``AudioFrame``s of ``audio.frame_ms`` at ``audio.capture_rate``, 16-bit mono. A missing or lost
microphone is a state, not a crash: the source reports it and reopens the device every
``audio.reconnect_s`` seconds.
"""
from __future__ import annotations

import logging
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .config import AudioConfig
from .errors import ComponentUnavailable
from .messages import AudioFrame

log = logging.getLogger(__name__)

MAX_RETRY_S = 60.0  # retries of a missing device back off up to this interval

StateCallback = Callable[[str, str], None]
"""Called with (state, detail) when a device comes or goes: state is "ok" or "unavailable"."""


def find_device(pa, name: str, *, output: bool) -> int | None:
    """PyAudio device index whose name contains ``name`` (case-insensitive); None for the default."""
    channels_key = "maxOutputChannels" if output else "maxInputChannels"
    if name == "default":
        return None
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if info[channels_key] > 0 and name.lower() in str(info["name"]).lower():
            return index
    kind = "output" if output else "input"
    available = [
        str(pa.get_device_info_by_index(i)["name"])
        for i in range(pa.get_device_count())
        if pa.get_device_info_by_index(i)[channels_key] > 0
    ]
    raise ComponentUnavailable(f"no audio {kind} device named {name!r} (have: {', '.join(available) or 'none'})")


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def read_wav_mono(path: Path, rate: int) -> np.ndarray:
    """A WAV file as int16 mono at ``rate`` (mixed down and linearly resampled when needed)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ComponentUnavailable(f"{path}: only 16-bit PCM WAV files are supported")
            channels, source_rate = wav.getnchannels(), wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    except (wave.Error, EOFError) as exc:
        raise ComponentUnavailable(f"{path}: not a readable WAV file: {exc}") from None
    except FileNotFoundError:
        raise ComponentUnavailable(f"{path}: no such file") from None
    mono = np.clip(np.round(samples.reshape(-1, channels).mean(axis=1)), -32768, 32767).astype(np.int16)
    return resample(mono, source_rate, rate)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """int16 audio linearly resampled (good enough for speech into ASR or a speaker)."""
    if source_rate == target_rate or len(audio) == 0:
        return audio
    positions = np.arange(0, len(audio) * target_rate / source_rate) * source_rate / target_rate
    return np.round(np.interp(positions, np.arange(len(audio)), audio.astype(np.float32))).astype(np.int16)


def speech_end_index(audio: np.ndarray, rate: int, threshold_dbfs: float = -40.0) -> int:
    """Index just after the last 10 ms block louder than the threshold: the true end of speech."""
    block = rate // 100
    blocks = len(audio) // block
    if blocks == 0:
        return 0
    levels = np.sqrt(np.mean(np.square(audio[: blocks * block].reshape(blocks, block) / 32768.0), axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(levels) > threshold_dbfs)[0]
    return int((loud[-1] + 1) * block) if len(loud) else 0


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
    """A PyAudio capture device chosen by name, reopened whenever it is missing or lost."""

    def __init__(self, config: AudioConfig, on_state: StateCallback = lambda state, detail: None) -> None:
        self._config = config
        self._frame = config.capture_rate * config.frame_ms // 1000
        self._on_state = on_state
        self.description = f"mic:{config.input_device}"

    has_audio = True

    def frames(self, stop: threading.Event) -> Iterator[AudioFrame | None]:
        """Frames while the device works; None once per retry while it does not (the listener stays
        alive and its heartbeat fresh: a missing microphone is not a reason to restart the daemon)."""
        delay = self._config.reconnect_s
        while not stop.is_set():
            try:
                for frame in self._capture(stop):
                    delay = self._config.reconnect_s
                    yield frame
            except (OSError, ComponentUnavailable) as exc:
                # The state callback reports the change once; retries are only worth a debug line.
                self._on_state("unavailable", f"microphone {self._config.input_device!r}: {exc}")
                log.debug("microphone unavailable (%s); retrying in %.0f s", exc, delay)
                retry_at = time.monotonic() + delay
                while not stop.is_set() and time.monotonic() < retry_at:
                    yield None  # at least once a second: the listener's heartbeat stays fresh
                    stop.wait(min(1.0, max(0.0, retry_at - time.monotonic())))
                delay = min(delay * 2, MAX_RETRY_S)  # a kiosk without a microphone should not churn

    def _capture(self, stop: threading.Event) -> Iterator[AudioFrame]:
        import pyaudio

        pa = pyaudio.PyAudio()  # a fresh instance each time: PortAudio only sees devices at init
        stream = None
        try:
            device = find_device(pa, self._config.input_device, output=False)
            if device is None and pa.get_device_count() == 0:
                raise ComponentUnavailable("no audio devices at all")
            stream = pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=self._config.capture_rate,
                input=True,
                input_device_index=device,
                frames_per_buffer=self._frame,
            )
            self._on_state("ok", f"microphone {self._config.input_device!r}")
            latency = float(stream.get_input_latency())
            while not stop.is_set():
                pcm = stream.read(self._frame, exception_on_overflow=False)
                # Stamped with when the last sample was spoken, not when the driver handed it over.
                yield AudioFrame(pcm, self._config.capture_rate, time.monotonic() - latency)
        finally:
            if stream is not None:
                stream.close()
            pa.terminate()


def open_source(spec: str, config: AudioConfig, on_state: StateCallback) -> SilenceSource | WavSource | MicSource:
    """``mic``, ``wav:PATH``, or ``none``/``stdin`` (typed input has no audio)."""
    if spec == "mic":
        return MicSource(config, on_state)
    if spec.startswith("wav:"):
        return WavSource(config, [Path(spec[4:])])
    return SilenceSource()
