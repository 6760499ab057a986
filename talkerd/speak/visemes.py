"""Mouth shapes from timed phonemes: the espeak IPA → mouth-vector table and the co-articulated track.

The TTS engine reports one timing per phoneme entry of the Piper phonemizer (espeak-ng IPA). Stress
marks (ˈ ˌ) and modifiers (ː ʲ ˞ and combining marks) arrive as entries of their own with a real
duration; they are folded into the phoneme they belong to, otherwise the mouth would snap shut in the
middle of a word. ``mouth_track`` turns the folded segments into one mouth vector per video frame
(columns ``MOUTH_CHANNELS``), sampled at frame centres.

Table (jaw_open, lips_closed, lips_round, lips_wide), all 0..1, rest pose (0, 0, 0, 0):

| group | phonemes | shape |
|---|---|---|
| open vowels | ɑ a æ ʌ ɒ ɐ | jaw 0.55–0.85, æ spread, ɒ slightly round |
| mid vowels | ɛ e ə ɚ ɜ ɔ o | jaw 0.35–0.6; ɛ e spread; ɔ o round |
| close vowels | i ɪ ᵻ u ʊ | jaw 0.2–0.35; i ɪ spread; u ʊ round |
| bilabials | p b m | lips closed 1, jaw 0.02 — always shown closed for at least one frame |
| labiodentals | f v | jaw 0.1, lips 0.35 closed (lower lip on the teeth), slightly spread |
| rounded consonants | w ʃ ʒ ɹ | rounded, jaw 0.1–0.2 |
| other consonants | t d n l ɾ s z θ ð k ɡ ŋ h j ʔ | jaw 0.1–0.35, mostly slightly spread |
| pauses | punctuation, ^ $ _, word gaps ≥ 150 ms | rest |

An unknown phoneme gets ``NEUTRAL_OPEN`` (a relaxed, half-open mouth) and a debug log, never an error.
"""
from __future__ import annotations

import functools
import logging
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..messages import PhonemeTiming
from ..mouth import MOUTH_CHANNELS, REST, closure_frames, frame_centres, frame_count
from .phonemes import SUFFIX_CATEGORIES, fold_marks, is_silence

log = logging.getLogger(__name__)

"""Mouth at rest: closed, relaxed lips."""
NEUTRAL_OPEN = (0.35, 0.0, 0.0, 0.1)
"""The shape used for a phoneme the table does not know: a relaxed, half-open mouth."""
BILABIAL = (0.02, 1.0, 0.0, 0.0)
"""p, b, m: lips pressed together."""

# phoneme → (jaw_open, lips_closed, lips_round, lips_wide)
VISEMES: dict[str, tuple[float, float, float, float]] = {
    # vowels
    "ɑ": (0.85, 0.0, 0.05, 0.1),
    "a": (0.80, 0.0, 0.0, 0.2),
    "æ": (0.70, 0.0, 0.0, 0.45),
    "ʌ": (0.60, 0.0, 0.0, 0.15),
    "ɒ": (0.75, 0.0, 0.35, 0.0),
    "ɐ": (0.55, 0.0, 0.0, 0.1),
    "ɛ": (0.55, 0.0, 0.0, 0.5),
    "e": (0.45, 0.0, 0.0, 0.6),
    "ə": (0.40, 0.0, 0.0, 0.1),
    "ɚ": (0.35, 0.0, 0.35, 0.0),
    "ɜ": (0.45, 0.0, 0.25, 0.05),
    "ɝ": (0.45, 0.0, 0.3, 0.0),
    "ɔ": (0.60, 0.0, 0.6, 0.0),
    "o": (0.50, 0.0, 0.8, 0.0),
    "ɪ": (0.35, 0.0, 0.0, 0.55),
    "i": (0.25, 0.0, 0.0, 0.8),
    "ᵻ": (0.30, 0.0, 0.0, 0.4),
    "ɨ": (0.30, 0.0, 0.0, 0.4),
    "ʊ": (0.30, 0.0, 0.7, 0.0),
    "u": (0.25, 0.0, 0.9, 0.0),
    "y": (0.25, 0.0, 0.9, 0.0),
    # diphthongs, for a phonemizer that emits them as one entry (Piper sends their parts separately)
    "aɪ": (0.70, 0.0, 0.0, 0.35),
    "aʊ": (0.70, 0.0, 0.35, 0.1),
    "eɪ": (0.45, 0.0, 0.0, 0.6),
    "oʊ": (0.45, 0.0, 0.8, 0.0),
    "ɔɪ": (0.55, 0.0, 0.45, 0.2),
    "ɪə": (0.35, 0.0, 0.0, 0.4),
    "ɛə": (0.50, 0.0, 0.0, 0.35),
    "ʊə": (0.35, 0.0, 0.6, 0.0),
    # consonants
    "p": BILABIAL,
    "b": BILABIAL,
    "m": BILABIAL,
    "f": (0.10, 0.35, 0.0, 0.2),
    "v": (0.10, 0.35, 0.0, 0.2),
    "θ": (0.20, 0.0, 0.0, 0.2),
    "ð": (0.20, 0.0, 0.0, 0.2),
    "t": (0.20, 0.0, 0.0, 0.3),
    "d": (0.20, 0.0, 0.0, 0.3),
    "n": (0.20, 0.0, 0.0, 0.25),
    "l": (0.25, 0.0, 0.0, 0.25),
    "ɫ": (0.25, 0.0, 0.1, 0.1),
    "ɾ": (0.25, 0.0, 0.0, 0.25),
    "s": (0.10, 0.0, 0.0, 0.5),
    "z": (0.10, 0.0, 0.0, 0.5),
    "ʃ": (0.15, 0.0, 0.6, 0.0),
    "ʒ": (0.15, 0.0, 0.6, 0.0),
    "tʃ": (0.15, 0.0, 0.6, 0.0),
    "dʒ": (0.15, 0.0, 0.6, 0.0),
    "ç": (0.15, 0.0, 0.0, 0.4),
    "k": (0.30, 0.0, 0.0, 0.15),
    "ɡ": (0.30, 0.0, 0.0, 0.15),
    "g": (0.30, 0.0, 0.0, 0.15),
    "x": (0.30, 0.0, 0.0, 0.15),
    "ŋ": (0.25, 0.0, 0.0, 0.15),
    "h": (0.35, 0.0, 0.0, 0.1),
    "j": (0.20, 0.0, 0.0, 0.6),
    "w": (0.15, 0.0, 0.95, 0.0),
    "ʍ": (0.15, 0.0, 0.95, 0.0),
    "ɹ": (0.20, 0.0, 0.45, 0.0),
    "r": (0.20, 0.0, 0.3, 0.0),
    "ʔ": (0.10, 0.0, 0.0, 0.0),
}

