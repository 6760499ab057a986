"""Motion that is not drawing: mouth smoothing between shapes and the avatar's idle life.

``MouthSmoother`` turns mouth vectors that may jump from one frame to the next into a motion that
never pops. ``IdleMotion`` answers, for any monotonic time, how far the lids are closed, where the eyes
look and how far breathing and the slow head sway have moved the body — deterministically from a
seed, so a test can find a blink and draw exactly that moment.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from ..mouth import MOUTH_CHANNELS

ATTACK_MS = (30.0, 12.0, 30.0, 30.0)
"""Time constants while a channel rises (MOUTH_CHANNELS order). A vowel must open within about a
frame to stay in sync with the sound; the lips must *meet* within one frame, or a p, b or m held for a
single frame would never look closed."""
RELEASE_MS = (60.0, 15.0, 60.0, 60.0)
"""Time constants while a channel falls: closing a little slower reads as co-articulation; lips part
fast again at a plosive's release."""
MAX_DT_S = 0.1
"""A longer gap between frames (a stall) is treated as this long, so one late frame cannot snap."""


def _per_channel(value) -> np.ndarray:
    values = np.broadcast_to(np.asarray(value, dtype=np.float64), (len(MOUTH_CHANNELS),)) / 1000.0
    if np.any(values <= 0):
        raise ValueError("smoothing time constants must be positive")
    return values.copy()


class MouthSmoother:
    """One-pole smoothing per mouth channel, time-based so it holds at any frame rate.

    Each channel moves toward its target by ``1 - exp(-dt / tau)`` of the remaining distance, with
    ``tau`` the channel's attack constant when rising and its release constant when falling. Values
    are in 0..1, so over ``dt`` a channel never moves by more than ``max_step(dt)[channel]``. The first
    value is taken as is (there is no earlier frame to pop from); time going backwards restarts it.
    """

    def __init__(self, attack_ms=ATTACK_MS, release_ms=RELEASE_MS) -> None:
        self.attack_s = _per_channel(attack_ms)
        self.release_s = _per_channel(release_ms)
        self._value: np.ndarray | None = None
        self._t = 0.0

    def max_step(self, dt: float) -> np.ndarray:
        """Per channel, the largest change over ``dt`` seconds (for a jump across the whole 0..1 range)."""
        dt = min(max(dt, 0.0), MAX_DT_S)
        return 1.0 - np.exp(-dt / np.minimum(self.attack_s, self.release_s))

    def reset(self) -> None:
        self._value = None

    def step(self, t: float, target: np.ndarray) -> np.ndarray:
        """The smoothed mouth vector for time ``t`` given this frame's target."""
        target = np.clip(np.asarray(target, dtype=np.float32).reshape(len(MOUTH_CHANNELS)), 0.0, 1.0)
        if self._value is None or t < self._t:
            self._value, self._t = target.copy(), t
            return self._value.copy()
        dt = min(t - self._t, MAX_DT_S)
        self._t = t
        tau = np.where(target > self._value, self.attack_s, self.release_s)
        gain = 1.0 - np.exp(-dt / tau)
        self._value = (self._value + gain * (target - self._value)).astype(np.float32)
        return self._value.copy()


# Blink profile: the lid closes fast, holds briefly and opens a little slower (about 150 ms in all).
BLINK_CLOSE_S = 0.055
BLINK_HOLD_S = 0.035
BLINK_OPEN_S = 0.065
BLINK_S = BLINK_CLOSE_S + BLINK_HOLD_S + BLINK_OPEN_S
CLOSED_AT = 0.95
"""Lid fraction from which the eyes count as closed."""
SACCADE_TAU_S = 0.035
"""Eyes jump to a new target in a few tens of milliseconds and then settle there."""


@dataclass(frozen=True)
class IdlePose:
    """The idle part of one frame's pose; offsets are fractions of the frame height."""

    blink: float
    """Upper lid travel, 0 open … 1 closed."""
    gaze_x: float
    """Where the eyes look, -1 (viewer's left) … 1 (viewer's right)."""
    gaze_y: float
    """-1 up … 1 down."""
    breath: float
    """Breathing phase, -1 … 1 (chest and shoulders rise with it)."""
    head_dx: float
    """Slow head sway, fraction of the frame height."""
    head_dy: float
    """Slow head bob, fraction of the frame height."""


