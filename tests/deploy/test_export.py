"""python -m chrono.export on a tiny tracker: the files, their inputs and outputs, answers at other sizes, int8."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import chrono
from chrono.deploy.bundle import METADATA_KEY, ModelInfo, bundle_paths, int8_path
from chrono.deploy.compare import deviation
from chrono.deploy.export import ExportError, example_inputs, export_bundle

pytestmark = pytest.mark.slow  # the session's export of the tiny tracker: ~1 min on 2 cores, shared by these tests

REPO = Path(__file__).resolve().parents[2]
# The margins (its fixture test): tracks within 1e-3 px, logits within 1e-4.
TRACKS_PX, LOGITS = 1e-3, 1e-4


def _shape(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_command_writes_the_bundle_checked(tiny_onnx):
    import onnx

    path, _, report, printed = tiny_onnx
    files = {**bundle_paths(path), **{f"int8 {k}": v for k, v in bundle_paths(int8_path(path)).items()}}
    assert all(p.is_file() for p in files.values())
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(p.name for p in files.values())  # no temporaries
    for name in ("full", "split", "int8_full", "int8_split"):
        assert f"check {name}: tracks max" in printed
    for name in ("full", "split"):  # the margins, tighter than the export's own CHECK_* refusal
        assert report.checks[name].track_max_px <= TRACKS_PX and report.checks[name].logit_max <= LOGITS, name
    assert np.isfinite(report.checks["int8_full"].track_max_px)

    full = onnx.load(str(path))
    shapes = {v.name: _shape(v) for v in (*full.graph.input, *full.graph.output)}
    assert list(shapes) == ["video", "query_points", "tracks", "occlusion", "expected_dist"]
    assert shapes["video"][2:] == [256, 256, 3] and shapes["query_points"][2:] == [3]
    B, T = shapes["video"][:2]
    N = shapes["query_points"][1]
    assert all(isinstance(d, str) for d in (B, T, N)) and len({B, T, N}) == 3  # dynamic, and three different axes
    assert shapes["tracks"] == [B, N, T, 2] and shapes["occlusion"] == shapes["expected_dist"] == [B, N, T]
    assert any(o.domain in ("", "ai.onnx") and o.version == 20 for o in full.opset_import)
    info = ModelInfo.from_json({p.key: p.value for p in full.metadata_props}[METADATA_KEY], str(path))
    assert (info.graph, info.resolution, info.grid, info.input_size, info.precision) == ("full", (256, 256), 8, 112,
                                                                                         "fp32")
    head = onnx.load(str(bundle_paths(path)["head"]))
    assert [v.name for v in head.graph.input] == ["features", "query_points", "query_features"]
    assert _shape(head.graph.input[0])[2:] == [8, 8, 192]


@pytest.mark.parametrize("batch, frames, queries", [(1, 7, 3), (1, 2, 70), (3, 5, 9)])
def test_onnx_answers_like_pytorch_at_other_sizes(tiny_onnx, batch, frames, queries):
    from chrono.deploy.runtime import OnnxTracker

    path, checkpoint, _, _ = tiny_onnx
    tracker = chrono.load_tracker(checkpoint)
    runtime = OnnxTracker(path, device="cpu")
    x = example_inputs(tracker, (256, 256), batch, frames, queries, seed=frames)
    with torch.no_grad():
        want = tracker(x["video"], x["query_points"])
    for got in (runtime(x["video"], x["query_points"]),  # the whole-forward graph
                runtime.track_features(runtime.extract_features(x["video"]), x["query_points"], (256, 256))):
        assert got["tracks"].shape == (batch, queries, frames, 2)
        dev = deviation(want, got)
        assert dev.track_max_px <= TRACKS_PX and dev.logit_max <= LOGITS, dev.brief()


def test_int8_model_runs_close_to_float32(tiny_onnx):
    from chrono.deploy.runtime import OnnxTracker

    path, checkpoint, _, _ = tiny_onnx
    fp32, int8 = OnnxTracker(path, device="cpu"), OnnxTracker(path, device="cpu", precision="int8")
    assert int8.path == int8_path(path) and int8.info.precision == "int8"
    assert OnnxTracker(int8_path(path), precision="int8").path == int8_path(path)  # given directly
    x = example_inputs(chrono.load_tracker(checkpoint), (256, 256), 1, 6, 50, seed=4)
    dev = deviation(fp32(x["video"], x["query_points"]), int8(x["video"], x["query_points"]))
    assert 0 < dev.track_median_px < 1.0 and np.isfinite(dev.logit_max), dev.brief()
    assert os.path.getsize(int8_path(path)) < 0.8 * os.path.getsize(path)  # the linear layers' weights in int8


def test_export_refuses_bad_settings(tmp_path):
    tracker = chrono.load_tracker(None, backbone="tiny", input_size=56)
    with pytest.raises(ExportError, match="attention=flash: expected one of ort, onnx"):
        export_bundle(tracker, tmp_path / "m.onnx", attention="flash")
    with pytest.raises(ExportError, match=r"opset=17: the query sample \(GridSample on a 5-D input\) needs opset >= 20"):
        export_bundle(tracker, tmp_path / "m.onnx", opset=17)
    assert not list(tmp_path.iterdir())


def test_command_without_a_checkpoint_is_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-m", "chrono.export", f"out={tmp_path / 'm.onnx'}"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert res.stderr.startswith("chrono.export: error: checkpoint= is required")
    res = subprocess.run([sys.executable, "-m", "chrono.export", f"checkpoint={tmp_path / 'none.ckpt'}"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "none.ckpt: no such checkpoint" in res.stderr and "Traceback" not in res.stderr


def test_a_cnn_backbone_exports_checked(tmp_path):
    """The ResNet baselines (#15) take the same export path (their features are 256 wide, not a ViT's embed_dim);
    export_bundle's own ONNX Runtime check must pass. (Conv adapters export the same way: checked by hand, not
    here, to keep CI short: each export costs about a minute.)"""
    pytest.importorskip("onnxruntime")
    tracker = chrono.load_tracker(None, backbone="resnet18", input_size=32)
    report = export_bundle(tracker, tmp_path / "m.onnx", resolution=(64, 64), attention="onnx")
    for name in ("full", "split"):  # the margins, tighter than the export's own CHECK_* refusal
        assert report.checks[name].track_max_px <= TRACKS_PX and report.checks[name].logit_max <= LOGITS, name
    assert all(p.is_file() for p in report.paths.values())
