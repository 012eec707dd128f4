"""Coordinate conversions: the one place where point coordinates change frame of reference.

Conventions (the suite's and TAP-Vid's):
- Query points are (t, y, x); tracks are (x, y).
- Pixel coordinates are raster coordinates: pixel i covers [i, i + 1), its centre is i + 0.5.
  Rescaling from one image size to another is therefore a pure multiplication by the size ratio
  (no half-pixel shift), exactly like the reference's ``convert_grid_coordinates``.
- TAP-Vid files store (x, y) normalised to [0, 1]; multiply by (W, H) to get pixels.

All functions accept numpy arrays and torch tensors and return the same kind.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np

Array = TypeVar("Array")


def _ratio(like, values: Sequence[float]):
    """A constant vector shaped like the last axis of ``like`` (torch tensor or numpy array)."""
    if isinstance(like, np.ndarray):
        return np.asarray(values, dtype=like.dtype if like.dtype.kind == "f" else np.float64)
    import torch

    return torch.tensor(values, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)


def rescale_xy(points: Array, from_hw: Sequence[float], to_hw: Sequence[float]) -> Array:
    """Rescale (x, y) points [..., 2] from an image of size ``from_hw`` = (H, W) to one of size ``to_hw``."""
    (h0, w0), (h1, w1) = from_hw, to_hw
    return points * _ratio(points, (w1 / w0, h1 / h0))


def rescale_tyx(points: Array, from_hw: Sequence[float], to_hw: Sequence[float]) -> Array:
    """Rescale (t, y, x) query points [..., 3] between image sizes (H, W); the frame index t is kept."""
    (h0, w0), (h1, w1) = from_hw, to_hw
    return points * _ratio(points, (1.0, h1 / h0, w1 / w0))


def normalised_to_pixels_xy(points: Array, hw: Sequence[float]) -> Array:
    """TAP-Vid normalised (x, y) in [0, 1] -> pixels of an image of size ``hw`` = (H, W)."""
    return rescale_xy(points, (1.0, 1.0), hw)


def tyx_to_txy(points: Array) -> Array:
    """Swap (t, y, x) <-> (t, x, y) on the last axis (the operation is its own inverse)."""
    return points[..., [0, 2, 1]]


def crop_xy(points: Array, box: Sequence[float], to_hw: Sequence[float]) -> Array:
    """(x, y) points [..., 2] of an image -> pixels of its crop ``box`` = (y0, x0, h, w) resized to ``to_hw``.

    The crop's top-left corner moves to 0 and its size scales to ``to_hw`` = (H, W) (no half-pixel shift),
    exactly matching a bilinear resize with half-pixel centres (``align_corners=False``) of the crop.
    """
    y0, x0, h, w = box
    return rescale_xy(points - _ratio(points, (x0, y0)), (h, w), to_hw)


def crop_tyx(points: Array, box: Sequence[float], to_hw: Sequence[float]) -> Array:
    """(t, y, x) query points [..., 3] -> the same crop-and-resize as :func:`crop_xy`; t is kept."""
    y0, x0, h, w = box
    return rescale_tyx(points - _ratio(points, (0.0, y0, x0)), (h, w), to_hw)


def raster_to_index(points: Array) -> Array:
    """Raster coordinates -> pixel-index coordinates (integer values at pixel centres), on every axis.

    Image drawing libraries (PIL's ImageDraw) address pixel i by the number i, so the centre of pixel i,
    i + 0.5 in raster coordinates, is drawn at i. Use only for drawing, never for stored coordinates.
    """
    return points - 0.5
