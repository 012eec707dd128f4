"""Kubric's per-read track sampling (``dataset.track_sampling: reference``), on a clip's stored query grid.

The reference (kubric ``challenges/point_tracking/dataset.py``, ``add_tracks`` / ``track_points`` with Chrono's
arguments) does this on every read of a clip, after drawing the random crop window [y0, x0, y1, x1]:

1. the query grid: stride-4 points (t, y, x) inside the window (its offset is drawn relative to the crop corner);
2. ``counts[i]``: grid points of segment id i inside the window (background 0 is a segment like any other);
   :func:`num_to_sample` splits the budget of ``num_tracks`` across the segments (balanced, each at most
   ``max_sampled_frac`` of its count, ids below ``max_seg_id``; a larger id makes kubric fail);
3. each segment's points are drawn uniformly with replacement; rows are ordered by segment id, background
   rows stable-sorted by frame;
4. the tracks, with the crop as the window: a point outside the closed rectangle [x0, x1] x [y0, y1] (kubric's
   strict test, in full-frame pixels) is occluded; coordinates map to the output size in kubric's float32
   operation order;
5. fewer rows than the budget (the caps fell short): row N-2 is appended until the budget is met (kubric's
   ``_pad_with_last_row`` takes ``arr[-2:-1]``); with one row, that row (kubric would return a short batch);
   with none, a :class:`~chrono.data.shards.ShardError` (kubric would too).

:func:`sample_reference` does exactly this on a :class:`~chrono.data.grid.QueryGrid`. The one difference: the
grid's residue is the clip's stored one (fixed per clip) instead of fresh on every read, so every single read
is a valid reference draw but across reads of a clip the absolute sub-lattice (and, for 24-frame clips, the 6
query frames) stays the same. A window of frames (``num_frames`` shorter than the clip; kubric has none) is
handled like the crop: grid points on frames inside it, tracks sliced to it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from chrono.data.grid import QueryGrid
from chrono.data.shards import ShardError


def num_to_sample(counts: np.ndarray, max_seg_id: int, max_sampled_frac: float, tracks_to_sample: int) -> np.ndarray:
    """Kubric's ``get_num_to_sample``: how many queries to draw from each segment id.

    counts [S] int: grid points per segment id (0 .. S - 1). Going from the smallest segment to the largest
    (stable order), each takes an equal share of what is still needed, at most ``max_sampled_frac`` of its
    count (float32 arithmetic, round half to even, like TensorFlow). Returns [max_seg_id] int64 (segments
    beyond are dropped; kubric fails on them, :func:`sample_reference` refuses them).
    """
    counts = np.asarray(counts, np.int64)
    order = np.argsort(counts, kind="stable")
    remaining = tracks_to_sample
    taken = np.zeros(len(counts), np.int64)
    frac = np.float32(max_sampled_frac)
    for index, seg in enumerate(order):
        share = np.float32(1.0 / (len(counts) - index))
        want = int(np.rint(np.float32(remaining) * share))
        cap = int(np.rint(np.float32(counts[seg]) * frac))
        taken[seg] = min(want, cap)
        remaining -= taken[seg]
    out = np.zeros(max_seg_id, np.int64)
    out[:min(max_seg_id, len(counts))] = taken[:max_seg_id]
    return out


def window_slices(grid: QueryGrid, frames: tuple[int, int], box: Sequence[int]) -> tuple[slice, slice, slice]:
    """Grid index ranges (a, b, c) of the points inside frames [f0, f1) and the crop ``box`` (y0, x0, h, w):
    t in [f0, f1), y in [y0, y0 + h), x in [x0, x0 + w) (integer pixels)."""
    s = grid.stride
    y0, x0, h, w = box
    lows, highs = (frames[0], y0, x0), (frames[1], y0 + h, x0 + w)
    return tuple(slice(max(0, -(-(lo - r) // s)), min(n, max(0, -(-(hi - r) // s))))
                 for lo, hi, r, n in zip(lows, highs, grid.start, grid.shape))


def sample_reference(grid: QueryGrid, frames: tuple[int, int], box: Sequence[int], out_hw: Sequence[int],
                     num_tracks: int, max_seg_id: int, max_sampled_frac: float, rng: np.random.Generator,
                     where: str = "clip") -> dict[str, np.ndarray]:
    """One read's tracks by the reference rule (module docstring) on ``grid``.

    frames: the window [f0, f1) of clip frames; box: the crop (y0, x0, h, w) in the clip's pixels; out_hw: the
    size (H, W) the crop is resized to. Returns ``query_points`` float32 [N, 3] (t, y, x) with t relative to
    f0, ``target_points`` float32 [N, T, 2] (x, y) and ``occluded`` bool [N, T] in output pixels,
    ``segment_ids`` int64 [N] (N = ``num_tracks``; rows in kubric's order, padding rows last).
    """
    sa, sb, sc = window_slices(grid, frames, box)
    seg = grid.segments[sa, sb, sc]
    flat = seg.reshape(-1).astype(np.int64)
    counts = np.bincount(flat)
    if len(counts) > max_seg_id:
        raise ShardError(f"{where}: segment id {len(counts) - 1} in the crop is >= dataset.max_seg_id={max_seg_id} "
                         f"(kubric fails on such a scene)")
    quota = num_to_sample(counts, max_seg_id, max_sampled_frac, num_tracks)
    picks = []
    for seg_id in np.flatnonzero(quota):
        candidates = np.flatnonzero(flat == seg_id)
        pick = candidates[rng.integers(0, len(candidates), quota[seg_id])]
        if seg_id == 0:  # kubric regroups the background's draws by frame (stable)
            pick = pick[np.argsort(pick // (seg.shape[1] * seg.shape[2]), kind="stable")]
        picks.append(pick)
    if not picks:
        raise ShardError(f"{where}: no grid point to sample in the crop {tuple(box)} (every segment's cap is 0)")
    pick = np.concatenate(picks)
    local = np.stack(np.unravel_index(pick, seg.shape), -1)
    index = tuple((local + [sa.start, sb.start, sc.start]).T)
    t, y, x = grid.pixels(np.stack(index, -1)).T
    f0, f1 = frames
    y0, x0, h, w = box
    f32 = np.float32
    xy = grid.decode_tracks(index)[:, f0:f1]
    occluded = grid.unpack_occluded(index)[:, f0:f1]
    px, py = xy[..., 0], xy[..., 1]
    occluded |= (py < f32(y0)) | (px < f32(x0)) | (py > f32(y0 + h)) | (px > f32(x0 + w))
    # kubric's float32 operations in its order: ((xy - [x0, y0]) / [w, h]) * [W, H]
    target = ((xy - np.array([x0, y0], f32)) / np.array([w, h], f32)) * np.array(out_hw[::-1], f32)
    # queries: (((t, y, x) + [0, .5, .5]) - [0, y0, x0]) / [T, h, w] * [T, H, W]; t is kept an exact frame index
    # (kubric's t / T * T is exact for its T = 24)
    yx = ((np.stack([y, x], -1).astype(f32) + f32(0.5)) - np.array([y0, x0], f32)) / np.array([h, w], f32)
    yx = yx * np.array(out_hw, f32)
    queries = np.concatenate([(t - f0).astype(f32)[:, None], yx], -1)
    out = {"query_points": queries, "target_points": target.astype(f32), "occluded": occluded,
           "segment_ids": grid.segments[index].astype(np.int64)}
    n = len(pick)
    if n < num_tracks:  # kubric repeats row N-2 (arr[-2:-1]); with one row, that row
        rows = np.concatenate([np.arange(n), np.full(num_tracks - n, max(n - 2, 0))])
        out = {k: v[rows] for k, v in out.items()}
    return out
