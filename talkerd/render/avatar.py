"""The default avatar: a friendly stylised character drawn entirely by this project with OpenCV.

Static layers (background, shoulders and neck, head with hair, nose and cheeks) are painted once at
construction with soft shading; a frame composites them at the breathing and head-sway offsets and
draws the moving parts (eyes, brows, mouth; face_parts.py) on top. Geometry is written in design
units for a 720-pixel-high frame and scaled, so the avatar looks the same at any size.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .base import Avatar
from .face_parts import BrowDrawer, EyeDrawer, JawDrawer, MouthDrawer, Palette
from .motion import IdlePose
from .paint import Sprite, blur, ellipse, fill_poly, lay, mask_of, polyline, shade

DESIGN_HEIGHT = 720.0
HAIR = (38, 48, 78)
HAIR_SHINE = (88, 108, 150)
SWEATER = (128, 112, 42)
COLLAR = (100, 86, 30)
DEFAULT_BACKGROUND = (70, 52, 38)

# Head sprite extent in design units around the head centre.
_HEAD_X, _HEAD_TOP, _HEAD_BOTTOM = 215, -250, 200
# Body sprite: from the chin's shadow down past the frame's bottom edge.
_BODY_X, _BODY_TOP = 420, 120


def _face_outline(t: np.ndarray | None = None) -> np.ndarray:
    """Face outline in design units: a round crown and cheeks narrowing to a soft chin."""
    t = np.linspace(0.0, 2.0 * math.pi, 120, endpoint=False) if t is None else t
    c, s = np.cos(t), np.sin(t)
    lower = s > 0
    x = 150 * c * np.where(lower, 1 - 0.2 * s**2, 1.0)
    y = np.where(lower, 200 * s * (1 - 0.04 * c**2), 178 * s)
    return np.stack([x, y], axis=1)


def _smooth(points, rounds: int = 4) -> np.ndarray:
    """Chaikin corner cutting: a polyline through rough control points becomes a smooth curve."""
    pts = np.asarray(points, dtype=np.float64)
    for _ in range(rounds):
        a, b = pts[:-1], pts[1:]
        pts = np.concatenate([pts[:1], np.stack([0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b], axis=1).reshape(-1, 2), pts[-1:]])
    return pts


def _shoulders(bottom: float) -> np.ndarray:
    """Sloping shoulders from the base of the neck, down past the frame's bottom edge."""
    right = [[0, 256], [70, 258], [130, 280], [225, 298], [300, 322], [350, 360], [378, 420], [392, 520], [396, bottom]]
    right = _smooth(right)
    return np.concatenate([right[::-1] * (-1, 1), right[1:]])


def _hair_outline() -> np.ndarray:
    """A bob: a full crown that falls to the jaw on both sides, ends curling in a little."""
    top = np.linspace(math.pi, 2 * math.pi, 60)
    crown = np.stack([194 * np.cos(top), -28 + 214 * np.sin(top)], axis=1)
    right = np.array([[196, 20], [192, 110], [184, 160], [168, 184], [140, 190]])
    left = right[::-1] * (-1, 1)
    return np.concatenate([crown, right, [[95, 176], [-95, 176]], left])


def _fringe_edge(x: np.ndarray) -> np.ndarray:
    """Lower edge of the side-swept fringe: low on the viewer's left, lifting to the right."""
    k = np.clip((x + 170) / 340, 0.0, 1.0)
    return -58 - 62 * k**1.2 + 9 * np.sin(k * math.pi * 2.2) + 4 * np.abs(np.sin(k * math.pi * 7))


