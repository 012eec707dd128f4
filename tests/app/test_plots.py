"""What the page plots (chrono/interactive/plots.py)."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.interactive.plots import color_map, highlighted_summary, point_series
from chrono.visualize import draw_trajectories, point_colors


def _result(N=3, T=5):
    rng = np.random.default_rng(0)
    tracks = rng.uniform(0, 32, (N, T, 2)).astype(np.float32)
    occluded = rng.random((N, T)) < 0.3
    return tracks, occluded, np.arange(10, 10 + T)


def test_series_per_point_in_long_format():
    tracks, occluded, frames = _result()
    x = point_series(tracks, occluded, frames, "x")
    assert len(x["frame"]) == len(x["value"]) == len(x["point"]) == 15
    assert x["frame"][:5] == [10, 11, 12, 13, 14] and x["point"][5] == "1"
    np.testing.assert_allclose(x["value"][5:10], tracks[1, :, 0], atol=1e-3)
    y = point_series(tracks, occluded, frames, "y", only=2)
    assert set(y["point"]) == {"2"} and np.allclose(y["value"], tracks[2, :, 1], atol=1e-3)
    visible = point_series(tracks, occluded, frames, "visible")
    assert visible["value"] == [float(v) for v in (~occluded).ravel()]
    with pytest.raises(ValueError, match="quantity"):
        point_series(tracks, occluded, frames, "z")


def test_colours_and_highlighted_summary():
    tracks, occluded, _ = _result()
    assert color_map(3) == {str(i): "#%02x%02x%02x" % tuple(c) for i, c in enumerate(point_colors(3).tolist())}
    frame = np.full((32, 32, 3), 90, np.uint8)
    q = np.stack([np.zeros(3), tracks[:, 0, 1], tracks[:, 0, 0]], -1)
    np.testing.assert_array_equal(highlighted_summary(frame, tracks, occluded, q, None),
                                  draw_trajectories(frame, tracks, occluded, q, min_side=256))
    one = highlighted_summary(frame, tracks, occluded, q, 1)
    assert one.shape == (256, 256, 3)
    colours = {tuple(c) for c in one.reshape(-1, 3).tolist()}
    assert tuple(point_colors(3)[1].tolist()) in colours and tuple(point_colors(3)[0].tolist()) not in colours