class _EventTrack:
    """Random event times at irregular intervals from a seeded generator, generated as time advances.

    The schedule starts at the first time asked about (a kiosk's monotonic clock may already be days
    old), so it is the same for the same seed and the same first time.
    """

    def __init__(self, rng: np.random.Generator, low_s: float, high_s: float, first_s: float) -> None:
        self._rng, self._low, self._high, self._first = rng, low_s, high_s, first_s
        self.times: list[float] = []
        self.values: list[tuple[float, float]] = []

    def _value(self) -> tuple[float, float]:
        return (0.0, 0.0)

    def cover(self, t: float) -> None:
        if not self.times:
            self.times.append(t + self._first)
            self.values.append(self._value())
        while self.times[-1] <= t + self._high:
            self.times.append(self.times[-1] + float(self._rng.uniform(self._low, self._high)))
            self.values.append(self._value())


class _GazeTrack(_EventTrack):
    def _value(self) -> tuple[float, float]:
        # Most glances come back to the viewer: eyes that settle, not eyes that wander.
        if self._rng.random() < 0.55:
            return (0.0, 0.0)
        return (float(self._rng.uniform(-1.0, 1.0)), float(self._rng.uniform(-0.6, 0.5)))


class IdleMotion:
    """Blinks 2–6 s apart, breathing, a slow head sway and glances, as pure functions of time."""

    def __init__(self, seed: int = 0, breath_period_s: float = 4.2) -> None:
        rng = np.random.default_rng(seed)
        self._blinks = _EventTrack(np.random.default_rng(rng.integers(1 << 31)), 2.0, 6.0, first_s=1.2)
        self._gaze = _GazeTrack(np.random.default_rng(rng.integers(1 << 31)), 0.8, 3.5, first_s=0.0)
        self._breath_period = breath_period_s
        self._phases = rng.uniform(0.0, 2.0 * math.pi, size=5)

    def blink_times(self, start: float, end: float) -> list[float]:
        """Start times of the blinks that begin in [start, end)."""
        self._blinks.cover(start)  # anchors a new schedule at ``start``, not at ``end``
        self._blinks.cover(end)
        times = self._blinks.times
        return times[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]

    def blink(self, t: float) -> float:
        """Lid travel at ``t``: 0 open … 1 closed."""
        self._blinks.cover(t)
        times = self._blinks.times
        index = bisect.bisect_right(times, t) - 1
        if index < 0:
            return 0.0
        since = t - times[index]
        if since < BLINK_CLOSE_S:
            x = since / BLINK_CLOSE_S
            return x * x * (3.0 - 2.0 * x)
        if since < BLINK_CLOSE_S + BLINK_HOLD_S:
            return 1.0
        if since < BLINK_S:
            x = (since - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S
            return 1.0 - x * x * (3.0 - 2.0 * x)
        return 0.0

    def eyes_closed(self, t: float) -> bool:
        return self.blink(t) >= CLOSED_AT

    def gaze(self, t: float) -> tuple[float, float]:
        self._gaze.cover(t)
        times, values = self._gaze.times, self._gaze.values
        index = bisect.bisect_right(times, t) - 1
        if index < 0:
            return (0.0, 0.0)
        start = values[index - 1] if index > 0 else (0.0, 0.0)
        end = values[index]
        k = 1.0 - math.exp(-(t - times[index]) / SACCADE_TAU_S)
        return (start[0] + k * (end[0] - start[0]), start[1] + k * (end[1] - start[1]))

    def pose(self, t: float) -> IdlePose:
        p = self._phases
        breath = math.sin(2.0 * math.pi * t / self._breath_period + p[0])
        # Incommensurate periods so the sway never visibly repeats.
        dx = 0.004 * math.sin(2.0 * math.pi * t / 7.3 + p[1]) + 0.002 * math.sin(2.0 * math.pi * t / 11.9 + p[2])
        dy = 0.002 * math.sin(2.0 * math.pi * t / 9.1 + p[3]) + 0.001 * math.sin(2.0 * math.pi * t / 5.3 + p[4])
        gx, gy = self.gaze(t)
        return IdlePose(self.blink(t), gx, gy, breath, dx, dy)
