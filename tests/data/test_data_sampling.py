"""Kubric's per-read track sampling (dataset.track_sampling: reference) against kubric itself.

On the fixture build (panning_movi_e_tiny, 24 x 32 x 32, converted by chrono.kubric.convert), every read of the
loader is checked against what kubric's ``add_tracks`` does for the same crop and grid offset: per-segment counts
equal ``get_num_to_sample`` of the stored grid points inside the crop, the queries are grid pixel centres in
kubric's float32 formula, the rows are in kubric's order with its padding, and every track equals kubric's
reference track of its query (the fixture's reference_tracks.npz) with the crop as the window.

The same checker runs on 24 outputs of kubric's own TensorFlow code on the fixture (kubric_tf_golden.npz: TF 2.21,
kubric dataset.py at 0ee21e2, ``track_points`` with fresh TF crops and offsets, budget 64), which shows that the
checks encode kubric's behaviour; ``quota/*`` there are 500 TF results of ``get_num_to_sample``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chrono.data import loader as L
from chrono.data.augment import sample_crop_box
from chrono.data.grid import QueryGrid, encode_grid
from chrono.data.sampling import num_to_sample, sample_reference, window_slices
from chrono.data.shards import ShardError, list_clips

GOLDEN = Path(__file__).with_name("kubric_tf_golden.npz")
SIZE, T = 32, 24


def test_num_to_sample_equals_tensorflow():
    # Smallest segment first: 2 (none to take), 1 (cap 1), 0 (round(49 / 2) = 24 -> cap 10), 3 (the rest).
    np.testing.assert_array_equal(num_to_sample(np.array([100, 10, 0, 1000]), 6, 0.1, 50), [10, 1, 0, 39, 0, 0])
    # Half-way cases round to even, like tf.round: 5 / 2 = 2.5 -> 2, then 3.
    np.testing.assert_array_equal(num_to_sample(np.array([1000, 1000]), 2, 0.1, 5), [2, 3])
    # float32, as TensorFlow: 91 / 14 = 6.5 exactly, but float32(91) * float32(1 / 14) = 6.5000001 -> 7.
    np.testing.assert_array_equal(num_to_sample(np.full(14, 1000), 14, 0.1, 91), [7, 6, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7])
    z = np.load(GOLDEN)
    for counts, n, budget, tf in zip(z["quota/counts"], z["quota/num_segments"], z["quota/budget"],
                                     z["quota/tf_num_to_sample"]):
        np.testing.assert_array_equal(num_to_sample(counts[:n], 40, 0.1, int(budget)), tf)


# --------------------------------------------------------------------------------------------------------------
# The checker: one read against kubric's rule


def _reference_rows(queries_tyx: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Rows of reference_tracks.npz for integer pixels (t, y, x) [N, 3] (its rows are ordered by segment)."""
    key = lambda p: (p[..., 0] * SIZE + p[..., 1]) * SIZE + p[..., 2]  # noqa: E731
    row_of = np.empty(len(queries_tyx), np.int64)
    row_of[key(np.floor(queries_tyx).astype(np.int64))] = np.arange(len(queries_tyx))
    return row_of[key(pix)]


