"""The moving parts of the default avatar's face — eyes, brows and mouth — drawn on every frame.

Everything static is pre-drawn in sprites (avatar.py); these parts change with the pose, so they are
drawn directly onto the frame with anti-aliased primitives in small regions, which keeps a frame cheap.
Sizes are given in pixels at the frame's scale; positions are relative to the head's origin on screen.

The mouth is parametric in the four channels (jaw_open, lips_closed, lips_round, lips_wide):
- the opening's height follows jaw_open, cancelled by lips_closed (p, b, m press the lips shut);
- lips_round narrows the mouth, thickens the lips and makes the opening an upright oval (o, u, w);
- lips_wide spreads the corners, lifts them and flattens the opening into a slit (i, e);
- lips_closed also thins the lips (pressed, rolled in) and deepens the seam and the chin crease.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .paint import Box, circle, fill_poly, mask_of, polyline

_U = np.linspace(-1.0, 1.0, 41)


@dataclass(frozen=True)
class Palette:
    """BGR colours of the default avatar."""

    skin: tuple = (160, 190, 236)
    """Face skin, before shading."""
    lid: tuple = (146, 176, 224)
    """Eyelids: the skin a shade darker."""
    sclera: tuple = (238, 242, 246)
    """White of the eye."""
    sclera_shadow: tuple = (205, 212, 222)
    """The upper lid's shadow on the eye."""
    iris: tuple = (50, 88, 128)
    """Iris (warm brown)."""
    iris_light: tuple = (80, 130, 170)
    """Lighter inner iris."""
    iris_rim: tuple = (30, 45, 62)
    """Dark ring round the iris."""
    pupil: tuple = (22, 22, 28)
    """Pupil."""
    lash: tuple = (34, 30, 40)
    """Lash line along the upper lid."""
    lower_lid: tuple = (110, 130, 180)
    """Faint line of the lower lid."""
    crease: tuple = (120, 148, 200)
    """Lid crease above the eye."""
    brow: tuple = (40, 52, 80)
    """Eyebrows."""
    lip_upper: tuple = (102, 98, 196)
    """Upper lip."""
    lip_lower: tuple = (120, 116, 214)
    """Lower lip (catches more light)."""
    lip_highlight: tuple = (160, 160, 236)
    """Sheen on the lower lip."""
    seam: tuple = (70, 55, 125)
    """Line where the lips meet."""
    mouth_inside: tuple = (34, 22, 72)
    """The dark inside of the open mouth."""
    teeth: tuple = (236, 240, 244)
    """Upper teeth."""
    tongue: tuple = (84, 76, 160)
    """Tongue, seen when the mouth is wide open."""
    chin_crease: tuple = (125, 152, 206)
    """Crease under pressed lips."""


