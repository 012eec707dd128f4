"""Drawing tracks on frames: the overlay video of ``chrono.track``, one-picture trajectory summaries, and
predictions compared with the ground truth (``python -m chrono.evaluate ... visualize=K``).

Style: one colour per point (a rainbow over the point order, so a grid reads as a smooth colour field);
a short trail of its last positions, fading with age; a filled disc where the point is visible and a
hollow ring where it is occluded. Comparisons: the prediction a (smaller) filled disc where it is predicted
visible, the ground truth a ring of the same colour where it is visible, and a line joining them when they
are farther apart than a threshold (a correct point reads as a dot inside its ring).

Coordinates: tracks (x, y) in raster pixels of the frame drawn on (pixel i covers [i, i + 1)); they are
converted to PIL's pixel-index coordinates by :func:`chrono.coords.raster_to_index`. Arrays are numpy.
"""

from __future__ import annotations

import colorsys
import os
from dataclasses import dataclass
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


def dimmed(frame: np.ndarray, dim: float) -> np.ndarray:
    """``frame`` [H, W, 3] faded towards grey by ``dim`` (0 = unchanged), so that drawn lines stand out."""
    if not dim:
        return frame
    return (np.asarray(frame[..., :3], np.float32) * (1 - dim) + 128 * dim).round().astype(np.uint8)


def enlarge(frame: np.ndarray, scale: int) -> np.ndarray:
    """``frame`` [H, W, C] enlarged ``scale`` times by pixel repetition (tracks scale by the same factor)."""
    return np.repeat(np.repeat(frame, scale, 0), scale, 1) if scale > 1 else frame


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
        frame = enlarge(frame, scale)
        tracks = rescale_xy(np.asarray(tracks, np.float64), hw, frame.shape[:2])
        if query_points is not None:
            query_points = rescale_tyx(np.asarray(query_points, np.float64), hw, frame.shape[:2])
    N, T = tracks.shape[:2]
    colors = point_colors(N) if colors is None else colors
    radius = marker_radius(frame.shape[:2])
    base = dimmed(frame, dim)
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

    return _composite(base, draw_on)


def draw_comparison(
    frame: np.ndarray,
    pred: np.ndarray,
    pred_occluded: np.ndarray,
    gt: np.ndarray,
    gt_occluded: np.ndarray,
    colors: np.ndarray | None = None,
    radius: float | None = None,
    join_beyond: float = 8.0,
) -> np.ndarray:
    """One frame with predicted points beside the ground truth.

    Args:
      frame: [H, W, 3] uint8.
      pred, gt: [N, 2] (x, y) raster pixels of ``frame``; pred_occluded, gt_occluded: [N] bool.
      colors: [N, 3] uint8 (default :func:`point_colors`), the same for a point's prediction and truth.
      radius: ring radius in pixels (default :func:`marker_radius`); the disc's is 0.6 of it.
      join_beyond: a line joins a visible prediction to its visible ground truth when they are more than this
        many pixels (of ``frame``) apart.

    Returns:
      [H, W, 3] uint8: the ground truth a ring where it is visible, the prediction a filled disc (black
      outline) where it is predicted visible, lines under both.
    """
    N = len(pred)
    colors = point_colors(N) if colors is None else colors
    radius = marker_radius(frame.shape[:2]) if radius is None else radius
    p, g = raster_to_index(np.asarray(pred, np.float64)), raster_to_index(np.asarray(gt, np.float64))
    shown_p, shown_g = ~np.asarray(pred_occluded, bool), ~np.asarray(gt_occluded, bool)
    apart = np.linalg.norm(p - g, axis=-1) > join_beyond
    width = max(1, int(round(radius / 3)))

    def draw_on(draw: ImageDraw.ImageDraw) -> None:
        for i in np.flatnonzero(shown_p & shown_g & apart):
            draw.line([tuple(p[i]), tuple(g[i])], fill=(*colors[i].tolist(), 220), width=width)
        for i in np.flatnonzero(shown_g):
            _disc(draw, g[i], radius, (*colors[i].tolist(), 255), filled=False)
        for i in np.flatnonzero(shown_p):
            _disc(draw, p[i], 0.6 * radius, (*colors[i].tolist(), 255), filled=True)

    return _composite(frame, draw_on)


def _label(image: np.ndarray, text: str, xy: tuple[int, int] = (3, 3)) -> np.ndarray:
    """``text`` in white on a dark box at ``xy`` of ``image`` [H, W, 3] uint8 (PIL's built-in font)."""
    def draw_on(draw: ImageDraw.ImageDraw) -> None:
        box = draw.textbbox(xy, text)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0, 170))
        draw.text(xy, text, fill=(255, 255, 255, 255))

    return _composite(image, draw_on)


@dataclass(frozen=True)
class Panel:
    """Where a panel of :func:`draw_comparison_summary` lies: top-left (x0, y0) in the picture, the
    enlargement of the frame drawn there, and that frame's index (None for the trajectory panels)."""

    x0: int
    y0: int
    scale: int
    frame: int | None


