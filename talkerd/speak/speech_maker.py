"""Turns a clause (or a recording) into ``SpeechChunk``s: audio plus the mouth track that goes with it.

Mouth shapes come from the TTS's per-phoneme durations when it gave them (exact for our own voice),
else from the face engine run on the audio, else from the audio's loudness envelope — following
``face.source``. A clause the speech cache holds (a fixed answer, ``prerendered.py``) plays from there.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np

from ..audio import resample
from . import visemes
from .mouth_engine import MouthSource, envelope_track, select_mouth_source
from .prerendered import RenderedClause, RenderedPiece, SpeechCache, voice_key
from ..messages import Clause, Mark, PhonemeTiming, SpeechChunk, Turn
from ..mouth import frame_at, frame_count
from ..stages import MouthEngine, Synthesiser

log = logging.getLogger(__name__)

RECORDING_CHUNK_S = 0.5


def shift_phonemes(phonemes, offset_s: float, duration_s: float) -> list[PhonemeTiming]:
    """The phonemes overlapping [offset, offset + duration), with times relative to the offset."""
    return [
        PhonemeTiming(p.phoneme, p.start_s - offset_s, p.duration_s)
        for p in phonemes
        if p.start_s + p.duration_s > offset_s and p.start_s < offset_s + duration_s
    ]


class SpeechMaker:
    """Clauses and recordings → ``SpeechChunk``s at the output's rate, with mouth tracks at ``fps``."""

    def __init__(self, tts: Synthesiser | None, face: MouthEngine | None, face_config, output_rate: int, fps: int,
                 cache: SpeechCache | None = None) -> None:
        self._tts = tts
        self._face = face
        self._rate = output_rate
        self._fps = fps
        self._face_cfg = face_config
        self.cache = cache
        """Pre-rendered fixed clauses; None renders every clause when it is spoken."""
        self._set_cache_voice()

    def swap_engines(self, tts: Synthesiser | None, face: MouthEngine | None) -> None:
        """The seam for an engine update without a restart: the next clause uses the new engines (one
        being spoken finishes on the old ones, which the caller closes once it is done)."""
        self._tts, self._face = tts, face
        self._set_cache_voice()

    def _set_cache_voice(self) -> None:
        if self.cache is None:
            return
        engines = [(e.name, e.manifest.version, e.manifest.sha256) for part in (self._tts, self._face)
                   for e in (getattr(part, "engines", ()) or ())]
        settings = getattr(self._tts, "cfg", None)
        self.cache.set_voice(voice_key([engines, settings, self._face_cfg, self._rate, self._fps]))

    # -- fixed answers, ahead of time ---------------------------------------------------------------
    def prerender(self, texts) -> None:
        """The fixed clauses to have ready (``prerender_one`` renders them one at a time)."""
        if self.cache is not None:
            self.cache.want(texts)

    def prerender_one(self, interrupted: Callable[[], bool] = lambda: False) -> bool:
        """Render (or load from disk) the next wanted clause; False when there is nothing to do. Stops
        without keeping anything when ``interrupted`` says a visitor's answer needs the voice."""
        cache, tts = self.cache, self._tts
        text = cache.next_wanted() if cache is not None and tts is not None else None
        if text is None:
            return False
        stored = cache.load(text)
        if stored is not None:
            cache.put(text, stored, store=False)
            return True
        pieces = []
        try:
            for piece in tts.synthesize(text, cancelled=interrupted):
                pieces.append(self._rendered(piece))
        except Exception as exc:  # the voice failing on a text is the live path's problem too: log it there
            log.warning("could not pre-render %r: %s", text[:60], exc, extra={"stage": "tts"})
            cache.give_up(text)
            return True
        if not interrupted() and pieces:
            cache.put(text, RenderedClause(tuple(pieces)))
        return True

    def said(self, text: str, cancelled: Callable[[], bool] = lambda: False) -> tuple[np.ndarray, int] | None:
        """``text`` in the voice, as one array at the voice's own rate, without a mouth track (the
        recogniser's warm-up speech); None without a voice, or when the voice fails on it."""
        tts = self._tts
        if tts is None:
            return None
        try:
            pieces = list(tts.synthesize(text, cancelled=cancelled))
        except Exception as exc:  # as for a pre-rendered clause: the live path logs the voice's failures
            log.warning("could not say %r: %s", text[:60], exc, extra={"stage": "tts"})
            return None
        if not pieces:
            return None
        rate = pieces[0].sample_rate
        return np.concatenate([resample(piece.audio, piece.sample_rate, rate) for piece in pieces]), rate

    def _rendered(self, piece) -> RenderedPiece:
        phonemes = shift_phonemes(piece.phonemes, piece.offset_s, len(piece.audio) / piece.sample_rate)
        mouth = self.mouth_track(piece.audio, piece.sample_rate, phonemes)
        return RenderedPiece(resample(piece.audio, piece.sample_rate, self._rate), mouth)

    def mouth_track(self, audio: np.ndarray, sample_rate: int, phonemes) -> np.ndarray:
        """The mouth track for ``audio``, from the source ``face.source`` picks for it."""
        face = self._face
        source = select_mouth_source(self._face_cfg, bool(phonemes), face is not None)
        if source is MouthSource.DURATIONS:
            return visemes.mouth_track(phonemes, self._fps, len(audio) / sample_rate)
        if source is MouthSource.ENGINE:
            return face.mouth_track(audio, sample_rate, self._fps)
        return envelope_track(audio, sample_rate, self._fps)

    def from_clause(self, clause: Clause) -> Iterator[SpeechChunk]:
        turn = clause.turn
        tts = self._tts
        if tts is None:
            return
        ready = self.cache.get(clause.text) if self.cache is not None else None
        pieces = iter(ready.pieces) if ready is not None else self._live(clause)
        for piece in pieces:
            turn.mark(Mark.FIRST_AUDIO)
            turn.mark(Mark.FIRST_FACE)
            yield SpeechChunk(turn, piece.audio, self._rate, piece.mouth, self._fps, text=clause.text)

    def _live(self, clause: Clause) -> Iterator[RenderedPiece]:
        for piece in self._tts.synthesize(clause.text, cancelled=lambda: clause.turn.is_cancelled):
            clause.turn.mark(Mark.FIRST_AUDIO)
            yield self._rendered(piece)

    def from_recording(self, turn: Turn, audio: np.ndarray, sample_rate: int) -> Iterator[SpeechChunk]:
        """A recording in chunks; its mouth track is computed once over the whole file (the face
        engine needs the audio around each moment, so chunk edges must not cut its view)."""
        audio = resample(audio, sample_rate, self._rate)
        mouth = self.mouth_track(audio, self._rate, ())
        turn.mark(Mark.FIRST_AUDIO)
        turn.mark(Mark.FIRST_FACE)
        step = int(RECORDING_CHUNK_S * self._rate)
        for start in range(0, len(audio), step):
            first_frame = frame_at(start / self._rate, self._fps)
            last_frame = frame_count(min(start + step, len(audio)) / self._rate, self._fps)
            yield SpeechChunk(turn, audio[start : start + step], self._rate, mouth[first_frame:last_frame], self._fps)