class EyeDrawer:
    """One eye: sclera, iris following the gaze, pupil, highlights, and lids that blink."""

    def __init__(self, centre: tuple[float, float], half_w: float, half_h: float, side: int, palette: Palette) -> None:
        self.p = palette
        self.half_w, self.half_h = half_w, half_h
        self.iris_r = 0.52 * half_w
        pad = math.ceil(0.35 * half_w) + 2
        x0, y0 = math.floor(centre[0] - half_w - pad), math.floor(centre[1] - half_h - pad)
        self.offset = (x0, y0)
        self.size = (math.ceil(2 * half_w + 2 * pad) + 1, math.ceil(2 * half_h + 2 * pad) + 1)
        self.centre = (centre[0] - x0, centre[1] - y0)
        cx, cy = self.centre
        # An almond whose outer corner is lifted a little: reads as friendly rather than sleepy.
        lift = -0.12 * half_h * _U * side
        self.upper = np.stack([cx + _U * half_w, cy - half_h * (1 - _U**2) ** 0.75 + lift], axis=1)
        self.lower = np.stack([cx + _U * half_w, cy + 0.72 * half_h * (1 - _U**2) ** 0.95 + lift], axis=1)
        outline = np.concatenate([self.upper, self.lower[::-1]])
        w, h = self.size
        self.mask = mask_of((h, w), lambda c: fill_poly(c, outline, 255))
        self.inverse = 1.0 - self.mask
        self.side = side
        xs = self.upper[:, 0]
        self.box = (int(xs.min()) + x0, int(self.upper[:, 1].min()) + y0,
                    int(math.ceil(xs.max() - xs.min())), int(math.ceil(self.lower[:, 1].max() - self.upper[:, 1].min())))

    def draw(self, frame: np.ndarray, origin: tuple[int, int], blink: float, gaze: tuple[float, float]) -> Box:
        x0, y0 = origin[0] + self.offset[0], origin[1] + self.offset[1]
        w, h = self.size
        if x0 < 0 or y0 < 0 or x0 + w > frame.shape[1] or y0 + h > frame.shape[0]:
            return (0, 0, 0, 0)
        roi = frame[y0 : y0 + h, x0 : x0 + w]
        p, r = self.p, self.iris_r
        patch = np.empty_like(roi)
        patch[:] = p.sclera
        polyline(patch, self.upper + (0, 0.22 * self.half_h), p.sclera_shadow, 0.45 * self.half_h)
        ic = (self.centre[0] + gaze[0] * 0.42 * self.half_w, self.centre[1] + 0.06 * self.half_h + gaze[1] * 0.3 * self.half_h)
        circle(patch, ic, r, p.iris)
        circle(patch, (ic[0], ic[1] + 0.15 * r), 0.62 * r, p.iris_light)
        circle(patch, ic, r, p.iris_rim, thickness=max(1, int(round(0.14 * r))))
        circle(patch, ic, 0.42 * r, p.pupil)
        circle(patch, (ic[0] - 0.35 * r, ic[1] - 0.38 * r), 0.2 * r, (252, 252, 252))
        circle(patch, (ic[0] + 0.3 * r, ic[1] + 0.3 * r), 0.09 * r, (235, 235, 240))
        edge = self.upper + blink * (self.lower - self.upper)
        lid = np.concatenate([np.stack([self.upper[:, 0], np.zeros_like(_U)], axis=1), edge[::-1]])
        fill_poly(patch, lid, p.lid)
        roi[:] = cv2.blendLinear(patch, roi, self.mask, self.inverse)
        lash = max(2.0, 0.13 * self.half_h)
        polyline(roi, edge, p.lash, lash)
        outer = edge[0] if self.side < 0 else edge[-1]
        flick = np.array([outer, outer + (self.side * 0.14 * self.half_w, -0.22 * self.half_h)])
        polyline(roi, flick, p.lash, lash * 0.8)
        if blink < 0.85:
            polyline(roi, self.lower[4:-4], p.lower_lid, max(1.0, 0.05 * self.half_h))
        crease = self.upper[6:-6] + (0, -0.42 * self.half_h - 0.15 * blink * self.half_h)
        polyline(roi, crease, p.crease, max(1.0, 0.06 * self.half_h))
        return (self.box[0] + origin[0], self.box[1] + origin[1], self.box[2], self.box[3])


class BrowDrawer:
    """A tapered, arched brow that lifts with the voice and with an upward glance."""

    def __init__(self, centre: tuple[float, float], half_w: float, thickness: float, side: int, palette: Palette) -> None:
        inner = (1 - _U * side) / 2  # 1 at the nose end, where brows are thickest
        arch = -0.28 * half_w * (1 - _U**2) + 0.06 * half_w * _U * side
        mid = np.stack([centre[0] + _U * half_w, centre[1] + arch], axis=1)
        half = thickness * (0.3 + 0.45 * inner) * (1 - 0.5 * _U**8)
        self.outline = np.concatenate([mid - np.stack([0 * half, half], axis=1), (mid + np.stack([0 * half, half], axis=1))[::-1]])
        self.colour = palette.brow
        self.lift_px = 0.35 * half_w

    def draw(self, frame: np.ndarray, origin: tuple[int, int], raise_: float) -> None:
        fill_poly(frame, self.outline + (origin[0], origin[1] - raise_ * self.lift_px), self.colour)


