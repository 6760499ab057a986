"""Turns a clause (or a recording) into ``SpeechChunk``s: audio plus the mouth track that goes with it.

Mouth shapes come from the TTS's per-phoneme durations when it gave them (exact for our own voice),
else from the face engine run on the audio, else from the audio's loudness envelope — following
``face.source``.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import numpy as np

from .components import Components
from .messages import MOUTH_CHANNELS, Clause, Mark, PhonemeTiming, SpeechChunk, Turn

log = logging.getLogger(__name__)

RECORDING_CHUNK_S = 0.5


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate or len(audio) == 0:
        return audio
    positions = np.arange(0, len(audio) * target_rate / source_rate) * source_rate / target_rate
    return np.round(np.interp(positions, np.arange(len(audio)), audio.astype(np.float32))).astype(np.int16)


def envelope_mouth(audio: np.ndarray, sample_rate: int, fps: int) -> np.ndarray:
    """A jaw that follows loudness: the last resort for audio with neither durations nor a face engine."""
    frames = max(1, math.ceil(len(audio) / sample_rate * fps))
    mouth = np.zeros((frames, len(MOUTH_CHANNELS)), dtype=np.float32)
    hop = sample_rate / fps
    for frame in range(frames):
        block = audio[int(frame * hop) : int((frame + 1) * hop)].astype(np.float32) / 32768.0
        if len(block):
            dbfs = 20 * np.log10(np.sqrt(np.mean(block * block)) + 1e-9)
            mouth[frame, 0] = np.clip((dbfs + 45.0) / 30.0, 0.0, 1.0)
    return mouth


def shift_phonemes(phonemes, offset_s: float, duration_s: float) -> list[PhonemeTiming]:
    """The phonemes overlapping [offset, offset + duration), with times relative to the offset."""
    return [
        PhonemeTiming(p.phoneme, p.start_s - offset_s, p.duration_s)
        for p in phonemes
        if p.start_s + p.duration_s > offset_s and p.start_s < offset_s + duration_s
    ]


class SpeechMaker:
    def __init__(self, parts: Components, output_rate: int, fps: int) -> None:
        self._parts = parts
        self._rate = output_rate
        self._fps = fps
        self._source = parts.config.face.source

    def _mouth(self, audio: np.ndarray, sample_rate: int, phonemes) -> np.ndarray:
        duration = len(audio) / sample_rate
        face = self._parts.face
        use_engine = face is not None and (self._source == "engine" or not phonemes)
        if use_engine:
            return face.mouth_track(audio, sample_rate, self._fps)
        if phonemes:
            from .visemes import mouth_track

            return mouth_track(phonemes, self._fps, duration)
        return envelope_mouth(audio, sample_rate, self._fps)

    def from_clause(self, clause: Clause) -> Iterator[SpeechChunk]:
        turn = clause.turn
        tts = self._parts.tts
        if clause.last:
            yield SpeechChunk(turn, np.zeros(0, np.int16), self._rate, np.zeros((0, len(MOUTH_CHANNELS)), np.float32), self._fps, last=True)
            return
        if tts is None:
            return
        for piece in tts.synthesize(clause.text, cancelled=lambda: turn.is_cancelled):
            turn.mark(Mark.FIRST_AUDIO)
            phonemes = shift_phonemes(piece.phonemes, piece.offset_s, len(piece.audio) / piece.sample_rate)
            mouth = self._mouth(piece.audio, piece.sample_rate, phonemes)
            turn.mark(Mark.FIRST_FACE)
            audio = resample(piece.audio, piece.sample_rate, self._rate)
            yield SpeechChunk(turn, audio, self._rate, mouth, self._fps, text=clause.text)

    def from_recording(self, turn: Turn, audio: np.ndarray, sample_rate: int) -> Iterator[SpeechChunk]:
        audio = resample(audio, sample_rate, self._rate)
        step = int(RECORDING_CHUNK_S * self._rate)
        for start in range(0, len(audio), step):
            block = audio[start : start + step]
            turn.mark(Mark.FIRST_AUDIO)
            mouth = self._mouth(block, self._rate, ())
            turn.mark(Mark.FIRST_FACE)
            yield SpeechChunk(turn, block, self._rate, mouth, self._fps)
        yield SpeechChunk(turn, np.zeros(0, np.int16), self._rate, np.zeros((0, len(MOUTH_CHANNELS)), np.float32), self._fps, last=True)
