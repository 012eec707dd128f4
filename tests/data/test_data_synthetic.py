"""The synthetic generator: exact tracks, occlusion by depth order and frame bounds, benchmark file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from chrono.data import synthetic
from chrono.data.synthetic import store
from chrono.data.synthetic import generate_clip

SMALL = dict(height=96, width=128, num_frames=10, num_tracks=300)


def _sample(video: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear colour [K, 3] of frames ``t`` at raster points (x, y) (pixel centres at i + 0.5)."""
    _, h, w, _ = video.shape
    fx, fy = np.clip(x - 0.5, 0, w - 1), np.clip(y - 0.5, 0, h - 1)
    x0, y0 = np.minimum(np.floor(fx).astype(int), w - 2), np.minimum(np.floor(fy).astype(int), h - 2)
    ax, ay = (fx - x0)[:, None], (fy - y0)[:, None]
    v = video.astype(np.float64)
    return ((v[t, y0, x0] * (1 - ax) + v[t, y0, x0 + 1] * ax) * (1 - ay)
            + (v[t, y0 + 1, x0] * (1 - ax) + v[t, y0 + 1, x0 + 1] * ax) * ay)


@pytest.fixture(scope="module")
def clips():
    return [generate_clip(seed, return_segmentation=True, **SMALL) for seed in (1, 2, 3)]


def test_shapes_dtypes_and_determinism(clips):
    c = clips[0]
    assert c["video"].shape == (10, 96, 128, 3) and c["video"].dtype == np.uint8
    assert c["tracks"].shape == (300, 10, 2) and c["tracks"].dtype == np.float32
    assert c["occluded"].shape == (300, 10) and c["occluded"].dtype == bool
    assert c["query_points"].shape == (300, 3) and c["query_points"].dtype == np.float32
    again = generate_clip(1, return_segmentation=True, **SMALL)
    for k in c:
        np.testing.assert_array_equal(c[k], again[k])
    other = generate_clip(4, **SMALL)
    assert not np.array_equal(other["video"], c["video"])


def test_queries_are_visible_points_of_their_tracks(clips):
    for c in clips:
        t = c["query_points"][:, 0].astype(int)
        n = np.arange(len(t))
        assert not c["occluded"][n, t].any()
        np.testing.assert_array_equal(c["tracks"][n, t], c["query_points"][:, [2, 1]])
        assert {0, 1} <= set(np.unique(c["surface"] > 0).tolist())  # tracks on background and objects


def test_points_move_with_the_content(clips):
    """The colour at a visible track position matches the colour at its query (random pairs do not)."""
    for c in clips:
        q = c["query_points"]
        n, t = np.nonzero(~c["occluded"])
        at_track = _sample(c["video"], t, c["tracks"][n, t, 0], c["tracks"][n, t, 1])
        at_query = _sample(c["video"], q[n, 0].astype(int), q[n, 2], q[n, 1])
        diff = np.abs(at_track - at_query).mean(axis=1)
        shuffled = np.abs(at_track - at_query[np.random.default_rng(0).permutation(len(n))]).mean(axis=1)
        assert np.median(diff) < 4.0 and np.mean(diff) < 8.0, (np.median(diff), np.mean(diff))
        assert np.median(shuffled) > 5 * np.median(diff)


def test_occlusion_matches_depth_order_and_frame_bounds(clips):
    for c in clips:
        x, y = c["tracks"][..., 0], c["tracks"][..., 1]
        h, w = c["video"].shape[1:3]
        outside = (x < 0) | (x > w) | (y < 0) | (y > h)
        assert c["occluded"][outside].all()
        assert outside.any()  # some points leave the frame
        # Inside the frame: occluded exactly when a nearer surface is drawn there (up to pixel aliasing
        # at outlines: the segmentation is rendered at pixel centres, tracks are continuous).
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        n, t = np.nonzero(inside)
        drawn = c["segmentation"][t, y[n, t].astype(int), x[n, t].astype(int)]
        own = c["surface"][n]
        occ = c["occluded"][n, t]
        assert np.mean((drawn == own) == ~occ) > 0.97
        hidden = occ & (drawn != own)
        assert hidden.sum() > 0
        assert (drawn[hidden] > own[hidden]).all()  # always by a nearer surface, never by a farther one


def test_motion_options():
    still = generate_clip(5, motion=0.0, **SMALL)
    np.testing.assert_array_equal(still["video"][0], still["video"][-1])
    np.testing.assert_allclose(still["tracks"], still["tracks"][:, :1].repeat(10, 1), atol=1e-3)
    with pytest.raises(TypeError, match="unknown synthetic clip option"):
        generate_clip(0, heigth=64)


