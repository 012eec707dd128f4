"""Training augmentations of the reference (Kubric point-tracking pipeline as Chrono trains with it).

- Random crop: ``tf.image.sample_distorted_bounding_box`` with area in [0.3, 1], aspect (w / h) in
  [0.5, 2], 20 attempts, whole frame as fallback (kubric ``challenges/point_tracking/dataset.py``);
  the crop is resized back to the training size bilinearly (half-pixel centres, no antialiasing, like
  ``tf.image.resize``; computed on uint8 for speed, so within 1/255 of the float resize). Tracks follow exactly (:func:`chrono.coords.crop_xy`); points outside the crop
  window (``x < x0 or x > x0 + w``, same for y) become occluded.
- Colour (Chrono's ``default_color_augmentation_fn``): with probability 0.8, on the [0, 1] video:
  brightness + U[-32/255, 32/255), saturation x U[0.6, 1.4), contrast x U[0.6, 1.4) (about each
  frame's per-channel mean), hue + U[-0.2, 0.2) turn, then clip to [0, 1]; independently with
  probability 0.2, grayscale (ITU-R 601 weights 0.2989, 0.5870, 0.1140) on the [-1, 1] video.
  The same parameters apply to every frame of a clip. Saturation and hue follow TensorFlow's kernels
  exactly, written as closed forms on (max, min) of each pixel instead of a round trip through HSV.

Videos here are numpy float32 planar frames [T, 3, H, W] (fast element-wise loops); tracks (x, y) [N, T, 2].
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from chrono.coords import crop_xy

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def _lrint(v: float) -> int:
    """C ``lrintf``: round half to even."""
    return int(np.rint(np.float32(v)))


def _generate_crop(rng: np.random.Generator, height: int, width: int, min_area: float, max_area: float,
                   aspect: float) -> tuple[int, int, int, int] | None:
    """One attempt of TensorFlow's GenerateRandomCrop: (y0, x0, h, w) or None."""
    min_area = np.float32(min_area * width * height)
    max_area = np.float32(max_area * width * height)
    h = _lrint(math.sqrt(min_area / aspect))
    max_h = _lrint(math.sqrt(max_area / aspect))
    if _lrint(max_h * aspect) > width:
        max_h = int((width + 0.5 - 1e-7) / aspect)
        if _lrint(max_h * aspect) > width:
            max_h -= 1
    max_h = min(max_h, height)
    h = min(h, max_h)
    if h < max_h:
        h += int(rng.integers(0, max_h - h + 1))
    w = _lrint(h * aspect)
    area = float(w * h)
    if area < min_area:
        h += 1
        w = _lrint(h * aspect)
        area = float(w * h)
    if area > max_area:
        h -= 1
        w = _lrint(h * aspect)
        area = float(w * h)
    if area < min_area or area > max_area or w > width or h > height or w <= 0 or h <= 0:
        return None
    # TensorFlow's Uniform(n) draws from [0, n): the crop never touches the far edge unless it spans it.
    y0 = int(rng.integers(0, height - h)) if h < height else 0
    x0 = int(rng.integers(0, width - w)) if w < width else 0
    return y0, x0, h, w


def sample_crop_box(rng: np.random.Generator, height: int, width: int, area: Sequence[float] = (0.3, 1.0),
                    aspect: Sequence[float] = (0.5, 2.0), max_attempts: int = 20) -> tuple[int, int, int, int]:
    """A random crop window (y0, x0, h, w) in integer pixels, as ``tf.image.sample_distorted_bounding_box``
    with the whole image as the only box and ``min_object_covered = area[0]``; the whole frame if no attempt
    fits. Aspect is width / height, drawn uniformly (not log-uniformly)."""
    for _ in range(max_attempts):
        a = np.float32(rng.random()) * np.float32(aspect[1] - aspect[0]) + np.float32(aspect[0])
        box = _generate_crop(rng, height, width, area[0], area[1], float(a))
        # The overlap test (crop area / image area >= area[0]) is implied by the area bounds, up to rounding.
        if box is not None and box[2] * box[3] >= area[0] * height * width and box[2] * box[3] >= 1:
            return box
    return 0, 0, height, width


