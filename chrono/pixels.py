"""Pixel values at the suite's boundary: frames are uint8 (0..255) or float in [-1, 1], nothing else.

A float video in 0..255 or in [0, 1] would be tracked as if it were in [-1, 1] and give plausible but wrong
tracks (tens of pixels off), so every entry point checks the range it was given and refuses anything else.
"""

from __future__ import annotations

import numpy as np

from chrono.errors import ChronoError

FLOAT_RANGE = (-1.0, 1.0)
TOLERANCE = 1e-3  # float rounding of a video that was scaled into [-1, 1]


class PixelRangeError(ChronoError):
    """Float frames outside [-1, 1] (or not finite); the message names the input and the range found."""


def check_float_range(lo: float, hi: float, name: str) -> None:
    """Raise :class:`PixelRangeError` unless [lo, hi] (the smallest and largest value of float frames) lies
    in [-1, 1] (up to float rounding)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise PixelRangeError(f"{name}: float frames hold non-finite values (NaN or infinity)")
    if lo < FLOAT_RANGE[0] - TOLERANCE or hi > FLOAT_RANGE[1] + TOLERANCE:
        hint = " (0..255 frames? give them as uint8)" if hi > 2 else " ([0, 1] frames? scale them to x * 2 - 1)"
        raise PixelRangeError(f"{name}: float frames must lie in [-1, 1], found values in [{lo:.4g}, {hi:.4g}]{hint}")


def check_array_range(frames: np.ndarray, name: str, chunk: int = 16) -> None:
    """:func:`check_float_range` over a whole float video [T, H, W, 3] (read ``chunk`` frames at a time, so a
    memory-mapped file is never loaded whole); uint8 frames always pass.

    A whole video whose values all lie in [0, 1] is refused too: in [-1, 1] that would be a video with no
    pixel darker than mid-grey in any frame, while [0, 1] is the other common float convention.
    """
    if frames.dtype == np.uint8:
        return
    lo, hi = np.inf, -np.inf
    for start in range(0, len(frames), chunk):
        part = np.asarray(frames[start:start + chunk])
        lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    check_float_range(lo, hi, name)
    if lo >= 0.0 and 0.0 < hi <= 1.0:
        raise PixelRangeError(f"{name}: float frames must lie in [-1, 1], found values in [{lo:.4g}, {hi:.4g}] "
                              f"([0, 1] frames? scale them to x * 2 - 1)")
