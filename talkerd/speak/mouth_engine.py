"""The face engine: audio → mouth shapes (``MOUTH_CHANNELS``) at the video frame rate.

Features are log-mel band powers computed here in numpy (no torch or librosa at runtime), defined in
seconds and hertz rather than samples: a 25 ms Hann window every 10 ms, band powers integrated over
frequency, 40 mel bands from 60 Hz to 7.6 kHz. The same sound gives the same features at any rate from
16 kHz up (measured: 22.05 kHz vs the same audio at 16 kHz, mean difference 0.005 in log power), so
audio is never resampled. The network (``engines/face-mouth``, trained by ``tools/train_face``) sees
fixed windows of ``window`` feature frames and answers one mouth vector per feature frame (100 per
second); only the middle of each window is kept, the ``context`` frames at either edge overlap the
neighbouring windows. The context covers the network's receptive field, so joined windows equal one
pass over the whole signal: there are no seams. The 100 Hz track is then taken to the video rate.
"""
from __future__ import annotations

import enum
import functools
import logging
import math
from typing import Any

import numpy as np

from ..errors import EngineError, RequestError
from ..mouth import MOUTH_CHANNELS, closure_frames, frame_centres, frame_count

log = logging.getLogger(__name__)

N_MELS = 40
"""Mel bands per feature frame."""
FEATURE_RATE = 100
"""Feature (and network output) frames per second."""
WINDOW_S = 0.025
"""Analysis window length."""
F_MIN, F_MAX = 60.0, 7600.0
"""Lowest and highest mel band edges, Hz."""
MIN_SAMPLE_RATE = 16000
"""The bands reach 7.6 kHz, so the audio must carry them."""
POWER_FLOOR = 1e-8
"""Added before the logarithm: digital silence becomes ln(1e-8) ≈ -18.4 (about -80 dB full scale)."""
SILENCE_LOG = math.log(POWER_FLOOR)
"""Every band's feature value in digital silence; windows are padded with it."""
CLOSED_LIPS = 0.5
"""lips_closed at or above this reads as a closure when the track is taken to the video rate."""


class AudioFormatError(RequestError):
    """Audio the face engine cannot analyse (not mono, not int16/float samples, rate below 16 kHz)."""

    code = "bad_audio"


# ---------------------------------------------------------------------------------------- features
def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def _analysis(sample_rate: int) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(window samples, FFT size, Hann window, mel weights [N_MELS, bins] with the PSD scale folded in)."""
    if sample_rate < MIN_SAMPLE_RATE:
        raise AudioFormatError(f"audio at {sample_rate} Hz is below the face engine's minimum of {MIN_SAMPLE_RATE} Hz")
    win = int(round(WINDOW_S * sample_rate))
    n_fft = 1 << (2 * win - 1).bit_length()  # at least twice the window: fine bins at any rate
    window = np.hanning(win + 2)[1:-1]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    # periodogram → power spectral density (per Hz) times the bin width: band power independent of rate
    scale = 2.0 * (sample_rate / n_fft) / (sample_rate * float(np.sum(window**2)))
    return win, n_fft, window, tri * scale


def feature_frames(n_samples: int, sample_rate: int) -> int:
    """Feature frames covering ``n_samples`` (a partial last frame counts)."""
    return max(0, math.ceil(n_samples * FEATURE_RATE / sample_rate - 1e-9))


def _to_float(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioFormatError(f"audio must be mono (one dimension), not shape {audio.shape}")
    if audio.dtype == np.int16:
        return audio.astype(np.float64) / 32768.0
    if np.issubdtype(audio.dtype, np.floating):
        return audio.astype(np.float64)
    raise AudioFormatError(f"audio must be int16 or float samples, not {audio.dtype}")


def band_power(audio: np.ndarray, sample_rate: int, first: int = 0, count: int | None = None,
               offset: int = 0) -> np.ndarray:
    """Mel band powers float64 [N_MELS, count] of feature frames ``first`` … ``first + count - 1``.

    Frame k is centred on (k + 0.5) × 10 ms. ``audio`` (int16 or float in [-1, 1]) holds the samples
    from absolute index ``offset`` on, so a stream can pass only its recent samples; samples outside
    it count as silence. ``count`` defaults to every frame the audio reaches.
    """
    samples = _to_float(audio)
    win, n_fft, window, weights = _analysis(sample_rate)
    if count is None:
        count = feature_frames(offset + len(samples), sample_rate) - first
    if count <= 0:
        return np.zeros((N_MELS, 0))
    centres = (np.arange(first, first + count) + 0.5) * sample_rate / FEATURE_RATE
    starts = np.round(centres).astype(np.int64) - win // 2 - offset
    lo, hi = min(0, int(starts[0])), max(len(samples), int(starts[-1]) + win)
    padded = np.zeros(hi - lo)
    padded[-lo : -lo + len(samples)] = samples
    spectrum = np.fft.rfft(padded[(starts - lo)[:, None] + np.arange(win)] * window, n=n_fft, axis=1)
    return weights @ (spectrum.real**2 + spectrum.imag**2).T


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 [N_MELS, feature_frames] log band powers of a whole signal."""
    return np.log(band_power(audio, sample_rate) + POWER_FLOOR).astype(np.float32)


