"""Small drawing helpers shared by the avatars: anti-aliased masks, fills and sprite compositing.

Masks are float32 0..1 arrays drawn with OpenCV's anti-aliased primitives; sprites are a BGR image
plus its alpha, composited with ``cv2.blendLinear`` (vectorised, far cheaper than numpy arithmetic on
every frame). Polygons take float coordinates and are drawn with 4 fractional bits, so slow motion
moves smoothly instead of in whole-pixel steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

SHIFT = 4
"""Fractional bits of the fixed-point coordinates handed to OpenCV."""
_ONE = 1 << SHIFT

Box = Tuple[int, int, int, int]
"""A screen rectangle (x, y, width, height) in pixels."""


def fixed(points: np.ndarray) -> np.ndarray:
    """Float (N, 2) points → OpenCV's fixed-point int32 (N, 1, 2)."""
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def fill_poly(image: np.ndarray, points: np.ndarray, color) -> None:
    """Fill a polygon with anti-aliased edges (float coordinates)."""
    if len(points) >= 3:
        cv2.fillPoly(image, [fixed(points)], color, cv2.LINE_AA, SHIFT)


def polyline(image: np.ndarray, points: np.ndarray, color, thickness: float, closed: bool = False) -> None:
    """An anti-aliased open (or closed) polyline; thickness in pixels, at least 1."""
    if len(points) >= 2:
        cv2.polylines(image, [fixed(points)], closed, color, max(1, int(round(thickness))), cv2.LINE_AA, SHIFT)


def circle(image: np.ndarray, centre, radius: float, color, thickness: int = -1) -> None:
    c = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
    cv2.circle(image, c, max(1, int(round(radius * _ONE))), color, thickness, cv2.LINE_AA, SHIFT)


def ellipse(image: np.ndarray, centre, axes, color, angle: float = 0.0, thickness: int = -1) -> None:
    c = (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE)))
    a = (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE))))
    cv2.ellipse(image, c, a, angle, 0, 360, color, thickness, cv2.LINE_AA, SHIFT)


def mask_of(shape: tuple[int, int], draw) -> np.ndarray:
    """A float32 0..1 mask of size ``shape`` (h, w) from a function that draws white on a uint8 canvas."""
    canvas = np.zeros(shape, dtype=np.uint8)
    draw(canvas)
    return canvas.astype(np.float32) / 255.0


def blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A soft version of a mask (Gaussian, ``sigma`` in pixels)."""
    if sigma <= 0:
        return mask
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma, sigmaY=sigma)


def lay(canvas: np.ndarray, mask: np.ndarray, color, opacity: float = 1.0) -> None:
    """Paint ``color`` (a BGR triple or an image like ``canvas``) over float ``canvas`` through ``mask``."""
    m = (mask * opacity)[..., None]
    paint = np.asarray(color, dtype=np.float32)
    canvas *= 1.0 - m
    canvas += m * paint


def shade(canvas: np.ndarray, factor: np.ndarray) -> None:
    """Multiply float ``canvas`` by a per-pixel brightness factor (1 leaves it as is)."""
    canvas *= factor[..., None]


@dataclass(frozen=True)
class Sprite:
    """A pre-drawn layer: colour, its alpha and 1 - alpha (both float32, for ``cv2.blendLinear``)."""

    bgr: np.ndarray
    """The layer's colours, uint8 h × w × 3."""
    alpha: np.ndarray
    """Its coverage, float32 0..1."""
    inverse: np.ndarray
    """1 - alpha, kept so a frame does not compute it."""

    @classmethod
    def from_float(cls, canvas: np.ndarray, alpha: np.ndarray) -> "Sprite":
        bgr = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
        alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
        return cls(bgr, alpha, (1.0 - alpha).astype(np.float32))

    @property
    def size(self) -> tuple[int, int]:
        return self.bgr.shape[1], self.bgr.shape[0]

    @property
    def nbytes(self) -> int:
        return self.bgr.nbytes + self.alpha.nbytes + self.inverse.nbytes

    def paste(self, frame: np.ndarray, x: int, y: int) -> None:
        """Composite onto ``frame`` with the sprite's top-left corner at (x, y); clipped to the frame."""
        h, w = self.bgr.shape[:2]
        fx0, fy0 = max(x, 0), max(y, 0)
        fx1, fy1 = min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
        if fx1 <= fx0 or fy1 <= fy0:
            return
        sx0, sy0 = fx0 - x, fy0 - y
        sx1, sy1 = sx0 + (fx1 - fx0), sy0 + (fy1 - fy0)
        roi = frame[fy0:fy1, fx0:fx1]
        roi[:] = cv2.blendLinear(
            self.bgr[sy0:sy1, sx0:sx1], roi, self.alpha[sy0:sy1, sx0:sx1], self.inverse[sy0:sy1, sx0:sx1]
        )


def luminance(image: np.ndarray) -> np.ndarray:
    """Per-pixel luma (0..255) of a BGR image, as float32."""
    b, g, r = (image[..., i].astype(np.float32) for i in range(3))
    return 0.114 * b + 0.587 * g + 0.299 * r
