"""Drawing tracks on frames: the overlay video of ``chrono.track`` and one-picture trajectory summaries.

Style: one colour per point (a rainbow over the point order, so a grid reads as a smooth colour field);
a short trail of its last positions, fading with age; a filled disc where the point is visible and a
hollow ring where it is occluded.

Coordinates: tracks (x, y) in raster pixels of the frame drawn on (pixel i covers [i, i + 1)); they are
converted to PIL's pixel-index coordinates by :func:`chrono.coords.raster_to_index`. Arrays are numpy.
"""

from __future__ import annotations

import colorsys
import os
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from chrono.coords import raster_to_index, rescale_tyx, rescale_xy


def point_colors(n: int) -> np.ndarray:
    """[n, 3] uint8 RGB colours, a rainbow from red to violet over the point order."""
    hues = np.linspace(0.0, 0.8, n) if n > 1 else np.zeros(n)
    rgb = np.array([colorsys.hsv_to_rgb(h, 0.9, 1.0) for h in hues], dtype=np.float64).reshape(-1, 3)
    return np.round(rgb * 255).astype(np.uint8)


def marker_radius(hw: tuple[int, int]) -> float:
    """Disc radius in pixels for a frame of size ``hw``: 2 px on small frames, ~1/80 of the short side."""
    return max(2.0, min(hw) / 80.0)


def _disc(draw: ImageDraw.ImageDraw, xy, r: float, color, filled: bool) -> None:
    x, y = xy
    box = (x - r, y - r, x + r, y + r)
    if filled:
        draw.ellipse(box, fill=color, outline=(0, 0, 0, 255))
    else:
        draw.ellipse(box, outline=color, width=max(1, int(round(r / 2.5))))