@dataclass(frozen=True)
class MouthShape:
    """The mouth's outline for one pose, in pixels relative to the mouth centre."""

    upper_outer: np.ndarray
    """(N, 2) top edge of the upper lip, corner to corner."""
    upper_inner: np.ndarray
    """(N, 2) bottom edge of the upper lip: the top of the opening."""
    lower_inner: np.ndarray
    """(N, 2) top edge of the lower lip: the bottom of the opening."""
    lower_outer: np.ndarray
    """(N, 2) bottom edge of the lower lip."""
    opening_px: float
    """Height of the opening between the lips, in pixels (0 when closed)."""


def _superellipse(u: np.ndarray, limit: float, k: float) -> np.ndarray:
    inside = np.clip(1.0 - np.abs(u / max(limit, 1e-6)) ** k, 0.0, None)
    return inside ** (1.0 / k)


class MouthDrawer:
    """The lips, the opening, teeth and tongue, shaped by the four mouth channels."""

    def __init__(self, centre: tuple[float, float], unit: float, palette: Palette) -> None:
        self.centre, self.unit, self.p = centre, unit, palette
        u = unit
        self.box_rel = (int(centre[0] - 62 * u), int(centre[1] - 34 * u), int(124 * u), int(100 * u))

    def shape(self, mouth: np.ndarray) -> MouthShape:
        jaw, closed, rnd, wide = (float(v) for v in mouth)
        u = self.unit
        opening = jaw * (1.0 - closed)
        half_w = 44 * u * (1 + 0.24 * wide - 0.36 * rnd + 0.06 * opening - 0.06 * closed)
        height = 52 * u * opening * (1 - 0.35 * wide) * (1 + 0.1 * rnd)
        corner_lift = -(3.0 + 4.0 * wide) * (1 - rnd) * u
        thick_up = 9 * u * (1 + 0.45 * rnd - 0.5 * closed)
        thick_low = 12 * u * (1 + 0.4 * rnd - 0.45 * closed)
        inner_limit = 1.0 - (0.14 - 0.08 * rnd)
        k = 2.0 + 1.6 * wide * (1 - rnd) - 0.2 * rnd
        x = _U * half_w
        seam = corner_lift * _U**2
        g = _superellipse(_U, inner_limit, k)
        upper_inner = seam - 0.28 * height * g
        lower_inner = seam + 0.72 * height * g
        bow = 1 - 0.28 * np.exp(-((_U / 0.11) ** 2)) + 0.12 * np.exp(-(((np.abs(_U) - 0.22) / 0.12) ** 2))
        upper_outer = upper_inner - thick_up * np.sqrt(1 - _U**2) * bow
        lower_outer = lower_inner + thick_low * (1 - _U**2) ** 0.6

        def pts(ys: np.ndarray) -> np.ndarray:
            return np.stack([x, ys], axis=1)

        return MouthShape(pts(upper_outer), pts(upper_inner), pts(lower_inner), pts(lower_outer), height)

    def draw(self, frame: np.ndarray, origin: tuple[int, int], mouth: np.ndarray) -> Box:
        s = self.shape(mouth)
        p, u = self.p, self.unit
        at = np.array([origin[0] + self.centre[0], origin[1] + self.centre[1]])
        closed = float(mouth[1])
        if closed > 0.05:
            crease = s.lower_outer[12:-12] + (0, 7 * u)
            polyline(frame, crease + at, p.chin_crease, max(1.0, 2.2 * u * closed))
        fill_poly(frame, np.concatenate([s.upper_outer, s.lower_outer[::-1]]) + at, p.lip_lower)
        fill_poly(frame, np.concatenate([s.upper_outer, s.upper_inner[::-1]]) + at, p.lip_upper)
        if s.opening_px > 0.8:
            inner = s.upper_inner[:, 1] < s.lower_inner[:, 1] - 1e-3
            idx = np.flatnonzero(inner)
            lo, hi = max(idx[0] - 1, 0), min(idx[-1] + 2, len(_U))
            top, bottom = s.upper_inner[lo:hi], s.lower_inner[lo:hi]
            fill_poly(frame, np.concatenate([top, bottom[::-1]]) + at, p.mouth_inside)
            teeth_bottom = top.copy()
            teeth_h = 7 * u * (1 - 0.6 * float(mouth[2]))
            teeth_bottom[:, 1] = np.minimum(top[:, 1] + teeth_h, bottom[:, 1])
            fill_poly(frame, np.concatenate([top, teeth_bottom[::-1]]) + at, p.teeth)
            if s.opening_px > 14 * u:
                tongue_top = bottom.copy()
                span = np.abs(bottom[:, 0]) / max(np.abs(bottom[:, 0]).max(), 1e-6)
                tongue_top[:, 1] = bottom[:, 1] - 0.26 * s.opening_px * np.sqrt(np.clip(1 - span**2, 0, 1))
                fill_poly(frame, np.concatenate([tongue_top, bottom[::-1]]) + at, p.tongue)
            polyline(frame, top + at, p.seam, max(1.0, 1.2 * u))
            polyline(frame, bottom + at, p.seam, max(1.0, 1.2 * u))
        else:
            polyline(frame, s.upper_inner[2:-2] + at, p.seam, max(1.0, (1.8 + 1.4 * closed) * u))
        mid = slice(14, -14)
        highlight = s.lower_inner[mid] + 0.55 * (s.lower_outer[mid] - s.lower_inner[mid])
        polyline(frame, highlight + at, p.lip_highlight, max(1.0, 1.8 * u))
        for end in (s.upper_inner[0], s.upper_inner[-1]):
            circle(frame, end + at, 1.0 * u, p.seam)
        return (origin[0] + self.box_rel[0], origin[1] + self.box_rel[1], self.box_rel[2], self.box_rel[3])


