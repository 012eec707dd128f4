"""Tracking videos of any length in bounded memory: features over overlapping windows of frames.

Chrono's features are temporal: every adapter attends to frames within ``window // 2`` = 6 frames, so
a stack of k adapters reaches 6 k frames, and each adapter's GroupNorm normalises over the whole clip
it is given. Features computed over a window of frames are therefore close to, but not bit-identical
with, the whole-clip features (docs/tracking.md, "Long videos in bounded memory", gives the measured difference).

The algorithm (all per-frame steps of the head are independent across frames, so only the features
are approximated):

1. Plan windows of ``window`` frames, consecutive windows sharing ``overlap`` frames; every frame is
   *owned* by the window in which it lies farthest from an edge (its "core").
2. Query features: for every window owning a query frame, compute its features and sample the queries
   there (trilinear at (t, y, x), exactly as :meth:`ChronoTracker.track_features` does).
3. Stream the windows in order: compute the features, keep the core frames, run the tracking head of
   every query against them, keep the tracks and occlusion logits, drop the features.

Peak memory is that of one window (plus the [N, T] outputs); compute is ``window / (window - overlap)``
times a single pass, plus the windows of step 2 (the last of which step 3 reuses: a grid on frame 0
costs nothing extra). With ``window >= T`` the answer is exactly :meth:`ChronoTracker.predict`'s.

Re-tracking the same video with other points (the interactive page, chrono/interactive/) can keep every
window's features in a :class:`FeatureStore` passed as ``feature_store=``: then no window goes through the
backbone twice, and memory is that of the stored windows (bounded by the store's ``max_bytes``). Without
a store (the default) nothing outlives the call.

Coordinates: queries (t, y, x) and tracks (x, y) in pixels of the video given (raster convention);
the video is resized to ``resolution`` before tracking, like the reference inference.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
import torch

from chrono.coords import rescale_tyx, rescale_xy
from chrono.models import head
from chrono.models.tracker import model_input

# Defaults chosen from the measurement in docs/tracking.md ("Long videos in bounded memory"): 8 frames of context on each
# side of a window's core, 1.5 backbone passes per frame; 48 / 24 was no closer to the whole-clip answer.
DEFAULT_WINDOW = 48
DEFAULT_OVERLAP = 16


@dataclass(frozen=True)
class Window:
    """Frames [start, stop) go through the backbone together; the tracks of [core_start, core_stop) come from them."""

    start: int
    stop: int
    core_start: int
    core_stop: int


def plan_windows(num_frames: int, window: int | None = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP) -> list[Window]:
    """Windows of ``window`` frames (the last one aligned to the video's end), ``overlap`` frames shared;
    ``window=None`` (or >= num_frames): one window of the whole video.

    The cores partition [0, num_frames): a frame belongs to the window in which it is farthest from an
    edge, so the boundary between two cores lies in the middle of their overlap.
    """
    if num_frames < 1:
        raise ValueError(f"cannot plan windows over {num_frames} frames")
    if window is None:
        return [Window(0, num_frames, 0, num_frames)]
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window, got window={window}, overlap={overlap}")
    if num_frames <= window:
        return [Window(0, num_frames, 0, num_frames)]
    step = window - overlap
    starts = list(range(0, num_frames - window, step)) + [num_frames - window]
    bounds = [0]
    for left, right in zip(starts, starts[1:]):
        # frame t stays with the left window while its distance to that window's end, left + window - 1 - t,
        # is at least its distance to the right window's start, t - right
        bounds.append(max(bounds[-1], min((left + window - 1 + right) // 2 + 1, left + window)))
    bounds.append(num_frames)
    return [Window(s, s + window, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


def queries_outside(query_points: np.ndarray, hw: tuple[int, int], num_frames: int | None = None) -> np.ndarray:
    """Mask [N] of the queries (t, y, x) [N, 3] that are not finite or lie outside [0, H] x [0, W] (edges
    inside), and, given ``num_frames``, whose rounded t is outside frames 0..num_frames-1."""
    q = np.asarray(query_points, dtype=np.float64)
    H, W = hw
    bad = ~np.isfinite(q).all(1) | (q[:, 1] < 0) | (q[:, 1] > H) | (q[:, 2] < 0) | (q[:, 2] > W)
    if num_frames is not None:
        bad |= (np.round(q[:, 0]) < 0) | (np.round(q[:, 0]) > num_frames - 1)
    return bad


def check_queries(query_points: np.ndarray, num_frames: int, hw: tuple[int, int]) -> None:
    """Raise ValueError naming the first query (t, y, x) outside the video (frames 0..T-1, [0, H] x [0, W])."""
    q = np.asarray(query_points, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 3:
        raise ValueError(f"query points must be [N, 3] (t, y, x), got shape {q.shape}")
    if len(q) == 0:
        raise ValueError("no query points to track")
    H, W = hw
    bad = queries_outside(q, hw, num_frames)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        t, y, x = q[i]
        raise ValueError(
            f"query {i} (t={t:g}, y={y:g}, x={x:g}) lies outside the video ({num_frames} frames of {H} x {W} "
            f"pixels: t in 0..{num_frames - 1}, y in [0, {H}], x in [0, {W}]); "
            f"{int(bad.sum())} of {len(q)} queries are outside"
        )


class FeatureStore:
    """Features of every window computed so far, kept across :func:`track_video` calls (least recently
    used first out beyond ``max_bytes``).

    Keys are ``(tracker, source, start, stop, resolution)``: the tracker and the frame source objects
    themselves (by identity: the same opened video and the same loaded weights), the window's frames
    [start, stop) and the tracking resolution (H, W). Values are the window's features [1, stop - start,
    g, g, C] exactly as :meth:`ChronoTracker.extract_features` returned them (same device and dtype), so
    tracks computed from stored features equal those of a fresh run bit for bit.

    Memory: ``(stop - start) * g * g * C * 4`` bytes per window (g = input_size / 14; a ViT-S at input 896:
    6.3 MB per frame, times ``window / (window - overlap)`` for the overlaps). ``max_bytes=None`` keeps
    everything; a window larger than ``max_bytes`` is not kept. ``computed`` and ``reused`` count backbone
    passes and windows served from the store. Thread-safe.
    """

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.computed = 0
        self.reused = 0
        self._items: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored features."""
        with self._lock:
            return sum(v.numel() * v.element_size() for v in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The features stored under ``key``, else ``compute()`` (counted, then stored)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.reused += 1
                return self._items[key]
        value = compute()
        size = value.numel() * value.element_size()
        with self._lock:
            self.computed += 1
            if self.max_bytes is None or size <= self.max_bytes:
                self._items[key] = value
                held = sum(v.numel() * v.element_size() for v in self._items.values())
                while self.max_bytes is not None and held > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    held -= old.numel() * old.element_size()
        return value

    def discard(self, obj: Hashable) -> None:
        """Drop every window whose key holds ``obj`` (a tracker or a frame source no longer used)."""
        with self._lock:
            for key in [k for k in self._items if any(part is obj for part in k)]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _FeatureCache:
    """Features of one window at a time (the last computed one is reused when asked again); with a
    :class:`FeatureStore`, of every window the store keeps."""

    def __init__(self, tracker, source, resolution, device, store: FeatureStore | None = None):
        self.tracker, self.source, self.resolution, self.device = tracker, source, resolution, device
        self.store = store
        self.key, self.value = None, None

    def _compute(self, w: Window) -> torch.Tensor:
        video = model_input(self.source.read(w.start, w.stop)[None], self.device, self.resolution)
        return self.tracker.extract_features(video)

    def __call__(self, w: Window) -> torch.Tensor:
        if self.key != w:
            self.value = None  # free the old window before computing the next
            if self.store is None:
                self.value = self._compute(w)
            else:
                key = (self.tracker, self.source, w.start, w.stop, tuple(self.resolution))
                self.value = self.store.get(key, lambda: self._compute(w))
            self.key = w
        return self.value


def _stream_cores(windows: list[Window], features: _FeatureCache, say: Callable[[str], None]):
    """Yield (window, features of its core frames [1, core, g, g, C]) in frame order."""
    for k, w in enumerate(windows):
        say(f"tracking: window {k + 1}/{len(windows)} (frames {w.start}-{w.stop - 1}, "
            f"keeping {w.core_start}-{w.core_stop - 1})")
        yield w, features(w)[:, w.core_start - w.start : w.core_stop - w.start]


@torch.no_grad()
def windowed_features(tracker, video, window: int | None = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP,
                      resolution: tuple[int, int] = (256, 256)) -> torch.Tensor:
    """The features [1, T, g, g, C] :func:`track_video` uses, all at once (to measure windowing; not bounded)."""
    from chrono.video_io import as_frame_source

    source = as_frame_source(video)
    device = tracker.device
    cache = _FeatureCache(tracker, source, resolution, device)
    windows = plan_windows(source.num_frames, window, overlap)
    return torch.cat([core for _, core in _stream_cores(windows, cache, lambda msg: None)], dim=1)


@torch.no_grad()
def track_video(
    tracker,
    video,
    query_points,
    window: int | None = DEFAULT_WINDOW,
    overlap: int = DEFAULT_OVERLAP,
    resolution: tuple[int, int] = (256, 256),
    progress: Callable[[str], None] | None = None,
    feature_store: FeatureStore | None = None,
    on_window: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Track points through one video in the memory of ``window`` frames.

    Args:
      tracker: a :class:`chrono.interfaces.FeatureTracker`: a :class:`chrono.models.tracker.ChronoTracker` (eval
        mode) or an ONNX Runtime tracker (:class:`chrono.deploy.runtime.OnnxTracker`); its ``device`` is used.
      video: [T, H, W, 3] uint8 or float in [-1, 1] (numpy or torch), or a frame source with
        ``num_frames``, ``hw`` and ``read(start, stop)`` (see :mod:`chrono.video_io`), read one window
        at a time.
      query_points: [N, 3] (t, y, x) in pixels of ``video``; t a frame index (any frame: tracks run
        forward and backward in time).
      window: frames per backbone pass; None = the whole video at once (exactly ``tracker.predict``).
      overlap: frames shared by consecutive windows.
      resolution: (H, W) frames are resized to before tracking (the reference's 256 x 256).
      progress: called with a one-line message per window.
      feature_store: keeps every window's features for later calls on the same ``video`` object (see
        :class:`FeatureStore`); None (the default): one window in memory at a time.
      on_window: called as ``on_window(done, total)`` after each window pass: the query-feature windows
        and then every window of the video, ``total`` counting both.

    Returns:
      numpy ``tracks`` [N, T, 2] float32 (x, y) in pixels of ``video``; ``occluded`` [N, T] bool
      (1 - (1 - sigmoid(occ)) (1 - sigmoid(expd)) > 0.5, as the reference inference);
      ``occlusion`` and ``expected_dist`` [N, T] float32 logits.
    """
    from chrono.video_io import as_frame_source

    source = as_frame_source(video)
    T, hw = source.num_frames, tuple(source.hw)
    queries = np.asarray(query_points, dtype=np.float32)
    check_queries(queries, T, hw)
    device = tracker.device
    windows = plan_windows(T, window, overlap)
    q_res = torch.as_tensor(rescale_tyx(queries, hw, resolution), device=device)
    owner = np.searchsorted([w.core_stop for w in windows], np.round(queries[:, 0]), side="right")
    features = _FeatureCache(tracker, source, resolution, device, feature_store)
    say = progress or (lambda msg: None)
    needed = sorted(set(owner.tolist()), reverse=True)
    total = len(needed) + len(windows)
    step = on_window or (lambda done, total: None)

    # Step 2 in reverse window order, so that step 3 starts on the window computed last.
    query_feats = None
    for j, k in enumerate(needed):
        w = windows[k]
        say(f"query features: window {j + 1}/{len(needed)} (frames {w.start}-{w.stop - 1})")
        feats = features(w)
        idx = torch.as_tensor(np.flatnonzero(owner == k), device=device)
        in_window = q_res[idx] - torch.tensor([w.start, 0.0, 0.0], device=device)  # t relative to the window
        sampled = tracker.sample_query_features(feats, in_window[None], tuple(resolution))[0]
        if query_feats is None:
            query_feats = sampled.new_empty(len(queries), sampled.shape[-1])
        query_feats[idx] = sampled
        step(j + 1, total)

    N = len(queries)
    tracks = np.empty((N, T, 2), np.float32)
    occ = np.empty((N, T), np.float32)
    expd = np.empty((N, T), np.float32)
    occluded = np.empty((N, T), bool)
    for k, (w, core) in enumerate(_stream_cores(windows, features, say)):
        shifted = q_res - torch.tensor([w.core_start, 0.0, 0.0], device=device)  # pins the query frame inside the core
        out = tracker.track_features(core, shifted[None], tuple(resolution), query_features=query_feats[None])
        frames = slice(w.core_start, w.core_stop)
        tracks[:, frames] = rescale_xy(out["tracks"][0], resolution, hw).cpu().numpy()
        occ[:, frames] = out["occlusion"][0].cpu().numpy()
        expd[:, frames] = out["expected_dist"][0].cpu().numpy()
        occluded[:, frames] = head.occluded_from_logits(out["occlusion"][0], out["expected_dist"][0]).cpu().numpy()
        step(len(needed) + k + 1, total)
    return {"tracks": tracks, "occluded": occluded, "occlusion": occ, "expected_dist": expd}
