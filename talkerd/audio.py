"""Audio utilities shared by the stages, and the one owner of PortAudio in the process.

- ``resample``, ``read_wav_mono``, ``pcm_to_float``, ``loud_blocks``, ``speech_end_index``: plain sample arithmetic.
- ``Backoff``: how often a missing device is tried again.
- ``PortAudioHost`` (one per process, ``portaudio()``): every PortAudio stream of talkerd — microphone,
  speaker, the benchmark's capture — is opened, read, written and closed through it.

Why one owner: PortAudio's initialise/terminate are process-global and not thread-safe, and it lists the
devices only when it initialises. Two components that each create and terminate their own ``PyAudio``
(a microphone's reconnect loop and a speaker's reopen) corrupt the heap when they do so at the same
moment. The host initialises PortAudio once, and re-initialises it — to see a device plugged in since —
only while no stream is inside a read or write; the other open streams are closed and reopened around
it, so their users keep their handles and notice at most a short gap.
"""
from __future__ import annotations

import logging
import threading
import time
import wave
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ComponentUnavailable, TalkerError

log = logging.getLogger(__name__)

IO_DRAIN_TIMEOUT_S = 2.0
"""A re-initialisation waits this long for reads and writes in progress (they never block for long:
see ``STALL_S``); past that it gives up until the next attempt."""
STALL_S = 1.0
"""A stream that neither delivers nor accepts audio for this long is taken as lost. A device whose
server vanished can leave a blocking read waiting forever; streams are therefore only read or written
when PortAudio says the data or the room is there, and waited on outside PortAudio."""


class BadAudio(TalkerError):
    """An audio file that cannot be played: not a WAV, not 16-bit PCM, missing."""

    code = "bad_audio"


# -- sample arithmetic --------------------------------------------------------------------------------
def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """int16 audio linearly resampled (good enough for speech into ASR or a speaker)."""
    if source_rate == target_rate or len(audio) == 0:
        return audio
    positions = np.arange(0, len(audio) * target_rate / source_rate) * source_rate / target_rate
    return np.round(np.interp(positions, np.arange(len(audio)), audio.astype(np.float32))).astype(np.int16)


