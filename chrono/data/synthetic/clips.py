"""Synthetic point-tracking clips with exact ground truth (a small, fast, Kubric-like generator).

A clip is a textured background seen by a moving camera (pan, zoom, small rotation) with several
textured foreground objects in front of it, each with its own motion (translation with acceleration,
rotation, scale), drawn back to front. Every surface is an affine image of a texture, so every point's
track is exact: a point is found on the surface that is on top at its query pixel, mapped back to that
surface's texture and forward again into every frame. It is occluded when it is outside the frame or
inside the mask of a nearer object (the same mask test the renderer uses at pixel centres).

Conventions: tracks (x, y) in pixels, raster convention (pixel i covers [i, i + 1), its centre is
i + 0.5); queries (t, y, x); ``occluded`` True = not visible. A point exactly on the frame border still
counts as inside (Kubric's ``x < 0 or x > W`` test).

Storing clips as training shards and as the ``synthetic`` benchmark: :mod:`chrono.data.synthetic.store`;
the command line: ``python -m chrono.data.synthetic`` (:mod:`chrono.data.synthetic.__main__`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from chrono.data.grid import QueryGrid, encode_grid, grid_pixels, grid_shape
from chrono.data.synthetic.textures import make_texture

# Training clips use seeds ``seed * TRAIN_SEED_STRIDE + i``; benchmark videos start at
# BENCHMARK_SEED_OFFSET, far above any training seed, so the two sets never share a scene.
TRAIN_SEED_STRIDE = 1_000_000
BENCHMARK_SEED_OFFSET = 2**40

BENCHMARK_DEFAULTS = dict(num_videos=20, height=192, width=192, num_frames=24, num_tracks=48)


@dataclasses.dataclass(frozen=True)
class ClipOptions:
    """Options of :func:`generate_clip` (every one has a default).

    Speeds are per frame at a 256-pixel frame and scale with ``min(height, width) / 256``.
    """

    height: int = 256
    width: int = 256
    num_frames: int = 24
    num_objects: int | Sequence[int] = (3, 8)  # an int, or an inclusive [min, max] range drawn per clip
    num_tracks: int = 2048  # candidate tracks per clip (each visible at its query frame), like the Kubric shards
    motion: float = 1.0  # scales every motion (camera and objects); 0 gives a still clip
    camera_motion: float = 1.0  # extra factor for the camera (pan, zoom, rotation); 0 = fixed camera
    object_size: Sequence[float] = (0.15, 0.5)  # object diameter range, fraction of min(height, width)
    object_track_fraction: float = 0.5  # share of tracks on objects (when objects are visible enough)
    # Instead of num_tracks random candidates: every point of a stride-s (t, y, x) query grid with its surface id
    # (random offset), for kubric's per-read sampling (chrono.data.grid, chrono.data.sampling); None: candidates.
    grid_stride: int | None = None
    return_segmentation: bool = False  # also return the id of the top surface at every pixel centre

    def __post_init__(self):
        if self.height < 8 or self.width < 8 or self.num_frames < 1:
            raise ValueError(f"clip size must be at least 1 x 8 x 8, got {self.num_frames} x {self.height} x {self.width}")
        if self.num_tracks < 1:
            raise ValueError(f"num_tracks must be positive, got {self.num_tracks}")
        lo, hi = self.object_count_range
        if not 0 <= lo <= hi <= 100:
            raise ValueError(f"num_objects must be in [0, 100] (or a [min, max] range), got {self.num_objects}")
        if not 0 <= self.object_track_fraction <= 1:
            raise ValueError(f"object_track_fraction must be in [0, 1], got {self.object_track_fraction}")
        if self.grid_stride is not None and not 1 <= self.grid_stride <= min(self.num_frames, self.height, self.width):
            raise ValueError(f"grid_stride must be null or in [1, min(num_frames, height, width)], got {self.grid_stride}")

    @property
    def object_count_range(self) -> tuple[int, int]:
        if isinstance(self.num_objects, (int, np.integer)):
            return int(self.num_objects), int(self.num_objects)
        lo, hi = self.num_objects
        return int(lo), int(hi)


def clip_options(**options) -> ClipOptions:
    """Validated :class:`ClipOptions`; an unknown option raises a TypeError that names it."""
    known = {f.name for f in dataclasses.fields(ClipOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown synthetic clip option(s) {unknown}; known: {sorted(known)}")
    return ClipOptions(**options)


# --------------------------------------------------------------------------------------------------
# Affine helpers: a transform is a [..., 2, 3] array mapping (x, y, 1) -> (x', y').


def _similarity(scale, angle, tx, ty) -> np.ndarray:
    """[..., 2, 3] transforms p -> scale * R(angle) p + (tx, ty) (broadcast over the leading axes)."""
    scale, angle, tx, ty = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (scale, angle, tx, ty)))
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.stack([np.stack([c, -s, tx], -1), np.stack([s, c, ty], -1)], -2)


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The transform ``a o b`` (apply b, then a)."""
    m = a[..., :, :2] @ b[..., :, :2]
    t = (a[..., :, :2] @ b[..., :, 2:])[..., 0] + a[..., :, 2]
    return np.concatenate([m, t[..., None]], -1)


