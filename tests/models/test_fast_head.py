"""The fast tracking head against the reference formulation (the oracle) on random and hand-made inputs."""

import math

import pytest
import torch
import torch.nn.functional as F

import chrono
from chrono.models import head

# Float32 rounding at 256 x 256 head pixels: one ulp of 256 is 3e-5, the sums differ only in order.
TRACK_ATOL = 1e-4


def _reference_cells(logits: torch.Tensor, hw, radius):
    lead = logits.shape[:-1]
    heat = F.softmax(logits, dim=-1).reshape(1, 1, -1, *hw)  # the oracle wants [B, N, T, h, w]
    return head.local_soft_argmax_reference(heat, radius).reshape(*lead, 2)


def _fast_cells(logits: torch.Tensor, hw, radius):
    rows = logits.reshape(-1, *hw)
    peak = head.softmax_argmax(rows, 1.0)[0].reshape(logits.shape[:-1])
    assert torch.equal(peak, F.softmax(logits, dim=-1).argmax(-1))
    return head.local_soft_argmax_window(logits, 1.0, peak, hw, radius)


@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (3, 2), (5, 5), (16, 16), (13, 29)])
@pytest.mark.parametrize("radius", [0.0, 0.5, 1.0, 1.5, 2.0, 5.0, math.sqrt(26.0), 5.5, 100.0])
def test_window_soft_argmax_equals_reference(hw, radius):
    g = torch.Generator().manual_seed(hash((hw, radius)) % 2**31)
    logits = torch.randn(2, 3, 4, hw[0] * hw[1], generator=g) * 4
    torch.testing.assert_close(_fast_cells(logits, hw, radius), _reference_cells(logits, hw, radius), atol=2e-5, rtol=0)


@pytest.mark.parametrize("radius", [1.0, 3.0, 5.0])
def test_peaks_on_edges_and_corners(radius):
    h, w = 12, 9
    cells = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (0, 4), (6, 0), (h - 1, 5), (7, w - 1), (1, 1)]
    logits = torch.randn(len(cells), h * w, generator=torch.Generator().manual_seed(1))
    for i, (y, x) in enumerate(cells):
        logits[i, y * w + x] = 10.0  # the argmax sits on the border: part of its window is outside
    fast = _fast_cells(logits, (h, w), radius)
    torch.testing.assert_close(fast, _reference_cells(logits, (h, w), radius), atol=2e-5, rtol=0)
    peaks = torch.tensor([[x + 0.5, y + 0.5] for y, x in cells])
    assert (fast - peaks).abs().max() < radius  # sanity: the answer stays near its peak


def test_ties_take_the_first_cell_like_the_reference():
    h, w = 10, 10
    logits = torch.zeros(3, h * w)
    logits[0, [17, 82]] = 5.0  # exact tie, far apart: the first (raster order) wins
    logits[1, [55, 56]] = 5.0  # adjacent tie: both inside the window
    logits[2, 40] = 0.5
    logits[2, 3] = torch.nextafter(torch.tensor(0.5), torch.tensor(0.0))  # one ulp lower: tied after the softmax
    heat = F.softmax(logits[2], -1)
    assert heat[3] == heat[40] and logits[2].argmax() == 40 and heat.argmax() == 3  # the case is real
    fast = _fast_cells(logits, (h, w), 5.0)
    torch.testing.assert_close(fast, _reference_cells(logits, (h, w), 5.0), atol=1e-5, rtol=0)
    assert fast[2, 0] > 2.5  # the window around cell 3 (x 3, y 0), not the one around cell 40 (x 0, y 4)


