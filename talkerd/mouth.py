"""The mouth, as every stage sees it: its channels, its rest pose, how many video frames a stretch of
audio has, and the closure rule. One home for each, so the TTS durations, the face engine, the playout
and the renderer cannot disagree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

MOUTH_CHANNELS = ("jaw_open", "lips_closed", "lips_round", "lips_wide")
"""The mouth blendshape set, in the column order of every mouth track (values 0..1):
jaw_open opens the mouth, lips_closed presses the lips together (p, b, m), lips_round rounds and
narrows them (o, u, w), lips_wide spreads them (i, e)."""

REST = np.zeros(len(MOUTH_CHANNELS), dtype=np.float32)
"""The mouth at rest: closed, relaxed. Read only."""
REST.setflags(write=False)


@dataclass(frozen=True)
class MouthSample:
    """What the face should show now."""

    mouth: np.ndarray
    """Mouth vector, columns ``MOUTH_CHANNELS``, 0..1."""
    speaking: bool
    """True while speech is leaving the speaker."""
    turn: Optional[object]
    """The turn being spoken, if any."""


def frame_count(duration_s: float, fps: int) -> int:
    """Video frames covering ``duration_s``: the last, partial frame counts."""
    return max(0, math.ceil(duration_s * fps - 1e-9))


def frame_at(seconds: float, fps: int) -> int:
    """The video frame showing the moment ``seconds`` after the track's start."""
    return int(seconds * fps)


def frame_centres(frames: int, fps: int) -> np.ndarray:
    """Seconds from the track's start to the centre of each frame: where a frame samples the mouth."""
    return (np.arange(frames) + 0.5) / fps


def closure_frames(start_s: float, end_s: float, fps: int, frames: int) -> np.ndarray:
    """The frames that must show a closure (p, b, m) lasting [start_s, end_s): every frame whose centre
    lies inside it, or — for a closure shorter than a frame — the frame nearest its middle. Without the
    second part a short closure could fall between two frame centres and never be seen."""
    centres = frame_centres(frames, fps)
    inside = np.flatnonzero((centres >= start_s) & (centres < end_s))
    if len(inside) or frames == 0:
        return inside
    return np.array([int(np.clip(round((start_s + end_s) / 2 * fps - 0.5), 0, frames - 1))])
