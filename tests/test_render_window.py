"""The real window on the test X server, read back from real screenshots of the whole screen."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from talkerd.render import DefaultAvatar, MouthSample, PortraitAvatar, RenderLoop, WindowSink
from talkerd.render.paint import luminance

from .conftest import piper_speech

pytestmark = pytest.mark.display
SIZE = (1280, 720)  # the test X screen


@pytest.fixture
def window(needs_display):
    sink = WindowSink(SIZE, fullscreen=True)
    yield sink
    sink.close()


def on_screen(sink, frame, screenshot, box, timeout_s: float = 30.0) -> np.ndarray:
    """Show ``frame`` (again and again, as the render loop would) and return a screenshot once the screen
    shows it. A newly mapped window is painted only after the window manager and Qt have handled its
    map, resize and expose events, which on a busy machine takes seconds: the wait is by time."""
    x, y, w, h = box
    shot = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for _ in range(10):  # 10 event-loop turns between screenshots (each screenshot costs ~0.1-0.5 s)
            sink.show(frame)
        shot = screenshot()
        if shot.shape == frame.shape and np.abs(shot[y : y + h, x : x + w].astype(int) - frame[y : y + h, x : x + w]).mean() < 2:
            return shot
    raise AssertionError(f"the screen never showed the frame in {timeout_s:.0f} s: the window is not where it should be")


def dark_fraction(image, box) -> float:
    x, y, w, h = box
    return float((luminance(image[y : y + h, x : x + w]) < 60).mean())


def opening_fraction(image, box) -> float:
    """Share of the mouth box showing the inside of an open mouth: the dark opening or the teeth."""
    x, y, w, h = box
    roi = image[y : y + h, x : x + w]
    lum = luminance(roi)
    teeth = (lum > 215) & (roi.max(axis=2).astype(int) - roi.min(axis=2) < 30)
    return float(((lum < 60) | teeth).mean())


def iris_fraction(image, box, iris) -> float:
    x, y, w, h = box
    roi = image[y : y + h, x : x + w].astype(int)
    return float((np.abs(roi - iris).max(axis=2) < 30).mean())


def test_screen_shows_the_whole_frame_fullscreen(window, screenshot):
    avatar = DefaultAvatar(*SIZE)
    frame = avatar.draw(0.0, np.zeros(4))
    shot = on_screen(window, frame, screenshot, avatar.mouth_box)
    assert shot.shape == frame.shape
    assert np.abs(shot.astype(int) - frame).mean() < 1.0  # pixel for pixel, the frame fills the screen


def test_mouth_on_screen_is_open_for_jaw_open_and_closed_in_silence_and_for_pressed_lips(window, screenshot):
    avatar = DefaultAvatar(*SIZE, smoothing=False)
    shots = {}
    for name, mouth in {"silence": (0, 0, 0, 0), "open": (1, 0, 0, 0), "pressed": (0.02, 1, 0, 0)}.items():
        frame = avatar.draw(2.0, np.array(mouth, np.float32))
        shots[name] = dark_fraction(on_screen(window, frame, screenshot, avatar.mouth_box), avatar.mouth_box)
    assert shots["open"] > 0.08
    assert shots["silence"] < 0.01 and shots["pressed"] < 0.01


def test_eyes_on_screen_are_closed_during_a_blink(window, screenshot):
    avatar = DefaultAvatar(*SIZE)
    start = avatar.blink_times(0.0, 20.0)[0]
    closed_t = next(t for t in np.arange(start, start + 0.2, 0.005) if avatar.eyes_closed_at(t))
    shot = on_screen(window, avatar.draw(closed_t, np.zeros(4)), screenshot, avatar.eye_boxes[0])
    iris = avatar.palette.iris
    for box in avatar.eye_boxes:
        x, y, w, h = box
        centre = shot[y + h // 2 - 2 : y + h // 2 + 3, x + w // 2 - 2 : x + w // 2 + 3].reshape(-1, 3).astype(int)
        assert np.abs(centre - avatar.palette.lid).max() <= 12  # lid, where the iris was
        assert iris_fraction(shot, box, iris) < 0.005
    shot = on_screen(window, avatar.draw(start + 1.0, np.zeros(4)), screenshot, avatar.eye_boxes[0])
    for box in avatar.eye_boxes:
        assert iris_fraction(shot, box, iris) > 0.05  # open: the iris shows, wherever the eyes look


class TrackSource:
    """Plays a mouth track frame by frame, as the audio clock would while the sentence is heard."""

    def __init__(self, track: np.ndarray) -> None:
        self.track, self.index = track, -1

    def sample(self) -> MouthSample:
        self.index = min(self.index + 1, len(self.track) - 1)
        return MouthSample(self.track[self.index], True, None)


class CapturingWindow:
    """The real window, plus a screenshot of chosen frames right after they are shown."""

    def __init__(self, window, screenshot, avatar, wanted: set[int]) -> None:
        self.window, self.screenshot, self.avatar, self.wanted = window, screenshot, avatar, wanted
        self.description, self.offline, self.frames, self.shots = "capture", False, 0, {}

    def show(self, frame) -> None:
        if self.frames in self.wanted:
            self.shots[self.frames] = (on_screen(self.window, frame, self.screenshot, self.avatar.mouth_box), self.avatar.mouth_box)
        else:
            self.window.show(frame)
        self.frames += 1

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_bob_met_pam_by_the_map_lips_close_on_p_b_m_and_open_on_vowels(window, screenshot):
    from talkerd.speak import visemes

    chunk = piper_speech("Bob met Pam by the map.")
    pairs = [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments]
    timings = visemes.timings_from_alignments(pairs, chunk.sample_rate)
    duration = len(chunk.audio_int16_array) / chunk.sample_rate
    fps = 30
    track = visemes.mouth_track(timings, fps, duration)
    closed = np.flatnonzero(visemes.bilabial_frames(timings, fps, duration))
    vowels = np.flatnonzero(track[:, 0] * (1 - track[:, 1]) > 0.5)
    assert len(closed) >= 5 and len(vowels) >= 3
    avatar = DefaultAvatar(*SIZE)  # with its smoothing: what a visitor sees
    capture = CapturingWindow(window, screenshot, avatar, set(closed) | set(vowels))
    RenderLoop(avatar, capture, TrackSource(track), fps, pace="frames", max_frames=len(track)).run(threading.Event())
    for index in closed:
        shot, box = capture.shots[index]
        assert opening_fraction(shot, box) < 0.01, f"frame {index} (p, b or m) shows an open mouth"
    for index in vowels:
        shot, box = capture.shots[index]
        assert opening_fraction(shot, box) > 0.03, f"frame {index} (vowel) shows a closed mouth"


def test_portrait_mouth_and_eyes_move_on_screen(window, screenshot, portrait_description: Path):
    avatar = PortraitAvatar(portrait_description, *SIZE, smoothing=False)
    rest = on_screen(window, avatar.draw(0.5, np.zeros(4)), screenshot, avatar.mouth_box)
    opened = on_screen(window, avatar.draw(0.5, np.array([1.0, 0, 0, 0])), screenshot, avatar.mouth_box)
    assert dark_fraction(rest, avatar.mouth_box) < 0.002
    assert dark_fraction(opened, avatar.mouth_box) > 0.02
    start = avatar.blink_times(0.0, 20.0)[0]
    closed_t = next(t for t in np.arange(start, start + 0.2, 0.005) if avatar.eyes_closed_at(t))
    blink = on_screen(window, avatar.draw(closed_t, np.zeros(4)), screenshot, avatar.eye_boxes[0])
    for (x, y, w, h), lid in zip(avatar.eye_boxes, avatar.lid_colours):
        assert luminance(rest[y + h // 2 : y + h // 2 + 1, x + w // 2 : x + w // 2 + 1]).item() < 60  # the drawn pupil
        assert np.abs(blink[y + h // 2, x + w // 2].astype(int) - lid).max() <= 6


def test_a_smaller_frame_is_scaled_to_cover_the_whole_screen(needs_display, screenshot):
    import cv2

    sink = WindowSink((640, 360), fullscreen=True)
    try:
        avatar = DefaultAvatar(640, 360)
        frame = avatar.draw(0.0, np.array([1.0, 0, 0, 0]))
        expected = cv2.resize(frame, SIZE, interpolation=cv2.INTER_LINEAR)
        x, y, w, h = avatar.mouth_box
        shot = None
        for _ in range(30):
            sink.show(frame)
            shot = screenshot()
            if np.abs(shot.astype(int) - expected).mean() < 4:
                break
        assert np.abs(shot.astype(int) - expected).mean() < 4  # the whole screen, not a 640x360 corner
        assert dark_fraction(shot, (2 * x, 2 * y, 2 * w, 2 * h)) > 0.08
    finally:
        sink.close()