def read_wav_mono(path: Path, rate: int) -> np.ndarray:
    """A WAV file as int16 mono at ``rate`` (mixed down and linearly resampled when needed)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise BadAudio(f"{path}: only 16-bit PCM WAV files are supported (this one has {8 * wav.getsampwidth()}-bit samples)")
            channels, source_rate = wav.getnchannels(), wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    except (wave.Error, EOFError) as exc:
        raise BadAudio(f"{path}: not a readable WAV file: {exc}") from None
    except FileNotFoundError:
        raise BadAudio(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadAudio(f"{path}: is a folder, not a WAV file") from None
    mono = np.clip(np.round(samples.reshape(-1, channels).mean(axis=1)), -32768, 32767).astype(np.int16)
    return resample(mono, source_rate, rate)


def loud_blocks(audio: np.ndarray, block: int, threshold_dbfs: float) -> np.ndarray:
    """Indices of the whole ``block``-sample blocks of int16 ``audio`` louder (RMS) than the threshold."""
    blocks = len(audio) // block
    if blocks == 0:
        return np.zeros(0, dtype=np.int64)
    levels = np.sqrt(np.mean(np.square(audio[: blocks * block].reshape(blocks, block) / 32768.0), axis=1) + 1e-12)
    return np.nonzero(20 * np.log10(levels) > threshold_dbfs)[0]


def speech_end_index(audio: np.ndarray, rate: int, threshold_dbfs: float = -40.0) -> int:
    """Index just after the last 10 ms block louder than the threshold: the true end of speech."""
    block = rate // 100
    loud = loud_blocks(audio, block, threshold_dbfs)
    return int((loud[-1] + 1) * block) if len(loud) else 0


class Backoff:
    """Retry intervals for a missing device: ``first``, doubling up to ``maximum``; ``reset`` on success.

    The maximum bounds how long a device that came back waits to be noticed."""

    def __init__(self, first: float, maximum: float) -> None:
        self.first, self.maximum = first, max(first, maximum)
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.first


# -- the PortAudio owner ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamSpec:
    """What to open: a device by (part of) its name, 16-bit mono at ``rate``."""

    device: str
    output: bool
    rate: int
    frames_per_buffer: int

    @property
    def kind(self) -> str:
        return "output" if self.output else "input"


class CaptureClock:
    """When the last sample read from an input stream was heard, from the count of samples read.

    The time of a read is not the time of its audio: a reader that fell behind (a busy machine) reads
    audio that waited in the sound server's buffers, and many blocks then arrive in one burst. The
    stream started at ``read time - samples read / rate`` at the latest; the least of these over the
    last ``WINDOW_S`` is the best estimate, and the window lets it follow the device's clock drift and
    the samples an overflow dropped."""

    WINDOW_S = 10.0

    def __init__(self, rate: int, latency_s: float) -> None:
        self._rate, self._latency_s = rate, latency_s
        self._samples = 0
        self._starts: deque[tuple[float, float]] = deque()  # (read at, implied start), starts increasing

    def read(self, frames: int, now: float) -> float:
        """Count ``frames`` just read at ``now``; returns when the last of them was heard."""
        self._samples += frames
        start = now - self._samples / self._rate
        while self._starts and self._starts[-1][1] >= start:
            self._starts.pop()
        self._starts.append((now, start))
        while self._starts[0][0] < now - self.WINDOW_S:
            self._starts.popleft()
        return self._starts[0][1] + self._samples / self._rate - self._latency_s


class Stream:
    """A PortAudio stream owned by the host. Reads and writes raise ``OSError`` once the device is gone."""

    def __init__(self, host: PortAudioHost, spec: StreamSpec, raw) -> None:
        self.spec = spec
        self._host = host
        self._raw = raw
        self.latency_s = self._latency(raw)
        self.clock = CaptureClock(spec.rate, self.latency_s)
        self._heard_at = 0.0
        self.busy = False
        """Set by the stream's user while a gap would be heard (the speaker during speech): PortAudio is
        not re-initialised for another device meanwhile."""

    def _latency(self, raw) -> float:
        return float(raw.get_output_latency() if self.spec.output else raw.get_input_latency())

    def read(self, frames: int) -> bytes:
        self._wait_until(lambda raw: raw.get_read_available() >= frames, frames)
        with self._host._io():
            pcm = self._live().read(frames, exception_on_overflow=False)
        self._heard_at = self.clock.read(frames, time.monotonic())
        return pcm

    def captured_at(self) -> float:
        """When the last sample ``read`` returned was heard (monotonic; ``CaptureClock``)."""
        return self._heard_at

    def write(self, pcm: bytes) -> None:
        frames = len(pcm) // 2
        self._wait_until(lambda raw: raw.get_write_available() >= min(frames, self.spec.frames_per_buffer), frames)
        with self._host._io():
            self._live().write(pcm)

    def _wait_until(self, ready, frames: int) -> None:
        """Poll (a quarter of the block at a time, outside any lock) until ``ready``; OSError on a stall."""
        step = max(0.001, frames / self.spec.rate / 4)
        deadline = time.monotonic() + STALL_S + frames / self.spec.rate
        while True:
            with self._host._io():
                if ready(self._live()):
                    return
            if time.monotonic() > deadline:
                raise OSError(f"{self.spec.kind} device {self.spec.device!r} stopped {'taking' if self.spec.output else 'delivering'} audio")
            time.sleep(step)

    def close(self) -> None:
        self._host._close(self)

    @property
    def is_open(self) -> bool:
        return self._raw is not None

    def _live(self):
        raw = self._raw
        if raw is None:
            raise OSError(f"{self.spec.kind} device {self.spec.device!r} is gone")
        return raw


class PortAudioHost:
    """Initialises PortAudio once, opens every stream, and re-initialises it safely to find new devices.

    ``backend`` is the ``pyaudio`` module (imported on first use); a test may pass another object with
    the same ``PyAudio``/``paInt16`` names.
    """

    def __init__(self, backend=None, *, min_rescan_s: float = 1.0) -> None:
        self._backend = backend
        self._min_rescan_s = min_rescan_s
        self._state = threading.Condition()
        self._pa = None
        self._initialised_at = float("-inf")
        self._io_in_progress = 0
        self._exclusive = False
        self._streams: list[Stream] = []
        self.initialisations = 0
        """How many times PortAudio was initialised (status, and the tests)."""

    # -- public -------------------------------------------------------------------------------------
    def open(self, spec: StreamSpec) -> Stream:
        """Open ``spec``'s device. When it is not there, PortAudio is re-initialised (at most once per
        ``min_rescan_s``) so that a device plugged in since is seen, and the open is tried again.
        Raises ``ComponentUnavailable`` naming the device."""
        with self._exclusively():
            try:
                raw = self._open_raw(spec)
            except ComponentUnavailable:
                if time.monotonic() - self._initialised_at < self._min_rescan_s:
                    raise
                busy = [s.spec.device for s in self._streams if s.busy]
                if busy:
                    raise ComponentUnavailable(f"{spec.kind} device {spec.device!r} not found; looking again once {', '.join(busy)} is idle") from None
                self._reinitialise()
                raw = self._open_raw(spec)
            stream = Stream(self, spec, raw)
            self._streams.append(stream)
            return stream

    def devices(self, *, output: bool) -> list[str]:
        """Names of the devices PortAudio lists (as of its last initialisation)."""
        with self._exclusively():
            return [name for _, name in self._device_list(output)]

    def shutdown(self) -> None:
        """Close every stream and terminate PortAudio (process exit)."""
        with self._exclusively():
            for stream in list(self._streams):
                self._close_raw(stream)
            self._streams.clear()
            self._terminate()

    # -- streams ------------------------------------------------------------------------------------
    def _close(self, stream: Stream) -> None:
        with self._exclusively():
            self._close_raw(stream)
            if stream in self._streams:
                self._streams.remove(stream)

    def _open_raw(self, spec: StreamSpec):
        pa = self._ensure_initialised()
        index = self._find(spec)
        try:
            return pa.open(
                format=self._module().paInt16,
                channels=1,
                rate=spec.rate,
                input=not spec.output,
                output=spec.output,
                input_device_index=None if spec.output else index,
                output_device_index=index if spec.output else None,
                frames_per_buffer=spec.frames_per_buffer,
            )
        except OSError as exc:
            raise ComponentUnavailable(f"{spec.kind} device {spec.device!r}: {exc}") from None

    def _find(self, spec: StreamSpec) -> int | None:
        """Index of the first device whose name contains ``spec.device``; None for the default."""
        listed = self._device_list(spec.output)
        if not listed:
            raise ComponentUnavailable(f"no audio {spec.kind} devices at all (no sound server or sound card)")
        if spec.device == "default":
            return None
        for index, name in listed:
            if spec.device.lower() in name.lower():
                return index
        have = ", ".join(name for _, name in listed)
        raise ComponentUnavailable(f"no audio {spec.kind} device named {spec.device!r} (have: {have})")

    def _device_list(self, output: bool) -> list[tuple[int, str]]:
        pa = self._ensure_initialised()
        key = "maxOutputChannels" if output else "maxInputChannels"
        found = []
        for index in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(index)
            if info[key] > 0:
                found.append((index, str(info["name"])))
        return found

    @staticmethod
    def _close_raw(stream: Stream) -> None:
        raw, stream._raw = stream._raw, None
        if raw is None:
            return
        try:
            raw.close()
        except OSError as exc:  # a device that vanished may refuse to close cleanly; it is gone either way
            log.debug("closing the %s stream of %r: %s", stream.spec.kind, stream.spec.device, exc)

    # -- PortAudio itself ---------------------------------------------------------------------------
    def _module(self):
        if self._backend is None:
            import pyaudio

            self._backend = pyaudio
        return self._backend

    def _ensure_initialised(self):
        if self._pa is None:
            _quiet_native_libraries()
            self._pa = self._module().PyAudio()
            self._initialised_at = time.monotonic()
            self.initialisations += 1
        return self._pa

    def _terminate(self) -> None:
        pa, self._pa = self._pa, None
        if pa is not None:
            pa.terminate()

    def _reinitialise(self) -> None:
        """Close the open streams, terminate and initialise PortAudio, reopen the streams on the new
        device list. A stream whose device is gone stays closed: its user's next read or write fails."""
        log.debug("re-initialising PortAudio to find new devices (%d open streams)", len(self._streams))
        for stream in self._streams:
            self._close_raw(stream)
        self._terminate()
        self._ensure_initialised()
        for stream in self._streams:
            try:
                stream._raw = self._open_raw(stream.spec)
                stream.latency_s = stream._latency(stream._raw)
                stream.clock = CaptureClock(stream.spec.rate, stream.latency_s)  # a new stream, a new count
            except ComponentUnavailable as exc:
                log.info("after re-initialising PortAudio: %s", exc.message)

    # -- locking: many reads/writes at once, or one init/open/close/terminate alone ---------------------
    @contextmanager
    def _io(self) -> Iterator[None]:
        with self._state:
            while self._exclusive:
                self._state.wait()
            self._io_in_progress += 1
        try:
            yield
        finally:
            with self._state:
                self._io_in_progress -= 1
                self._state.notify_all()

    @contextmanager
    def _exclusively(self) -> Iterator[None]:
        with self._state:
            while self._exclusive:
                self._state.wait()
            self._exclusive = True
            drained = self._state.wait_for(lambda: self._io_in_progress == 0, timeout=IO_DRAIN_TIMEOUT_S)
            if not drained:
                self._exclusive = False
                self._state.notify_all()
                raise ComponentUnavailable("audio devices busy: a read or write did not return in time")
        try:
            yield
        finally:
            with self._state:
                self._exclusive = False
                self._state.notify_all()