def check_read(crop, queries, targets, occluded, budget, segmentation, reference, residue=None, segment_ids=None):
    """Assert that one read (crop [y0, x0, y1, x1]; queries [B, 3]; targets [B, T, 2]; occluded [B, T]) is what
    kubric's add_tracks gives for that crop, on a 24 x 32 x 32 scene with ``segmentation`` [T, H, W] and kubric's
    full-frame tracks ``reference`` = (queries_tyx, tracks, occluded). ``residue``: the grid offset (t, y, x) mod 4
    in full-frame pixels (default: that of the first query). Returns (rows n before padding, edge cases skipped)."""
    f32 = np.float32
    y0, x0, y1, x1 = (int(v) for v in crop)
    h, w = y1 - y0, x1 - x0
    assert 0 <= y0 < y1 <= SIZE and 0 <= x0 < x1 <= SIZE and h * w >= 0.3 * SIZE * SIZE - SIZE
    # queries back to full-frame pixel indices: grid pixel centres, in kubric's float32 formula exactly
    t = queries[:, 0]
    yf = queries[:, 1] / f32(SIZE) * h + y0 - 0.5
    xf = queries[:, 2] / f32(SIZE) * w + x0 - 0.5
    pix = np.rint(np.stack([t, yf, xf], 1)).astype(np.int64)
    assert np.abs(np.stack([t, yf, xf], 1) - pix).max() < 1e-3
    formula = ((pix.astype(f32) + f32([0, 0.5, 0.5])) - f32([0, y0, x0])) / f32([T, h, w]) * f32([T, SIZE, SIZE])
    np.testing.assert_array_equal(formula, queries)
    ti, yi, xi = pix.T
    residue = np.mod(pix[0], 4) if residue is None else np.asarray(residue)
    assert (np.mod(pix, 4) == residue).all()
    assert ((yi >= y0) & (yi < y1) & (xi >= x0) & (xi < x1)).all()
    seg = segmentation[ti, yi, xi].astype(np.int64)
    if segment_ids is not None:
        np.testing.assert_array_equal(segment_ids, seg)
    # counts of the grid points inside the crop -> kubric's quota, met exactly
    rt, ry, rx = residue
    window = segmentation[rt::4, ry::4, rx::4]
    gy, gx = ry + 4 * np.arange(window.shape[1]), rx + 4 * np.arange(window.shape[2])
    window = window[:, (gy >= y0) & (gy < y1)][:, :, (gx >= x0) & (gx < x1)]
    quota = num_to_sample(np.bincount(window.reshape(-1).astype(np.int64)), 40, 0.1, budget)
    n = int(quota.sum())
    np.testing.assert_array_equal(np.bincount(seg[:n], minlength=40), quota)
    # order: by segment id, the background's rows by frame; padding: row n - 2 repeated
    assert (np.diff(seg[:n]) >= 0).all() and (np.diff(ti[:n][seg[:n] == 0]) >= 0).all()
    if n < budget:
        assert n >= 2
        for arr in (queries, targets, occluded):
            assert (arr[n:] == arr[n - 2]).all()
    # tracks: kubric's reference track of each query, the crop as window (strict test in full-frame pixels)
    ref_queries, ref_tracks, ref_occluded = reference
    rows = _reference_rows(ref_queries, pix)
    ref_xy, ref_occ = ref_tracks[rows], ref_occluded[rows]
    full = targets.astype(np.float64) / SIZE * [w, h] + [x0, y0]
    assert np.abs(full - ref_xy).max() <= 0.03  # the reference is float16 (1/64 px here) + our 1/128 px storage
    outside = (ref_xy[..., 1] < y0) | (ref_xy[..., 0] < x0) | (ref_xy[..., 1] > y1) | (ref_xy[..., 0] > x1)
    edges = np.stack([ref_xy[..., 1] - y0, ref_xy[..., 0] - x0, ref_xy[..., 1] - y1, ref_xy[..., 0] - x1])
    near = np.abs(edges).min(0) < 0.03  # within the precision of an edge: the strict test may go either way
    np.testing.assert_array_equal(occluded[~near], (ref_occ | outside)[~near])
    return n, int(near.sum())


@pytest.fixture(scope="module")
def scenes(train_examples, reference_tracks):
    """{name: (segmentation [T, H, W], (queries_tyx, tracks, occluded))} of the fixture's train scenes."""
    return {name: (train_examples[name]["segmentations"][..., 0], reference_tracks[name][:3])
            for name in ("scene50", "scene51")}


def test_the_checker_accepts_kubrics_own_outputs(scenes):
    z = np.load(GOLDEN)
    for name, (seg, ref) in scenes.items():
        for k in range(12):
            pre = f"{name}/run{k:02d}/"
            occluded = np.unpackbits(z[pre + "occluded"], axis=-1)[:, :T].astype(bool)
            n, _ = check_read(z[pre + "crop_y0x0y1x1"], z[pre + "query_points"], z[pre + "target_points"],
                              occluded, 64, seg, ref)
            assert 2 <= n <= 64


def _kubric_loader(root, **kw) -> L.ClipStream:
    from omegaconf import OmegaConf

    from chrono.cli import compose

    cfg = OmegaConf.to_container(compose("train", ["dataset=kubric"]).dataset, resolve=True)
    cfg.update(root=str(root), size=SIZE, num_frames=T, num_workers=0, with_meta=True, **kw)
    return L.build_train_loader(cfg).dataset


@pytest.mark.slow
@pytest.mark.parametrize("budget", [16, 256])
def test_every_read_is_kubrics_rule_on_the_crop(kubric_converted, scenes, budget):
    """Many reads (crops, draws) per scene: counts, queries, order, padding, tracks and occlusion as kubric."""
    out, _ = kubric_converted
    ds = _kubric_loader(out / "train", num_tracks=budget)
    assert ds.opts.track_sampling == "reference"  # the Kubric dataset's default
    skipped, padded = 0, 0
    for index, (path, clip) in enumerate(ds.clips):
        grid = ds._reader(path).read(clip)["grid"]
        seg, ref = scenes[ds._reader(path).info(clip)["attrs"]["video_name"]]
        crops = set()
        for seed in range(60):
            ex = ds.load(index, np.random.default_rng([budget, index, seed]))
            n, near = check_read(ex["crop_box"].numpy(), ex["query_points"].numpy(), ex["target_points"].numpy(),
                                 ex["occluded"].numpy(), budget, seg, ref, residue=grid.start,
                                 segment_ids=ex["segment_ids"].numpy())
            skipped, padded = skipped + near, padded + (n < budget)
            crops.add(tuple(ex["crop_box"].tolist()))
        assert len(crops) > 40  # many different crops
    assert padded > 0 and skipped < 0.01 * 2 * 60 * budget * T


