"""What the page plots of a result: x, y and visibility of every point over time, and a highlighted summary.

Tables are long-format columns (``frame``, ``value``, ``point``) for Gradio's LinePlot (Vega-Lite, drawn in
the browser: no plotting library on the server); ``frame`` is the file's frame number, ``value`` x or y in
the file's pixels (as in tracks.csv) or 1 / 0 for visible / occluded, ``point`` the point's number as text.
"""

from __future__ import annotations

import numpy as np

from chrono.video_io import to_uint8
from chrono.visualize import draw_trajectories, point_colors

QUANTITIES = ("x", "y", "visible")


def point_series(tracks: np.ndarray, occluded: np.ndarray, frame_ids: np.ndarray, quantity: str,
                 only: int | None = None) -> dict[str, list]:
    """Columns ``frame``, ``value``, ``point`` of one quantity (x, y or visible) for every point, or for
    point ``only``. tracks [N, T, 2] (x, y), occluded [N, T], frame_ids [T]."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
    N, T = occluded.shape
    points = range(N) if only is None else [only]
    values = {"x": tracks[..., 0], "y": tracks[..., 1], "visible": (~occluded).astype(np.float32)}[quantity]
    return {
        "frame": [int(f) for _ in points for f in frame_ids],
        "value": [round(float(v), 3) for i in points for v in values[i]],
        "point": [str(i) for i in points for _ in range(T)],
    }


def color_map(n: int) -> dict[str, str]:
    """Point number (as text) -> ``#rrggbb``, the overlay's colours."""
    return {str(i): "#%02x%02x%02x" % tuple(c) for i, c in enumerate(point_colors(n).tolist())}


def highlighted_summary(first_frame: np.ndarray, tracks: np.ndarray, occluded: np.ndarray, queries: np.ndarray,
                        highlight: int | None, min_side: int = 256) -> np.ndarray:
    """The summary picture (:func:`chrono.visualize.draw_trajectories` on the first frame) with point
    ``highlight`` in its colour, drawn last, and every other trajectory grey; all in colour when None.
    tracks [N, T, 2] (x, y) and queries [N, 3] (t, y, x) in pixels of ``first_frame`` [H, W, 3]."""
    colors = point_colors(len(tracks))
    order = np.arange(len(tracks))
    if highlight is not None:
        colors = np.where(order[:, None] == highlight, colors, np.uint8(150)).astype(np.uint8)
        order = np.concatenate([order[order != highlight], [highlight]])
    return draw_trajectories(to_uint8(first_frame), tracks[order], occluded[order], queries[order], colors[order],
                             min_side=min_side)


def result_summary(result, highlight: int | None) -> np.ndarray:
    """:func:`highlighted_summary` of a :class:`chrono.interactive.tracking.TrackResult` (decoded pixels)."""
    return highlighted_summary(result.source.read(0, 1)[0], result.tracks, result.occluded, result.queries, highlight)
