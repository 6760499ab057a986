"""Reading the mouth back from rendered frames: how open it looks, frame by frame, and when shown.

The lip-sync benchmark compares what a visitor *sees* with what they *hear*: ``OpeningRecorder``
wraps any sink and records, for every frame shown, the moment it was shown and how open the mouth
looks in it — measured on the pixels, not taken from the mouth vector, so smoothing, drawing and the
sink are all part of the measurement.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .paint import Box, luminance

DARK = 60.0
"""Luma below which a pixel in the mouth box is the mouth's dark inside."""


def mouth_opening(frame: np.ndarray, box: Box) -> float:
    """Share of the mouth box that shows the inside of the mouth: the dark opening or the teeth."""
    x, y, w, h = box
    roi = frame[y : y + h, x : x + w]
    if roi.size == 0:
        return 0.0
    lum = luminance(roi)
    teeth = (lum > 215) & (roi.max(axis=2).astype(np.int16) - roi.min(axis=2) < 30)
    return float(((lum < DARK) | teeth).mean())


class OpeningRecorder:
    """A sink that passes frames on to ``sink`` and records (time shown, mouth opening) for each."""

    def __init__(self, sink, avatar, clock: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.avatar, self._clock = sink, avatar, clock
        self.description = f"{sink.description} (recording the mouth opening)"
        self.offline = sink.offline
        self.times: list[float] = []
        self.openings: list[float] = []

    def show(self, frame: np.ndarray) -> None:
        self.sink.show(frame)
        self.times.append(self._clock())
        self.openings.append(mouth_opening(frame, self.avatar.mouth_box))

    def close(self) -> None:
        self.sink.close()

    def track(self) -> np.ndarray:
        """float64 [frames, 2]: monotonic time each frame was shown, and its mouth opening."""
        return np.column_stack([self.times, self.openings]) if self.times else np.zeros((0, 2))
