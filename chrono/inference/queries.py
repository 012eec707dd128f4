"""Query points of ``chrono.track``: an n x n grid or a CSV of ``t,x,y`` rows, checked against the video.

Coordinates: queries (t, y, x) with t the file's frame number and (y, x) in the file's pixels (raster
convention) until :func:`to_selection` maps them to the tracked frames and decoded pixels.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from chrono.coords import rescale_tyx
from chrono.errors import ChronoError
from chrono.inference.windowed import queries_outside
from chrono.video_io import FrameSource


class TrackError(ChronoError):
    """Settings of chrono.track that cannot be used; the message names them."""


class QueryError(TrackError):
    """Query points that cannot be used; the message names where they came from."""


def grid_queries(n: int, frame: int, hw: tuple[int, int]) -> np.ndarray:
    """An n x n grid of (t, y, x) queries at the centres of an n x n tiling of an (H, W) frame."""
    if n < 1:
        raise QueryError(f"queries={n}: a grid needs at least 1 x 1 points")
    H, W = hw
    c = (np.arange(n) + 0.5) / n
    y, x = np.meshgrid(c * H, c * W, indexing="ij")
    return np.stack([np.full(n * n, float(frame)), y.ravel(), x.ravel()], -1).astype(np.float32)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_query_csv(path: str | Path) -> np.ndarray:
    """Rows ``t,x,y`` (frame number, pixels) of a CSV file -> [N, 3] (t, y, x).

    The first row is a header only when none of its cells is a number (``t,x,y``); any other row must be
    three finite numbers, else the error names the line and says what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise QueryError(f"{path}: no such query file (queries= takes a grid size or a CSV of t,x,y rows)")
    rows, seen_first = [], False
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise QueryError(f"{path}: not a text file (expected a CSV of t,x,y rows)") from None
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        first, seen_first = not seen_first, True
        if first and not any(_is_number(c) for c in row):
            continue  # a header
        if len(row) != 3:
            raise QueryError(f"{path}:{line_no}: expected three values t,x,y, got {len(row)}: {','.join(row)!r}")
        if not all(_is_number(c) for c in row):
            raise QueryError(f"{path}:{line_no}: expected three numbers t,x,y, got {','.join(row)!r}")
        t, x, y = (float(c) for c in row)
        if not all(np.isfinite((t, x, y))):
            raise QueryError(f"{path}:{line_no}: t, x and y must be finite, got {','.join(row)!r}")
        rows.append((t, y, x))
    if not rows:
        raise QueryError(f"{path}: no query rows (expected lines of t,x,y)")
    return np.asarray(rows, np.float32)


def write_query_csv(path: str | Path, queries: np.ndarray) -> Path:
    """Queries [N, 3] (t, y, x) (file frame numbers, pixels) as the ``t,x,y`` CSV :func:`read_query_csv` reads
    back bit for bit (float32 values written with 9 significant digits), atomically."""
    from chrono.files import atomic_path

    q = np.asarray(queries, np.float32).reshape(-1, 3)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write("t,x,y\n")
            f.writelines(f"{t:.9g},{x:.9g},{y:.9g}\n" for t, y, x in q.tolist())
    return Path(path)


def is_grid_spec(spec: Any) -> bool:
    """Whether ``queries=`` names a grid size n (an integer, or a string of digits) rather than a CSV file."""
    return isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit())


def queries_for(spec: Any, source: FrameSource, grid_frame: int = 0) -> tuple[np.ndarray, str]:
    """Queries (t, y, x) in the file's frame numbers and pixels, and a name for error messages."""
    if is_grid_spec(spec):
        n, (H, W) = int(spec), source.original_hw
        if n > min(H, W):
            print(f"chrono.track: warning: queries={n}: a {n} x {n} grid is denser than the {W} x {H} pixels of "
                  f"{source.name} (several queries per pixel)", file=sys.stderr, flush=True)
        return grid_queries(n, grid_frame, source.original_hw), f"queries={spec} (grid on frame {grid_frame})"
    return read_query_csv(spec), str(spec)


def to_selection(queries: np.ndarray, source: FrameSource, origin: str) -> np.ndarray:
    """File frame numbers and pixels -> (index among the tracked frames, decoded pixels); QueryError if outside."""
    H, W = source.original_hw
    t = queries[:, 0]
    where = np.searchsorted(source.frame_ids, np.round(t))
    known = (where < source.num_frames) & (source.frame_ids[np.minimum(where, source.num_frames - 1)] == np.round(t))
    outside = queries_outside(queries, source.original_hw)
    untracked = ~known | (t != np.round(t))
    bad = np.flatnonzero(outside | untracked)
    if len(bad):  # the first bad query; outside the frame takes precedence over an untracked frame
        i = int(bad[0])
        if outside[i]:
            raise QueryError(f"{origin}: query {i} (t={t[i]:g}, x={queries[i, 2]:g}, y={queries[i, 1]:g}) lies outside "
                             f"the frame of {source.name} ({W} x {H} pixels)")
        f = source.frame_ids
        kept = f"{f[0]}, {f[1]}, ..., {f[-1]}" if len(f) > 2 else ", ".join(map(str, f))
        raise QueryError(f"{origin}: query {i} is on frame {t[i]:g}, which is not a tracked frame of "
                         f"{source.name} (tracked: {kept})")
    out = rescale_tyx(queries.astype(np.float32), source.original_hw, source.hw)
    out[:, 0] = where
    return out