def _last_sample_needed(frame: int, sample_rate: int) -> int:
    """Samples needed (from the start) before feature frame ``frame`` can be computed."""
    win = _analysis(sample_rate)[0]
    return int(round((frame + 0.5) * sample_rate / FEATURE_RATE)) - win // 2 + win


# ------------------------------------------------------------------------------------ frame rates
def to_video_rate(track: np.ndarray, fps: int, frames: int) -> np.ndarray:
    """A 100 Hz mouth track → ``frames`` video frames at ``fps``, sampled at the frame centres.

    Linear interpolation alone could lose a p, b or m: a closure (rows with lips_closed ≥
    ``CLOSED_LIPS``) shorter than a video frame may fall between two frame centres. So a frame whose
    centre lies inside a closure shows the closure's row there, and a closure that holds no frame
    centre is shown on the frame nearest its middle — the same rule as ``visemes.mouth_track``.
    """
    out = np.zeros((frames, len(MOUTH_CHANNELS)), dtype=np.float32)
    if frames == 0 or len(track) == 0:
        return out
    source_t = frame_centres(len(track), FEATURE_RATE)
    target_t = frame_centres(frames, fps)
    for channel in range(track.shape[1]):
        out[:, channel] = np.interp(target_t, source_t, track[:, channel])
    closed = np.concatenate([[False], track[:, 1] >= CLOSED_LIPS, [False]])
    edges = np.flatnonzero(np.diff(closed.astype(np.int8)))
    for first, end in zip(edges[::2], edges[1::2]):  # closure rows first … end-1
        shown = closure_frames(first / FEATURE_RATE, end / FEATURE_RATE, fps, frames)
        out[shown] = track[np.clip((target_t[shown] * FEATURE_RATE).astype(int), first, end - 1)]
    return out


def envelope_track(audio: np.ndarray, sample_rate: int, fps: int) -> np.ndarray:
    """A jaw that follows loudness, for audio with neither durations nor a face engine.

    Per video frame: RMS level in dBFS mapped linearly from -50 dB (closed) to -15 dB (jaw 0.7), with a
    quick opening and a slower closing (attack 0.6, release 0.35 per frame) so it does not chatter.
    """
    samples = _to_float(audio)
    frames = frame_count(len(samples) / sample_rate, fps)
    out = np.zeros((frames, len(MOUTH_CHANNELS)), dtype=np.float32)
    jaw = 0.0
    for k in range(frames):
        block = samples[int(k * sample_rate / fps) : int((k + 1) * sample_rate / fps)]
        level = 10.0 * math.log10(float(np.mean(block * block)) + 1e-12) if len(block) else -120.0
        target = 0.7 * min(1.0, max(0.0, (level + 50.0) / 35.0))
        jaw += (target - jaw) * (0.6 if target > jaw else 0.35)
        out[k, 0] = jaw
    return out


# --------------------------------------------------------------------------------- mouth source
class MouthSource(str, enum.Enum):
    """Where one piece of audio gets its mouth track from."""

    DURATIONS = "durations"
    """``visemes.mouth_track`` on the TTS's per-phoneme durations."""
    ENGINE = "engine"
    """The face engine on the audio."""
    ENVELOPE = "envelope"
    """``envelope_track``: loudness only."""


