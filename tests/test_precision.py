"""precision: auto | fp32 | bf16 for evaluation and validation (chrono/precision.py and its callers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from chrono.errors import ConfigError
from chrono.eval.baselines import ZeroMotionTracker
from chrono.eval.benchmark import evaluate_benchmark
from chrono.precision import EVAL_PRECISIONS, autocast_dtype, eval_precision

REPO = Path(__file__).resolve().parents[1]


def test_settings_resolve_per_device():
    assert autocast_dtype("auto", "cpu", EVAL_PRECISIONS) is None  # fp32 on CPU
    assert autocast_dtype("auto", "cuda", EVAL_PRECISIONS) == torch.bfloat16  # the reference's bf16-mixed on GPU
    assert autocast_dtype("fp32", "cuda", EVAL_PRECISIONS) is None
    assert autocast_dtype("bf16", "cpu", EVAL_PRECISIONS) == torch.bfloat16
    assert autocast_dtype("fp16", "cuda") == torch.float16  # training only
    with pytest.raises(ConfigError, match="val.precision=fp16: expected one of auto, fp32, bf16"):
        autocast_dtype("fp16", "cuda", EVAL_PRECISIONS, "val.precision")


class _Spy(ZeroMotionTracker):
    """Records the autocast state its predict runs under."""

    def __init__(self):
        self.seen = []

    def predict(self, video, query_points, resolution=(256, 256)):
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return super().predict(video, query_points, resolution)


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_evaluation_runs_the_tracker_under_the_precision(precision, fixtures_dir):
    """The CPU composition of bf16 evaluation: the tracker's predict runs inside bf16 autocast, metrics unchanged
    for a tracker that does not compute (zero motion)."""
    path = fixtures_dir / "tapvid_tiny" / "tapvid_davis.pkl"
    spy = _Spy()
    dtype = autocast_dtype(precision, "cpu", EVAL_PRECISIONS)
    result = evaluate_benchmark(spy, "davis", "davis", path, "first", max_videos=2, progress=False, dtype=dtype)
    assert spy.seen == [(precision == "bf16", torch.bfloat16)] * 2
    plain = evaluate_benchmark(ZeroMotionTracker(), "davis", "davis", path, "first", max_videos=2, progress=False)
    assert result.means == plain.means


def test_the_command_refuses_other_precisions(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "chrono.evaluate", "precision=fp16", "mlflow.enabled=false",
                           f"hydra.run.dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("chrono.evaluate: error: precision=fp16: expected one of auto, "
                                                    "fp32, bf16, int8")


def test_evaluate_precision_per_runtime():
    """One ``precision`` for chrono.evaluate: autocast for PyTorch, the exported model's fp32 / int8 for ONNX."""
    assert eval_precision("auto", "torch", "cuda") == (torch.bfloat16, "fp32")
    assert eval_precision("auto", "torch", "cpu") == (None, "fp32")
    assert eval_precision("bf16", "torch", "cpu") == (torch.bfloat16, "fp32")
    assert eval_precision("auto", "onnx", "cuda") == (None, "fp32")  # ONNX Runtime runs the float32 graph
    assert eval_precision("int8", "onnx", "cpu") == (None, "int8")
    assert eval_precision("int8", "torch", "cpu") == (None, "int8")  # open_tracker refuses it for tracker=chrono
    with pytest.raises(ConfigError, match="precision=bf16 is PyTorch autocast: runtime=onnx runs"):
        eval_precision("bf16", "onnx", "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 evaluation of a real tracker needs CUDA")
def test_bf16_evaluation_on_cuda_is_close_to_fp32(fixtures_dir):
    import chrono

    path = fixtures_dir / "tapvid_tiny" / "tapvid_rgb_stacking.pkl"
    tracker = chrono.load_tracker(fixtures_dir / "chrono_official_tiny" / "model.ckpt", device="cuda", input_size=224)
    means = {name: evaluate_benchmark(tracker, "rgb_stacking", "rgb_stacking", path, "first", progress=False,
                                      dtype=autocast_dtype(name, "cuda", EVAL_PRECISIONS)).means
             for name in ("fp32", "auto")}
    for key in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"):
        assert means["auto"][key] == pytest.approx(means["fp32"][key], abs=0.05), key