def test_saturated_softmax_and_large_logits():
    logits = torch.randn(4, 64, generator=torch.Generator().manual_seed(2)) * 200  # heat is one-hot or underflows
    torch.testing.assert_close(_fast_cells(logits, (8, 8), 3.0), _reference_cells(logits, (8, 8), 3.0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("temperature", [20.0, 1.0, 1e4, 0.0, -3.0, float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_softmax_argmax_is_the_reference_argmax(temperature, dtype):
    g = torch.Generator().manual_seed(6)
    cost = F.normalize(torch.randn(400, 32, generator=g), dim=-1) @ F.normalize(torch.randn(32, 9 * 11, generator=g), dim=0)
    cost[:100] = torch.round(cost[:100] * 8) / 8  # exact ties between cells
    top = cost[100:200].argmax(-1, keepdim=True)
    cost[100:200].scatter_(1, (top + 7) % 99, cost[100:200].gather(1, top) - 1e-7)  # near-ties before the top
    cost[200, 5] = float("nan")
    cost[201, 9] = float("inf")
    cost = cost.to(dtype)
    expected = F.softmax(cost * temperature, dim=-1).argmax(-1)
    peak, high = head.softmax_argmax(cost.reshape(-1, 9, 11), temperature)
    assert torch.equal(peak, expected)
    torch.testing.assert_close(high, cost.amax(-1), atol=0, rtol=0, equal_nan=True)


def test_disk_offsets_match_the_reference_mask():
    for radius in (0.0, -1.0, 0.3, 1.0, 2.5, 5.0, math.sqrt(26.0), 7.0):  # the reference squares the radius
        dy, dx = head.disk_offsets(radius, 64, 64, torch.float32)
        expected = {(y, x) for y in range(-8, 9) for x in range(-8, 9) if torch.tensor(float(y * y + x * x)) < radius**2}
        assert set(zip(dy.tolist(), dx.tolist())) == expected, radius
    dy, _ = head.disk_offsets(5.0, 2, 3, torch.float32)  # a tiny grid needs no offset beyond its size
    assert dy.abs().max() <= 2


def _features(B, T, h, w, C, seed):
    g = torch.Generator().manual_seed(seed)
    feats = F.normalize(torch.randn(B, T, h, w, C, generator=g), dim=-1)
    return feats, F.normalize(torch.randn(B, 5, C, generator=g), dim=-1)


@pytest.mark.parametrize("block_elements", [1, 300, 1 << 20])
def test_fast_head_equals_reference_head(block_elements):
    feats, queries = _features(2, 7, 12, 10, 16, seed=3)
    ref_tracks, ref_stats = head.reference_head(queries, feats, 20.0, 5.0)
    tracks, stats = head.fast_head(queries, feats, 20.0, 5.0, block_elements=block_elements)
    torch.testing.assert_close(tracks, ref_tracks, atol=TRACK_ATOL, rtol=0)
    assert torch.equal(stats, ref_stats)  # the occlusion inputs (hence logits) are bitwise equal


def test_query_blocks_match_the_reference_chunks():
    assert head._query_blocks(150, 128, 64) == [(0, 128), (128, 150)]
    assert head._query_blocks(1100, 256, 64) == [(0, 256), (256, 512), (512, 768), (768, 1024), (1024, 1088), (1088, 1100)]
    assert head._query_blocks(5, 5, 5) == [(0, 5)]
    g = torch.Generator().manual_seed(8)
    feats = F.normalize(torch.randn(1, 3, 8, 8, 32, generator=g), dim=-1)
    queries = F.normalize(torch.randn(1, 150, 32, generator=g), dim=-1)
    ref = [head.reference_head(queries[:, s : s + 64], feats, 20.0, 5.0) for s in range(0, 150, 64)]  # the tracker's chunks
    tracks, stats = head.fast_head(queries, feats, 20.0, 5.0, block_elements=128 * 64)  # blocks of 128 queries x 1 frame
    torch.testing.assert_close(tracks, torch.cat([r[0] for r in ref], 1), atol=TRACK_ATOL, rtol=0)
    assert torch.equal(stats, torch.cat([r[1] for r in ref], 1))


def test_fast_head_under_autocast_keeps_the_reference_dtypes():
    feats, queries = _features(1, 5, 12, 10, 16, seed=7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_tracks, ref_stats = head.reference_head(queries, feats, 20.0, 5.0)
        tracks, stats = head.fast_head(queries, feats, 20.0, 5.0)
        exact = head.tracks_from_cost(head.cost_volume(queries, feats).double(), 20.0, 5.0)
    assert tracks.dtype == ref_tracks.dtype and torch.equal(stats, ref_stats)
    # CPU autocast runs the reference soft-argmax in bf16 (an ulp of 128..256 is 1 px); ours in float32
    # rounded once at the end, so it is never further from the exact answer.
    assert (tracks.double() - exact).abs().max() <= (ref_tracks.double() - exact).abs().max()
    torch.testing.assert_close(tracks.float(), ref_tracks.float(), atol=2.0, rtol=0)


def test_fast_head_gradients_match_reference():
    """Outside the window the reference's gradient is zero in exact arithmetic: float64 shows it."""
    feats, queries = _features(1, 4, 8, 8, 8, seed=4)
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-5)):
        grads = {}
        for name in ("reference", "fast"):
            f, q = feats.to(dtype).requires_grad_(), queries.to(dtype).requires_grad_()
            tracks, _ = head.get_head(name)(q, f, 20.0, 3.0)
            (tracks * torch.linspace(-1, 1, tracks.numel(), dtype=dtype).reshape(tracks.shape)).sum().backward()
            grads[name] = (f.grad, q.grad)
        for fast, ref in zip(grads["fast"], grads["reference"]):
            assert (fast - ref).abs().max() <= tol * ref.abs().max(), dtype


def test_fast_head_trains_after_running_under_inference_mode():
    feats, queries = _features(1, 3, 8, 6, 16, seed=9)  # a grid no other test uses: fresh cached tables
    with torch.inference_mode():
        head.fast_head(queries, feats, 20.0, 5.0)
    feats.requires_grad_()
    tracks, _ = head.fast_head(queries, feats, 20.0, 5.0)
    tracks.sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()


def test_tracker_heads_agree_end_to_end():
    torch.manual_seed(5)
    ref = chrono.load_tracker(None, backbone="tiny", input_size=112, head="reference", query_chunk_size=3)
    fast = chrono.load_tracker(None, backbone="tiny", input_size=112, head="fast", query_chunk_size=3)
    fast.load_state_dict(ref.state_dict())
    assert fast.cfg.head == "fast" and chrono.load_tracker(None, backbone="tiny", input_size=112).cfg.head == "fast"
    video = torch.rand(1, 5, 48, 64, 3) * 2 - 1
    queries = torch.tensor([[[0, 10.0, 20.0], [4, 47.9, 0.1], [2.4, 30.5, 63.0], [1, 0.0, 0.0], [3, 24.0, 32.0]]])
    with torch.no_grad():
        a, b = ref(video, queries), fast(video, queries)
    torch.testing.assert_close(b["tracks"], a["tracks"], atol=TRACK_ATOL, rtol=0)
    assert torch.equal(b["occlusion"], a["occlusion"]) and torch.equal(b["expected_dist"], a["expected_dist"])


def test_unknown_head_is_refused():
    with pytest.raises(ValueError, match="unknown tracking head 'fastest'"):
        chrono.load_tracker(None, backbone="tiny", input_size=112, head="fastest")


def _torch_window_tables(h, w, radius, dtype):
    """The window tables as torch builds them (the formulation before they were made with numpy): the oracle."""
    reach = min(math.ceil(abs(radius)), max(h, w) - 1)
    steps = torch.arange(-reach, reach + 1)
    dy, dx = (a.reshape(-1) for a in torch.meshgrid(steps, steps, indexing="ij"))
    inside = (dy.to(dtype) ** 2 + dx.to(dtype) ** 2) < radius**2
    dy, dx = dy[inside], dx[inside]
    if dy.numel() == 0:
        return None
    cells = torch.arange(h * w)
    py, px = torch.div(cells, w, rounding_mode="floor"), cells % w
    ys, xs = py[:, None] + dy, px[:, None] + dx
    valid = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    index = ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)
    centre = torch.stack((px, py), dim=-1).to(dtype) + 0.5
    basis = torch.stack((torch.ones_like(dx), dx, dy), dim=-1).to(dtype)
    return index, valid.to(dtype), centre, basis, int(((dy == 0) & (dx == 0)).nonzero()[0, 0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_numpy_window_tables_equal_torch_built_ones(dtype):
    """The tables are built with numpy (constants under torch.export); every field equals torch's own, bit for bit,
    including radii whose square sits on a cell distance (sqrt(k) and its neighbouring floats)."""
    radii = [0.0, -2.0, 0.5, 1.0, 1.5, 2.0, 3.7, 5.0, 100.0]
    for k in (2, 25, 26, 50):
        r = math.sqrt(k)
        radii += [r, math.nextafter(r, 0.0), math.nextafter(r, 10.0)]
    for hw in ((1, 1), (3, 2), (7, 5), (16, 16)):
        for radius in radii:
            built = head.build_window_tables(*hw, radius, dtype, torch.device("cpu"))
            oracle = _torch_window_tables(*hw, radius, dtype)
            if oracle is None:
                assert built is None, (hw, radius)
                continue
            for got, want in zip((built.index, built.valid, built.centre, built.basis), oracle[:4]):
                assert got.dtype == want.dtype and torch.equal(got, want), (hw, radius, dtype)
            assert built.peak_column == oracle[4]


@pytest.mark.parametrize("radius", [0.0, 1.5, 5.0, math.sqrt(26.0)])
def test_export_head_is_bitwise_the_fast_head(radius):
    g = torch.Generator().manual_seed(3)
    feats = F.normalize(torch.randn(2, 7, 12, 10, 16, generator=g), dim=-1)
    queries = F.normalize(torch.randn(2, 150, 16, generator=g), dim=-1)  # more than one block of 64 queries
    fast, export = head.fast_head(queries, feats, 20.0, radius), head.export_head(queries, feats, 20.0, radius)
    assert torch.equal(fast[0], export[0]) and torch.equal(fast[1], export[1])


def test_tracker_with_the_export_head_answers_bitwise_like_the_fast_head():
    torch.manual_seed(6)
    fast = chrono.load_tracker(None, backbone="tiny", input_size=112)
    export = chrono.load_tracker(None, backbone="tiny", input_size=112, head="export")
    export.load_state_dict(fast.state_dict())
    assert head.query_chunk("export", None) > 10**9  # one head call for every query (no loop over N in a graph)
    video = torch.rand(1, 5, 48, 64, 3) * 2 - 1
    queries = torch.tensor([[[0, 10.0, 20.0], [4, 47.9, 0.1], [2.4, 30.5, 63.0], [1, 0.0, 0.0], [3, 24.0, 32.0]]])
    with torch.no_grad():
        a, b = fast(video, queries), export(video, queries)
    assert all(torch.equal(a[k], b[k]) for k in ("tracks", "occlusion", "expected_dist"))
