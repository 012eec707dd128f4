"""The training loader: batch layout, query sampling, and the split of clips over ranks and workers."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from chrono.data import loader as L
from chrono.data.shards import ShardError
from chrono.errors import ConfigError
from chrono.data.synthetic.store import write_train_shards

REPO = Path(__file__).resolve().parents[2]
CLIP = dict(height=48, width=64, num_frames=8, num_tracks=64, num_objects=3)


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards") / "train"
    return write_train_shards(root, num_clips=6, seed=3, clips_per_shard=4, workers=1, **CLIP)


@functools.lru_cache(maxsize=None)
def _yaml_dataset() -> dict:
    """conf/dataset/synthetic.yaml as training composes it (the loader has no defaults of its own)."""
    from omegaconf import OmegaConf

    from chrono.cli import compose

    return OmegaConf.to_container(compose("train", ["dataset=synthetic"]).dataset, resolve=True)


def _cfg(root, **kw):
    cfg = dict(_yaml_dataset(), root=str(root), num_frames=6, size=32, num_tracks=24, batch_size=2, num_workers=0,
               epochs=1, track_sampling="uniform")  # these shards hold candidate tracks, no query grid
    cfg.update(kw)
    return cfg


def _options(**kw) -> L.LoaderOptions:
    return L.LoaderOptions.from_config({**_yaml_dataset(), **kw})


def test_batches_have_the_contract_shapes_and_ranges(shard_root):
    batches = list(L.build_train_loader(_cfg(shard_root)))
    assert len(batches) == 3  # 6 clips, batch 2
    for b in batches:
        assert set(b) == {"video", "query_points", "target_points", "occluded"}
        assert b["video"].shape == (2, 6, 32, 32, 3) and b["video"].dtype == torch.float32
        assert b["video"].min() >= -1 and b["video"].max() <= 1 and b["video"].is_contiguous()
        assert b["query_points"].shape == (2, 24, 3) and b["query_points"].dtype == torch.float32
        assert b["target_points"].shape == (2, 24, 6, 2) and b["target_points"].dtype == torch.float32
        assert b["occluded"].shape == (2, 24, 6) and b["occluded"].dtype == torch.bool
        q, tgt, occ = b["query_points"], b["target_points"], b["occluded"]
        t = q[..., 0].long()
        assert (q[..., 0] == t).all() and (t >= 0).all() and (t < 6).all()
        at_query = torch.gather(tgt, 2, t[..., None, None].expand(-1, -1, 1, 2))[:, :, 0]
        torch.testing.assert_close(at_query, q[..., [2, 1]])  # the query is the track at its frame ...
        assert not torch.gather(occ, 2, t[..., None]).any()  # ... where it is visible
        vis = ~occ
        assert (tgt[..., 0][vis] >= 0).all() and (tgt[..., 0][vis] <= 32).all()
        assert (tgt[..., 1][vis] >= 0).all() and (tgt[..., 1][vis] <= 32).all()


def test_same_seed_same_batches_and_other_seed_differs(shard_root):
    a = next(iter(L.build_train_loader(_cfg(shard_root), seed=5)))
    b = next(iter(L.build_train_loader(_cfg(shard_root), seed=5)))
    c = next(iter(L.build_train_loader(_cfg(shard_root), seed=6)))
    for k in a:
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["video"], c["video"])


def test_without_augmentation_the_example_is_the_stored_clip(shard_root):
    cfg = _cfg(shard_root, num_frames=8, size=[48, 64], random_crop=False, color_jitter_prob=0.0,
               grayscale_prob=0.0, shuffle=False, batch_size=1, num_tracks=64)
    ds = L.build_train_loader(cfg).dataset
    ex = ds.load(0, np.random.default_rng(0))
    from chrono.data.shards import ShardReader

    path, name = ds.clips[0]
    with ShardReader(path) as r:
        clip = r.read(name)
    torch.testing.assert_close(ex["video"], torch.from_numpy(clip["video"]).float() / 127.5 - 1)
    # All 64 candidate tracks are visible somewhere, so each is drawn exactly once.
    order = np.lexsort(ex["target_points"].numpy().reshape(64, -1).T)
    want = np.lexsort(clip["tracks"].reshape(64, -1).T)
    np.testing.assert_array_equal(ex["target_points"].numpy()[order], clip["tracks"][want])
    np.testing.assert_array_equal(ex["occluded"].numpy()[order], clip["occluded"][want])


def test_stored_queries_are_used_when_visible():
    tracks = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    occluded = np.array([[False, True, False], [True, False, True], [True, True, True], [False, False, False]])
    stored = np.array([[1, 0, 0], [1, 5.5, 6.5], [0, 0, 0], [2, 9.5, 8.5]], np.float32)
    idx, q = L.sample_query_tracks(tracks, occluded, 3, np.random.default_rng(0), stored)
    assert sorted(idx.tolist()) == [0, 1, 3]  # track 2 is never visible
    by = dict(zip(idx.tolist(), q.tolist()))
    assert by[1] == [1, 5.5, 6.5] and by[3] == [2, 9.5, 8.5]
    assert by[0][0] in (0, 2)  # stored frame 1 is occluded: a random visible frame instead
    # Fewer usable tracks than requested: repeats, still only visible ones.
    idx, _ = L.sample_query_tracks(tracks, occluded, 7, np.random.default_rng(0))
    assert len(idx) == 7 and set(idx.tolist()) == {0, 1, 3}
    with pytest.raises(ShardError, match="my clip: no track is visible"):
        L.sample_query_tracks(tracks[2:3], occluded[2:3], 2, np.random.default_rng(0), where="my clip")


class _Indices(L.ClipStream):
    """Yields which clip each example came from, to check the split in real worker processes."""

    def load(self, clip_index, rng, colour_rng=None):
        return {"clip": torch.tensor(clip_index), "draw": torch.tensor(rng.random())}


@pytest.mark.parametrize("num_clips,world_size,workers,batch", [(24, 2, 2, 3), (10, 2, 2, 2), (7, 1, 0, 1)])
def test_ranks_and_workers_cover_every_clip_once(num_clips, world_size, workers, batch):
    clips = [(Path(f"s{i // 4}.h5"), f"c{i}") for i in range(num_clips)]
    opts = _options(root="unused", batch_size=batch, num_workers=workers, epochs=1)
    seen, draws, per_rank = [], [], []
    for rank in range(world_size):
        ds = _Indices(clips, opts, rank=rank, world_size=world_size, seed=1)
        batches = list(DataLoader(ds, batch_size=batch, num_workers=workers))
        assert all(len(b["clip"]) == batch for b in batches)
        per_rank.append(len(batches))
        assert len(batches) == ds.batches_per_epoch()
        seen += [int(i) for b in batches for i in b["clip"]]
        draws += [float(d) for b in batches for d in b["draw"]]
    assert len(set(per_rank)) == 1  # DDP needs the same number of steps on every rank
    assert set(seen) == set(range(num_clips))
    padded = -(-num_clips // (world_size * max(workers, 1) * batch)) * world_size * max(workers, 1) * batch
    assert len(seen) == padded
    if padded == num_clips:
        assert sorted(seen) == list(range(num_clips))
    assert len(set(draws)) == len(draws)  # every example has its own random stream
    # Another epoch is another permutation of the same clips.
    order0, order1 = L.epoch_order(num_clips, 1, 0, 1), L.epoch_order(num_clips, 1, 1, 1)
    assert sorted(order0) == sorted(order1) == list(range(num_clips)) and list(order0) != list(order1)


def test_real_workers_open_shards_lazily(shard_root):
    cfg = _cfg(shard_root, num_workers=2, batch_size=1, epochs=None)
    it = iter(L.build_train_loader(cfg))
    for _ in range(4):
        b = next(it)
        assert b["video"].shape == (1, 6, 32, 32, 3)
    del it


def test_config_files_compose_and_unknown_keys_fail(tmp_path):
    from hydra import compose, initialize_config_dir

    names = sorted(p.stem for p in (REPO / "conf" / "dataset").glob("*.yaml"))
    assert {"synthetic", "kubric"} <= set(names)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        for name in names:
            cfg = compose(config_name=None, overrides=[f"+dataset={name}"])
            opts = L.LoaderOptions.from_config(cfg.dataset)
            assert opts.num_frames == 24 and opts.out_hw == (256, 256) and opts.num_tracks == 256
    with pytest.raises(ConfigError, match="unknown dataset option.*num_track"):
        L.LoaderOptions.from_config({**_yaml_dataset(), "num_track": 3})
    with pytest.raises(ConfigError, match="dataset config lacks .*num_tracks"):
        L.LoaderOptions.from_config({k: v for k, v in _yaml_dataset().items() if k != "num_tracks"})
    with pytest.raises(ShardError, match="no index.json"):
        L.build_train_loader(_cfg(tmp_path))


@pytest.mark.parametrize("workers,start", [(2, 5), (0, 3), (2, 8)])
def test_start_batch_resumes_the_exact_stream(workers, start):
    clips = [(Path("s.h5"), f"c{i}") for i in range(8)]
    opts = _options(root="unused", batch_size=2, num_workers=workers, epochs=2)

    def run(start_batch):
        ds = _Indices(clips, opts, rank=1, world_size=2, seed=4, start_batch=start_batch)
        return [(b["clip"].tolist(), b["draw"].tolist()) for b in DataLoader(ds, batch_size=2, num_workers=workers)]

    full = run(0)
    assert len(full) == 2 * _Indices(clips, opts, rank=1, world_size=2).batches_per_epoch()
    assert run(start) == full[start:]


@pytest.fixture(scope="module")
def grid_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid_shards") / "train"
    return write_train_shards(root, num_clips=8, seed=5, clips_per_shard=4, workers=1, height=32, width=32,
                              num_frames=8, num_objects=3, grid_stride=2, progress=False)


def test_reference_batches_carry_segment_ids_and_crop_boxes(grid_root, shard_root):
    cfg = _cfg(grid_root, track_sampling="reference", with_meta=True, size=24, num_frames=6)
    batches = list(L.build_train_loader(cfg, check=True))
    assert len(batches) == 4
    for b in batches:
        assert b["segment_ids"].shape == (2, 24) and b["segment_ids"].dtype == torch.int64
        assert b["crop_box"].shape == (2, 4) and b["crop_box"].dtype == torch.int64
        y0, x0, y1, x1 = b["crop_box"].T
        assert ((0 <= y0) & (y0 < y1) & (y1 <= 32) & (0 <= x0) & (x0 < x1) & (x1 <= 32)).all()
        assert (b["segment_ids"] >= 0).all() and (b["segment_ids"][:, :-1] <= b["segment_ids"][:, 1:]).any()
        t = b["query_points"][..., 0].long()  # queries on the grid frames of the window, visible there
        assert not torch.gather(b["occluded"], 2, t[..., None]).any()
    # the uniform rule on shards without segment ids: -1
    flat = next(iter(L.build_train_loader(_cfg(shard_root, with_meta=True))))
    assert (flat["segment_ids"] == -1).all() and flat["crop_box"].shape == (2, 4)
    with pytest.raises(ShardError, match="no query grid with segment ids"):
        L.build_train_loader(_cfg(shard_root, track_sampling="reference"), check=True)


@pytest.mark.parametrize("scope", ["step", "clip"])
def test_colour_scope_step_is_one_draw_per_global_step_on_every_rank(grid_root, scope):
    """Two ranks, two workers each, batch 2, two batches per step (grad_accum): with color_scope=step every clip of
    a step, on both ranks, is grayscale or none is; with clip, clips of one step differ."""
    cfg = _cfg(grid_root, track_sampling="reference", color_jitter_prob=0.0, grayscale_prob=0.5, color_scope=scope,
               num_workers=2, epochs=4, num_frames=4, size=16, num_tracks=8)
    gray: dict[int, list[bool]] = {}
    for rank in range(2):
        loader = L.build_train_loader(cfg, rank=rank, world_size=2, seed=3, batches_per_step=2)
        for k, b in enumerate(loader):
            v = b["video"]
            gray.setdefault(k // 2, []).extend(((v[..., 0] == v[..., 1]) & (v[..., 1] == v[..., 2])).flatten(1).all(1).tolist())
    assert len(gray) == 4 and all(len(g) == 8 for g in gray.values())  # 4 steps of 2 ranks x 2 batches x 2 clips
    mixed = [len(set(g)) > 1 for g in gray.values()]
    if scope == "step":
        assert not any(mixed) and {g[0] for g in gray.values()} == {True, False}
    else:
        assert any(mixed)


def test_new_dataset_options_are_checked():
    for key, value, message in (("track_sampling", "kubric", "dataset.track_sampling=kubric: expected reference or uniform"),
                                ("color_scope", "rank", "dataset.color_scope=rank: expected step or clip"),
                                ("with_meta", "yes", "dataset.with_meta=yes: expected true or false"),
                                ("max_seg_id", 0, r"dataset.max_seg_id=0: expected an integer in \[1, 256\]"),
                                ("max_sampled_frac", 1.5, r"dataset.max_sampled_frac=1.5: expected a number in \(0, 1\]")):
        with pytest.raises(ConfigError, match=message):
            _options(**{key: value})