def _composite(base: np.ndarray, draw_on: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
    """``base`` [H, W, 3] uint8 with what ``draw_on`` draws on a transparent RGBA layer alpha-composited over it."""
    layer = Image.new("RGBA", (base.shape[1], base.shape[0]), (0, 0, 0, 0))
    draw_on(ImageDraw.Draw(layer))
    out = Image.fromarray(np.ascontiguousarray(base[..., :3], dtype=np.uint8)).convert("RGBA")
    return np.asarray(Image.alpha_composite(out, layer).convert("RGB"))


def draw_points(
    frame: np.ndarray,
    trails: np.ndarray,
    trail_occluded: np.ndarray,
    colors: np.ndarray | None = None,
    radius: float | None = None,
) -> np.ndarray:
    """One overlay frame: every point's trail (oldest first) and its current position.

    Args:
      frame: [H, W, 3] uint8.
      trails: [N, K, 2] (x, y) raster pixels; ``trails[:, -1]`` is the current position.
      trail_occluded: [N, K] bool.
      colors: [N, 3] uint8 (default :func:`point_colors`).
      radius: disc radius in pixels (default :func:`marker_radius`).

    Returns:
      [H, W, 3] uint8: visible trail segments as lines fading with age, the current point as a filled
      disc (visible) or a hollow ring (occluded).
    """
    N, K = trails.shape[:2]
    colors = point_colors(N) if colors is None else colors
    radius = marker_radius(frame.shape[:2]) if radius is None else radius
    pts = raster_to_index(np.asarray(trails, np.float64))
    width = max(1, int(round(radius / 2)))

    def draw_on(draw: ImageDraw.ImageDraw) -> None:
        for k in range(K - 1):
            alpha = int(255 * (k + 1) / K)
            both = ~trail_occluded[:, k] & ~trail_occluded[:, k + 1]
            for i in np.flatnonzero(both):
                draw.line([tuple(pts[i, k]), tuple(pts[i, k + 1])], fill=(*colors[i].tolist(), alpha), width=width)
        for i in range(N):
            _disc(draw, pts[i, -1], radius, (*colors[i].tolist(), 255), filled=not trail_occluded[i, -1])

    return _composite(frame, draw_on)


def label_points(frame: np.ndarray, xy: np.ndarray, labels: list[str], colors: np.ndarray | None = None) -> np.ndarray:
    """``frame`` [H, W, 3] uint8 with ``labels[i]`` written beside the point ``xy[i]`` ((x, y) raster pixels
    [N, 2]), in ``colors[i]`` (default :func:`point_colors`) on a dark outline so it reads on any background."""
    colors = point_colors(len(xy)) if colors is None else colors
    pts = raster_to_index(np.asarray(xy, np.float64).reshape(-1, 2))
    offset = marker_radius(frame.shape[:2]) * 1.6 + 2

    def draw_on(draw: ImageDraw.ImageDraw) -> None:
        for (x, y), text, color in zip(pts, labels, colors):
            draw.text((x + offset, y - offset - 8), text, fill=(*color.tolist(), 255), stroke_width=2,
                      stroke_fill=(0, 0, 0, 255))

    return _composite(frame, draw_on)


def draw_trajectories(
    frame: np.ndarray,
    tracks: np.ndarray,
    occluded: np.ndarray,
    query_points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    dim: float = 0.5,
    min_side: int = 0,
) -> np.ndarray:
    """A one-picture summary: whole trajectories drawn over a (dimmed) frame.

    Args:
      frame: [H, W, 3] uint8 (e.g. the first frame).
      tracks: [N, T, 2] (x, y) raster pixels of ``frame``'s size.
      occluded: [N, T] bool; segments between two visible positions are solid lines, the others are
        faint.
      query_points: optional [N, 3] (t, y, x): each query is marked with a disc.
      colors: [N, 3] uint8 (default :func:`point_colors`).
      dim: how much the frame is faded towards grey so the lines stand out (0 = not at all).
      min_side: a smaller frame is enlarged (an integer factor, nearest neighbour) so that its shorter
        side reaches this, and the tracks with it: small videos give a legible picture.

    Returns:
      [H * s, W * s, 3] uint8, s the enlargement factor (1 unless ``min_side`` asks for more).
    """
    scale = max(1, -(-min_side // min(frame.shape[:2])))
    if scale > 1:
        hw = frame.shape[:2]
        frame = np.repeat(np.repeat(frame, scale, 0), scale, 1)
        tracks = rescale_xy(np.asarray(tracks, np.float64), hw, frame.shape[:2])
        if query_points is not None:
            query_points = rescale_tyx(np.asarray(query_points, np.float64), hw, frame.shape[:2])
    N, T = tracks.shape[:2]
    colors = point_colors(N) if colors is None else colors
    radius = marker_radius(frame.shape[:2])
    base = np.asarray(frame[..., :3], np.float32) * (1 - dim) + 128 * dim
    pts = raster_to_index(np.asarray(tracks, np.float64))
    width = max(1, int(round(radius / 2)))

    def draw_on(draw: ImageDraw.ImageDraw) -> None:
        for i in range(N):
            color = tuple(colors[i].tolist())
            for t in range(T - 1):
                visible = not occluded[i, t] and not occluded[i, t + 1]
                draw.line([tuple(pts[i, t]), tuple(pts[i, t + 1])], fill=(*color, 255 if visible else 70),
                          width=width if visible else 1)
        if query_points is not None:
            for i, (_, y, x) in enumerate(np.asarray(query_points, np.float64)):
                _disc(draw, raster_to_index(np.array([x, y])), radius, (*colors[i].tolist(), 255), filled=True)

    return _composite(base.round().astype(np.uint8), draw_on)


def draw_summary(video, tracks: np.ndarray, occluded: np.ndarray, path: str | os.PathLike,
                 query_points: np.ndarray | None = None, min_side: int = 256):
    """Write a PNG of :func:`draw_trajectories` on the first frame of ``video`` [T, H, W, 3] (uint8 or float
    in [-1, 1]; tracks [N, T, 2] (x, y) in its pixels, occluded [N, T]); returns the path. The training
    loop logs these pictures."""
    from chrono.video_io import to_uint8, write_png

    first = to_uint8(np.asarray(video[0]))
    return write_png(path, draw_trajectories(first, np.asarray(tracks), np.asarray(occluded), query_points,
                                             min_side=min_side))


def write_overlay_video(
    path: str | os.PathLike,
    source,
    tracks: np.ndarray,
    occluded: np.ndarray,
    fps: float | None = None,
    trail: int = 8,
    colors: np.ndarray | None = None,
    chunk: int = 32,
    progress: Callable[[str], None] | None = None,
):
    """Write the overlay mp4: every frame of ``source`` with the points drawn (see :func:`draw_points`).

    Args:
      path: the .mp4 to write (atomically).
      source: frame source (or array [T, H, W, 3]); frames are read ``chunk`` at a time.
      tracks: [N, T, 2] (x, y) raster pixels of the source's frames (``source.hw``).
      occluded: [N, T] bool.
      fps: frames per second (default the source's).
      trail: positions shown per point, the current one included (1 = no trail).
    """
    from chrono.video_io import Mp4Writer, as_frame_source, to_uint8

    source = as_frame_source(source)
    T = source.num_frames
    if tracks.shape[1] != T or occluded.shape[1] != T:
        raise ValueError(f"tracks {tracks.shape} / occluded {occluded.shape} do not cover the {T} frames of {source.name}")
    colors = point_colors(len(tracks)) if colors is None else colors
    with Mp4Writer(path, fps=fps or source.fps) as writer:
        for s in range(0, T, chunk):
            if progress:
                progress(f"overlay: frames {s}-{min(s + chunk, T) - 1} of {T}")
            for j, frame in enumerate(to_uint8(source.read(s, min(s + chunk, T)))):
                t = s + j
                lo = max(0, t - trail + 1)
                writer.write(draw_points(frame, tracks[:, lo : t + 1], occluded[:, lo : t + 1], colors))
    return path
