"""The stored query grid (chrono/data/grid.py): int16 positions at 1/64 px, packed occlusion bits, segment ids."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.data.grid import TRACK_SCALE, encode_grid, grid_pixels, grid_shape


def _grid_arrays(seed=0, shape=(2, 3, 4), t=11):
    rng = np.random.default_rng(seed)
    tracks = rng.uniform(-20, 300, shape + (t, 2))
    occluded = rng.random(shape + (t,)) < 0.3
    outside = (tracks < 0).any(-1) | (tracks > 256).any(-1)
    return rng.integers(0, 30, shape), tracks, occluded | outside


def test_round_trip_precision_and_query_pin():
    segments, tracks, occluded = _grid_arrays()
    grid = encode_grid((1, 0, 2), 4, segments, tracks, occluded)
    assert grid.tracks.dtype == np.int16 and grid.occluded.dtype == np.uint8 and grid.segments.dtype == np.uint8
    assert grid.occluded.shape == (2, 3, 4, 2) and grid.size == 24 and grid.num_frames == 11
    np.testing.assert_array_equal(grid.unpack_occluded(), occluded)
    np.testing.assert_array_equal(grid.segments, segments)
    pix = grid_pixels((1, 0, 2), 4, grid.shape)
    flat = grid.flat()
    t = pix.reshape(-1, 3)[:, 0]
    n = np.arange(grid.size)
    np.testing.assert_array_equal(flat["tracks"][n, t], pix.reshape(-1, 3)[:, [2, 1]] + np.float32(0.5))
    others = np.ones_like(occluded, bool)
    others.reshape(-1, 11)[n, t] = False
    error = np.abs(grid.decode_tracks() - tracks).max(-1)
    assert error[others].max() <= 0.5 / TRACK_SCALE and grid_shape(9, 12, 16, (1, 0, 2), 4) == (2, 3, 4)


def test_far_and_non_finite_positions_only_where_occluded():
    segments, tracks, occluded = _grid_arrays(1)
    tracks[0, 0, 0, 3] = (1583.0, np.inf)  # off the frame: occluded, so clamped / the -32768 sentinel
    occluded[0, 0, 0, 3] = True
    tracks[0, 0, 1, 5] = (np.nan, 10.0)
    occluded[0, 0, 1, 5] = True
    grid = encode_grid((0, 0, 0), 4, segments, tracks, occluded)
    assert grid.tracks[0, 0, 0, 3].tolist() == [32767, -32768] and grid.tracks[0, 0, 1, 5, 0] == -32768
    occluded[0, 0, 1, 5] = False
    with pytest.raises(ValueError, match="1 visible track positions are non-finite or beyond"):
        encode_grid((0, 0, 0), 4, segments, tracks, occluded)
    with pytest.raises(ValueError, match="segment ids must lie in"):
        encode_grid((0, 0, 0), 4, segments + 300, tracks, occluded | True)