_D, _E, _V = MouthSource.DURATIONS, MouthSource.ENGINE, MouthSource.ENVELOPE
_SOURCES: dict[tuple[str, bool, bool], MouthSource] = {
    # (face.source, the audio has durations, a face engine is loaded) → source
    ("auto", True, True): _D, ("auto", True, False): _D, ("auto", False, True): _E, ("auto", False, False): _V,
    ("engine", True, True): _E, ("engine", False, True): _E,
    ("engine", True, False): _D, ("engine", False, False): _V,  # forced but missing: logged fallback
    ("durations", True, True): _D, ("durations", True, False): _D,
    ("durations", False, True): _V, ("durations", False, False): _V,
}


def select_mouth_source(face_cfg: Any, has_durations: bool, engine_loaded: bool = True) -> MouthSource:
    """``face.source``: ``auto`` uses durations when the TTS gave them, else the engine; ``engine``
    always uses the engine; ``durations`` never does (audio without durations gets the envelope).
    Without a loaded engine the next best source is used, and a forced engine's absence is logged."""
    chosen = _SOURCES[(face_cfg.source, bool(has_durations), bool(engine_loaded))]
    if face_cfg.source == "engine" and chosen is not MouthSource.ENGINE:
        log.warning("face.source is \"engine\" but no face engine is loaded; using %s", chosen.value)
    return chosen