def _simulated_background_share(seg: np.ndarray, budget: int, draws: int, rng: np.random.Generator) -> float:
    """The reference rule simulated directly: kubric's crop, a fresh grid offset inside it, get_num_to_sample on
    the grid in the crop, padding by row n - 2; the share of background rows."""
    shares = []
    for _ in range(draws):
        y0, x0, h, w = sample_crop_box(rng, SIZE, SIZE)
        rt, ry, rx = rng.integers(0, 4, 3)
        window = seg[rt::4, y0 + ry:y0 + h:4, x0 + rx:x0 + w:4]
        quota = num_to_sample(np.bincount(window.reshape(-1).astype(np.int64)), 40, 0.1, budget)
        rows = np.repeat(np.arange(40), quota)
        rows = np.concatenate([rows, np.full(budget - len(rows), rows[len(rows) - 2])])
        shares.append(np.mean(rows == 0))
    return float(np.mean(shares))


@pytest.mark.slow
def test_background_share_matches_the_reference_rule(kubric_converted, scenes):
    """Over many reads the loader's background share equals a direct simulation of kubric's rule (with its fresh
    grid offset per read) within 0.03; the uniform rule is far from it."""
    out, _ = kubric_converted
    budget, draws = 64, 400
    shares = {}
    for rule, n in (("reference", draws), ("uniform", draws // 4)):
        ds = _kubric_loader(out / "train", num_tracks=budget, track_sampling=rule, color_jitter_prob=0.0,
                            grayscale_prob=0.0)
        shares[rule] = np.mean([(ds.load(i, np.random.default_rng([i, d]))["segment_ids"] == 0).float().mean()
                                for i in range(len(ds.clips)) for d in range(n)])
    rng = np.random.default_rng(0)
    simulated = np.mean([_simulated_background_share(seg, budget, 2 * draws, rng) for seg, _ in scenes.values()])
    print(f"background share: loader reference {shares['reference']:.3f}, simulated kubric {simulated:.3f}, "
          f"loader uniform {shares['uniform']:.3f}")
    assert abs(shares["reference"] - simulated) <= 0.03
    assert shares["uniform"] - simulated > 0.15


# --------------------------------------------------------------------------------------------------------------
# Edge cases of the rule


def _toy_grid(segments: np.ndarray, num_frames: int = 4) -> QueryGrid:
    shape = segments.shape
    tracks = np.zeros(shape + (num_frames, 2))
    return encode_grid((0, 0, 0), 1, segments, tracks, np.zeros(shape + (num_frames,), bool))


def test_window_slices_are_the_grid_points_inside():
    grid = _toy_grid(np.zeros((6, 8, 8), np.uint8), 24)
    grid.start, grid.stride = (1, 2, 3), 4
    sa, sb, sc = window_slices(grid, (5, 24), (3, 7, 12, 20))  # frames 5..23, y 3..14, x 7..26
    assert (sa, sb, sc) == (slice(1, 6), slice(1, 4), slice(1, 6))  # t 5..21, y 6, 10, 14, x 7..23


def test_padding_and_refusals():
    rng = np.random.default_rng(0)
    grid = _toy_grid(np.array([[[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]]], np.uint8))  # 5 + 5 points: caps 0 (rint 0.5)
    with pytest.raises(ShardError, match="clip x: no grid point to sample"):
        sample_reference(grid, (0, 4), (0, 0, 1, 10), (1, 10), 8, 40, 0.1, rng, "clip x")
    grid = _toy_grid(np.concatenate([np.zeros(15), np.ones(5) * 2]).astype(np.uint8)[None, None])  # cap 2, cap 0
    out = sample_reference(grid, (0, 4), (0, 0, 1, 20), (1, 20), 6, 40, 0.1, rng)
    assert out["segment_ids"].tolist() == [0] * 6 and (out["query_points"][2:] == out["query_points"][0]).all()
    grid = _toy_grid(np.full((1, 1, 20), 41, np.uint8))
    with pytest.raises(ShardError, match="segment id 41 in the crop is >= dataset.max_seg_id=40"):
        sample_reference(grid, (0, 4), (0, 0, 1, 20), (1, 20), 6, 40, 0.1, rng)


def test_draws_are_uniform_with_replacement_within_a_segment(monkeypatch):
    """One segment of 50 points, its cap 5, a fixed full-frame crop: over many reads every point is drawn about
    equally often, and a read may draw a point twice (kubric's tf.multinomial)."""
    grid = _toy_grid(np.ones((1, 5, 10), np.uint8))
    counts, duplicates = np.zeros(50), 0
    for seed in range(2000):
        out = sample_reference(grid, (0, 4), (0, 0, 5, 10), (5, 10), 5, 40, 0.1, np.random.default_rng(seed))
        index = (out["query_points"][:, 1] - 0.5).astype(int) * 10 + (out["query_points"][:, 2] - 0.5).astype(int)
        counts += np.bincount(index, minlength=50)
        duplicates += len(np.unique(index)) < 5
    chi2 = np.sum((counts - counts.mean()) ** 2 / counts.mean())
    assert chi2 < 100 and duplicates > 100  # 49 degrees of freedom: p(chi2 > 100) < 1e-4
