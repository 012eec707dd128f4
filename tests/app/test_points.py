"""The point list of the page (chrono/interactive/points.py): no browser, no tracker."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.inference.queries import grid_queries
from chrono.interactive.points import PointError, PointList
from chrono.visualize import point_colors


def test_add_remove_and_the_queries_array():
    points = PointList(num_frames=10, hw=(48, 64), max_points=100)
    assert points.add(3, 10.5, 20.0) == 0
    assert points.add(7, 64.0, 0.0) == 1  # the frame's edges are inside
    assert points.add(3, 1.0, 2.0) == 2
    np.testing.assert_array_equal(points.queries(), [[3, 20.0, 10.5], [7, 0.0, 64.0], [3, 2.0, 1.0]])  # (t, y, x)
    assert points.queries().dtype == np.float32
    assert points.on_frame(3).tolist() == [0, 2] and points.on_frame(5).tolist() == []
    assert points.rows() == [[0, 3, 10.5, 20.0], [1, 7, 64.0, 0.0], [2, 3, 1.0, 2.0]]
    assert points.describe() == "3 points on frames 3, 7"
    points.remove(0)  # later points are renumbered
    np.testing.assert_array_equal(points.queries()[:, 0], [7, 3])
    points.remove_last()
    assert points.describe() == "1 point on frame 7"
    points.clear()
    assert len(points) == 0 and points.queries().shape == (0, 3) and points.describe() == "0 points"
    with pytest.raises(PointError, match="no points to remove"):
        points.remove_last()


def test_points_outside_or_too_many_are_refused_with_a_message():
    points = PointList(num_frames=10, hw=(48, 64), max_points=5)
    with pytest.raises(PointError, match=r"\(frame 2, x=64.5, y=1\) lies outside the video \(10 frames of 64 x 48"):
        points.add(2, 64.5, 1)
    with pytest.raises(PointError, match="outside"):
        points.add(10, 1, 1)
    with pytest.raises(PointError, match="9 points would be more than the page's limit of 5"):
        points.add_grid(3, 0)
    assert len(points) == 0  # nothing half-added
    with pytest.raises(PointError, match=r"no point 4 \(points are numbered 0..0\)"):
        points.add(0, 1, 1)
        points.remove(4)


def test_grid_is_chrono_track_grid_and_colours_are_the_overlay_colours():
    points = PointList(num_frames=4, hw=(48, 64), max_points=100)
    points.add(0, 5, 5)
    assert list(points.add_grid(3, 2)) == list(range(1, 10))
    np.testing.assert_array_equal(points.queries()[1:], grid_queries(3, 2, (48, 64)))
    np.testing.assert_array_equal(points.colors(), point_colors(10))
    assert len({tuple(c) for c in points.colors().tolist()}) == 10  # each point its own colour


def test_nearest_point_on_the_frame_within_a_radius():
    points = PointList(num_frames=4, hw=(48, 64), max_points=100)
    points.add(1, 10, 10)
    points.add(1, 20, 10)
    points.add(2, 11, 10)
    assert points.nearest(1, 12, 11, radius=5) == 0
    assert points.nearest(1, 17, 10, radius=5) == 1
    assert points.nearest(1, 40, 40, radius=5) is None
    assert points.nearest(3, 10, 10, radius=5) is None
