"""python -m chrono.evaluate runtime=onnx: the metrics of the PyTorch path, through ONNX Runtime."""

from __future__ import annotations

import csv

import pytest

pytestmark = pytest.mark.slow  # three evaluations of one video (and the session's tiny export, shared)


def _row(path):
    with open(path) as f:
        (row,) = list(csv.DictReader(f))
    return row


def test_onnx_runtime_scores_like_pytorch(evaluate, tapvid_dir, tiny_onnx, tmp_path):
    model, checkpoint, _, _ = tiny_onnx
    bench = ["benchmark=rgb_stacking", f"benchmark.path={tapvid_dir / 'tapvid_rgb_stacking.pkl'}",
             "benchmark.query_mode=strided", "tracker=chrono", "max_videos=1", "mlflow.enabled=false"]
    rows = lambda: _row(tmp_path / "run" / "rgb_stacking_strided_videos.csv")  # noqa: E731 - the fixture's run folder
    evaluate(*bench, f"checkpoint={checkpoint}")
    want = rows()
    for precision, tolerance in (("fp32", 1e-6), ("int8", 0.05)):  # int8: a measured price (docs/deploy.md)
        evaluate(*bench, "runtime=onnx", f"onnx_model={model}", f"precision={precision}", "device=cpu")
        got = rows()
        assert got["num_queries"] == want["num_queries"]
        for name in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"):
            assert abs(float(got[name]) - float(want[name])) <= tolerance, (precision, name, got[name], want[name])
