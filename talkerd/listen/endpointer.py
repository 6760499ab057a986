"""Voice activity and end-of-utterance detection.

Input: 16 kHz mono audio frames. Output, per frame, an ``EndpointEvent`` when something changed: speech
started (after ``min_speech_ms`` of voiced audio); a short pause (``pause_ms``) began, or speech resumed
after one; or the utterance ended — at the short pause when the end-of-turn model (``end_of_turn.py``)
says the visitor has finished, else after ``min_silence_ms`` of silence, or at ``max_utterance_s``. The
end carries the time of the last voiced frame, which is the true end of the visitor's speech that latency
is measured from.
"""
from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import EndpointerConfig
from ..errors import ComponentUnavailable
from ..messages import AudioFrame, Utterance
from .end_of_turn import RATE as TURN_RATE, WINDOW_S, TurnDetector

log = logging.getLogger(__name__)

PAUSED = "paused"
"""``_ended_by``'s answer at the start of a short pause that does not end the utterance."""
ONSET_GAP_S = 0.12  # a gap longer than this before speech has started resets the onset

SILERO_RATE = 16000
SILERO_WINDOW = 512  # samples per Silero call at 16 kHz
SILERO_CONTEXT = 64  # samples of the previous window the v5 model expects in front of each window


class SpeechDetector(Protocol):
    def speech_probability(self, samples: np.ndarray) -> float:
        """Probability that a block of float32 samples (-1..1) at 16 kHz contains speech."""