def draw_comparison_summary(
    video: np.ndarray,
    pred: np.ndarray,
    pred_occluded: np.ndarray,
    gt: np.ndarray,
    gt_occluded: np.ndarray,
    caption: str = "",
    query_points: np.ndarray | None = None,
    frames: int = 4,
    scale: int = 2,
    join_beyond: float = 8.0,
    dim: float = 0.4,
) -> tuple[np.ndarray, dict[str, Panel]]:
    """One picture of a tracker against the ground truth on one video.

    Top: the ground-truth trajectories and the predicted ones side by side on the first frame (enlarged
    ``scale`` times; same colour per point; each query a disc). Below: ``frames`` frames spread over the video
    with :func:`draw_comparison` (ring = truth, disc = prediction, a line when they are more than
    ``join_beyond`` pixels of ``video`` apart), faded by ``dim``. A caption line on top.

    Args:
      video: [T, H, W, 3] uint8; pred, gt: [N, T, 2] (x, y) in its pixels; pred_occluded, gt_occluded: [N, T];
      query_points: optional [N, 3] (t, y, x) in its pixels.

    Returns:
      (picture [h, w, 3] uint8, panels by name: ``ground truth``, ``prediction``, ``frame <t>``).
    """
    T, H, W = video.shape[:3]
    colors = point_colors(len(pred))
    top = [("ground truth", gt, gt_occluded), ("prediction", pred, pred_occluded)]
    times = sorted({int(t) for t in np.linspace(0, T - 1, max(1, frames)).round()})
    small = max(1, (2 * scale) // len(times))
    caption_h = 18 if caption else 0
    width = max(2 * W * scale, len(times) * W * small)
    canvas = np.full((caption_h + H * scale + H * small, width, 3), 255, np.uint8)
    panels: dict[str, Panel] = {}
    for k, (name, tracks, occluded) in enumerate(top):
        panel = draw_trajectories(video[0], tracks, occluded, query_points, colors=colors, min_side=min(H, W) * scale)
        panels[name] = Panel(k * W * scale, caption_h, scale, None)
        canvas[caption_h : caption_h + H * scale, k * W * scale : (k + 1) * W * scale] = _label(panel, name)
    for k, t in enumerate(times):
        frame = draw_comparison(enlarge(dimmed(video[t], dim), small), pred[:, t] * small, pred_occluded[:, t],
                                gt[:, t] * small, gt_occluded[:, t], colors, join_beyond=join_beyond * small)
        y0 = caption_h + H * scale
        panels[f"frame {t}"] = Panel(k * W * small, y0, small, t)
        canvas[y0 : y0 + H * small, k * W * small : (k + 1) * W * small] = _label(frame, f"t={t}")
    if caption:
        canvas = _label(canvas, caption, (4, 3))
    return canvas, panels


def draw_summary(video, tracks: np.ndarray, occluded: np.ndarray, path: str | os.PathLike,
                 query_points: np.ndarray | None = None, min_side: int = 256):
    """Write a PNG of :func:`draw_trajectories` on the first frame of ``video`` [T, H, W, 3] (uint8 or float
    in [-1, 1]; tracks [N, T, 2] (x, y) in its pixels, occluded [N, T]); returns the path. The training
    loop logs these pictures."""
    from chrono.video_io import to_uint8, write_png

    first = to_uint8(np.asarray(video[0]))
    return write_png(path, draw_trajectories(first, np.asarray(tracks), np.asarray(occluded), query_points,
                                             min_side=min_side))


def _write_video(path, source, draw: Callable[[int, np.ndarray], np.ndarray], fps: float | None, chunk: int,
                 progress: Callable[[str], None] | None):
    """Write ``draw(t, frame)`` of every frame of ``source`` (read ``chunk`` at a time) as an mp4, atomically."""
    from chrono.video_io import Mp4Writer, to_uint8

    T = source.num_frames
    with Mp4Writer(path, fps=fps or source.fps) as writer:
        for s in range(0, T, chunk):
            if progress:
                progress(f"overlay: frames {s}-{min(s + chunk, T) - 1} of {T}")
            for j, frame in enumerate(to_uint8(source.read(s, min(s + chunk, T)))):
                writer.write(draw(s + j, frame))
    return path


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
    from chrono.video_io import as_frame_source

    source = as_frame_source(source)
    T = source.num_frames
    if tracks.shape[1] != T or occluded.shape[1] != T:
        raise ValueError(f"tracks {tracks.shape} / occluded {occluded.shape} do not cover the {T} frames of {source.name}")
    colors = point_colors(len(tracks)) if colors is None else colors

    def draw(t: int, frame: np.ndarray) -> np.ndarray:
        lo = max(0, t - trail + 1)
        return draw_points(frame, tracks[:, lo : t + 1], occluded[:, lo : t + 1], colors)

    return _write_video(path, source, draw, fps, chunk, progress)


def write_comparison_video(
    path: str | os.PathLike,
    video: np.ndarray,
    pred: np.ndarray,
    pred_occluded: np.ndarray,
    gt: np.ndarray,
    gt_occluded: np.ndarray,
    fps: float = 10.0,
    scale: int = 2,
    join_beyond: float = 8.0,
    dim: float = 0.3,
):
    """Write an mp4 of ``video`` [T, H, W, 3] enlarged ``scale`` times, faded by ``dim``, with
    :func:`draw_comparison` on every frame (pred, gt [N, T, 2] (x, y) in the video's pixels; ``join_beyond`` in
    those pixels too)."""
    from chrono.video_io import as_frame_source

    colors = point_colors(len(pred))

    def draw(t: int, frame: np.ndarray) -> np.ndarray:
        return _label(draw_comparison(enlarge(dimmed(frame, dim), scale), pred[:, t] * scale, pred_occluded[:, t],
                                      gt[:, t] * scale, gt_occluded[:, t], colors, join_beyond=join_beyond * scale),
                      f"t={t}")

    return _write_video(path, as_frame_source(video), draw, fps, chunk=32, progress=None)
