"""The default avatar's frames: mouth shapes, blinks, idle life and mouth smoothing (no display needed)."""
from __future__ import annotations

import numpy as np
import pytest

from talkerd.render import DefaultAvatar, IdleMotion, MouthSmoother
from talkerd.render.motion import BLINK_S
from talkerd.render.paint import luminance

SHAPES = {
    "rest": (0.0, 0.0, 0.0, 0.0),
    "open": (1.0, 0.0, 0.0, 0.0),
    "closed": (0.02, 1.0, 0.0, 0.0),
    "round": (0.45, 0.0, 0.9, 0.0),
    "wide": (0.3, 0.0, 0.0, 0.9),
}


@pytest.fixture(scope="module")
def avatar():
    return DefaultAvatar(1280, 720, seed=7, smoothing=False)


def crop(frame, box):
    x, y, w, h = box
    return frame[y : y + h, x : x + w]


def dark_fraction(frame, box, below: float = 60.0) -> float:
    """Share of the box that is mouth-opening dark."""
    return float((luminance(crop(frame, box)) < below).mean())


def lip_extent(frame, box) -> tuple[int, int]:
    """Width and height in pixels of the lip-red pixels in the box."""
    roi = crop(frame, box).astype(int)
    lips = (roi[..., 2] - roi[..., 1] > 60) & (roi[..., 2] > 150)
    cols, rows = np.flatnonzero(lips.any(axis=0)), np.flatnonzero(lips.any(axis=1))
    return int(cols.max() - cols.min()), int(rows.max() - rows.min())


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_frames_have_the_configured_size_and_boxes_inside(size):
    avatar = DefaultAvatar(*size, smoothing=False)
    frame = avatar.draw(0.0, np.zeros(4))
    assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
    for x, y, w, h in (avatar.mouth_box, *avatar.eye_boxes):
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= size[0] and y + h <= size[1]
    # The face scales with the frame: the mouth box at 1080p is 1.5 times the one at 720p.
    assert avatar.mouth_box[2] == pytest.approx(124 * size[1] / 720, abs=2)


def test_open_mouth_shows_a_dark_opening_and_closed_or_rest_does_not(avatar):
    fractions = {name: dark_fraction(avatar.draw(1.0, np.array(m)), avatar.mouth_box) for name, m in SHAPES.items()}
    assert fractions["open"] > 0.08
    assert fractions["rest"] < 0.01 and fractions["closed"] < 0.01
    assert fractions["round"] > fractions["closed"] + 0.02  # an "o" is open, if less than "ah"


def test_visemes_are_visibly_distinct(avatar):
    extents = {name: lip_extent(avatar.draw(1.0, np.array(m)), avatar.mouth_box) for name, m in SHAPES.items()}
    assert extents["wide"][0] > extents["rest"][0] + 12  # spread corners
    assert extents["round"][0] < extents["rest"][0] - 12  # narrowed, pursed
    assert extents["closed"][1] < extents["rest"][1] - 5  # pressed, thinner lips
    assert extents["open"][1] > 2 * extents["rest"][1]
    frames = [avatar.draw(1.0, np.array(m)) for m in SHAPES.values()]
    crops = [crop(f, avatar.mouth_box).astype(int) for f in frames]
    for i in range(len(crops)):
        for j in range(i + 1, len(crops)):
            assert np.abs(crops[i] - crops[j]).mean() > 1.0, (list(SHAPES)[i], list(SHAPES)[j])


