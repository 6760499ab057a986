"""What every avatar shares: the draw() contract, mouth smoothing, idle life and the boxes tests read.

An avatar turns (monotonic time, mouth vector) into a BGR frame. The mouth vector handed in may jump
between frames; the avatar smooths it (``MouthSmoother``) so shapes never pop, and adds idle life
(``IdleMotion``) from the time alone, so a silent avatar still blinks, breathes and glances.
"""
from __future__ import annotations

import abc

import numpy as np

from ..mouth import MOUTH_CHANNELS
from .motion import IdleMotion, IdlePose, MouthSmoother
from .paint import Box


class Avatar(abc.ABC):
    """Base of the drawn default avatar and the portrait avatar."""

    def __init__(self, width: int, height: int, *, seed: int = 0, smoothing: bool = True) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"frame size {width}x{height} is too small")
        self.width = int(width)
        self.height = int(height)
        self.idle = IdleMotion(seed)
        self.smoother = MouthSmoother() if smoothing else None
        self.mouth_drawn = np.zeros(len(MOUTH_CHANNELS), dtype=np.float32)
        """The (smoothed) mouth vector of the last frame drawn."""
        self._mouth_box: Box = (0, 0, 0, 0)
        self._eye_boxes: tuple[Box, Box] = ((0, 0, 0, 0), (0, 0, 0, 0))

    def draw(self, t: float, mouth: np.ndarray) -> np.ndarray:
        """The frame for monotonic time ``t`` (seconds) with mouth vector ``mouth`` (MOUTH_CHANNELS, 0..1)."""
        # A NaN from an upstream model would stick in the smoother forever: treat it as rest.
        mouth = np.nan_to_num(np.asarray(mouth, dtype=np.float32).reshape(len(MOUTH_CHANNELS)), nan=0.0)
        if self.smoother is not None:
            mouth = self.smoother.step(t, mouth)
        else:
            mouth = np.clip(mouth, 0.0, 1.0)
        self.mouth_drawn = mouth
        return self._render(t, mouth, self.idle.pose(t))

    @abc.abstractmethod
    def _render(self, t: float, mouth: np.ndarray, idle: IdlePose) -> np.ndarray:
        """Draw one frame (BGR uint8, height × width × 3); set the mouth and eye boxes it used."""

    def eyes_closed_at(self, t: float) -> bool:
        """Whether the lids are (nearly) shut at ``t``: the blink state a frame drawn at ``t`` shows."""
        return self.idle.eyes_closed(t)

    def blink_times(self, start: float, end: float) -> list[float]:
        """When blinks begin between ``start`` and ``end``."""
        return self.idle.blink_times(start, end)

    @property
    def mouth_box(self) -> Box:
        """(x, y, w, h) on screen that holds the mouth in the last frame drawn, at any mouth shape."""
        return self._mouth_box

    @property
    def eye_boxes(self) -> tuple[Box, Box]:
        """(x, y, w, h) of the viewer's left and right eye openings in the last frame drawn."""
        return self._eye_boxes

    @property
    def nbytes(self) -> int:
        """Memory held by pre-drawn layers and frame buffers (for the memory planner)."""
        return 2 * self.width * self.height * 3
