"""HDF5 clip shards: round trip, index, atomic writes, and clear errors on damaged or foreign files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from chrono.data import shards
from chrono.data.synthetic import store
from chrono.data.shards import ShardError, ShardReader, ShardWriter


def _clip(seed: int, n: int = 7, t: int = 5, h: int = 12, w: int = 16) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "video": rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8),
        "tracks": rng.uniform(-5, 20, (n, t, 2)).astype(np.float32),
        "occluded": rng.random((n, t)) < 0.3,
        "query_points": rng.uniform(0, 10, (n, 3)).astype(np.float32),
    }


@pytest.mark.parametrize("compression", ["lzf", None])
def test_round_trip_and_index(tmp_path, compression):
    clips = {f"c{i}": _clip(i) for i in range(5)}
    with ShardWriter(tmp_path, prefix="train", clips_per_shard=2, source="test", compression=compression) as w:
        for i, (name, c) in enumerate(clips.items()):
            qp = c["query_points"] if i % 2 == 0 else None
            w.add_clip(name, c["video"], c["tracks"], c["occluded"], query_points=qp, attrs={"seed": i, "meta": {"a": [1, 2]}})
    index = shards.read_index(tmp_path)
    assert index["num_clips"] == 5 and index["source"] == "test"
    assert [(e["file"], e["num_clips"]) for e in index["shards"]] == [
        ("train-00000.h5", 2), ("train-00001.h5", 2), ("train-00002.h5", 1)]
    listed = shards.list_clips(tmp_path)
    assert [name for _, name in listed] == list(clips)
    for i, (path, name) in enumerate(listed):
        with ShardReader(path) as r:
            got = r.read(name)
            c = clips[name]
            for k in ("video", "tracks", "occluded"):
                assert got[k].dtype == c[k].dtype
                np.testing.assert_array_equal(got[k], c[k])
            if i % 2 == 0:
                np.testing.assert_array_equal(got["query_points"], c["query_points"])
            else:
                assert "query_points" not in got
            assert got["attrs"]["seed"] == i and json.loads(got["attrs"]["meta"]) == {"a": [1, 2]}
            window = r.read(name, frames=slice(1, 4))
            np.testing.assert_array_equal(window["video"], c["video"][1:4])
            np.testing.assert_array_equal(window["tracks"], c["tracks"][:, 1:4])
            assert r.info(name)["num_frames"] == 5
    with h5py.File(tmp_path / "train-00000.h5") as f:
        assert f.attrs["format"] == "chrono-clips"
        assert f["c0/video"].chunks == (1, 12, 16, 3)
        assert f["c0/video"].compression == compression
    assert not list(tmp_path.glob(".*.tmp"))


def test_writer_validates_inputs(tmp_path):
    c = _clip(0)
    with ShardWriter(tmp_path) as w:
        with pytest.raises(ShardError, match="clip 'bad'.*video must be uint8"):
            w.add_clip("bad", c["video"].astype(np.float32), c["tracks"], c["occluded"])
        with pytest.raises(ShardError, match="tracks must be float32"):
            w.add_clip("bad", c["video"], c["tracks"].astype(np.float64), c["occluded"])
        with pytest.raises(ShardError, match=r"occluded must be bool \[7, 5\]"):
            w.add_clip("bad", c["video"], c["tracks"], c["occluded"][:, :3])
        w.add_clip("ok", c["video"], c["tracks"], c["occluded"])
        with pytest.raises(ValueError, match="already written"):
            w.add_clip("ok", c["video"], c["tracks"], c["occluded"])


def test_a_failed_writer_leaves_no_partial_shard(tmp_path):
    c = _clip(0)
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path, prefix="x") as w:
            w.add_clip("a", c["video"], c["tracks"], c["occluded"])
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def shard(tmp_path):
    c = _clip(0)
    with ShardWriter(tmp_path, prefix="s", compression=None) as w:
        w.add_clip("clip_a", c["video"], c["tracks"], c["occluded"])
    return tmp_path / "s-00000.h5"


def test_truncated_file_names_the_file(shard):
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match=f"{shard}.*not a readable HDF5 file"):
        ShardReader(shard)


def test_foreign_and_non_hdf5_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["video"] = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(ShardError, match=f"{foreign}.*not a Chrono clip shard"):
        ShardReader(foreign)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ShardError, match=f"{text}.*not a readable HDF5 file"):
        ShardReader(text)
    with pytest.raises(ShardError, match="not found"):
        ShardReader(tmp_path / "missing.h5")


def test_schema_errors_name_file_and_clip(shard):
    with h5py.File(shard, "a") as f:
        del f["clip_a/occluded"]
        g = f.create_group("clip_b")
        g["video"] = np.zeros((5, 12, 16, 3), np.uint8)
        g["tracks"] = np.zeros((7, 5, 2), np.float64)
        g["occluded"] = np.zeros((7, 5), bool)
    with ShardReader(shard) as r:
        with pytest.raises(ShardError, match=f"{shard} clip 'clip_a': missing dataset.*occluded"):
            r.read("clip_a")
        with pytest.raises(ShardError, match=f"{shard} clip 'clip_b': tracks must be float32"):
            r.read("clip_b")
        with pytest.raises(ShardError, match="no such clip"):
            r.read("clip_c")


def test_index_errors_and_rebuild(tmp_path, shard):
    root = shard.parent
    (root / "index.json").write_text("{not json")
    with pytest.raises(ShardError, match="index.json: not a JSON shard index"):
        shards.read_index(root)
    index = shards.build_index(root)
    assert index["num_clips"] == 1 and index["shards"][0]["clips"] == ["clip_a"]
    with pytest.raises(ShardError, match="no shard index"):
        shards.read_index(tmp_path / "elsewhere")


def test_ensure_train_shards_generates_once_and_reuses(tmp_path):
    opts = dict(height=32, width=40, num_frames=4, num_tracks=16, num_objects=2)
    root = store.ensure_train_shards(tmp_path / "train", num_clips=3, seed=1, clips_per_shard=2, workers=1, **opts)
    index = shards.read_index(root)
    assert index["num_clips"] == 3 and len(index["shards"]) == 2 and index["source"] == "synthetic"
    first = (root / "train-00000.h5").stat().st_mtime_ns
    again = store.ensure_train_shards(tmp_path / "train", num_clips=3, seed=1, clips_per_shard=2, workers=1, **opts)
    assert again == root and (root / "train-00000.h5").stat().st_mtime_ns == first
    with pytest.raises(ShardError, match="already holds a training set"):
        store.ensure_train_shards(tmp_path / "train", num_clips=4, seed=1, workers=1, **opts)
    # The stored clip is the generator's clip with that seed.
    from chrono.data.synthetic import generate_clip, train_seed

    with ShardReader(root / "train-00001.h5") as r:
        got = r.read("clip_000002")
    want = generate_clip(train_seed(1, 2), **opts)
    np.testing.assert_array_equal(got["video"], want["video"])
    np.testing.assert_array_equal(got["tracks"], want["tracks"])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_callers_generate_once(tmp_path, monkeypatch):
    import threading

    from chrono.data import synthetic

    calls = []
    real = store._write_shard_task
    monkeypatch.setattr(store, "_write_shard_task", lambda task: calls.append(task[1]) or real(task))
    opts = dict(height=24, width=24, num_frames=3, num_tracks=8, num_objects=1)
    results = []

    def call():
        results.append(store.ensure_train_shards(tmp_path / "t", num_clips=2, seed=0, workers=1, **opts))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [tmp_path / "t"] * 3
    assert calls == [0]  # one shard written, once
    assert shards.read_index(tmp_path / "t")["num_clips"] == 2


def test_grid_clips_round_trip_and_schema_errors(tmp_path):
    from chrono.data.grid import encode_grid

    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (5, 12, 16, 3), dtype=np.uint8)
    grid = encode_grid((0, 2, 3), 4, rng.integers(0, 4, (2, 3, 4)), rng.uniform(0, 12, (2, 3, 4, 5, 2)),
                       rng.random((2, 3, 4, 5)) < 0.3)
    with ShardWriter(tmp_path, prefix="train") as w:
        w.add_clip("g", video, grid=grid, attrs={"seed": 1})
        w.add_clip("f", video, **{k: v for k, v in _clip(1).items() if k != "video"})
        with pytest.raises(ValueError, match="give tracks and occluded, or a grid"):
            w.add_clip("both", video, _clip(1)["tracks"], _clip(1)["occluded"], grid=grid)
        bad = encode_grid((0, 0, 0), 4, np.zeros((1, 3, 4)), np.zeros((1, 3, 4, 4, 2)), np.zeros((1, 3, 4, 4), bool))
        with pytest.raises(ShardError, match=r"clip 'bad': grid/tracks must be int16 \[1, 3, 4, 5, 2\]"):
            w.add_clip("bad", video, grid=bad)
    with ShardReader(tmp_path / "train-00000.h5") as r:
        got = r.read("g", frames=slice(1, 3))
        assert set(got) == {"video", "grid", "attrs"} and got["video"].shape[0] == 2
        g = got["grid"]
        assert (g.start, g.stride, g.num_frames) == ((0, 2, 3), 4, 5)
        for k in ("segments", "tracks", "occluded"):
            np.testing.assert_array_equal(getattr(g, k), getattr(grid, k))
        info = r.info("g")
        assert info["has_grid"] and info["has_query_points"] and info["num_tracks"] == 24
        assert not r.info("f")["has_grid"] and "tracks" in r.read("f")
    assert shards.check_shards(tmp_path) == 2
    with pytest.raises(ShardError, match="train-00000.h5 clip 'f': no query grid with segment ids"):
        shards.check_shards(tmp_path, need_grid=True)