class JawDrawer:
    """The chin drops as the mouth opens: the lower face is stretched downwards, hinged at the cheeks.

    A remap of the small region from the lip seam to below the chin; the stretch fades out sideways
    and towards the region's edges, so the warped patch joins the rest of the frame without a seam.
    """

    DROP = 11.0
    """Chin travel at a fully open mouth, in design units (1/720 of the frame height)."""

    def __init__(self, mouth_centre: tuple[float, float], unit: float) -> None:
        cx, cy = mouth_centre
        half, depth, chin = 130 * unit, 112 * unit, 74 * unit
        x0, y0 = math.floor(cx - half), math.floor(cy)
        self.offset = (x0, y0)
        self.size = (math.ceil(2 * half) + 1, math.ceil(depth) + 1)
        ys, xs = np.mgrid[0 : self.size[1], 0 : self.size[0]].astype(np.float32)
        self.xs, self.ys = xs, ys
        bell = 0.5 + 0.5 * np.cos(np.pi * np.clip(np.abs(xs + x0 - cx) / half, 0, 1))
        below = ys + y0 - cy
        rise = np.clip(below / (30 * unit), 0, 1)
        fall = np.clip((depth - below) / (depth - chin), 0, 1)
        self.weight = (bell * np.minimum(rise, fall)).astype(np.float32)
        self.unit = unit

    def draw(self, frame: np.ndarray, origin: tuple[int, int], opening: float) -> None:
        drop = self.DROP * self.unit * opening
        if drop < 0.25:
            return
        x0, y0 = origin[0] + self.offset[0], origin[1] + self.offset[1]
        w, h = self.size
        if x0 < 0 or y0 < 0 or x0 + w > frame.shape[1] or y0 + h > frame.shape[0]:
            return
        roi = frame[y0 : y0 + h, x0 : x0 + w]
        roi[:] = cv2.remap(roi.copy(), self.xs, self.ys - drop * self.weight, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
