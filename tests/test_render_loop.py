"""The render loop: what it draws for the mouth source, the first-lip-frame mark, frame pacing."""
from __future__ import annotations

import threading
import time

import numpy as np

from talkerd.messages import Mark, Turn, TurnSource
from talkerd.render import DefaultAvatar, MouthSample, NullSink, RenderLoop, RestSource


class RecordingSink(NullSink):
    """Keeps the time each frame was shown and a copy of a few frames."""

    def __init__(self) -> None:
        super().__init__("recording")
        self.shown_at: list[float] = []

    def show(self, frame) -> None:
        super().show(frame)
        self.shown_at.append(time.monotonic())


class ScriptedSource:
    """Speech from frame ``speak_from`` on: the mouth pose the audio clock would report."""

    def __init__(self, turn: Turn, speak_from: int) -> None:
        self.turn, self.speak_from, self.calls = turn, speak_from, 0

    def sample(self) -> MouthSample:
        self.calls += 1
        if self.calls > self.speak_from:
            return MouthSample(np.array([0.8, 0.0, 0.0, 0.2], np.float32), True, self.turn)
        return MouthSample(np.zeros(4, np.float32), False, None)


def test_first_lip_frame_is_marked_once_after_that_frame_is_shown():
    turn = Turn(TurnSource.SAY)
    sink = RecordingSink()
    avatar = DefaultAvatar(320, 180)
    loop = RenderLoop(avatar, sink, ScriptedSource(turn, speak_from=4), 30, pace="frames", max_frames=10)
    loop.run(threading.Event())
    assert sink.frames == 10
    marked = turn.marks[Mark.FIRST_LIP_FRAME]
    assert sink.shown_at[4] <= marked < sink.shown_at[5]
    assert avatar.mouth_drawn[0] > 0.7  # the loop drew the pose the source gave


def test_offline_pace_draws_frame_n_for_start_plus_n_over_fps():
    seen: list[float] = []
    avatar = DefaultAvatar(320, 180)
    draw = avatar.draw
    avatar.draw = lambda t, mouth: seen.append(t) or draw(t, mouth)  # observe the times asked for
    RenderLoop(avatar, NullSink(), RestSource(), 25, pace="frames", max_frames=50).run(threading.Event())
    steps = np.diff(seen)
    assert len(seen) == 50 and np.allclose(steps, 1 / 25)


class FakeClock:
    """Monotonic time that moves only when told: sleeping (the stop event's wait) and working (show)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SleepingStop(threading.Event):
    """A stop event whose wait() lets the fake clock run instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout=None) -> bool:
        self.clock.now += timeout or 0.0
        return self.is_set()


class SlowSink(NullSink):
    """Showing a frame takes 7 ms of (fake) time, and frame 20 stalls for 100 ms."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__("slow")
        self.clock, self.shown_at = clock, []

    def show(self, frame) -> None:
        super().show(frame)
        self.clock.now += 0.1 if self.frames == 20 else 0.007
        self.shown_at.append(self.clock.now)


def test_wall_pace_keeps_a_deadline_schedule_skips_after_a_stall_and_never_drifts():
    clock = FakeClock()
    start = clock.now
    sink = SlowSink(clock)
    loop = RenderLoop(DefaultAvatar(320, 180), sink, RestSource(), 25, max_frames=60, clock=clock)
    loop.run(SleepingStop(clock))
    period = 1 / 25
    slots = (np.array(sink.shown_at) - 0.007 - start) / period
    # Every frame is shown 7 ms after its own slot; the work never pushes later frames back.
    assert np.allclose(slots[:19], np.arange(19))
    # The 100 ms stall of frame 20 (index 19): the slot it overran is skipped, the next frame is drawn
    # at once, and from then on frames are back on the original grid (no drift from the stall).
    assert loop.skipped == 1 and 21 < slots[20] < 22
    assert np.allclose(slots[21:], np.arange(22, 61))
    stats = loop.stats()
    assert stats.frames == 60 and stats.interval_p50_ms == round(period * 1000, 2)
    assert stats.interval_max_ms > 100


def test_stop_ends_the_loop_promptly_from_another_thread():
    stop = threading.Event()
    loop = RenderLoop(DefaultAvatar(320, 180), NullSink(), RestSource(), 10)
    threading.Timer(0.3, stop.set).start()
    loop.run(stop)
    assert loop.frames >= 1  # it returned: the stop was seen while waiting for a frame


def test_opening_read_back_from_frames_follows_the_track_without_lag():
    from talkerd.render import OpeningRecorder, TrackSource

    fps = 30
    t = np.arange(90) / fps
    jaw = np.clip(np.sin(2 * np.pi * 1.3 * t), 0, None).astype(np.float32)  # open-close syllables
    track = np.stack([jaw, np.zeros_like(jaw), np.zeros_like(jaw), np.zeros_like(jaw)], axis=1)
    avatar = DefaultAvatar(640, 360)
    recorder = OpeningRecorder(NullSink(), avatar)
    RenderLoop(avatar, recorder, TrackSource(track), fps, pace="frames", max_frames=len(track)).run(threading.Event())
    seen = recorder.track()
    assert seen.shape == (90, 2) and np.all(np.diff(seen[:, 0]) >= 0)
    opening = seen[:, 1]
    shut = (jaw < 0.01) & (np.roll(jaw, 1) < 0.01) & (np.roll(jaw, 2) < 0.01)  # closed for 3 frames
    assert opening[shut].max() < 0.01 and opening[jaw > 0.8].min() > 0.05
    lags = range(-3, 4)
    score = [np.corrcoef(np.roll(opening, -lag)[5:-5], jaw[5:-5])[0, 1] for lag in lags]
    best = list(lags)[int(np.argmax(score))]
    assert max(score) > 0.9 and best in (0, 1)  # at most one frame of smoothing delay


class SlowVideo(SlowSink):
    """A file-like sink (offline) on the fake clock: frames stand for video time."""

    offline = True


def test_a_video_sink_keeps_real_time_when_frames_are_skipped():
    clock = FakeClock()
    sink = SlowVideo(clock)
    loop = RenderLoop(DefaultAvatar(320, 180), sink, RestSource(), 25, max_frames=60, clock=clock)
    loop.run(SleepingStop(clock))
    assert loop.skipped == 1 and loop.frames == 60
    assert sink.frames == 61  # the skipped slot was filled with the previous picture
