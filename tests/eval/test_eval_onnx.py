"""python -m chrono.evaluate runtime=onnx: the metrics of the PyTorch path, through ONNX Runtime."""

from __future__ import annotations

import csv

import pytest

pytestmark = pytest.mark.slow  # two evaluations of one video (and the session's tiny export, shared)


def _row(path):
    with open(path) as f:
        (row,) = list(csv.DictReader(f))
    return row


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_onnx_runtime_scores_like_pytorch(evaluate, tapvid_dir, tiny_onnx, tmp_path, precision):
    model, checkpoint, _, _ = tiny_onnx
    bench = ["benchmark=rgb_stacking", f"benchmark.path={tapvid_dir / 'tapvid_rgb_stacking.pkl'}",
             "benchmark.query_mode=strided", "tracker=chrono", "max_videos=1", "mlflow.enabled=false"]
    rows = tmp_path / "run" / "rgb_stacking_strided_videos.csv"  # the evaluate fixture's run folder
    evaluate(*bench, f"checkpoint={checkpoint}")
    want = _row(rows)
    evaluate(*bench, "runtime=onnx", f"onnx_model={model}", f"precision={precision}", "device=cpu")
    got = _row(rows)
    assert got["num_queries"] == want["num_queries"]
    tolerance = 1e-6 if precision == "fp32" else 0.05  # int8: a measured price (docs/deploy.md), not parity
    for name in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"):
        assert abs(float(got[name]) - float(want[name])) <= tolerance, (name, got[name], want[name])
