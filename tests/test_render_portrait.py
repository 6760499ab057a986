"""Portrait mode: the description file's errors, and the image's mouth and eyes animated."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkerd.config import RenderConfig
from talkerd.errors import ConfigError, ExitCode
from talkerd.render import PortraitAvatar, make_avatar
from talkerd.render.paint import luminance

from .conftest import PORTRAIT_EYES


def crop(frame, box):
    x, y, w, h = box
    return frame[y : y + h, x : x + w]


def rewrite(description: Path, old: str, new: str) -> Path:
    text = description.read_text()
    assert old in text
    description.write_text(text.replace(old, new))
    return description


@pytest.mark.parametrize(
    "old, new, names",
    [
        ('image = "face.png"', 'image = "missing.png"', ["image", "missing.png"]),
        ("radius = 30", "radius = -3", ["eyes.radius"]),
        ("radius = 30", "radius = 30\nsize = 4", ["eyes.size", "unknown key"]),
        ("width = 110\n", "", ["mouth.width", "missing"]),
        ("right = [310, 260]", "right = [470, 260]", ["eyes.right", "does not fit"]),
        ("center = [240, 430]", "center = [240, 100]", ["mouth.center", "below the eyes"]),
        ("center = [240, 430]", "center = [470, 430]", ["mouth", "does not fit"]),
        ("width = 110", "width = 'wide'", ["mouth.width"]),
        ("[eyes]", "[eyes", ["not valid TOML"]),
    ],
)
def test_bad_descriptions_name_the_file_and_the_field(portrait_description, old, new, names):
    rewrite(portrait_description, old, new)
    with pytest.raises(ConfigError) as error:
        PortraitAvatar(portrait_description, 640, 360)
    assert str(portrait_description) in error.value.message
    for name in names:
        assert name in error.value.message
    assert error.value.exit_code == ExitCode.CONFIG


def test_an_image_that_is_not_an_image_is_refused(portrait_description):
    (portrait_description.parent / "face.png").write_bytes(b"this is text, not a PNG")
    with pytest.raises(ConfigError) as error:
        PortraitAvatar(portrait_description, 640, 360)
    assert "image" in error.value.message and "face.png" in error.value.message


def test_a_tiny_image_is_refused(portrait_description):
    import cv2

    cv2.imwrite(str(portrait_description.parent / "face.png"), np.zeros((20, 20, 3), np.uint8))
    rewrite(portrait_description, "radius = 30", "radius = 3")
    with pytest.raises(ConfigError) as error:
        PortraitAvatar(portrait_description, 640, 360)
    assert "20x20" in error.value.message


def test_missing_description_file(tmp_path):
    with pytest.raises(ConfigError) as error:
        PortraitAvatar(tmp_path / "nope.toml", 640, 360)
    assert "nope.toml" in error.value.message


def test_make_avatar_builds_the_portrait_from_the_config(portrait_description):
    avatar = make_avatar(RenderConfig(width=640, height=360, avatar="portrait", portrait=portrait_description))
    assert isinstance(avatar, PortraitAvatar)
    with pytest.raises(ConfigError):
        make_avatar(RenderConfig(avatar="portrait"))


def test_jaw_opens_the_image_mouth_and_round_narrows_it(portrait_description):
    avatar = PortraitAvatar(portrait_description, 1280, 720, smoothing=False)
    rest = avatar.draw(0.5, np.zeros(4))
    opened = avatar.draw(0.5, np.array([1.0, 0, 0, 0]))
    pressed = avatar.draw(0.5, np.array([0.8, 1.0, 0, 0]))
    rounded = avatar.draw(0.5, np.array([1.0, 0, 1.0, 0]))
    box = avatar.mouth_box
    dark = {name: float((luminance(crop(f, box)) < 60).mean()) for name, f in
            {"rest": rest, "open": opened, "pressed": pressed, "round": rounded}.items()}
    assert dark["rest"] < 0.002 and dark["pressed"] < 0.002
    assert dark["open"] > 0.02 and dark["round"] > 0.01
    # Only the mouth region changes: the rest of the image is untouched.
    outside = np.ones(rest.shape[:2], bool)
    x, y, w, h = box
    outside[y : y + h, x : x + w] = False
    assert np.array_equal(rest[outside], opened[outside])

    def lip_width(frame) -> int:
        roi = crop(frame, box).astype(int)
        cols = np.flatnonzero(((roi[..., 2] - roi[..., 1] > 60) & (roi[..., 2] > 150)).any(axis=0))
        return int(cols.max() - cols.min())

    assert lip_width(rounded) < lip_width(opened) - 5


def test_blink_draws_lids_in_the_skin_colour_sampled_near_each_eye(portrait_description):
    avatar = PortraitAvatar(portrait_description, 960, 1200, smoothing=False)  # scaled: 2x the image
    skin = np.array((150, 180, 225))  # the drawn test face's skin
    for lid in avatar.lid_colours:
        assert np.abs(np.array(lid) - skin * 0.94).max() <= 3
    start = avatar.blink_times(0.0, 20.0)[0]
    closed_t = next(t for t in np.arange(start, start + 0.2, 0.005) if avatar.eyes_closed_at(t))
    opened = avatar.draw(start - 0.5, np.zeros(4))
    closed = avatar.draw(closed_t, np.zeros(4))
    for (x, y, w, h), lid, source in zip(avatar.eye_boxes, avatar.lid_colours, PORTRAIT_EYES):
        assert luminance(opened[y + h // 2 : y + h // 2 + 1, x + w // 2 : x + w // 2 + 1]).item() < 40
        assert np.abs(closed[y + h // 2, x + w // 2].astype(int) - lid).max() <= 2
        assert abs((x + w / 2) - source[0] * 2) <= 2  # the box follows the image's scaling
