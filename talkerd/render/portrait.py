"""Portrait mode: a venue's own image of a face, its mouth and eyes animated.

A small TOML description sits next to the image and says where the face's parts are::

    image = "host.png"          # relative to this description file
    [mouth]
    center = [412, 560]         # pixels in the image
    width = 118                 # corner to corner
    height = 44                 # upper lip top to lower lip bottom (default: 0.4 × width)
    [eyes]
    left = [340, 380]           # the viewer's left eye
    right = [488, 380]
    radius = 22                 # half the width of an eye opening

The mouth opens by stretching the region below the lips downwards (the lower lip and chin follow
jaw_open) and darkening the opening; lips_round narrows it, lips_wide spreads it, lips_closed keeps
it shut. Blinks draw lids in the skin colour sampled around each eye. Any problem with the file, the
image or a field is a ``ConfigError`` naming the file and the field.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..tomlfile import read_toml, validation_error
from .base import Avatar
from .motion import IdlePose
from .paint import fill_poly, polyline


Point = Tuple[float, float]
MIN_IMAGE_PX = 64
_INSIDE = (34, 22, 72)
_TEETH = (225, 232, 238)
_LASH = (30, 28, 36)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class PortraitMouth(_Model):
    center: Point
    """Centre of the closed mouth (the lip seam), in image pixels."""
    width: float = Field(gt=0)
    """Corner-to-corner width of the mouth, in image pixels."""
    height: float | None = Field(default=None, gt=0)
    """Upper-lip top to lower-lip bottom, in image pixels; default 0.4 × width."""


class PortraitEyes(_Model):
    left: Point
    """Centre of the viewer's left eye, in image pixels."""
    right: Point
    """Centre of the viewer's right eye, in image pixels."""
    radius: float = Field(gt=0)
    """Half the width of an eye opening, in image pixels."""


class PortraitDescription(_Model):
    image: Path
    """The image file (PNG, JPEG…), relative to the description file."""
    mouth: PortraitMouth
    """Where the mouth is."""
    eyes: PortraitEyes
    """Where the eyes are."""


def _fail(path: Path, field: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {field}: {problem}")


def load_description(path: str | Path) -> tuple[PortraitDescription, np.ndarray]:
    """Read and check a portrait description and its image; ``ConfigError`` names the file and field."""
    path = Path(path)
    data = read_toml(path, "portrait description")
    try:
        desc = PortraitDescription.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(path)) from None
    image_path = desc.image if desc.image.is_absolute() else path.resolve().parent / desc.image
    if not image_path.is_file():
        raise _fail(path, "image", f"no such file: {image_path}")
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise _fail(path, "image", f"{image_path} is not an image OpenCV can read (PNG, JPEG, BMP, WebP…)")
    h, w = image.shape[:2]
    if min(h, w) < MIN_IMAGE_PX:
        raise _fail(path, "image", f"{image_path} is {w}x{h}; at least {MIN_IMAGE_PX}x{MIN_IMAGE_PX} pixels are needed")
    _check_regions(path, desc, w, h)
    return desc, image


def _check_regions(path: Path, desc: PortraitDescription, w: int, h: int) -> None:
    m = desc.mouth
    mh = m.height or 0.4 * m.width
    if not (m.width / 2 <= m.center[0] <= w - m.width / 2 and mh / 2 <= m.center[1] <= h - mh / 2):
        raise _fail(path, "mouth", f"a {m.width:g}x{mh:g} mouth at {list(m.center)} does not fit in the {w}x{h} image")
    r = desc.eyes.radius
    for side in ("left", "right"):
        x, y = getattr(desc.eyes, side)
        if not (r <= x <= w - r and r <= y <= h - r):
            raise _fail(path, f"eyes.{side}", f"an eye of radius {r:g} at {[x, y]} does not fit in the {w}x{h} image")
    if desc.eyes.left[0] >= desc.eyes.right[0]:
        raise _fail(path, "eyes", "left must be the eye further left in the image (smaller x) than right")
    if m.center[1] <= max(desc.eyes.left[1], desc.eyes.right[1]):
        raise _fail(path, "mouth.center", "the mouth must be below the eyes")


