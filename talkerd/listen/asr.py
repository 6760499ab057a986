"""Streaming speech recognition with vosk.

Input: 16-bit mono PCM of one utterance, fed as it arrives. Output: partial text while the visitor
speaks, and one final text (with word times) when the endpointer says the utterance is over.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..config import AsrConfig
from ..errors import ComponentUnavailable
from ..memory.trim import release_free_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recognition:
    text: str
    words: tuple[tuple[str, float, float], ...]
    """(word, start s, end s), relative to the first audio fed."""


class VoskAsr:
    """One vosk model and one recogniser, reset per utterance and renewed now and then (``idle``)."""

    def __init__(self, model, sample_rate: int, *, renew_after_utterances: int = 0) -> None:
        self._model = model
        self._sample_rate = sample_rate
        self._renew_after = renew_after_utterances
        self._since_renewal = 0
        self.renewals = 0
        """Fresh recognisers made since the start (status, the tests)."""
        self._recognizer = self._new_recognizer()
        self._segments: list[dict] = []
        self._partial = ""

    @staticmethod
    def load(config: AsrConfig, sample_rate: int) -> "VoskAsr":
        import vosk

        vosk.SetLogLevel(-1)
        if not Path(config.model, "conf").is_dir() and not Path(config.model, "am").is_dir():
            raise ComponentUnavailable(f"asr.model: {config.model} is not a vosk model directory")
        try:
            model = vosk.Model(str(config.model))  # a path: Model(lang=...) would try to download
        except Exception as exc:  # vosk raises a bare Exception when the model does not load
            raise ComponentUnavailable(f"asr.model: vosk could not load {config.model}: {exc}") from exc
        return VoskAsr(model, sample_rate, renew_after_utterances=config.renew_after_utterances)

    def _new_recognizer(self):
        import vosk

        recognizer = vosk.KaldiRecognizer(self._model, self._sample_rate)
        recognizer.SetWords(True)
        return recognizer

    def start(self) -> None:
        """Begin a new utterance."""
        self._recognizer.Reset()
        self._segments = []
        self._partial = ""

    def accept(self, pcm: bytes) -> str | None:
        """Feed audio; return the new partial text when it changed."""
        if self._recognizer.AcceptWaveform(pcm):
            # vosk found a pause of its own inside the utterance: keep that segment and go on.
            self._segments.append(json.loads(self._recognizer.Result()))
            text = self._joined_text("")
        else:
            text = self._joined_text(json.loads(self._recognizer.PartialResult()).get("partial", ""))
        if text == self._partial:
            return None
        self._partial = text
        return text

    def finish(self) -> Recognition:
        """End the utterance and return its final text."""
        self._segments.append(json.loads(self._recognizer.FinalResult()))
        words = tuple(
            (w["word"], float(w["start"]), float(w["end"])) for segment in self._segments for w in segment.get("result", [])
        )
        result = Recognition(self._joined_text(""), words)
        self._segments = []
        self._partial = ""
        self._since_renewal += 1
        return result

    def idle(self) -> None:
        """A quiet moment: after ``renew_after_utterances`` utterances, drop the recogniser for a fresh
        one. A lookahead model composes its decoding graph on the fly and caches what it composed inside
        the recogniser; ``Reset`` keeps that cache, so it only grows (measured: +165 MiB of C heap over
        120 utterances with one recogniser, flat with a fresh one per utterance)."""
        if not self._renew_after or self._since_renewal < self._renew_after:
            return
        self._recognizer = self._new_recognizer()  # the old one, and its cache, are freed here
        release_free_memory()  # and given back to the system, or the process would stay as large
        log.info("asr: a fresh recogniser after %d utterances (its graph cache is let go)", self._since_renewal,
                 extra={"stage": "asr"})
        self._since_renewal = 0
        self.renewals += 1

    def _joined_text(self, partial: str) -> str:
        parts = [segment.get("text", "") for segment in self._segments] + [partial]
        return " ".join(part for part in parts if part).strip()
