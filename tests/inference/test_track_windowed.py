"""Windowed tracking (chrono/inference/windowed.py): window plans, exactness where it must be exact, bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from chrono.checkpoint import build_tracker
from chrono.inference.windowed import FeatureStore, check_queries, plan_windows, track_video, windowed_features
from chrono.video_io import ArraySource


def _tracker(adapters: bool = True, random_adapters: bool = True, input_size: int = 56):
    torch.manual_seed(0)
    tracker = build_tracker("tiny", adapter={"enabled": adapters}, input_size=input_size).eval()
    if random_adapters:
        for a in tracker.adapter:
            torch.nn.init.normal_(a.conv2.weight, std=0.05)
    return tracker


def _video(T=14, H=40, W=48, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (T, H, W, 3), dtype=np.uint8)


QUERIES = np.array([[0, 10.0, 20.0], [7, 30.5, 5.25], [13, 20.0, 40.0], [10, 0.0, 48.0]], np.float32)


@pytest.mark.parametrize("T,window,overlap", [(100, 48, 24), (20, 8, 4), (21, 8, 3), (9, 4, 0), (10, 5, 4), (30, 7, 6)])
def test_plan_windows_partitions_frames(T, window, overlap):
    windows = plan_windows(T, window, overlap)
    assert windows[0].start == 0 and windows[-1].stop == T
    assert all(w.stop - w.start == window for w in windows)
    cores = [t for w in windows for t in range(w.core_start, w.core_stop)]
    assert cores == list(range(T))  # every frame owned once, in order
    for w in windows:
        assert w.start <= w.core_start < w.core_stop <= w.stop
    for a, b in zip(windows, windows[1:]):
        assert 0 < b.start - a.start <= window - overlap
        # the core boundary sits in the middle of the overlap: both windows see about equal context
        left_margin, right_margin = a.stop - a.core_stop, b.core_start - b.start
        assert abs(left_margin - right_margin) <= 1


def test_plan_windows_short_video_and_errors():
    assert plan_windows(10, 48, 24) == plan_windows(10, None) == [plan_windows(10, 10, 0)[0]]
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(10, 4, 4)
    with pytest.raises(ValueError, match="0 frames"):
        plan_windows(0, 4, 2)


def test_whole_window_is_exactly_predict():
    tracker, video = _tracker(), _video()
    ours = track_video(tracker, video, QUERIES, window=None)
    ref = tracker.predict(video[None], QUERIES[None])
    np.testing.assert_array_equal(ours["tracks"], ref["tracks"][0].numpy())
    np.testing.assert_array_equal(ours["occluded"], ref["occluded"][0].numpy())
    same = track_video(tracker, video, QUERIES, window=64, overlap=32)  # window longer than the video
    np.testing.assert_array_equal(same["tracks"], ours["tracks"])


@pytest.mark.parametrize("adapters,random_adapters", [(False, False), (True, False)])
def test_windowing_is_exact_without_temporal_mixing(adapters, random_adapters):
    """Without adapters (or with identity ones) features are per frame, so any window gives the whole-clip
    answer up to float rounding: this checks the window/core/query bookkeeping, forward and backward."""
    tracker, video = _tracker(adapters, random_adapters), _video()
    whole = track_video(tracker, video, QUERIES, window=None)
    for window, overlap in ((6, 2), (5, 0), (4, 3)):
        part = track_video(tracker, video, QUERIES, window=window, overlap=overlap)
        np.testing.assert_allclose(part["tracks"], whole["tracks"], atol=1e-3)
        np.testing.assert_allclose(part["occlusion"], whole["occlusion"], atol=1e-4)
    # each query frame holds the query itself, wherever its window is
    for i, (t, y, x) in enumerate(QUERIES):
        np.testing.assert_allclose(part["tracks"][i, int(t)], (x, y), atol=1e-5)


def test_windowed_features_close_to_whole_clip_with_temporal_adapters():
    """With mixing adapters windowed features differ from whole-clip ones (clip-wide GroupNorm, finite
    reach), but only slightly, and less with more context."""
    tracker, video = _tracker(input_size=112), _video(T=16, H=32, W=32)
    whole = windowed_features(tracker, video, None, resolution=(112, 112))
    gaps = []
    for window, overlap in ((4, 2), (8, 4), (12, 6)):
        cos = (windowed_features(tracker, video, window, overlap, resolution=(112, 112)) * whole).sum(-1)
        gaps.append(float((1 - cos).mean()))
    assert 0 < gaps[-1] <= gaps[0] < 0.05, gaps


class _Recording(ArraySource):
    """An array source that records the frame ranges [start, stop) it decodes."""

    def __init__(self, array):
        super().__init__(array)
        self.reads = []

    def _decode(self, ids):
        self.reads.append((int(ids[0]), int(ids[-1]) + 1))
        return super()._decode(ids)


def test_frames_are_read_one_window_at_a_time():
    """The structure behind bounded memory: no read spans more than a window, features of one window at a
    time; a grid on frame 0 costs no extra backbone pass (the query window is reused)."""
    tracker, video = _tracker(), _video(T=14)
    source = _Recording(video)
    track_video(tracker, source, QUERIES[:1], window=6, overlap=2)  # a query on frame 0 only
    assert source.reads == [(w.start, w.stop) for w in plan_windows(14, 6, 2)]
    source.reads.clear()
    track_video(tracker, source, QUERIES, window=6, overlap=2)  # queries on frames 0, 7, 10, 13
    assert max(b - a for a, b in source.reads) == 6
    assert len(source.reads) == 3 + len(plan_windows(14, 6, 2)) - 1  # query windows (last one reused) + stream


def test_feature_store_reuses_every_window_and_changes_nothing():
    """With a FeatureStore, tracking the same video again with other points reads no frame and runs no
    backbone pass, and every answer is bit-identical to the default (storeless) path's."""
    tracker, video = _tracker(), _video(T=14)
    source, store = _Recording(video), FeatureStore()
    steps = []
    first = track_video(tracker, source, QUERIES, window=6, overlap=2, feature_store=store,
                        on_window=lambda done, total: steps.append((done, total)))
    windows = plan_windows(14, 6, 2)
    assert store.computed == len(windows) == len(store) and len(source.reads) == len(windows)  # each window once
    assert steps == [(k, 3 + len(windows)) for k in range(1, 4 + len(windows))]  # 3 query windows, then the stream
    plain = track_video(tracker, video, QUERIES, window=6, overlap=2)
    for key in plain:
        np.testing.assert_array_equal(first[key], plain[key], err_msg=key)

    source.reads.clear()
    again = track_video(tracker, source, QUERIES[[3, 1]], window=6, overlap=2, feature_store=store)
    assert source.reads == [] and store.computed == len(windows)
    fresh = track_video(tracker, video, QUERIES[[3, 1]], window=6, overlap=2)
    for key in plain:  # bit-identical to a fresh run of the same queries (a subset of another run's rows is
        np.testing.assert_array_equal(again[key], fresh[key], err_msg=key)  # equal only to float rounding:
        np.testing.assert_allclose(again[key], plain[key][[3, 1]], atol=1e-3)  # the head batches the queries)
    # another tracker, resolution or video is another key
    track_video(tracker, source, QUERIES[:1], window=6, overlap=2, resolution=(128, 128), feature_store=store)
    assert store.computed == 2 * len(windows)
    store.discard(source)
    assert len(store) == 0