# --------------------------------------------------------------------------------------- engine
class FaceEngine:
    """Audio → mouth track with the face network, in fixed windows with overlapping context."""

    def __init__(self, engine: Any, window: int, context: int) -> None:
        if window <= 2 * context:
            raise EngineError(f"face engine window {window} is not longer than twice its context {context}")
        self._engine = engine
        self._output = engine.manifest.outputs[0].name
        self.window = window
        """Feature frames per network run."""
        self.context = context
        """Frames at each window edge that only give context (they overlap the neighbours)."""

    @staticmethod
    def load(face_cfg: Any, engines_cfg: Any) -> "FaceEngine":
        """Open the engine named by ``face.engine`` with ``talkerd.engines.open_engine`` (TensorRT or
        ONNX Runtime per ``engines.backend``). ``ConfigError`` for a bad manifest, ``EngineError`` for
        a missing or unusable ONNX or a manifest that does not describe a face engine of this runtime."""
        if not face_cfg.engine:
            raise EngineError("face.engine is not set: no face engine to load")
        from ..engines import open_engine

        return FaceEngine.from_engine(open_engine(engines_cfg, face_cfg.engine))

    @staticmethod
    def from_engine(engine: Any) -> "FaceEngine":
        """Wrap an opened engine; its manifest's ``metadata`` must name the window and the features."""
        manifest = engine.manifest
        metadata = dict(manifest.metadata)
        where = f"engine {manifest.name}: manifest"
        if manifest.kind != "face":
            raise EngineError(f"{where}: kind is {manifest.kind!r}, not \"face\"")
        try:
            window, context = int(metadata["window_frames"]), int(metadata["context_frames"])
            n_mels, rate = int(metadata["n_mels"]), int(metadata["feature_rate"])
        except (KeyError, ValueError) as exc:
            raise EngineError(f"{where}: metadata needs integer window_frames, context_frames, n_mels and "
                              f"feature_rate ({exc})") from None
        if (n_mels, rate) != (N_MELS, FEATURE_RATE):
            raise EngineError(f"{where}: trained on {n_mels} mel bands at {rate} frames/s; this runtime "
                              f"computes {N_MELS} at {FEATURE_RATE}")
        return FaceEngine(engine, window, context)

    @property
    def hop(self) -> int:
        """New output frames per network run."""
        return self.window - 2 * self.context

    def warm_up(self) -> None:
        """One run on a window of silence, so the first real request pays no lazy initialisation."""
        self.run_window(np.full((N_MELS, self.window), SILENCE_LOG, dtype=np.float32))

    @property
    def engine(self) -> Any:
        """The runtime engine underneath (status, memory, backend)."""
        return self._engine

    @property
    def engines(self) -> tuple:
        """The mouth engine, for the health board."""
        return (self._engine,)

    def close(self) -> None:
        self._engine.close()

    def run_window(self, mel: np.ndarray) -> np.ndarray:
        """One network run: log-mel [N_MELS, window] → mouth float32 [window, 4]."""
        out = self._engine.run({"mel": np.ascontiguousarray(mel[None], dtype=np.float32)})
        return np.asarray(out[self._output], dtype=np.float32)[0]

    def stream(self, sample_rate: int) -> "MouthStream":
        """A streaming analyser: push audio a chunk at a time, get the 100 Hz track as it is ready."""
        return MouthStream(self, sample_rate)

    def track_100hz(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The whole signal's mouth track at ``FEATURE_RATE``: float32 [feature_frames, 4]."""
        stream = self.stream(sample_rate)
        return np.concatenate([stream.push(audio), stream.finish()])

    def mouth_track(self, audio: np.ndarray, sample_rate: int, fps: int) -> np.ndarray:
        """float32 [ceil(seconds × fps), 4] for int16 (or float) mono audio of any length."""
        frames = frame_count(len(audio) / sample_rate, fps)
        return to_video_rate(self.track_100hz(audio, sample_rate), fps, frames)


class MouthStream:
    """Incremental face analysis: audio in, 100 Hz mouth rows out, identical to one whole-signal pass.

    Feature frame k needs the audio up to its analysis window's end, and a network window needs all
    its features, so rows come out a window's middle at a time: a row waits for between ``context``
    and ``window - context`` feature frames of later audio (0.32 to 1.28 s with the shipped engine).
    """

    def __init__(self, engine: FaceEngine, sample_rate: int) -> None:
        _analysis(sample_rate)  # rejects unusable rates before any audio arrives
        self._engine = engine
        self._rate = sample_rate
        self._samples = np.zeros(0)
        self._offset = 0  # absolute index of self._samples[0]
        # features so far, starting with the context's worth of silence before the signal
        self._mel = np.full((N_MELS, engine.context), SILENCE_LOG, dtype=np.float32)
        self._next_feature = 0
        self._window_start = 0  # in self._mel's frames
        self._emitted = 0

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Add samples; return the mouth rows now ready (float32 [n, 4], possibly n = 0)."""
        self._samples = np.concatenate([self._samples, _to_float(audio)])
        total = self._offset + len(self._samples)
        win = _analysis(self._rate)[0]
        ready = max(self._next_feature, int((total - win + win // 2) * FEATURE_RATE / self._rate) - 2)
        while ready > self._next_feature and _last_sample_needed(ready - 1, self._rate) > total:
            ready -= 1
        while _last_sample_needed(ready, self._rate) <= total:
            ready += 1
        self._add_features(ready - self._next_feature)
        return self._run_windows(final=False)

    def finish(self) -> np.ndarray:
        """The end of the audio: the remaining rows, up to the last (partial) frame."""
        total = self._offset + len(self._samples)
        self._add_features(feature_frames(total, self._rate) - self._next_feature)
        return self._run_windows(final=True)

    def _add_features(self, count: int) -> None:
        if count <= 0:
            return
        power = band_power(self._samples, self._rate, self._next_feature, count, offset=self._offset)
        self._mel = np.concatenate([self._mel, np.log(power + POWER_FLOOR).astype(np.float32)], axis=1)
        self._next_feature += count
        # keep only the samples later frames can still reach
        win = _analysis(self._rate)[0]
        keep_from = int(round((self._next_feature + 0.5) * self._rate / FEATURE_RATE)) - win // 2 - 1
        drop = max(0, min(keep_from - self._offset, len(self._samples)))
        self._samples, self._offset = self._samples[drop:], self._offset + drop

    def _run_windows(self, final: bool) -> np.ndarray:
        engine, rows = self._engine, []
        wanted = self._next_feature  # output frames that exist in the signal so far
        while self._emitted < wanted:
            end = self._window_start + engine.window
            if self._mel.shape[1] < end:
                if not final:
                    break
                pad = np.full((N_MELS, end - self._mel.shape[1]), SILENCE_LOG, dtype=np.float32)
                self._mel = np.concatenate([self._mel, pad], axis=1)
            out = engine.run_window(self._mel[:, self._window_start : end])
            keep = out[engine.context : engine.context + engine.hop][: wanted - self._emitted]
            rows.append(keep)
            self._emitted += len(keep)
            self._window_start += engine.hop
        # drop features no later window will read
        drop = self._window_start
        self._mel, self._window_start = self._mel[:, drop:], 0
        return np.concatenate(rows) if rows else np.zeros((0, len(MOUTH_CHANNELS)), dtype=np.float32)
