"""Measuring lip sync: what a visitor sees against what they hear.

``AudioCapture`` records the speaker (here, the PulseAudio monitor of the sink the daemon plays to; on
a kiosk, a microphone in front of it) with a monotonic time stamp per block. ``estimate_lag`` compares
the loudness envelope of that audio with the mouth opening read back from the rendered frames
(``talkerd.render.readback.OpeningRecorder``) and finds the shift that lines them up best. A positive
lag means the lips move after the sound.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from ..audio import StreamSpec, portaudio
from ..errors import ComponentUnavailable

log = logging.getLogger(__name__)

GRID_S = 0.005  # both tracks are resampled to this step before they are compared
ENVELOPE_WINDOW_S = 0.02


class AudioCapture:
    """Records an input device in a thread; each block is stamped with when its last sample was heard."""

    def __init__(self, device: str = "default", rate: int = 16000, block: int = 160) -> None:
        self.rate, self._block = rate, block
        try:
            self._stream = portaudio().open(StreamSpec(device, output=False, rate=rate, frames_per_buffer=block))
        except ComponentUnavailable as exc:
            raise ComponentUnavailable(f"cannot capture the speaker for the lip-sync measurement: {exc.message}") from None
        self._blocks: list[tuple[float, np.ndarray]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="talkerd-lipsync-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pcm = self._stream.read(self._block)
            except OSError as exc:
                log.warning("lip-sync capture stopped: %s", exc)
                return
            self._blocks.append((self._stream.captured_at(), np.frombuffer(pcm, dtype=np.int16)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._stream.close()

    def envelope(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, RMS level) of the audio heard between ``start`` and ``end`` (monotonic seconds)."""
        return envelope(list(self._blocks), self.rate, start, end)


def envelope(blocks: list[tuple[float, np.ndarray]], rate: int, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, RMS level) of ``blocks`` (time the block's last sample was heard, samples) between
    ``start`` and ``end``."""
    blocks = [(t, samples) for t, samples in blocks if start <= t <= end + 0.1]
    if not blocks:
        return np.zeros(0), np.zeros(0)
    audio = np.concatenate([samples for _, samples in blocks]).astype(np.float64) / 32768.0
    first_sample_at = blocks[0][0] - len(blocks[0][1]) / rate
    times = first_sample_at + np.arange(len(audio)) / rate
    window = max(1, int(ENVELOPE_WINDOW_S * rate))
    level = np.sqrt(np.convolve(audio**2, np.ones(window) / window, mode="same"))
    return times, level


@dataclass(frozen=True)
class LagEstimate:
    lag_ms: float
    """How much later the lips move than the sound (negative: earlier)."""
    correlation: float
    """Normalised correlation at that lag (how alike the two tracks are)."""


def _on_grid(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    resampled = np.interp(grid, times, values)
    spread = resampled.std()
    return (resampled - resampled.mean()) / spread if spread > 0 else resampled * 0.0


def estimate_lag(video: np.ndarray, audio_times: np.ndarray, audio_level: np.ndarray, max_lag_s: float = 0.3) -> LagEstimate:
    """Best shift of the mouth-opening track ``video`` ([frames, 2]: time shown, opening) against the
    audio envelope, searched within ±``max_lag_s``."""
    if len(video) < 4 or len(audio_times) < 4:
        raise ValueError("too little video or audio to compare")
    start = max(video[0, 0], audio_times[0]) + max_lag_s
    end = min(video[-1, 0], audio_times[-1]) - max_lag_s
    if end - start < 1.0:
        raise ValueError("the video and the audio overlap by less than a second")
    grid = np.arange(start, end, GRID_S)
    sound = _on_grid(audio_times, audio_level, grid)
    best = LagEstimate(0.0, -1.0)
    steps = int(max_lag_s / GRID_S)
    for step in range(-steps, steps + 1):
        lips = _on_grid(video[:, 0], video[:, 1], grid + step * GRID_S)
        correlation = float(np.mean(sound * lips))
        if correlation > best.correlation:
            best = LagEstimate(step * GRID_S * 1000.0, correlation)
    return best