class DefaultAvatar(Avatar):
    """The drawn default avatar. ``draw(t, mouth)`` → BGR frame; see ``Avatar``."""

    def __init__(self, width: int = 1280, height: int = 720, *, seed: int = 7, background=DEFAULT_BACKGROUND,
                 smoothing: bool = True) -> None:
        super().__init__(width, height, seed=seed, smoothing=smoothing)
        self.unit = min(height / DESIGN_HEIGHT, width / 1000.0)
        self.palette = Palette()
        u = self.unit
        self.head_origin = (width / 2.0, height / 2.0 - 60 * u)
        background = self._paint_background(tuple(int(c) for c in background))
        body, body_at = self._paint_body()
        body.paste(background, *body_at)
        # Breathing moves everything below the neck's top by whole rows: the background there is a
        # smooth gradient, so shifting it with the body by a few rows is invisible and costs a copy.
        self._scene = background
        self._breath_row = max(body_at[1], 0)
        self._head, self._head_at = self._paint_head()
        self._base_key: tuple[int, int, int] | None = None
        self._base = np.empty_like(background)
        hx, hy = self._head_at
        rel = (self.head_origin[0] - hx, self.head_origin[1] - hy)  # head centre inside the head sprite
        p = self.palette
        self._eyes = [EyeDrawer((rel[0] + side * 63 * u, rel[1] + 6 * u), 37 * u, 23 * u, side, p) for side in (-1, 1)]
        self._brows = [BrowDrawer((rel[0] + side * 64 * u, rel[1] - 44 * u), 40 * u, 6.5 * u, side, p) for side in (-1, 1)]
        self._mouth = MouthDrawer((rel[0], rel[1] + 128 * u), u, p)
        self._jaw = JawDrawer((rel[0], rel[1] + 128 * u), u)

    # -- static layers ------------------------------------------------------------------------------
    def _paint_background(self, colour: tuple) -> np.ndarray:
        h, w = self.height, self.width
        base = np.asarray(colour, dtype=np.float32)
        ramp = np.linspace(1.25, 0.7, h, dtype=np.float32)[:, None, None]
        canvas = np.broadcast_to(base * ramp, (h, w, 3)).copy()
        cx, cy = self.head_origin
        ys, xs = np.ogrid[0:h, 0:w]
        # A soft light behind the head (computed, not blurred: a wide blur at 1080p costs seconds).
        glow = np.exp(-(((xs - cx) / (420 * self.unit)) ** 2) - (((ys - cy - 40 * self.unit) / (380 * self.unit)) ** 2))
        lay(canvas, glow.astype(np.float32), np.minimum(base * 1.9 + 25, 255), 0.45)
        return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)

    def _canvas(self, x0: float, y0: float, x1: float, y1: float):
        """A float canvas for design-unit rectangle (x0, y0)–(x1, y1) around the head centre."""
        u = self.unit
        left = int(math.floor(self.head_origin[0] + x0 * u))
        top = int(math.floor(self.head_origin[1] + y0 * u))
        w = int(math.ceil((x1 - x0) * u))
        h = int(math.ceil((y1 - y0) * u))
        offset = np.array([self.head_origin[0] - left, self.head_origin[1] - top])

        def to_px(points) -> np.ndarray:
            return np.atleast_2d(np.asarray(points, dtype=np.float64)) * u + offset

        return np.zeros((h, w, 3), np.float32), (left, top), to_px

    def _paint_body(self):
        u = self.unit
        bottom = (self.height - self.head_origin[1]) / u + 20
        canvas, at, px = self._canvas(-_BODY_X, _BODY_TOP, _BODY_X, bottom)
        shape = canvas.shape[:2]
        p = self.palette
        neck_pts = px([[-56, 120], [56, 120], [60, 230], [74, 272], [-74, 272], [-60, 230]])
        neck = mask_of(shape, lambda c: fill_poly(c, neck_pts, 255))
        lay(canvas, neck, np.array(p.skin, np.float32) * 0.9)
        rounded = cv2.distanceTransform((neck > 0.5).astype(np.uint8), cv2.DIST_L2, 5) / (22 * u)
        shade(canvas, 1.0 - 0.14 * (1.0 - np.clip(rounded, 0, 1)) * neck)  # a round neck, not a flat strip
        chin_shadow = blur(mask_of(shape, lambda c: ellipse(c, px([0, 168])[0], (80 * u, 46 * u), 255)), 10 * u)
        shade(canvas, 1.0 - 0.35 * chin_shadow * neck)
        outline = px(_shoulders(bottom))
        body = mask_of(shape, lambda c: fill_poly(c, outline, 255))
        sweater = np.broadcast_to(np.asarray(SWEATER, np.float32), canvas.shape).copy()
        rim = cv2.distanceTransform((body > 0.5).astype(np.uint8), cv2.DIST_L2, 5) / (60 * u)
        shade(sweater, 0.72 + 0.28 * np.clip(rim, 0, 1))
        for side in (-1, 1):  # light catching the shoulders
            shine = blur(mask_of(shape, lambda c: ellipse(c, px([side * 220, 310])[0], (110 * u, 40 * u), 255, side * 12)), 25 * u)
            lay(sweater, shine, np.minimum(np.asarray(SWEATER, np.float32) * 1.35, 255), 0.5)
        lay(canvas, body, sweater)
        collar_pts = px(_smooth([[-84, 258], [-60, 284], [0, 300], [60, 284], [84, 258]]))
        collar = blur(mask_of(shape, lambda c: polyline(c, collar_pts, 255, 12 * u)), 1.0 * u)
        lay(canvas, collar * body, COLLAR)
        alpha = np.maximum(neck, body)
        return Sprite.from_float(canvas, alpha), at

    def _paint_head(self):
        u = self.unit
        canvas, at, px = self._canvas(-_HEAD_X, _HEAD_TOP, _HEAD_X, _HEAD_BOTTOM)
        shape = canvas.shape[:2]
        p = self.palette
        hair = mask_of(shape, lambda c: fill_poly(c, px(_hair_outline()), 255))
        hair_paint = np.broadcast_to(np.asarray(HAIR, np.float32), canvas.shape).copy()
        inner = blur(mask_of(shape, lambda c: ellipse(c, px([0, 20])[0], (160 * u, 190 * u), 255)), 18 * u)
        shade(hair_paint, 1.0 - 0.35 * inner)
        sheen = blur(mask_of(shape, lambda c: cv2.ellipse(c, tuple(int(v) for v in px([0, -40])[0]),
                                                          (int(150 * u), int(165 * u)), 0, 200, 300, 255, max(1, int(22 * u)), cv2.LINE_AA)), 12 * u)
        lay(hair_paint, sheen, HAIR_SHINE, 0.55)
        lay(canvas, hair, hair_paint)

        face_pts = px(_face_outline())
        face = mask_of(shape, lambda c: fill_poly(c, face_pts, 255))
        skin = np.broadcast_to(np.asarray(p.skin, np.float32), canvas.shape).copy()
        depth = cv2.distanceTransform((face > 0.5).astype(np.uint8), cv2.DIST_L2, 5) / (45 * u)
        shade(skin, 0.84 + 0.16 * np.clip(depth, 0, 1) ** 0.7)
        ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
        cx, cy = px([0, 0])[0]
        shade(skin, 1.0 + 0.05 * ((cx - xs) / (150 * u) + (cy - ys) / (200 * u)) * 0.5)  # light from the upper left
        for side in (-1, 1):
            cheek = blur(mask_of(shape, lambda c: ellipse(c, px([side * 96, 86])[0], (36 * u, 20 * u), 255)), 14 * u)
            lay(skin, cheek, (120, 130, 235), 0.4)
        self._paint_nose(skin, shape, px)
        lay(canvas, face, skin)

        fringe_mask = self._fringe(shape, px)
        fringe_shadow = np.roll(blur(fringe_mask, 8 * u), int(10 * u), axis=0)
        shade(canvas, 1.0 - 0.2 * fringe_shadow * face)
        fringe_paint = hair_paint.copy()
        # Soft, curved strand shadows and highlights sweeping with the fringe, then a blur so they
        # read as texture rather than drawn lines.
        shadows = blur(mask_of(shape, lambda c: self._strands(c, px, range(-150, 160, 30), 0.0)), 1.5 * u)
        lights = blur(mask_of(shape, lambda c: self._strands(c, px, range(-135, 160, 30), 6.0)), 2.0 * u)
        shade(fringe_paint, 1.0 - 0.3 * shadows)
        lay(fringe_paint, lights, HAIR_SHINE, 0.35)
        lay(canvas, fringe_mask, fringe_paint)
        alpha = np.maximum(hair, face)
        return Sprite.from_float(canvas, alpha), at

    def _paint_nose(self, skin: np.ndarray, shape, px) -> None:
        u = self.unit
        bridge = blur(mask_of(shape, lambda c: polyline(c, px(_smooth([[9, 20], [12, 48], [17, 70]])), 255, 4 * u)), 3 * u)
        shade(skin, 1.0 - 0.08 * bridge)
        tip = blur(mask_of(shape, lambda c: cv2.ellipse(c, tuple(int(v) for v in px([0, 76])[0]), (int(17 * u), int(10 * u)),
                                                        0, 30, 150, 255, max(1, int(2 * u)), cv2.LINE_AA)), 0.8 * u)
        shade(skin, 1.0 - 0.16 * tip)
        for side in (-1, 1):
            nostril = blur(mask_of(shape, lambda c: ellipse(c, px([side * 9, 84])[0], (3.2 * u, 1.7 * u), 255, side * 25)), 0.6 * u)
            shade(skin, 1.0 - 0.16 * nostril)
        shine = blur(mask_of(shape, lambda c: ellipse(c, px([-3, 68])[0], (5 * u, 4 * u), 255)), 3 * u)
        lay(skin, shine, np.minimum(np.asarray(self.palette.skin, np.float32) * 1.12, 255), 0.6)

    def _strands(self, canvas: np.ndarray, px, starts, shift: float) -> None:
        for x in starts:
            x = float(x) + shift
            end = x + 45
            tip = float(_fringe_edge(np.array([end]))[0]) - 4
            curve = _smooth([[x - 10, -200], [x + 12, -160], [x + 32, -120], [end, tip]], rounds=3)
            polyline(canvas, px(curve), 255, 2.2 * self.unit)

    def _fringe(self, shape, px) -> np.ndarray:
        u = self.unit
        xs = np.linspace(-200, 200, 81)
        edge = np.stack([xs, _fringe_edge(xs)], axis=1)
        region = np.concatenate([[[-200, -260]], edge, [[200, -260]]])
        below = mask_of(shape, lambda c: fill_poly(c, px(region), 255))
        cap = mask_of(shape, lambda c: ellipse(c, px([0, -20])[0], (172 * u, 210 * u), 255))
        return below * cap

    # -- per frame ----------------------------------------------------------------------------------
    def _render(self, t: float, mouth: np.ndarray, idle: IdlePose) -> np.ndarray:
        h = self.height
        body_dy = int(round(-idle.breath * 0.004 * h))
        hx = int(round(idle.head_dx * h))
        hy = int(round(idle.head_dy * h - idle.breath * 0.0025 * h))
        origin = (self._head_at[0] + hx, self._head_at[1] + hy)
        if self._base_key != (body_dy, hx, hy):
            # The offsets move by whole pixels every few frames; recomposite only when they change.
            self._compose_base(body_dy)
            self._head.paste(self._base, *origin)
            self._base_key = (body_dy, hx, hy)
        frame = self._base.copy()
        eyes = tuple(eye.draw(frame, origin, idle.blink, (idle.gaze_x, idle.gaze_y)) for eye in self._eyes)
        self._eye_boxes = eyes  # type: ignore[assignment]
        lift = 0.4 * float(mouth[0]) + 0.25 * max(0.0, -idle.gaze_y) - 0.1 * idle.blink
        for brow in self._brows:
            brow.draw(frame, origin, lift)
        self._jaw.draw(frame, origin, float(mouth[0]) * (1.0 - float(mouth[1])))
        self._mouth_box = self._mouth.draw(frame, origin, mouth)
        return frame

    def _compose_base(self, dy: int) -> None:
        """Scene with everything from the neck down shifted by ``dy`` rows (the body's breathing)."""
        scene, base, top = self._scene, self._base, self._breath_row
        base[:top] = scene[:top]
        if dy >= 0:
            base[top : top + dy] = scene[top : top + 1]
            base[top + dy :] = scene[top : self.height - dy]
        else:
            base[top:dy] = scene[top - dy :]
            base[dy:] = scene[-1:]

    @property
    def nbytes(self) -> int:
        return self._scene.nbytes * 3 + self._head.nbytes
