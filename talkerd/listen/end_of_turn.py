"""End of turn by prosody: has the visitor finished, or only paused?

Input: the last ``WINDOW_S`` of 16 kHz audio up to a short pause. Output: the probability that the turn
is complete. The model is Smart Turn v3.2 (pipecat-ai, BSD-2-Clause), one of the project's engines
(``engines/smart-turn``: ONNX Runtime here, TensorRT on the kiosk). It reads Whisper's log-mel features
of the window (80 mels, 25 ms windows every 10 ms, the log range clipped to 8 decades and scaled to
about ±1), computed here with numpy. The endpointer asks it at each short pause (``endpointer.pause_ms``)
and ends the utterance when it says the turn is complete.
"""
from __future__ import annotations

import functools
import logging
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

RATE = 16000
WINDOW_S = 8
N_FFT = 400
HOP = 160
N_MELS = 80
FRAMES = WINDOW_S * RATE // HOP  # 800
LOG_RANGE = 8.0
"""Whisper keeps 8 decades of log power below the loudest bin."""


class TurnDetector(Protocol):
    def complete_probability(self, audio: np.ndarray) -> float:
        """Probability that the visitor has finished, from float32 16 kHz samples (the end of the turn
        so far, up to ``WINDOW_S`` long)."""


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((mel - 15.0) * (np.log(6.4) / 27.0))
    return np.where(mel >= 15.0, log_part, linear)


@functools.lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """[N_MELS, N_FFT // 2 + 1] triangular filters from 0 to 8 kHz, each normalised to unit area
    (Slaney), as Whisper's feature extractor builds them."""
    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), N_MELS + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def log_mel_features(audio: np.ndarray) -> np.ndarray:
    """float32 [N_MELS, FRAMES] from the last ``WINDOW_S`` of ``audio`` (float32 at 16 kHz), padded with
    silence in front when shorter."""
    samples = np.asarray(audio, dtype=np.float32)[-WINDOW_S * RATE :]
    samples = np.concatenate([np.zeros(WINDOW_S * RATE - len(samples), np.float32), samples])
    samples = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)  # the model was trained on unit variance
    padded = np.pad(samples.astype(np.float64), N_FFT // 2, mode="reflect")
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann
    starts = np.arange(FRAMES) * HOP  # the centred STFT's last frame is dropped, as Whisper does
    frames = padded[starts[:, None] + np.arange(N_FFT)[None, :]] * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    log_mel = np.log10(np.maximum(mel_filters() @ power.T, 1e-10))
    log_mel = np.maximum(log_mel, log_mel.max() - LOG_RANGE)
    return ((log_mel + 4.0) / 4.0).astype(np.float32)


class SmartTurn:
    """Smart Turn on one of the project's engines (``input_features`` → ``logits``, already a probability)."""

    def __init__(self, engine) -> None:
        self._engine = engine

    @staticmethod
    def load(engines_cfg, name: str) -> "SmartTurn":
        """``ConfigError`` for a bad manifest, ``EngineError`` when the engine cannot run."""
        from ..engines import open_engine

        return SmartTurn(open_engine(engines_cfg, name))

    @property
    def engines(self) -> tuple:
        return (self._engine,)

    def complete_probability(self, audio: np.ndarray) -> float:
        features = log_mel_features(audio)[np.newaxis]
        outputs = self._engine.run({"input_features": features})
        return float(np.asarray(outputs["logits"]).reshape(-1)[0])

    def warm_up(self) -> None:
        self.complete_probability(np.zeros(RATE, np.float32))

    def close(self) -> None:
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()
