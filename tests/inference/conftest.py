"""Helpers of the chrono.track tests: a moving-texture clip with exact tracks, a tiny checkpoint, mp4 files."""

from __future__ import annotations

import numpy as np
import pytest


def smooth_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """uint8 [h, w, 3] texture with structure at several scales (blurred noise, upsampled)."""
    out = np.zeros((h, w, 3), np.float32)
    for cell, weight in ((16, 0.6), (4, 0.4)):
        coarse = rng.random((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        fine = np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:h, :w]
        k = np.ones(cell) / cell  # box blur so the blocks become smooth blobs
        fine = np.apply_along_axis(lambda v: np.convolve(v, k, "same"), 0, fine)
        fine = np.apply_along_axis(lambda v: np.convolve(v, k, "same"), 1, fine)
        out += weight * fine
    out = 0.6 * out.mean(-1, keepdims=True) + 0.4 * out  # muted colours: drawn points stand out
    out = (out - out.min()) / (out.max() - out.min() + 1e-6)
    return (out * 255).astype(np.uint8)


def moving_clip(num_frames: int = 12, height: int = 64, width: int = 80, seed: int = 0, grid: int = 4) -> dict:
    """A camera pan over a texture (content moves +2 px in x, +1 px in y per frame) and a square moving the
    other way (-3, +2 px per frame), in front of it.

    Returns video uint8 [T, H, W, 3]; tracks [N, T, 2] (x, y) raster pixels; occluded [N, T]; query_points
    [N, 3] (t, y, x) on frame 0: a grid x grid set of background points plus 4 points on the square.
    """
    rng = np.random.default_rng(seed)
    vx, vy, T = 2, 1, num_frames
    pad = 4 * max(1, T)
    tex = smooth_texture(rng, height + pad, width + pad)
    sq_tex = 255 - smooth_texture(rng, 16, 16)
    sx, sy, ux, uy, s = width * 0.6, height * 0.2, -3, 2, 16
    video = np.empty((T, height, width, 3), np.uint8)
    for t in range(T):
        oy, ox = pad - vy * t, pad - vx * t  # the view moves up-left over the texture: content moves +vx, +vy
        video[t] = tex[oy : oy + height, ox : ox + width]
        x0, y0 = int(sx + ux * t), int(sy + uy * t)
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + s, width), min(y0 + s, height)
        if xa < xb and ya < yb:
            video[t, ya:yb, xa:xb] = sq_tex[ya - y0 : yb - y0, xa - x0 : xb - x0]
    c = (np.arange(grid) + 0.5) / grid
    gy, gx = np.meshgrid(c * height, c * width, indexing="ij")
    t = np.arange(T)
    bg = np.stack([gx.ravel()[:, None] + vx * t, gy.ravel()[:, None] + vy * t], -1)
    on_sq = np.array([[int(sx) + a, int(sy) + b] for a in (4.5, 11.5) for b in (4.5, 11.5)])
    fg = np.stack([on_sq[:, :1] + ux * t, on_sq[:, 1:] + uy * t], -1)
    tracks = np.concatenate([bg, fg]).astype(np.float32)
    x0 = (sx + ux * t).astype(int)[None]
    y0 = (sy + uy * t).astype(int)[None]
    outside = (tracks[..., 0] < 0) | (tracks[..., 0] >= width) | (tracks[..., 1] < 0) | (tracks[..., 1] >= height)
    behind = (tracks[..., 0] >= x0) & (tracks[..., 0] < x0 + s) & (tracks[..., 1] >= y0) & (tracks[..., 1] < y0 + s)
    behind[len(bg):] = False
    queries = np.stack([np.zeros(len(tracks)), tracks[:, 0, 1], tracks[:, 0, 0]], -1).astype(np.float32)
    return {"video": video, "tracks": tracks, "occluded": outside | behind, "query_points": queries}


@pytest.fixture(scope="session")
def decord():
    """The decord module; a test that takes it is skipped where decord is missing (wheels exist for x86-64 only)."""
    return pytest.importorskip("decord", reason="decord wheels exist for x86-64 only")


@pytest.fixture(scope="session")
def make_moving_clip():
    """:func:`moving_clip` (test folders are not packages: helpers reach tests through fixtures)."""
    return moving_clip


@pytest.fixture(scope="session")
def clip_mp4(tmp_path_factory):
    """(path of an mp4 of :func:`moving_clip` with 12 frames of 64 x 80, the clip)."""
    from chrono.video_io import Mp4Writer

    clip = moving_clip()
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with Mp4Writer(path, fps=10, crf=10) as w:
        for frame in clip["video"]:
            w.write(frame)
    return path, clip