BILABIALS = frozenset({"p", "b", "m"})
WORD_GAP = " "
WORD_GAP_PAUSE_S = 0.15
"""A word gap at least this long is a pause (rest pose); shorter gaps are shared by the neighbours."""
BLEND_S = 0.06
"""Co-articulation: shapes cross-fade over up to this long on each side of a phoneme boundary."""


@dataclass(frozen=True)
class Segment:
    """A folded phoneme (or a pause) with its time span."""

    phoneme: str
    """The phoneme as looked up in the table; ``"_"`` for a pause."""
    start_s: float
    """Start, seconds from the start of the audio."""
    end_s: float
    """End, seconds from the start of the audio."""

    @property
    def is_pause(self) -> bool:
        return self.phoneme == "_"

    @property
    def is_bilabial(self) -> bool:
        return self.phoneme in BILABIALS


def _strip_marks(symbol: str) -> str:
    return "".join(ch for ch in symbol if unicodedata.category(ch) not in SUFFIX_CATEGORIES)


@functools.lru_cache(maxsize=512)
def shape_of(phoneme: str) -> tuple[float, float, float, float]:
    """The target mouth vector of one phoneme; unknown phonemes get ``NEUTRAL_OPEN`` (logged once)."""
    if phoneme == "_":
        return tuple(REST)
    for candidate in (phoneme, _strip_marks(phoneme)):
        if candidate in VISEMES:
            return VISEMES[candidate]
    log.debug("no mouth shape for phoneme %r; using a neutral open mouth", phoneme)
    return NEUTRAL_OPEN


def fold_phonemes(phonemes: Iterable[PhonemeTiming]) -> list[Segment]:
    """Fold the marks into their phonemes (``phonemes.fold_marks``), share short word gaps between
    the neighbouring phonemes and merge pauses; returns segments in time order."""
    raw: list[list] = []  # [symbol, start, end]; symbol "_" pause, " " short word gap
    for item in fold_marks(phonemes):
        symbol, start, end = item.phoneme, item.start_s, item.start_s + item.duration_s
        if symbol == WORD_GAP and end - start < WORD_GAP_PAUSE_S:
            kind = WORD_GAP
        elif is_silence(symbol):
            kind = "_"
        else:
            kind = _strip_marks(symbol)
        if raw and raw[-1][2] < start - 1e-9:
            raw.append(["_", raw[-1][2], start])  # a gap in the timings is silence
        raw.append([kind, start, end])
    _share_word_gaps(raw)
    segments: list[Segment] = []
    for symbol, start, end in raw:
        if end <= start:
            continue
        if segments and symbol == "_" and segments[-1].is_pause:
            segments[-1] = Segment("_", segments[-1].start_s, end)
        else:
            segments.append(Segment(symbol, start, end))
    return segments


