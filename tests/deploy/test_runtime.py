"""The ONNX Runtime tracker: windowed tracking on the streaming graphs, the runtime settings, bad models."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import chrono
from chrono.deploy.bundle import OnnxModelError, bundle_paths, int8_path
from chrono.deploy.runtime import OnnxTracker, execution_providers, open_tracker
from chrono.errors import ConfigError
from chrono.inference.windowed import FeatureStore, track_video
from chrono.interfaces import FeatureTracker, PointTracker
from chrono.video_io import as_frame_source

TRACKS_PX, LOGITS = 1e-3, 1e-4


def _clip(T=12, H=48, W=40, N=9, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.random((T, H // 8, W // 8, 3))
    video = (np.repeat(np.repeat(coarse, 8, 1), 8, 2) * 255).astype(np.uint8)
    queries = np.stack([rng.integers(0, T, N), rng.random(N) * H, rng.random(N) * W], -1).astype(np.float32)
    return video, queries


@pytest.mark.slow
def test_windowed_tracking_on_the_streaming_graphs_equals_pytorch(tiny_onnx):
    """chrono.track_video drives the features, queries and head graphs exactly as it drives the PyTorch tracker."""
    path, checkpoint, _, _ = tiny_onnx
    tracker, runtime = chrono.load_tracker(checkpoint), OnnxTracker(path, device="cpu")
    assert isinstance(runtime, FeatureTracker) and isinstance(runtime, PointTracker)
    video, queries = _clip()
    for window, overlap in ((6, 2), (None, 0)):
        want = track_video(tracker, video, queries, window=window, overlap=overlap)
        store, source = FeatureStore(), as_frame_source(video)  # the store keys on this very source
        got = track_video(runtime, source, queries, window=window, overlap=overlap, feature_store=store)
        assert np.abs(got["tracks"] - want["tracks"]).max() <= TRACKS_PX
        for k in ("occlusion", "expected_dist"):
            assert np.abs(got[k] - want[k]).max() <= LOGITS, k
        assert (got["occluded"] == want["occluded"]).mean() >= 0.99
        again = track_video(runtime, source, queries[:4], window=window, overlap=overlap, feature_store=store)
        assert store.reused > 0 and np.array_equal(again["tracks"], got["tracks"][:4])  # stored features reused
    pred = runtime.predict(video[None], queries[None])  # the evaluation's call: resized to 256 x 256 inside
    ref = tracker.predict(video[None], queries[None])
    assert pred["tracks"].shape == (1, 9, 12, 2) and (pred["tracks"] - ref["tracks"]).abs().max() <= TRACKS_PX


def test_runtime_settings_are_checked():
    torch_tracker = object()
    assert open_tracker("torch", None, "fp32", "cpu", {}, lambda: torch_tracker) is torch_tracker
    cases = [
        (("tensorrt", None, "fp32"), {}, "runtime=tensorrt: expected one of torch, onnx"),
        (("onnx", None, "fp32"), {}, "runtime=onnx needs onnx_model=PATH"),
        (("torch", "m.onnx", "fp32"), {}, "onnx_model=m.onnx is run by runtime=onnx"),
        (("torch", None, "int8"), {}, "precision=int8 runs through ONNX Runtime: add runtime=onnx"),
        (("onnx", "m.onnx", "int4"), {}, "precision=int4: expected one of fp32, int8"),
        (("onnx", "m.onnx", "fp32"), {"input_size": 448}, "tracker.input_size=448: fixed in an exported model"),
    ]
    for (runtime, model, precision), overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            open_tracker(runtime, model, precision, "cpu", overrides, lambda: torch_tracker)


def test_execution_providers():
    cpu, cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert execution_providers("auto", "fp32", cpu) == ["CPUExecutionProvider"]
    assert execution_providers("auto", "fp32", cuda)[0] == ("CUDAExecutionProvider", {"device_id": 0})
    assert execution_providers("auto", "int8", cuda) == ["CPUExecutionProvider"]  # int8 is for CPU tracking
    assert execution_providers("cuda:1", "fp32", cuda)[0] == ("CUDAExecutionProvider", {"device_id": 1})
    assert execution_providers("cpu", "fp32", cuda) == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="device=cuda: this onnxruntime has no CUDA execution provider"):
        execution_providers("cuda", "fp32", cpu)
    with pytest.raises(ConfigError, match="int8 graphs are for CPU tracking"):
        execution_providers("cuda", "int8", cuda)


@pytest.mark.slow
def test_bad_and_missing_models_are_one_clear_error(tiny_onnx, tmp_path):
    path, _, _, _ = tiny_onnx
    pytest.importorskip("onnxruntime")
    with pytest.raises(OnnxModelError, match="none.onnx: no such ONNX model"):
        OnnxTracker(tmp_path / "none.onnx")
    garbage = bundle_paths(tmp_path / "garbage.onnx")
    for file in garbage.values():
        file.write_bytes(b"not a protobuf at all")
    with pytest.raises(OnnxModelError, match="garbage.features.onnx: not a model ONNX Runtime can load"):
        OnnxTracker(garbage["full"])
    lonely = tmp_path / "lonely.onnx"
    shutil.copyfile(path, lonely)
    with pytest.raises(OnnxModelError, match="lonely.features.onnx: missing beside"):
        OnnxTracker(lonely)
    with pytest.raises(OnnxModelError, match="lonely.int8.onnx: no int8 model beside"):
        OnnxTracker(lonely, precision="int8")
    with pytest.raises(OnnxModelError, match="a int8 model, but precision=fp32"):
        OnnxTracker(int8_path(path))
    copied = {k: tmp_path / v.name for k, v in bundle_paths(path).items()}
    for k, v in bundle_paths(path).items():
        shutil.copyfile(v, copied[k])
    shutil.copyfile(bundle_paths(path)["queries"], copied["head"])  # the wrong graph under the head's name
    with pytest.raises(OnnxModelError, match="tiny.head.onnx: holds the queries graph, not the head graph"):
        OnnxTracker(copied["full"])
    runtime = OnnxTracker(path, device="cpu")
    with pytest.raises(OnnxModelError, match=r"exported for 256 x 256 frames, given resolution of 128 x 128"):
        runtime.predict(np.zeros((1, 3, 64, 64, 3), np.uint8), np.zeros((1, 1, 3), np.float32), resolution=(128, 128))