def test_eyes_close_during_a_blink_showing_the_lid_where_the_iris_was(avatar):
    start = avatar.blink_times(0.0, 30.0)[0]
    closed_t = next(t for t in np.arange(start, start + BLINK_S, 0.005) if avatar.eyes_closed_at(t))
    open_t = start + 1.0
    assert not avatar.eyes_closed_at(open_t)
    closed = avatar.draw(closed_t, np.zeros(4))
    boxes = avatar.eye_boxes
    opened = avatar.draw(open_t, np.zeros(4))
    for x, y, w, h in boxes:
        centre_closed = closed[y + h // 2 - 2 : y + h // 2 + 3, x + w // 2 - 2 : x + w // 2 + 3].reshape(-1, 3)
        assert np.abs(centre_closed.astype(int) - avatar.palette.lid).max() <= 12
    for x, y, w, h in avatar.eye_boxes:
        assert luminance(opened[y + h // 2 : y + h // 2 + 1, x + w // 2 : x + w // 2 + 1]).item() < 60  # pupil


def test_blinks_come_at_irregular_intervals_of_two_to_six_seconds():
    idle = IdleMotion(seed=3)
    times = np.array(idle.blink_times(0.0, 300.0))
    gaps = np.diff(times)
    assert len(times) >= 300 / 6 - 1
    assert gaps.min() >= 2.0 and gaps.max() <= 6.0
    assert gaps.std() > 0.5  # irregular, not a metronome
    # Each blink lasts about 150 ms: the lids are off their open position only then.
    t = np.arange(times[3] - 0.5, times[3] + 0.5, 0.001)
    moving = np.array([idle.blink(x) > 0 for x in t])
    assert moving.sum() * 0.001 == pytest.approx(BLINK_S, abs=0.01)
    # The same seed gives the same schedule; another seed another one.
    assert np.allclose(IdleMotion(seed=3).blink_times(0.0, 300.0), times)
    assert not np.allclose(IdleMotion(seed=4).blink_times(0.0, 300.0)[:5], times[:5])


def test_eyes_glance_away_and_settle_back():
    idle = IdleMotion(seed=5)
    t = np.arange(0.0, 120.0, 1 / 30)
    gaze = np.array([idle.gaze(x) for x in t])
    at_viewer = np.all(np.abs(gaze) < 0.05, axis=1).mean()
    assert 0.25 < at_viewer < 0.95  # mostly looking at the visitor, sometimes elsewhere
    assert np.abs(gaze[:, 0]).max() > 0.3
    # Between glances the eyes hold still (settled), they do not drift.
    steps = np.abs(np.diff(gaze, axis=0)).max(axis=1)
    assert (steps < 1e-3).mean() > 0.8


def test_breathing_and_head_sway_move_the_silent_avatar():
    avatar = DefaultAvatar(640, 360, seed=1, smoothing=False)
    u = avatar.unit
    column = int(avatar.width / 2 + 250 * u)  # through the shoulder

    def shoulder_top(frame) -> int:
        col = frame[:, column].astype(int)
        return int(np.flatnonzero(np.abs(col - frame[5, column].astype(int)).sum(axis=1) > 60)[0])

    tops, mouths = [], []
    for t in np.arange(0.0, 12.0, 0.25):
        frame = avatar.draw(float(t), np.zeros(4))
        tops.append(shoulder_top(frame))
        mouths.append(avatar.mouth_box[:2])
    assert max(tops) - min(tops) >= 2  # the chest rises and falls
    assert len(set(mouths)) > 3  # the head moves a little


def test_smoother_never_jumps_more_than_its_bound_per_frame():
    smoother = MouthSmoother()
    rng = np.random.default_rng(0)
    dt = 1 / 30
    bound = smoother.max_step(dt)
    previous = smoother.step(0.0, np.zeros(4))
    for n in range(1, 600):
        target = (rng.random(4) > 0.5).astype(np.float32)  # worst case: every channel jumps 0 ↔ 1
        value = smoother.step(n * dt, target)
        assert np.all(np.abs(value - previous) <= bound + 1e-6)
        previous = value
    assert np.all(bound < 1.0)


def test_smoother_reaches_the_target_and_opens_faster_than_it_closes():
    dt = 1 / 30
    rise, fall = MouthSmoother(), MouthSmoother()
    rise.step(0.0, np.zeros(4))
    fall.step(0.0, np.ones(4))
    up = [rise.step(n * dt, np.ones(4))[0] for n in range(1, 8)]
    down = [fall.step(n * dt, np.zeros(4))[0] for n in range(1, 8)]
    assert up[-1] > 0.99 and down[-1] < 0.05
    assert up[0] > 1.0 - down[0]  # jaw: first frame of an opening moves further than of a closing
    lips = MouthSmoother()
    lips.step(0.0, np.array([0.6, 0.0, 0.0, 0.0]))
    held = lips.step(dt, np.array([0.02, 1.0, 0.0, 0.0]))
    assert held[1] > 0.9  # a p/b/m held for one frame is shown closed


def test_avatar_smooths_jumps_between_shapes():
    avatar = DefaultAvatar(640, 360, seed=1)
    avatar.draw(0.0, np.zeros(4))
    avatar.draw(1 / 30, np.array(SHAPES["open"]))
    first = avatar.mouth_drawn.copy()
    for n in range(2, 10):
        avatar.draw(n / 30, np.array(SHAPES["open"]))
    assert 0.3 < first[0] < 0.95  # part of the way on the first frame: no pop
    assert avatar.mouth_drawn[0] > 0.99


def test_a_nan_mouth_is_drawn_as_rest_and_does_not_stick():
    avatar = DefaultAvatar(320, 180, seed=1)
    avatar.draw(0.0, np.array([np.nan, 0.0, np.nan, 0.0]))
    assert np.all(np.isfinite(avatar.mouth_drawn))
    for n in range(1, 10):
        avatar.draw(n / 30, np.array(SHAPES["open"]))
    assert avatar.mouth_drawn[0] > 0.99


def test_make_avatar_uses_the_configured_size_seed_and_background():
    from talkerd.config import RenderConfig
    from talkerd.render import make_avatar

    cfg = RenderConfig(width=640, height=360, seed=11, background="#102030")
    avatar = make_avatar(cfg)
    frame = avatar.draw(0.0, np.zeros(4))
    assert frame.shape == (360, 640, 3)
    assert np.abs(frame[0, 0].astype(int) - np.array([0x30, 0x20, 0x10]) * 1.25).max() <= 6  # BGR, top is lit
    assert avatar.blink_times(0.0, 60.0) == make_avatar(cfg).blink_times(0.0, 60.0)
    assert avatar.blink_times(0.0, 60.0) != make_avatar(cfg.model_copy(update={"seed": 12})).blink_times(0.0, 60.0)