def _invert(a: np.ndarray) -> np.ndarray:
    m = np.linalg.inv(a[..., :, :2])
    t = -(m @ a[..., :, 2:])[..., 0]
    return np.concatenate([m, t[..., None]], -1)


def _apply(a: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply transforms ``a`` [..., 2, 3] to points (x, y) broadcastable against a[..., 0, 0]."""
    return (a[..., 0, 0] * x + a[..., 0, 1] * y + a[..., 0, 2], a[..., 1, 0] * x + a[..., 1, 1] * y + a[..., 1, 2])


# --------------------------------------------------------------------------------------------------
# Sampling of rasters at continuous (raster-convention) coordinates.


def _bilinear(tex: np.ndarray, x: np.ndarray, y: np.ndarray, wrap: bool) -> np.ndarray:
    """Sample ``tex`` [h, w] or [h, w, C] bilinearly at raster coordinates (x, y) (texel k centred at k + 0.5).

    ``wrap`` tiles the texture; otherwise coordinates are clamped to the border texels.
    """
    h, w = tex.shape[:2]
    fx, fy = x - 0.5, y - 0.5
    x0f, y0f = np.floor(fx), np.floor(fy)
    ax, ay = (fx - x0f).astype(np.float32), (fy - y0f).astype(np.float32)
    x0, y0 = x0f.astype(np.int32), y0f.astype(np.int32)
    x1, y1 = x0 + 1, y0 + 1
    for lo, hi, n in ((x0, x1, w), (y0, y1, h)):
        if lo.size and (lo.min() < 0 or hi.max() > n - 1):  # integer modulo is slow: only when needed
            if wrap:
                lo %= n
                hi %= n
            else:
                np.maximum(lo, 0, out=lo)
                np.minimum(hi, n - 1, out=hi)
                np.minimum(lo, n - 1, out=lo)
                np.maximum(hi, 0, out=hi)
    flat = tex.reshape(h * w, *tex.shape[2:])
    y0 *= w
    y1 *= w
    if tex.ndim == 3:
        ax, ay = ax[..., None], ay[..., None]
    top = np.take(flat, y0 + x0, axis=0)
    top += (np.take(flat, y0 + x1, axis=0) - top) * ax
    bottom = np.take(flat, y1 + x0, axis=0)
    bottom += (np.take(flat, y1 + x1, axis=0) - bottom) * ax
    top += (bottom - top) * ay
    return top


# --------------------------------------------------------------------------------------------------
# Scene description.


@dataclasses.dataclass
class _Surface:
    """A textured layer: texture [h, w, 3] float32, mask alpha [h, w] (None = everywhere, the
    background), and per frame the transform texture -> frame [T, 2, 3] and its inverse."""

    texture: np.ndarray
    alpha: np.ndarray | None
    to_frame: np.ndarray
    from_frame: np.ndarray

    def inside(self, t, x, y) -> np.ndarray:
        """Whether frame points (x, y) at frames ``t`` (broadcastable) lie on this surface's mask."""
        if self.alpha is None:
            return np.ones(np.broadcast(t, x, y).shape, bool)
        u, v = _apply(self.from_frame[t], x, y)
        # The mask has an empty 2-texel border, so points off the texture are outside: sample only the others.
        th, tw = self.alpha.shape
        on = (u >= 0) & (u < tw) & (v >= 0) & (v < th)
        out = np.zeros(on.shape, bool)
        out[on] = _bilinear(self.alpha, u[on], v[on], wrap=False) > 0.5
        return out


def _shape_alpha(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random object mask [size, size]: a clipped signed-distance ramp whose 0.5 level is the outline.

    The outline (ellipse, rounded box, polygon/star or random blob) sits inside a 2-texel empty border,
    so sampling with clamped coordinates reads 0 outside the texture.
    """
    c = size / 2.0
    r = size / 2.0 - 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - c, yy - c
    kind = rng.integers(4)
    if kind == 0:  # ellipse
        ratio = rng.uniform(0.45, 1.0)
        rho = np.sqrt(dx**2 + (dy / ratio) ** 2)
        sd = (rho - r) * ratio
    elif kind == 1:  # rounded box
        hw, hh = r, r * rng.uniform(0.4, 1.0)
        rr = rng.uniform(0, 0.5) * hh
        qx, qy = np.abs(dx) - (hw - rr), np.abs(dy) - (hh - rr)
        sd = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2) + np.minimum(np.maximum(qx, qy), 0) - rr
    else:
        theta = np.arctan2(dy, dx)
        rho = np.sqrt(dx**2 + dy**2)
        if kind == 2:  # regular polygon or star
            n = int(rng.integers(3, 9))
            star = rng.uniform(0, 0.45) if rng.random() < 0.4 else 0.0
            phase = np.mod(theta, 2 * np.pi / n) - np.pi / n
            edge = np.cos(np.pi / n) / np.cos(phase)
            radius = r * edge * (1 - star * np.abs(np.cos(n * theta / 2)))
        else:  # smooth blob: radius modulated by a few harmonics
            radius = np.ones_like(theta)
            for k in range(2, 6):
                radius += rng.uniform(0, 0.25 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
            radius = r * radius / (1 + 0.25 * sum(2 / k for k in range(2, 6)))
        sd = rho - radius
    return np.clip(0.5 - sd, 0.0, 1.0).astype(np.float32)


def _camera(rng: np.random.Generator, o: ClipOptions, unit: float) -> tuple[np.ndarray, tuple[int, int]]:
    """World -> frame transforms [T, 2, 3] of a panning, zooming, slightly rotating camera, and the
    size (h, w) of the background texture that covers every view (world = background texture pixels)."""
    t = np.arange(o.num_frames, dtype=np.float64)
    tc = t - (o.num_frames - 1) / 2.0
    m = o.motion * o.camera_motion
    speed = rng.uniform(0.0, 3.0) * unit * m
    heading = rng.uniform(0, 2 * np.pi)
    accel = rng.normal(0, 0.08, size=2) * unit * m
    cx = speed * np.cos(heading) * tc + 0.5 * accel[0] * tc**2
    cy = speed * np.sin(heading) * tc + 0.5 * accel[1] * tc**2
    zoom = np.exp(rng.uniform(-0.012, 0.012) * m * tc)
    angle = np.deg2rad(rng.uniform(-0.5, 0.5) * m) * tc
    # frame = zoom * R(angle) (world - c) + frame centre; first built with c around the origin.
    f = np.array([o.width / 2.0, o.height / 2.0])
    rot = _similarity(zoom, angle, 0.0, 0.0)
    shift = f - (rot[:, :, :2] @ np.stack([cx, cy], -1)[..., None])[..., 0]
    cam = np.concatenate([rot[:, :, :2], shift[..., None]], -1)
    # Move the world so that every view lies inside [margin, size - margin].
    corners = np.array([[0, 0], [o.width, 0], [0, o.height], [o.width, o.height]], np.float64)
    wx, wy = _apply(_invert(cam)[:, None], corners[None, :, 0], corners[None, :, 1])
    margin = 4.0
    offset = np.array([margin - wx.min(), margin - wy.min()])
    size_w = int(np.ceil((wx.max() - wx.min() + 2 * margin) / 8) * 8)
    size_h = int(np.ceil((wy.max() - wy.min() + 2 * margin) / 8) * 8)
    cam = _compose(cam, _similarity(1.0, 0.0, -offset[0], -offset[1]))
    return cam, (size_h, size_w)


def _object(rng: np.random.Generator, o: ClipOptions, cam: np.ndarray, unit: float) -> _Surface:
    """One textured object with its own motion in the world, seen through the camera."""
    short = min(o.height, o.width)
    diameter = rng.uniform(*o.object_size) * short
    size = int(np.ceil(diameter)) + 4
    texture = make_texture(rng, size, size)
    alpha = _shape_alpha(rng, size)
    t = np.arange(o.num_frames, dtype=np.float64)
    # The object passes through a random point of the view at a random frame t0.
    t0 = int(rng.integers(o.num_frames))
    px, py = rng.uniform(0.1, 0.9) * o.width, rng.uniform(0.1, 0.9) * o.height
    wx, wy = _apply(_invert(cam[t0]), px, py)
    dt = t - t0
    m = o.motion
    speed = rng.uniform(0.0, 5.0) * unit * m
    heading = rng.uniform(0, 2 * np.pi)
    accel = rng.normal(0, 0.15, size=2) * unit * m
    qx = wx + speed * np.cos(heading) * dt + 0.5 * accel[0] * dt**2
    qy = wy + speed * np.sin(heading) * dt + 0.5 * accel[1] * dt**2
    angle = rng.uniform(0, 2 * np.pi) + np.deg2rad(rng.uniform(-3.0, 3.0) * m) * dt
    cam_zoom = np.sqrt(abs(np.linalg.det(cam[t0, :, :2])))
    scale = np.exp(rng.uniform(-0.015, 0.015) * m * dt) / cam_zoom
    # texture -> world: scale * R(angle) (u - centre) + q
    pose = _compose(_similarity(scale, angle, qx, qy), _similarity(1.0, 0.0, -size / 2.0, -size / 2.0))
    to_frame = _compose(cam, pose)
    return _Surface(texture, alpha, to_frame, _invert(to_frame))


def _render(surfaces: list[_Surface], o: ClipOptions) -> tuple[np.ndarray, np.ndarray]:
    """Draw the surfaces back to front: video uint8 [T, H, W, 3] and top-surface ids int8 [T, H, W]."""
    h, w, T = o.height, o.width, o.num_frames
    video = np.empty((T, h, w, 3), np.uint8)
    seg = np.zeros((T, h, w), np.int8)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    row, col = xs[:1], ys[:, :1]  # pixel-centre coordinates as [1, W] and [H, 1]: cheap broadcasting
    background = surfaces[0]
    for t in range(T):
        u, v = _apply(background.from_frame[t], row, col)
        frame = _bilinear(background.texture, u, v, wrap=True)
        for sid, s in enumerate(surfaces[1:], start=1):
            th, tw = s.alpha.shape
            cx, cy = _apply(s.to_frame[t], np.array([0.0, tw, 0.0, tw]), np.array([0.0, 0.0, th, th]))
            x0, x1 = max(int(np.floor(cx.min())), 0), min(int(np.ceil(cx.max())), w)
            y0, y1 = max(int(np.floor(cy.min())), 0), min(int(np.ceil(cy.max())), h)
            if x0 >= x1 or y0 >= y1:
                continue
            bx, by = xs[y0:y1, x0:x1], ys[y0:y1, x0:x1]
            u, v = _apply(s.from_frame[t], bx, by)
            mask = _bilinear(s.alpha, u, v, wrap=False) > 0.5
            if not mask.any():
                continue
            region = frame[y0:y1, x0:x1]
            region[mask] = _bilinear(s.texture, u[mask], v[mask], wrap=False)
            seg[t, y0:y1, x0:x1][mask] = sid
        np.rint(frame, out=frame)
        video[t] = np.clip(frame, 0, 255)
    return video, seg


def _sample_tracks(rng: np.random.Generator, surfaces: list[_Surface], o: ClipOptions):
    """Candidate tracks: positions [N, T, 2] (x, y), occluded [N, T], queries [N, 3] (t, y, x), surface ids [N]."""
    h, w, T, n = o.height, o.width, o.num_frames, o.num_tracks
    pool = max(4 * n, 256)
    tq = rng.integers(T, size=pool)
    px, py = rng.uniform(0, w, size=pool), rng.uniform(0, h, size=pool)
    surf = _surface_at(surfaces, tq, px, py)
    on_obj = np.flatnonzero(surf > 0)
    on_bg = np.flatnonzero(surf == 0)
    want_obj = min(int(round(o.object_track_fraction * n)), len(on_obj))
    want_obj = max(want_obj, n - len(on_bg))
    if len(on_obj):
        # Equal expected share per object, so one large object does not take every track.
        counts = np.bincount(surf[on_obj])
        p = 1.0 / counts[surf[on_obj]]
        chosen_obj = rng.choice(on_obj, size=want_obj, replace=False, p=p / p.sum())
    else:
        chosen_obj = on_obj[:0]
    chosen = np.concatenate([chosen_obj, rng.choice(on_bg, size=n - want_obj, replace=False)])
    chosen = chosen[rng.permutation(n)]
    tq, px, py, surf = tq[chosen], px[chosen], py[chosen], surf[chosen]
    tracks, occluded = _track_points(surfaces, o, tq, px, py, surf)
    queries = np.stack([tq, py, px], -1).astype(np.float32)
    return tracks, occluded, queries, surf


def _surface_at(surfaces: list[_Surface], tq, px, py) -> np.ndarray:
    """The id of the surface on top at frame points (tq, px, py) (the renderer's mask test)."""
    surf = np.zeros(np.shape(tq), np.int64)
    for sid, s in enumerate(surfaces[1:], start=1):
        surf[s.inside(tq, px, py)] = sid
    return surf


def _track_points(surfaces: list[_Surface], o: ClipOptions, tq, px, py, surf):
    """Exact tracks (x, y) [N, T, 2] float32 and occluded [N, T] of query points (tq, px, py) on surfaces ``surf``."""
    h, w, T, n = o.height, o.width, o.num_frames, len(tq)
    to_frame = np.stack([s.to_frame for s in surfaces])  # [S, T, 2, 3]
    from_frame = np.stack([s.from_frame for s in surfaces])
    u, v = _apply(from_frame[surf, tq], px, py)  # texture coordinates of each point
    x, y = _apply(to_frame[surf], u[:, None], v[:, None])  # [N, T]
    rows = np.arange(n)
    x[rows, tq], y[rows, tq] = px, py  # exactly the query (same numbers the surface test used)
    occluded = (x < 0) | (x > w) | (y < 0) | (y > h)
    frames = np.arange(T)[None, :]
    for sid, s in enumerate(surfaces[1:], start=1):
        nearer = surf < sid
        if nearer.any():
            occluded[nearer] |= s.inside(frames, x[nearer], y[nearer])
    return np.stack([x, y], -1).astype(np.float32), occluded


def _query_grid(rng: np.random.Generator, surfaces: list[_Surface], o: ClipOptions) -> QueryGrid:
    """Every point of a stride-``grid_stride`` (t, y, x) grid with a random offset, queried at its pixel centre,
    with its surface id (0 = background, k = k-th object) and exact track: what kubric's per-read sampling needs."""
    start = rng.integers(0, o.grid_stride, 3)
    shape = grid_shape(o.num_frames, o.height, o.width, start, o.grid_stride)
    pix = grid_pixels(start, o.grid_stride, shape).reshape(-1, 3)
    tq, py, px = pix[:, 0], pix[:, 1] + 0.5, pix[:, 2] + 0.5
    surf = _surface_at(surfaces, tq, px, py)
    tracks, occluded = _track_points(surfaces, o, tq, px, py, surf)
    return encode_grid(start, o.grid_stride, surf.reshape(shape), tracks.reshape(shape + tracks.shape[1:]),
                       occluded.reshape(shape + occluded.shape[1:]))


def generate_clip(seed: int, **options: Any) -> dict[str, np.ndarray]:
    """Generate one synthetic clip, deterministically from ``seed``.

    Options: see :class:`ClipOptions` (height, width, num_frames, num_objects, num_tracks, motion,
    camera_motion, object_size, object_track_fraction, return_segmentation).

    Returns a dict with
      - ``video`` uint8 [T, H, W, 3];
      - ``tracks`` float32 [N, T, 2]: (x, y) in pixels, raster convention (pixel centres at i + 0.5);
      - ``occluded`` bool [N, T]: hidden by a nearer object or outside the frame;
      - ``query_points`` float32 [N, 3]: (t, y, x) of a frame where the track is visible (its sampling
        frame; the track passes exactly through it);
      - ``surface`` int8 [N]: 0 = background, k = k-th object from the back (nearer objects have larger k);
      - ``segmentation`` int8 [T, H, W] (only with ``return_segmentation=True``): the surface drawn at
        each pixel centre.
    """
    o = clip_options(**options)
    rng = np.random.default_rng(int(seed))
    unit = min(o.height, o.width) / 256.0
    cam, (bh, bw) = _camera(rng, o, unit)
    background = _Surface(make_texture(rng, bh, bw), None, cam, _invert(cam))
    lo, hi = o.object_count_range
    objects = [_object(rng, o, cam, unit) for _ in range(int(rng.integers(lo, hi + 1)))]
    surfaces = [background] + objects
    video, seg = _render(surfaces, o)
    if o.grid_stride is not None:
        out = {"video": video, "grid": _query_grid(rng, surfaces, o)}
    else:
        tracks, occluded, queries, surf = _sample_tracks(rng, surfaces, o)
        out = {"video": video, "tracks": tracks, "occluded": occluded, "query_points": queries,
               "surface": surf.astype(np.int8)}
    if o.return_segmentation:
        out["segmentation"] = seg
    return out


# --------------------------------------------------------------------------------------------------
# Seeds of the data sets on disk (chrono.data.synthetic.store)

GENERATOR_VERSION = 1  # bump when the generator changes what a seed produces


def train_seed(seed: int, index: int) -> int:
    """The clip seed of training clip ``index`` of the set generated with ``seed``."""
    if not 0 <= index < TRAIN_SEED_STRIDE:
        raise ValueError(f"training clip index must be in [0, {TRAIN_SEED_STRIDE}), got {index}")
    return int(seed) * TRAIN_SEED_STRIDE + int(index)


def benchmark_seed(seed: int, index: int) -> int:
    """The clip seed of benchmark video ``index``: disjoint from every training seed."""
    return BENCHMARK_SEED_OFFSET + train_seed(seed, index)
