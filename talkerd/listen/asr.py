"""Streaming speech recognition with vosk.

Input: 16-bit mono PCM of one utterance, fed as it arrives. Output: partial text while the visitor
speaks, and one final text (with word times) when the endpointer says the utterance is over.

A fresh recogniser is slow at first: vosk's lookahead models compose their decoding graph on the fly
and cache what they composed in the recogniser. So a recogniser is replaced (at start, once the warm-up
speech is given, and in a quiet spell after ``renew_after_utterances``) by one made in the background,
which has first decoded the warm-up speech — the venue's own questions in the kiosk's voice — and takes
over only between two utterances.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import resample
from ..config import AsrConfig
from ..errors import ComponentUnavailable
from ..memory.trim import release_free_memory

log = logging.getLogger(__name__)

WARM_UP_BLOCK_S = 0.2
"""Warm-up audio is decoded in blocks this long; between two, it waits while a visitor is heard."""


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
        """Recognisers replaced by a fresh one since the start (status, the tests)."""
        self._recognizer = self._new_recognizer()
        self._segments: list[dict] = []
        self._partial = ""
        self._warm_up: tuple[bytes, ...] = ()
        # The listener thread owns the recogniser in use; the renewal thread swaps it only while no
        # utterance is being heard, under this condition (which ``finish`` and ``abandon`` notify).
        self._quiet = threading.Condition()
        self._hearing = False
        self._renewal: threading.Thread | None = None
        self._closing = False

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

    # -- one utterance (the listener thread) --------------------------------------------------------
    def start(self) -> None:
        """Begin a new utterance."""
        with self._quiet:
            self._hearing = True
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
        with self._quiet:
            self._since_renewal += 1
            self._hearing = False
            self._quiet.notify_all()
        return result

    def abandon(self) -> None:
        """The utterance is dropped unfinished (the microphone went, the avatar began to speak)."""
        self._segments, self._partial = [], ""
        with self._quiet:
            self._hearing = False
            self._quiet.notify_all()

    def _joined_text(self, partial: str) -> str:
        parts = [segment.get("text", "") for segment in self._segments] + [partial]
        return " ".join(part for part in parts if part).strip()

    # -- renewal ------------------------------------------------------------------------------------
    def warm_up(self, audio: Sequence[np.ndarray], sample_rate: int) -> None:
        """Speech (int16, one array per utterance) that every fresh recogniser decodes before it takes
        over; the recogniser in use, cold or not, is replaced by a warmed one."""
        self._warm_up = tuple(resample(np.asarray(a, dtype=np.int16), sample_rate, self._sample_rate).tobytes()
                              for a in audio)
        if self._warm_up:
            self._renew("warm-up speech given")

    def idle(self) -> None:
        """A quiet moment: after ``renew_after_utterances`` utterances, replace the recogniser. ``Reset``
        keeps the graph cache, so it only grows (measured: +165 MiB of C heap over 120 utterances with one
        recogniser, flat with a fresh one per utterance)."""
        if self._renew_after and self._since_renewal >= self._renew_after:
            self._renew(f"{self._since_renewal} utterances")

    @property
    def renewing(self) -> bool:
        """A fresh recogniser is being made and warmed."""
        return self._renewal is not None and self._renewal.is_alive()

    def wait_renewed(self, timeout_s: float) -> bool:
        """Until no renewal is under way (tests, the benches); False on timeout."""
        renewal = self._renewal
        if renewal is not None:
            renewal.join(timeout_s)
        return not self.renewing

    def close(self) -> None:
        """Stop a renewal under way (its fresh recogniser is dropped); the recogniser in use stays."""
        with self._quiet:
            self._closing = True
            self._quiet.notify_all()
        self.wait_renewed(5.0)

    def _renew(self, why: str) -> None:
        if self.renewing or self._closing:
            return  # the one under way goes on; the next one decodes the newest warm-up speech
        self._renewal = threading.Thread(target=self._replace, args=(why,), name="talkerd-asr-renewal", daemon=True)
        self._renewal.start()

    def _replace(self, why: str) -> None:
        started = time.monotonic()
        try:
            fresh = self._new_recognizer()
            warm_up = self._warm_up
            for pcm in warm_up:
                if not self._decode_between_utterances(fresh, pcm):
                    return
        except Exception as exc:  # vosk raises bare Exceptions; the recogniser in use goes on as it is
            log.warning("asr: no fresh recogniser (%s): %s", why, exc, extra={"stage": "asr"})
            return
        with self._quiet:
            if not self._wait_for_quiet():
                return
            old, self._recognizer = self._recognizer, fresh
            utterances, self._since_renewal = self._since_renewal, 0
            self.renewals += 1
        del old  # the old recogniser and its graph cache are freed here,
        release_free_memory()  # and given back to the system, or the process would stay as large
        log.info("asr: a fresh recogniser (%s; %d utterances on the old one), warmed on %d utterances in %.1f s",
                 why, utterances, len(warm_up), time.monotonic() - started, extra={"stage": "asr"})

    def _decode_between_utterances(self, recognizer, pcm: bytes) -> bool:
        """Decode one warm-up utterance, waiting while a visitor is heard (the live recogniser comes
        first on a CPU the two share); False when closing."""
        block = int(WARM_UP_BLOCK_S * self._sample_rate) * 2
        recognizer.Reset()
        for offset in range(0, len(pcm), block):
            with self._quiet:
                if not self._wait_for_quiet():
                    return False
            recognizer.AcceptWaveform(pcm[offset : offset + block])
        recognizer.FinalResult()
        return True

    def _wait_for_quiet(self) -> bool:
        """With ``_quiet`` held: until no utterance is being heard; False when closing instead."""
        while self._hearing and not self._closing:
            self._quiet.wait()
        return not self._closing