def test_feature_store_bound_drops_the_least_recently_used():
    store = FeatureStore(max_bytes=3 * 400)
    value = lambda: torch.zeros(100)  # noqa: E731 - 400 bytes
    for key in "abcd":
        store.get((key,), value)
    assert len(store) == 3 and store.nbytes == 1200 and store.computed == 4
    store.get(("b",), value)  # b becomes the most recent: c goes next
    store.get(("e",), value)
    assert store.reused == 1 and store.computed == 5
    store.get(("b",), value)
    store.get(("c",), value)
    assert store.computed == 6  # c was dropped, b was kept
    assert len(FeatureStore(max_bytes=0).get(("x",), value)) == 100  # keeps nothing, still answers
    empty = FeatureStore(max_bytes=0)
    empty.get(("x",), value)
    assert len(empty) == 0


def test_query_errors_name_the_query():
    check_queries(np.array([[0, 0, 0], [4, 40, 48]], np.float32), 5, (40, 48))  # edges are inside
    with pytest.raises(ValueError, match=r"query 1 \(t=5.*outside the video \(5 frames"):
        check_queries(np.array([[0, 1, 1], [5, 1, 1]], np.float32), 5, (40, 48))
    with pytest.raises(ValueError, match=r"query 0 .*x=48.5"):
        check_queries(np.array([[0, 1, 48.5]], np.float32), 5, (40, 48))
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        check_queries(np.zeros((3, 2)), 5, (40, 48))


MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    from chrono.checkpoint import build_tracker
    from chrono.video_io import FrameSource
    from chrono.inference.windowed import track_video

    class Synthetic(FrameSource):
        # frames made on demand, so the video itself takes no memory
        def __init__(self, T):
            super().__init__(range(T), (64, 64))
        def _decode(self, ids):
            return np.stack([np.full((64, 64, 3), i % 256, np.uint8) for i in ids])

    T, window = int(sys.argv[1]), (None if sys.argv[2] == "all" else int(sys.argv[2]))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tracker = build_tracker("tiny", input_size=112, head="reference").eval()  # its memory grows with T
    queries = np.array([[0, 10.0, 10.0], [T - 1, 30.0, 30.0]], np.float32)
    track_video(tracker, Synthetic(8), queries[:1], window=None)  # warm up allocator and kernels
    # Peak RSS of this process image only: VmHWM (ru_maxrss would carry over the peak of the forking
    # pytest process across exec, hiding the growth when the suite runs as a whole).
    def status_kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    before = status_kb("VmHWM")
    out = track_video(tracker, Synthetic(T), queries, window=window, overlap=8)
    after = status_kb("VmHWM")
    print(json.dumps({"growth_mb": (after - before) / 1024, "shape": list(out["tracks"].shape)}))
    """
)


def _peak_growth_mb(T: int, window: str) -> float:
    # glibc's adaptive mmap threshold keeps freed large blocks in the heap, which makes peak RSS jitter by
    # tens of MB between runs; a fixed threshold returns them at free, and the peak becomes reproducible.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    res = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(T), window], capture_output=True, text=True,
                         check=True, env=env)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["shape"] == [2, T, 2]
    return out["growth_mb"]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak RSS from /proc (Linux)")
def test_peak_memory_is_bounded_as_the_video_grows():
    """Peak RSS growth (over a warmed-up process) for 32 and 256 frames at a tiny backbone, 8 x 8 grid.

    Windowed (16 frames): the same for both lengths (measured: 29.1 and 29.2 MB). Whole clip: grows with
    the length (63 and 567 MB), which shows the probe sees the difference.
    """
    windowed = {T: _peak_growth_mb(T, "16") for T in (32, 256)}
    whole = {T: _peak_growth_mb(T, "all") for T in (32, 256)}
    print(f"peak RSS growth MB: windowed {windowed}, whole clip {whole}")
    assert windowed[256] - windowed[32] < 5, windowed
    assert whole[256] - whole[32] > 200, whole
