"""The point list of one video: query points clicked on its frames, each with its own colour.

A point is (t, y, x): t the index of a frame among the opened frames (0..T-1), (y, x) in pixels of the
decoded frames, raster convention (pixel i covers [i, i + 1); a point may lie on the frame's edges, 0 and
W or H included). Points keep the order they were added in; their number is their position in the list
(removing one renumbers the later ones), and their colour is :func:`chrono.visualize.point_colors` over
that order, the colours of the overlay and summary that ``chrono.track`` draws for the same queries.
"""

from __future__ import annotations

import numpy as np

from chrono.errors import ChronoError
from chrono.inference.queries import grid_queries
from chrono.inference.windowed import queries_outside
from chrono.visualize import point_colors


class PointError(ChronoError):
    """A point that cannot be added (outside the frame, too many points); the message says which."""


class PointList:
    """Query points of a video of ``num_frames`` frames of ``hw`` = (H, W) pixels, at most ``max_points``."""

    def __init__(self, num_frames: int, hw: tuple[int, int], max_points: int):
        self.num_frames, self.hw, self.max_points = int(num_frames), tuple(int(v) for v in hw), int(max_points)
        self._points: list[tuple[float, float, float]] = []

    def __len__(self) -> int:
        return len(self._points)

    def _add_many(self, queries: np.ndarray) -> range:
        queries = np.asarray(queries, np.float64).reshape(-1, 3)
        if len(self) + len(queries) > self.max_points:
            raise PointError(f"{len(self) + len(queries)} points would be more than the page's limit of "
                             f"{self.max_points} (max_points=)")
        bad = queries_outside(queries, self.hw, self.num_frames)
        if bad.any():
            t, y, x = queries[int(np.flatnonzero(bad)[0])]
            H, W = self.hw
            raise PointError(f"point (frame {t:g}, x={x:g}, y={y:g}) lies outside the video "
                             f"({self.num_frames} frames of {W} x {H} pixels)")
        start = len(self)
        self._points.extend((float(t), float(y), float(x)) for t, y, x in queries)
        return range(start, len(self))

    def add(self, t: int, x: float, y: float) -> int:
        """Add the point (x, y) on frame t; its number."""
        return self._add_many([[t, y, x]])[0]

    def add_grid(self, n: int, t: int) -> range:
        """Add an n x n grid on frame t (the grid of ``chrono.track queries=n``); the new points' numbers."""
        return self._add_many(grid_queries(int(n), int(t), self.hw))

    def remove(self, i: int) -> None:
        """Remove point number i."""
        if not 0 <= i < len(self):
            raise PointError(f"there is no point {i} (points are numbered 0..{len(self) - 1})" if len(self)
                             else "there are no points to remove")
        del self._points[i]

    def remove_last(self) -> None:
        self.remove(len(self) - 1)

    def clear(self) -> None:
        self._points.clear()

    def nearest(self, t: int, x: float, y: float, radius: float) -> int | None:
        """The number of the point on frame t nearest to (x, y) within ``radius`` pixels, or None."""
        on = self.on_frame(t)
        if not len(on):
            return None
        q = self.queries()[on]
        d2 = (q[:, 2] - x) ** 2 + (q[:, 1] - y) ** 2
        j = int(np.argmin(d2))
        return int(on[j]) if d2[j] <= radius**2 else None

    def on_frame(self, t: int) -> np.ndarray:
        """Numbers [k] of the points on frame t."""
        return np.flatnonzero(self.queries()[:, 0] == t) if len(self) else np.zeros(0, np.int64)

    def queries(self) -> np.ndarray:
        """[N, 3] float32 (t, y, x), a copy."""
        return np.asarray(self._points, np.float32).reshape(-1, 3)

    def colors(self) -> np.ndarray:
        """[N, 3] uint8 RGB, the colour of each point (as in the overlay of the same queries)."""
        return point_colors(len(self))

    def rows(self) -> list[list]:
        """One row per point for the page's table: number, frame, x, y (pixels, 2 decimals)."""
        return [[i, int(t), round(x, 2), round(y, 2)] for i, (t, y, x) in enumerate(self._points)]

    def describe(self) -> str:
        """``3 points on frames 0, 5`` (the page's counter)."""
        if not len(self):
            return "0 points"
        frames = sorted({int(t) for t, _, _ in self._points})
        shown = ", ".join(map(str, frames[:8])) + (", ..." if len(frames) > 8 else "")
        return f"{len(self)} point{'s' * (len(self) != 1)} on frame{'s' * (len(frames) != 1)} {shown}"