_NATIVE_HANDLERS: list = []
"""The C callbacks handed to ALSA and JACK, kept alive for the life of the process."""


def _quiet_native_libraries() -> None:
    """Send ALSA's and JACK's own messages to the debug log instead of stderr.

    PortAudio probes every host API when it initialises: with no sound card or JACK server that prints
    a screen of "ALSA lib ... Unknown PCM" and "jack server is not running" lines, each time. Those are
    not errors of talkerd's (a missing device is reported as a state); the log at DEBUG keeps them."""
    if _NATIVE_HANDLERS:
        return
    import ctypes
    import ctypes.util

    def alsa(file, line, function, err, fmt):  # the varargs after fmt cannot be read here
        log.debug("ALSA: %s:%d %s: error %d", (file or b"").decode(errors="replace"), line, (function or b"").decode(errors="replace"), err)

    def jack(message):
        log.debug("JACK: %s", (message or b"").decode(errors="replace"))

    alsa_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
    jack_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
    _NATIVE_HANDLERS.extend([alsa_type(alsa), jack_type(jack)])
    for name, setters, handler in (("asound", ("snd_lib_error_set_handler",), _NATIVE_HANDLERS[0]),
                                   ("jack", ("jack_set_error_function", "jack_set_info_function"), _NATIVE_HANDLERS[1])):
        path = ctypes.util.find_library(name)
        if path is None:
            continue
        try:
            library = ctypes.CDLL(path)
            for setter in setters:
                getattr(library, setter)(handler)
        except (OSError, AttributeError) as exc:  # another build of the library: its messages stay on stderr
            log.debug("cannot redirect %s's messages: %s", name, exc)


_host: PortAudioHost | None = None
_host_lock = threading.Lock()


def portaudio() -> PortAudioHost:
    """The process's PortAudio host (created on first use)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PortAudioHost()
        return _host