def crop_tracks(tracks: np.ndarray, occluded: np.ndarray, box: Sequence[int], out_hw: Sequence[int]):
    """Tracks (x, y) [N, T, 2] and occluded [N, T] of a frame -> the crop ``box`` (y0, x0, h, w) resized to
    ``out_hw``; points outside the crop window (``x < x0``, ``x > x0 + w``, same in y) become occluded."""
    y0, x0, h, w = box
    x, y = tracks[..., 0], tracks[..., 1]
    outside = (x < x0) | (x > x0 + w) | (y < y0) | (y > y0 + h)
    return crop_xy(tracks, box, out_hw).astype(np.float32), occluded | outside


def crop_resize_video(video: np.ndarray, box: Sequence[int], out_hw: Sequence[int]) -> np.ndarray:
    """uint8 video [T, H, W, 3] -> its crop ``box`` (y0, x0, h, w) resized bilinearly (half-pixel centres,
    no antialiasing: ``tf.image.resize``) to ``out_hw``, as planar float32 frames [T, 3, H', W'] in [0, 1].

    The resize runs on uint8 (torch's channels-last uint8 kernel is 5-15x faster than float here), so the
    result is the float resize rounded to 1/255 (measured: below 1/255 everywhere, 0.3/255 on average).
    """
    y0, x0, h, w = box
    crop = torch.from_numpy(np.ascontiguousarray(video[:, y0:y0 + h, x0:x0 + w]))
    if (h, w) != tuple(out_hw):
        crop = F.interpolate(crop.permute(0, 3, 1, 2), size=tuple(out_hw), mode="bilinear", align_corners=False,
                             antialias=False).permute(0, 2, 3, 1)
    planar = np.ascontiguousarray(crop.numpy().transpose(0, 3, 1, 2))
    out = planar.astype(np.float32)
    out *= np.float32(1.0 / 255.0)
    return out


# Colour operations work in place on planar float32 frames [T, 3, H, W] (contiguous channel planes make
# numpy's element-wise loops fast; branch-free arithmetic avoids np.where / np.mod, which are slow).


def _max_min(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, g, b = v[:, 0], v[:, 1], v[:, 2]
    vmax = np.maximum(r, g)
    np.maximum(vmax, b, out=vmax)
    vmin = np.minimum(r, g)
    np.minimum(vmin, b, out=vmin)
    return vmax, vmin


def adjust_saturation(v: np.ndarray, factor: float) -> np.ndarray:
    """TensorFlow's adjust_saturation, in place on planar frames [T, 3, H, W]: HSV saturation times
    ``factor``, clipped to [0, 1], hue and value kept.

    Each channel c becomes ``max - (max - c) * k`` with k = s' / s = min(factor, max / (max - min)) where
    max > 0, and k = 0 where max <= 0 (TensorFlow sets s = 0 there, so such pixels turn grey at max).
    """
    vmax, vmin = _max_min(v)
    span = vmax - vmin
    np.maximum(span, np.float32(1e-12), out=span)
    k = np.divide(vmax, span, out=span)
    np.minimum(k, np.float32(factor), out=k)
    np.maximum(k, np.float32(0.0), out=k)
    for c in range(3):
        ch = v[:, c]
        np.subtract(vmax, ch, out=ch)
        ch *= k
        np.subtract(vmax, ch, out=ch)
    return v


def adjust_contrast(v: np.ndarray, factor: float) -> np.ndarray:
    """In place on planar frames [T, 3, H, W]: ``(x - mean) * factor + mean``, mean per frame and channel."""
    mean = v.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)
    v *= np.float32(factor)
    v += mean * np.float32(1.0 - factor)
    return v