def _share_word_gaps(raw: list[list]) -> None:
    """A short gap between two words is co-articulation, not silence: split it between the phonemes."""
    for i, entry in enumerate(raw):
        if entry[0] != WORD_GAP:
            continue
        prev_ok = i > 0 and raw[i - 1][0] not in ("_", WORD_GAP)
        next_ok = i + 1 < len(raw) and raw[i + 1][0] not in ("_", WORD_GAP)
        if prev_ok and next_ok:
            middle = (entry[1] + entry[2]) / 2
            raw[i - 1][2], raw[i + 1][1] = middle, middle
            entry[2] = entry[1]  # now empty; dropped
        elif prev_ok:
            raw[i - 1][2] = entry[2]
            entry[2] = entry[1]
        elif next_ok:
            raw[i + 1][1] = entry[1]
            entry[2] = entry[1]
        else:
            entry[0] = "_"


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def mouth_track(phonemes: Sequence[PhonemeTiming], fps: int, duration_s: float) -> np.ndarray:
    """One mouth vector per video frame, float32 [ceil(duration_s × fps), len(MOUTH_CHANNELS)].

    Frame k shows the mouth at time (k + 0.5) / fps. Shapes cross-fade (smoothstep) across each
    boundary over up to ``BLEND_S`` on either side, never more than half of either phoneme, so every
    phoneme long enough reaches its target; every p, b and m is shown fully closed on at least one
    frame even when it is shorter than a frame. Pauses and time outside the phonemes are the rest pose.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, not {fps}")
    n = frame_count(duration_s, fps)
    track = np.zeros((n, len(MOUTH_CHANNELS)), dtype=np.float32)
    segments = fold_phonemes(phonemes)
    if n == 0 or not segments:
        return track
    # Pad with rest so the first and last phonemes blend from and to the rest pose.
    first, last = segments[0].start_s, segments[-1].end_s
    segments = [Segment("_", first - 1.0, first), *segments, Segment("_", last, max(last, duration_s) + 1.0)]
    starts = np.array([s.start_s for s in segments])
    ends = np.array([s.end_s for s in segments])
    targets = np.array([shape_of(s.phoneme) for s in segments], dtype=np.float64)
    durations = ends - starts
    # half-width of the cross-fade at the boundary after segment i
    half = np.minimum(BLEND_S, 0.5 * np.minimum(durations[:-1], durations[1:]))

    times = frame_centres(n, fps)
    index = np.clip(np.searchsorted(ends, times, side="right"), 0, len(segments) - 1)
    values = targets[index].copy()
    # blend with the previous segment near the start, with the next near the end
    has_prev = index > 0
    prev_b = np.where(has_prev, half[np.maximum(index - 1, 0)], 0.0)
    into = times - starts[index]
    w_prev = np.where(has_prev & (into < prev_b), (1.0 - _smoothstep((into + prev_b) / np.maximum(2 * prev_b, 1e-9))), 0.0)
    has_next = index < len(segments) - 1
    next_b = np.where(has_next, half[np.minimum(index, len(half) - 1)], 0.0)
    left = ends[index] - times
    w_next = np.where(has_next & (left < next_b), _smoothstep((next_b - left) / np.maximum(2 * next_b, 1e-9)), 0.0)
    values = (
        values * (1.0 - w_prev - w_next)[:, None]
        + targets[np.maximum(index - 1, 0)] * w_prev[:, None]
        + targets[np.minimum(index + 1, len(segments) - 1)] * w_next[:, None]
    )
    _hold_bilabials(values, segments, times, fps)
    track[:] = np.clip(values, 0.0, 1.0)
    return track


def _hold_bilabials(values: np.ndarray, segments: Sequence[Segment], times: np.ndarray, fps: int) -> None:
    """p, b, m read as closed only if the lips really meet: every frame inside one is fully closed,
    and one shorter than a frame still closes the frame nearest its middle."""
    closed = np.array(BILABIAL)
    for segment in segments:
        if segment.is_bilabial:
            values[closure_frames(segment.start_s, segment.end_s, fps, len(times))] = closed


def bilabial_frames(phonemes: Sequence[PhonemeTiming], fps: int, duration_s: float) -> np.ndarray:
    """bool [frames]: the frames whose centre lies inside a p, b or m (the frames that must read closed)."""
    n = frame_count(duration_s, fps)
    times = frame_centres(n, fps)
    mask = np.zeros(n, dtype=bool)
    for segment in fold_phonemes(phonemes):
        if segment.is_bilabial:
            mask |= (times >= segment.start_s) & (times < segment.end_s)
    return mask


def timings_from_alignments(alignments: Iterable[tuple[str, int]], sample_rate: int) -> list[PhonemeTiming]:
    """Piper's per-phoneme sample counts ((phoneme, samples), in order) → ``PhonemeTiming``s in seconds."""
    timings: list[PhonemeTiming] = []
    position = 0
    for phoneme, samples in alignments:
        timings.append(PhonemeTiming(phoneme, position / sample_rate, int(samples) / sample_rate))
        position += int(samples)
    return timings
