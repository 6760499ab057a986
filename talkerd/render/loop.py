"""The render loop: on the calling (main) thread, draw the avatar for the audio clock and show it.

Every frame asks the mouth source which pose belongs to *now* — the audio playout answers from the
sample leaving the speaker — so the lips follow what is heard, not when the turn began. Frames are
paced on a deadline schedule (frame n is due at start + n / fps), so small delays never add up to
drift; a frame more than one period late is skipped rather than drawn in a hurry. Writing a video
offline (``pace="frames"``) draws frame n for time start + n / fps without waiting.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import numpy as np

from ..messages import Mark, Turn
from ..mouth import MOUTH_CHANNELS, REST, MouthSample

log = logging.getLogger(__name__)

_HISTORY = 1800  # one minute of frame intervals at 30 fps


class MouthSource(Protocol):
    """Anything that says which mouth pose belongs to the present moment (the audio playout's clock)."""

    def sample(self) -> MouthSample: ...


class RestSource:
    """A mouth source for when nothing is spoken: the avatar idles."""

    def sample(self) -> MouthSample:
        return MouthSample(REST, False, None)


class TrackSource:
    """Plays a precomputed mouth track, one row per frame drawn (offline rendering of a known clip).

    ``lead_in`` rest frames come first; ``turn``, when given, is reported while the track plays.
    """

    def __init__(self, track: np.ndarray, *, lead_in: int = 0, turn: Optional[Turn] = None) -> None:
        self.track = np.asarray(track, dtype=np.float32).reshape(-1, len(MOUTH_CHANNELS))
        self.lead_in, self.turn, self.frame = lead_in, turn, 0

    def sample(self) -> MouthSample:
        index = self.frame - self.lead_in
        self.frame += 1
        if 0 <= index < len(self.track):
            return MouthSample(self.track[index], True, self.turn)
        return MouthSample(REST, False, None)


@dataclass(frozen=True)
class LoopStats:
    """Frame pacing figures over the last minute of frames."""

    frames: int
    """Frames shown since the loop started."""
    skipped: int
    """Frames not drawn because the loop fell more than a period behind (a video file repeats the
    previous frame in their place, so its timeline stays true to the wall clock)."""
    interval_p50_ms: float
    """Median time between two frames shown."""
    interval_p99_ms: float
    """99th percentile of the time between two frames shown."""
    interval_max_ms: float
    """Longest time between two frames shown."""
    draw_p50_ms: float
    """Median time to draw a frame (avatar only)."""
    draw_p99_ms: float
    """99th percentile of the time to draw a frame."""
    show_p50_ms: float
    """Median time to hand a frame to the sink (window, encoder)."""
    show_p99_ms: float
    """99th percentile of the time to hand a frame to the sink."""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _percentiles(values, *qs: float) -> list[float]:
    if not values:
        return [0.0] * len(qs)
    data = np.asarray(values, dtype=np.float64) * 1000.0
    return [round(float(np.percentile(data, q)), 2) for q in qs]


class RenderLoop:
    """Draw ``avatar`` for ``mouth_source`` into ``sink`` at ``fps`` until ``stop`` is set.

    ``pace``: "wall" follows the monotonic clock (a window, live video); "frames" draws as fast as
    possible with frame n at start + n / fps (offline rendering of samples). ``max_frames`` ends the
    loop after that many frames (tests, sample clips).
    """

    def __init__(self, avatar, sink, mouth_source: MouthSource, fps: int, *, pace: str = "wall",
                 max_frames: int | None = None, clock: Callable[[], float] = time.monotonic,
                 on_first_frame: Callable[[], None] = lambda: None) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        if pace not in ("wall", "frames"):
            raise ValueError(f"pace must be 'wall' or 'frames', not {pace!r}")
        self.avatar, self.sink, self.source = avatar, sink, mouth_source
        self.fps, self.pace, self.max_frames, self._clock = fps, pace, max_frames, clock
        self._lock = threading.Lock()
        self._intervals: collections.deque[float] = collections.deque(maxlen=_HISTORY)
        self._draw: collections.deque[float] = collections.deque(maxlen=_HISTORY)
        self._show: collections.deque[float] = collections.deque(maxlen=_HISTORY)
        self.frames = 0
        self.skipped = 0
        self.last_frame_at: float | None = None
        """Monotonic time the last frame was shown (a heartbeat for the supervisor)."""
        self.on_first_frame = on_first_frame
        """Called once, right after the first frame is shown (systemd hears of it before READY)."""
        self.last_frame = None
        """The last frame shown (``talkerctl diagnose`` takes its screenshot from it)."""

    def run(self, stop: threading.Event) -> None:
        period = 1.0 / self.fps
        start = self._clock()
        index = 0
        last_shown: float | None = None
        last_frame = None
        while not stop.is_set() and (self.max_frames is None or self.frames < self.max_frames):
            due = start + index * period
            if self.pace == "wall":
                wait = due - self._clock()
                if wait > 0 and stop.wait(wait):
                    break
                late = self._clock() - due
                if late > period:
                    missed = int(late / period)
                    self.skipped += missed
                    index += missed
                    due = start + index * period
                    if self.sink.offline and last_frame is not None:
                        # A video file keeps real time: the previous picture stands in for the
                        # frames that were not drawn (bounded, so a slow encoder cannot spiral).
                        for _ in range(min(missed, self.fps)):
                            self.sink.show(last_frame)
                t = self._clock()
            else:
                t = due
            sample = self.source.sample()
            began = time.perf_counter()
            frame = self.avatar.draw(t, sample.mouth)
            drawn = time.perf_counter()
            self.sink.show(frame)
            shown_perf = time.perf_counter()
            shown = self._clock()
            if sample.speaking and sample.turn is not None and Mark.FIRST_LIP_FRAME not in sample.turn.marks:
                sample.turn.mark(Mark.FIRST_LIP_FRAME, shown)
            with self._lock:
                self._draw.append(drawn - began)
                self._show.append(shown_perf - drawn)
                if last_shown is not None:
                    self._intervals.append(shown - last_shown)
                self.frames += 1
            last_shown = self.last_frame_at = shown
            last_frame = self.last_frame = frame
            if self.frames == 1:
                self.on_first_frame()
            index += 1

    def stats(self) -> LoopStats:
        """Frame-interval and cost percentiles over the last minute (safe from any thread)."""
        with self._lock:
            intervals, draw, show = list(self._intervals), list(self._draw), list(self._show)
            frames, skipped = self.frames, self.skipped
        i50, i99, imax = _percentiles(intervals, 50, 99, 100)
        d50, d99 = _percentiles(draw, 50, 99)
        s50, s99 = _percentiles(show, 50, 99)
        return LoopStats(frames, skipped, i50, i99, imax, d50, d99, s50, s99)