def adjust_hue(v: np.ndarray, delta: float) -> np.ndarray:
    """TensorFlow's adjust_hue, in place on planar frames [T, 3, H, W]: rotate the hexcone hue by ``delta``
    turns, keeping each pixel's max and min.

    Hue h (mod 6) is (g - b) / span if r is the max, else 2 + (b - r) / span if g is, else
    4 + (r - g) / span (TensorFlow's order for ties); after the shift, channel n (centre c_n = 3, 5, 1
    for r, g, b) is ``min + span * clamp(d - 1, 0, 1)`` with d the circular distance of h to c_n.
    """
    r, g, b = v[:, 0], v[:, 1], v[:, 2]
    vmax, vmin = _max_min(v)
    span = np.subtract(vmax, vmin)
    is_r = np.equal(r, vmax)
    is_g = np.equal(g, vmax)
    np.greater(is_g, is_r, out=is_g)
    is_b = np.logical_or(is_r, is_g)
    np.logical_not(is_b, out=is_b)
    # Preallocated buffers: fresh multi-megabyte temporaries cost more than the arithmetic.
    h, d, e = np.subtract(g, b), np.empty_like(span), np.empty_like(span)
    h *= is_r
    np.subtract(b, r, out=d)
    np.multiply(span, np.float32(2.0), out=e)
    d += e
    d *= is_g
    h += d
    np.subtract(r, g, out=d)
    e += e
    d += e
    d *= is_b
    h += d
    np.maximum(span, np.float32(1e-12), out=e)
    h /= e
    h += np.float32(6.0 * delta)  # in [-2.2, 6.2): |h - c| < 12, so min(a, |6 - a|) is the circular distance
    for c, centre in enumerate((3.0, 5.0, 1.0)):
        np.subtract(h, np.float32(centre), out=d)
        np.abs(d, out=d)
        np.subtract(np.float32(6.0), d, out=e)
        np.abs(e, out=e)
        np.minimum(d, e, out=d)
        d -= np.float32(1.0)
        np.maximum(d, np.float32(0.0), out=d)
        np.minimum(d, np.float32(1.0), out=d)
        d *= span
        np.add(vmin, d, out=v[:, c])
    return v


def color_augment(v: np.ndarray, rng: np.random.Generator, prob: float = 0.8) -> np.ndarray:
    """With probability ``prob``: brightness, saturation, contrast, hue (the reference's ranges and order),
    then clip to [0, 1]. In place on planar frames [T, 3, H, W] in [0, 1]."""
    if rng.random() >= prob:
        return v
    brightness = rng.uniform(-32.0 / 255.0, 32.0 / 255.0)
    saturation = rng.uniform(0.6, 1.4)
    contrast = rng.uniform(0.6, 1.4)
    hue = rng.uniform(-0.2, 0.2)
    v += np.float32(brightness)
    adjust_saturation(v, saturation)
    adjust_contrast(v, contrast)
    adjust_hue(v, hue)
    np.maximum(v, np.float32(0.0), out=v)
    np.minimum(v, np.float32(1.0), out=v)
    return v


def grayscale_plane(v: np.ndarray) -> np.ndarray:
    """``tf.image.rgb_to_grayscale`` of planar frames [T, 3, H, W]: the luma plane [T, H, W]."""
    wr, wg, wb = (np.float32(w) for w in GRAY_WEIGHTS)
    y = v[:, 0] * wr
    y += v[:, 1] * wg
    y += v[:, 2] * wb
    return y


def augment_video_colour(v: np.ndarray, rng: np.random.Generator, jitter_prob: float = 0.8,
                         gray_prob: float = 0.2) -> np.ndarray:
    """The reference colour augmentation: planar [0, 1] frames [T, 3, H, W] in (modified in place),
    a new float32 video [T, H, W, 3] in [-1, 1] out (the layout change is fused with the rescale).

    Draws, in order: the jitter coin (then its four parameters), the grayscale coin. Grayscale is the
    reference's weighted sum of the [-1, 1] channels, computed as 2 * sum(w v) - sum(w).
    """
    color_augment(v, rng, jitter_prob)
    t, _, h, w = v.shape
    out = np.empty((t, h, w, 3), np.float32)
    if rng.random() < gray_prob:
        y = grayscale_plane(v)
        y *= np.float32(2.0)
        y -= np.float32(sum(GRAY_WEIGHTS))
        out[:] = y[..., None]
        return out
    np.multiply(v.transpose(0, 2, 3, 1), np.float32(2.0), out=out)
    out -= np.float32(1.0)
    return out