class SileroDetector:
    """The Silero VAD (MIT) on ONNX Runtime; keeps its recurrent state between calls."""

    def __init__(self, model_path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt models
            raise ComponentUnavailable(f"cannot load the VAD model {model_path}: {exc}") from exc
        self._last_probability = 0.0
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(SILERO_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # or the next window would start inside the old audio

    def speech_probability(self, samples: np.ndarray) -> float:
        # Frames are 10–30 ms but the model wants 32 ms windows: buffer, and report the latest window's
        # probability (a frame that completes no window keeps the previous one).
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= SILERO_WINDOW:
            window, self._pending = self._pending[:SILERO_WINDOW], self._pending[SILERO_WINDOW:]
            model_input = np.concatenate([self._context, window])[np.newaxis, :]
            output, self._state = self._session.run(
                None, {"input": model_input, "state": self._state, "sr": np.array(SILERO_RATE, dtype=np.int64)}
            )
            self._context = window[-SILERO_CONTEXT:]
            self._last_probability = float(output[0][0])
        return self._last_probability


class EnergyDetector:
    """A plain level detector: maps RMS in dBFS to 0..1 around a threshold. For quiet rooms only."""

    def __init__(self, speech_dbfs: float = -35.0) -> None:
        self._speech_dbfs = speech_dbfs

    def speech_probability(self, samples: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(np.square(samples)) + 1e-12))
        dbfs = 20.0 * np.log10(rms)
        return float(1.0 / (1.0 + np.exp(-(dbfs - self._speech_dbfs) / 3.0)))


def default_vad_model() -> Path:
    """The Silero model shipped in the silero-vad package (installed without its torch dependency)."""
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ComponentUnavailable("the silero-vad package is not installed and endpointer.vad_model is not set")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad_16k_op15.onnx"


def make_detector(config: EndpointerConfig) -> SpeechDetector:
    if config.vad == "energy":
        return EnergyDetector()
    return SileroDetector(config.vad_model or default_vad_model())


class EndpointKind(enum.Enum):
    SPEECH_START = "speech_start"
    PAUSE = "pause"
    """``pause_ms`` of silence inside an utterance that did not end there (once per pause)."""
    RESUMED = "resumed"
    """Speech again after a ``PAUSE``: the visitor had not finished."""
    UTTERANCE_END = "utterance_end"


@dataclass(frozen=True)
class EndpointEvent:
    kind: EndpointKind
    utterance: Utterance | None = None


class Endpointer:
    """A small state machine over per-frame speech probabilities, with hysteresis; at each short pause
    it asks ``turn`` (when given) whether the turn is complete."""

    def __init__(self, config: EndpointerConfig, detector: SpeechDetector, turn: TurnDetector | None = None) -> None:
        self._config = config
        self._detector = detector
        self._turn = turn
        self._release = max(0.15, config.threshold - 0.15)  # below this a frame is silence
        self._recent: deque[np.ndarray] = deque()
        self._recent_samples = 0
        self.last_turn_probability: float | None = None
        """The end-of-turn model's verdict at the latest pause (status, tests)."""
        self.reset()

    @property
    def engines(self) -> tuple:
        return tuple(getattr(self._turn, "engines", ()))

    def reset(self) -> None:
        self._in_speech = False
        self._voiced_s = 0.0
        self._gap_s = 0.0
        self._silence_s = 0.0
        self._speech_start = 0.0
        self._last_voiced = 0.0
        self._in_pause = False
        if hasattr(self._detector, "reset"):
            self._detector.reset()

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, frame: AudioFrame) -> EndpointEvent | None:
        samples = np.frombuffer(frame.pcm, dtype=np.int16).astype(np.float32) / 32768.0
        if self._turn is not None:
            self._remember(samples)
        probability = self._detector.speech_probability(samples)
        duration = frame.duration_s
        if not self._in_speech:
            return self._while_silent(frame, probability, duration)
        return self._while_speaking(frame, probability, duration)

    def _while_silent(self, frame: AudioFrame, probability: float, duration: float) -> EndpointEvent | None:
        if probability < self._config.threshold:
            # Short dips between syllables do not restart the count; a real pause does.
            self._gap_s += duration
            if self._gap_s > ONSET_GAP_S:
                self._voiced_s = 0.0
            return None
        if self._voiced_s == 0.0:
            self._speech_start = frame.captured_at - duration
        self._gap_s = 0.0
        self._voiced_s += duration
        self._last_voiced = frame.captured_at
        if self._voiced_s * 1000.0 < self._config.min_speech_ms:
            return None
        self._in_speech = True
        self._silence_s = 0.0
        return EndpointEvent(EndpointKind.SPEECH_START)

    def _while_speaking(self, frame: AudioFrame, probability: float, duration: float) -> EndpointEvent | None:
        if probability >= self._release:
            resumed = self._in_pause
            self._silence_s = 0.0
            self._last_voiced = frame.captured_at
            self._in_pause = False
            if resumed:
                return EndpointEvent(EndpointKind.RESUMED)
        else:
            self._silence_s += duration
        ended_by = self._ended_by(frame)
        if ended_by is None:
            return None
        if ended_by == PAUSED:
            return EndpointEvent(EndpointKind.PAUSE)
        utterance = Utterance(self._speech_start, self._last_voiced, frame.captured_at, ended_by)
        self._in_speech = False
        self._in_pause = False
        self._voiced_s = 0.0
        self._silence_s = 0.0
        return EndpointEvent(EndpointKind.UTTERANCE_END, utterance)

    def _ended_by(self, frame: AudioFrame) -> str | None:
        """Why the utterance ends at this frame, ``PAUSED`` when a short pause begins here, or None."""
        if frame.captured_at - self._speech_start >= self._config.max_utterance_s:
            return "length"
        silence_ms = self._silence_s * 1000.0
        if silence_ms >= self._config.min_silence_ms:
            return "silence"
        if silence_ms < self._config.pause_ms or self._in_pause:
            return None
        self._in_pause = True  # once per pause: the model's answer does not change as the silence grows
        if self._turn is not None:
            self.last_turn_probability = self._turn.complete_probability(np.concatenate(self._recent))
            log.debug("end of turn? %.2f after %.0f ms of pause", self.last_turn_probability, silence_ms)
            if self.last_turn_probability >= self._config.turn_threshold:
                return "turn model"
        return PAUSED

    def _remember(self, samples: np.ndarray) -> None:
        """The last ``WINDOW_S`` of audio, for the end-of-turn model."""
        self._recent.append(samples)
        self._recent_samples += len(samples)
        while self._recent_samples - len(self._recent[0]) >= WINDOW_S * TURN_RATE:
            self._recent_samples -= len(self._recent.popleft())