class PortraitAvatar(Avatar):
    """An image animated by its description: ``draw(t, mouth)`` as for every avatar."""

    def __init__(self, description: str | Path, width: int = 1280, height: int = 720, *, seed: int = 7,
                 background=(40, 30, 24), smoothing: bool = True) -> None:
        super().__init__(width, height, seed=seed, smoothing=smoothing)
        self.description_path = Path(description)
        desc, image = load_description(description)
        ih, iw = image.shape[:2]
        scale = min(width / iw, height / ih)
        sw, sh = max(1, round(iw * scale)), max(1, round(ih * scale))
        ox, oy = (width - sw) // 2, (height - sh) // 2
        self._base = np.empty((height, width, 3), np.uint8)
        self._base[:] = background
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        self._base[oy : oy + sh, ox : ox + sw] = cv2.resize(image, (sw, sh), interpolation=interpolation)

        def at(point) -> tuple[float, float]:
            return (ox + point[0] * scale, oy + point[1] * scale)

        self._mouth_centre = at(desc.mouth.center)
        self._mouth_w = desc.mouth.width * scale
        self._mouth_h = (desc.mouth.height or 0.4 * desc.mouth.width) * scale
        self._eye_centres = (at(desc.eyes.left), at(desc.eyes.right))
        self._eye_r = desc.eyes.radius * scale
        self._prepare_mouth()
        self.lid_colours = tuple(self._skin_near(c) for c in self._eye_centres)
        """The lid colour of each eye: the skin sampled around it, a shade darker."""
        self._eye_boxes = tuple(self._eye_box(c) for c in self._eye_centres)  # type: ignore[assignment]

    # -- preparation --------------------------------------------------------------------------------
    def _prepare_mouth(self) -> None:
        mx, my = self._mouth_centre
        w, h = self._mouth_w, self._mouth_h
        x0, x1 = max(0, math.floor(mx - 0.9 * w)), min(self.width, math.ceil(mx + 0.9 * w))
        y0, y1 = max(0, math.floor(my - 1.0 * h)), min(self.height, math.ceil(my + 2.8 * h))
        self._mouth_box = (x0, y0, x1 - x0, y1 - y0)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self._xs, self._ys = xs, ys
        ax = np.clip(np.abs(xs - mx) / (0.9 * w), 0, 1)
        self._bell_x = (0.5 + 0.5 * np.cos(np.pi * ax)).astype(np.float32)
        below = (ys - my) / h
        # Displacement weight: nothing above the seam, all of it at the lower lip, none at the
        # region's bottom edge, so the warped patch joins the untouched image without a seam.
        rise = np.clip(below / 0.35, 0, 1)
        fall = np.clip((y1 - ys) / max(y1 - (my + 0.35 * h), 1.0), 0, 1)
        self._drop_w = (self._bell_x * np.minimum(rise, fall) ** 1.2).astype(np.float32)
        band = np.exp(-((below / 0.9) ** 2)).astype(np.float32)
        self._squeeze_w = (self._bell_x * band).astype(np.float32)

    def _skin_near(self, centre) -> tuple[int, int, int]:
        """Median colour of a ring around the eye, brows (the sector above) left out."""
        cx, cy = centre
        r = self._eye_r
        angles = np.linspace(-0.25 * np.pi, 1.25 * np.pi, 48)  # right, below, left: image y points down
        samples = []
        for dist in (1.7, 2.0, 2.3):
            xs = np.clip(np.round(cx + dist * r * np.cos(angles)).astype(int), 0, self.width - 1)
            ys = np.clip(np.round(cy + dist * r * np.sin(angles)).astype(int), 0, self.height - 1)
            samples.append(self._base[ys, xs])
        skin = np.median(np.concatenate(samples).astype(np.float32), axis=0) * 0.94
        return tuple(int(v) for v in skin)

    def _eye_box(self, centre):
        cx, cy = centre
        r = self._eye_r
        return (int(cx - r), int(cy - 0.65 * r), int(2 * r), int(1.3 * r))

    # -- per frame ----------------------------------------------------------------------------------
    def _render(self, t: float, mouth: np.ndarray, idle: IdlePose) -> np.ndarray:
        frame = self._base.copy()
        self._draw_mouth(frame, mouth)
        for centre, lid in zip(self._eye_centres, self.lid_colours):
            self._draw_lid(frame, centre, lid, idle.blink)
        return frame

    def _draw_mouth(self, frame: np.ndarray, mouth: np.ndarray) -> None:
        jaw, closed, rnd, wide = (float(v) for v in mouth)
        opening = jaw * (1.0 - closed)
        squeeze = 0.3 * rnd - 0.15 * wide
        if opening < 0.01 and abs(squeeze) < 0.01:
            return
        mx, my = self._mouth_centre
        drop = 0.75 * self._mouth_h * opening
        map_x = self._xs + (self._xs - mx) * squeeze * self._squeeze_w
        map_y = self._ys - drop * self._drop_w
        x0, y0, w, h = self._mouth_box
        roi = frame[y0 : y0 + h, x0 : x0 + w]
        # The maps are in frame coordinates; remap reads the whole untouched base frame.
        roi[:] = cv2.remap(self._base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if drop < 1.0:
            return
        half_w = 0.36 * self._mouth_w * (1 - 0.4 * rnd + 0.12 * wide)
        u = np.linspace(-1, 1, 33)
        k = 2.0 + 1.2 * wide * (1 - rnd)
        g = np.clip(1 - np.abs(u) ** k, 0, None) ** (1 / k)
        top = np.stack([mx + u * half_w, my - 0.1 * drop * g], axis=1)
        bottom = np.stack([mx + u * half_w, my + 0.85 * drop * g], axis=1)
        local = np.array([x0, y0])
        fill_poly(roi, np.concatenate([top, bottom[::-1]]) - local, _INSIDE)
        if drop > 6:
            teeth = top.copy()
            teeth[:, 1] = np.minimum(top[:, 1] + 0.22 * drop, bottom[:, 1])
            fill_poly(roi, np.concatenate([top, teeth[::-1]]) - local, _TEETH)

    def _draw_lid(self, frame: np.ndarray, centre, lid, blink: float) -> None:
        if blink < 0.02:
            return
        cx, cy = centre
        r = self._eye_r * 1.12  # a little wider than the opening: covers the eye's own outline
        u = np.linspace(-1, 1, 25)
        top = np.stack([cx + u * r, cy - 0.72 * r * np.sqrt(1 - u**2)], axis=1)
        bottom = np.stack([cx + u * r, cy + 0.72 * r * np.sqrt(1 - u**2)], axis=1)
        edge = top + blink * (bottom - top)
        above = top - (0, 0.12 * r)
        fill_poly(frame, np.concatenate([above, edge[::-1]]), lid)
        polyline(frame, edge, _LASH, max(1.0, 0.12 * r))