def test_seeds_of_training_and_benchmark_are_disjoint():
    train = {synthetic.train_seed(s, i) for s in range(3) for i in (0, 1, 999_999)}
    bench = {synthetic.benchmark_seed(s, i) for s in range(3) for i in (0, 1, 999_999)}
    assert not train & bench
    assert min(bench) > synthetic.train_seed(10**6, 999_999)


def test_benchmark_is_a_tapvid_davis_pickle(tmp_path, fixtures_dir):
    path = store.write_benchmark(tmp_path / "bench.pkl", num_videos=2, height=48, width=64, num_frames=6,
                                     num_tracks=16)
    with open(path, "rb") as f:
        data = pickle.load(f)
    with open(fixtures_dir / "tapvid_tiny" / "tapvid_davis.pkl", "rb") as f:
        reference = pickle.load(f)
    ref_video = next(iter(reference.values()))
    assert isinstance(data, dict) and sorted(data) == ["synthetic_000", "synthetic_001"]
    for v in data.values():
        assert set(v) == set(ref_video)
        for k in v:
            assert type(v[k]) is type(ref_video[k]) and v[k].dtype == ref_video[k].dtype, k
        assert v["video"].shape == (6, 48, 64, 3)
        assert v["points"].shape == (16, 6, 2) and v["occluded"].shape == (16, 6)
        assert v["points"].min() >= 0 and v["points"].max() <= 1
        assert (~v["occluded"]).any(axis=1).all()  # every track visible somewhere
    # Same seeds as generate_clip, normalised by (W, H).
    clip = generate_clip(synthetic.benchmark_seed(0, 1), height=48, width=64, num_frames=6, num_tracks=16)
    vis = ~clip["occluded"]
    np.testing.assert_allclose(data["synthetic_001"]["points"][vis], (clip["tracks"] / [64, 48])[vis], rtol=1e-6)


def test_ensure_benchmark_uses_the_data_dir_and_reuses_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONO_DATA_DIR", str(tmp_path))
    path = store.ensure_benchmark(num_videos=1, height=32, width=32, num_frames=4, num_tracks=8)
    assert path == tmp_path / "synthetic" / "tapvid_synthetic.pkl" and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert store.ensure_benchmark() == path and path.stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_query_grid_clips_hold_every_grid_point_with_its_surface():
    """grid_stride: every point of a stride-s grid, its exact track through its pixel centre, visible there, and
    the id of the surface drawn at that pixel centre (the renderer's own segmentation)."""
    c = generate_clip(2, height=48, width=64, num_frames=8, grid_stride=2, return_segmentation=True)
    assert set(c) == {"video", "grid", "segmentation"}
    g = c["grid"]
    assert g.stride == 2 and all(0 <= r < 2 for r in g.start) and g.shape == (4, 24, 32)
    flat = g.flat()
    t, y, x = (flat["query_points"] - [0, 0.5, 0.5]).astype(int).T
    np.testing.assert_array_equal(flat["segment_ids"], c["segmentation"][t, y, x])
    assert len(np.unique(flat["segment_ids"])) > 2
    n = np.arange(g.size)
    assert not flat["occluded"][n, t].any()
    np.testing.assert_array_equal(flat["tracks"][n, t], flat["query_points"][:, [2, 1]])
    # the same points as candidate tracks of a clip without the grid would get (same generator, same seed)
    flat_clip = generate_clip(2, height=48, width=64, num_frames=8)
    np.testing.assert_array_equal(flat_clip["video"], c["video"])


def test_make_data_makes_the_set_the_dataset_config_describes(monkeypatch, tmp_path):
    """``python -m chrono.data.synthetic`` (make data) generates exactly conf/dataset/synthetic.yaml's set."""
    import chrono.data.synthetic.__main__ as command

    calls = {}
    monkeypatch.setattr(command, "ensure_generated", lambda generate, **kw: calls.setdefault("train", generate) and tmp_path)
    monkeypatch.setattr(command, "ensure_benchmark", lambda *a, **kw: tmp_path / "bench.pkl")
    command.main(["what=all", "progress=false"])
    assert calls["train"] == {"dir": "train_grid", "num_clips": 1000, "seed": 0, "options": {"grid_stride": 4}}
    json_ready = __import__("json").dumps(calls["train"])  # plain values, as write_train_shards records them
    assert "grid_stride" in json_ready
