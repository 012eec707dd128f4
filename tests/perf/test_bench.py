"""`python -m chrono.bench` in its CI-sized form, and its instruments."""

import json
import subprocess
import sys

import pytest
import torch

from chrono import bench
from chrono.perf import suite
from chrono.perf.cases import run_case
from chrono.perf.measure import PeakMemory, clip_flops, vit_flops_per_frame
from chrono.models.tracker import TrackerConfig
from chrono.models.backbones import backbone_config

pytestmark = pytest.mark.slow  # the whole CI-sized benchmark: ~15 s on 2 cores, ~45 s with its ONNX export


def test_ci_bench_writes_tables_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    data = bench.main(["--mode", "ci", "--out", str(out)])
    printed = capsys.readouterr().out
    onnx = suite.onnx_missing() is None
    for title in ("matmul yardstick", "backbone (DINOv2 ViT alone", "tracker inference", "tracking head",
                  "fast / reference head", "training step", "targets", "PyTorch eager vs ONNX Runtime"):
        assert title in printed
    assert ("skipped" in printed.split("PyTorch eager vs ONNX Runtime")[1].splitlines()[0]) != onnx
    saved = json.loads(out.read_text())
    assert saved["cases"] == data["cases"] and not [c for c in saved["cases"] if "error" in c]
    kinds = {c["kind"] for c in saved["cases"]}
    assert kinds == {"yardstick", "backbone", "tracker", "head", "train"} | ({"runtime"} if onnx else set())
    if onnx:  # PyTorch eager beside ONNX Runtime float32 and int8, in one run, with the yardstick
        rows = {r["runtime"]: r for r in saved["runtime_comparisons"]}
        assert set(rows) == {"torch", "onnx", "onnx-int8"}
        assert rows["onnx"]["vs_eager"] == pytest.approx(rows["onnx"]["frames_per_s"] / rows["torch"]["frames_per_s"],
                                                         rel=1e-3)
        assert rows["onnx"]["frames_per_s"] > 0 and rows["onnx"]["track_max_px"] < 1e-2
        assert rows["onnx-int8"]["track_median_px"] < 1.0
    assert saved["yardstick_gflops"] > 0 and saved["machine"]["torch"] == torch.__version__
    for case in saved["cases"]:
        if case["kind"] == "yardstick":
            assert case["gflops"] > 0
        elif case["kind"] == "runtime":  # ONNX Runtime's allocations are not torch's: the time is the figure
            assert case["time_s"] > 0 and "model_dir" not in case
        else:  # every other case allocates tensors, so the profiler must see a peak above the baseline
            assert case["time_s"] > 0 and case["peak_mb"] > 0, case
        if case["kind"] == "backbone":
            assert 0 < case["yardstick_share"] and case["gflops"] > 0
    (comparison,) = saved["head_comparisons"]
    assert comparison["queries"] == 64 and comparison["chunk"] == 16
    assert all(comparison[k] > 0 for k in ("speedup", "speedup_same_chunk", "memory_ratio", "memory_ratio_same_chunk"))
    assert {t["target"].split(",")[0] for t in saved["targets"]} == {
        "head point-frames/s ratio fast/reference", "head peak-memory ratio fast/reference at the same chunk",
        "fast head time / backbone time"}


def test_worker_process_reports_one_case():
    case = {"kind": "head", "head": "fast", "frames": 2, "grid": 8, "channels": 16, "queries": 8, "query_chunk": 4,
            "repeats": 1, "device": "cpu"}
    result = suite.run_isolated(case)
    assert "error" not in result, result
    assert result["kind"] == "head" and result["queries"] == 8 and result["time_s"] > 0 and result["peak_mb"] > 0
    broken = suite.run_isolated({**case, "kind": "nonsense"})
    assert "unknown benchmark case kind" in broken["error"]


def test_full_plan_covers_the_issue_grid():
    cases = suite.plan("full", "cpu")
    tracker = {(c["backbone"], c["frames"], c["queries"]) for c in cases if c["kind"] == "tracker"}
    assert {("vits", 24, 256), ("vits", 24, 1024), ("vits", 24, 4096), ("vits", 250, 1024), ("vitb", 24, 1024)} <= tracker
    heads = {(c["head"], c["queries"], c["query_chunk"]) for c in cases if c["kind"] == "head"}
    assert heads == {(h, n, chunk) for h, chunk in suite.HEAD_VARIANTS for n in (256, 1024, 4096)}
    assert {c["input_size"] for c in cases if c["kind"] == "backbone"} == {224, 896}
    assert json.loads(json.dumps(cases)) == cases  # cases travel to worker processes as JSON
    runtimes = [c for c in suite.plan("full", "cpu", onnx=True) if c["kind"] == "runtime"]
    assert [c["runtime"] for c in runtimes] == ["torch", "onnx", "onnx-int8"]
    assert {(c["backbone"], c["input_size"], c["frames"], c["queries"]) for c in runtimes} == {("vits", 224, 24, 1024)}
    assert not [c for c in suite.plan("full", "cpu", onnx=False) if c["kind"] == "runtime"]
    assert not [c for c in suite.plan("full", "cuda", onnx=False) if c["kind"] == "runtime"]


def test_missing_onnxruntime_is_a_note_not_a_failure():
    derived = {**suite.derive([], "ci"), "runtime_note": "onnxruntime not installed (pip install -e '.[export]')"}
    assert "PyTorch eager vs ONNX Runtime: skipped, onnxruntime not installed" in suite.report([], derived)


def test_peak_memory_sees_a_large_temporary():
    kept = torch.ones(2**20)  # held before: not counted
    with PeakMemory(torch.device("cpu")) as mem:
        x = torch.ones(64, 2**20)  # 256 MiB, touched
        y = torch.ones(2**20)
        del x
        z = torch.ones(2**20)
    assert mem.peak_bytes == (64 + 1) * 2**22 and kept.sum() > 0 and y.sum() == z.sum()
    if mem.rss_peak_bytes is not None:
        assert mem.rss_peak_bytes > 200 * 2**20
    with PeakMemory(torch.device("cpu")) as small:
        torch.ones(16)
    assert small.peak_bytes == 64


def test_flop_counts_match_hand_counts():
    vits = backbone_config("vits")
    tokens, c = 257, 384  # 224 x 224: 16 x 16 patches + cls
    per_block = 2 * tokens * c * (3 * c + c + 4 * c + 4 * c) + 4 * tokens * tokens * c
    assert vit_flops_per_frame(vits, 224) == 2 * 256 * 3 * 14 * 14 * c + 12 * per_block
    flops = clip_flops(TrackerConfig(backbone=vits, input_size=896), frames=24, queries=256)
    assert flops.cost_volume == 2 * 256 * 24 * 64 * 64 * 384
    assert 0.05 < flops.adapters / flops.vit < 0.5  # adapters are a modest add-on to the ViT


def test_run_case_checks_its_kind():
    with pytest.raises(ValueError, match="unknown benchmark case kind"):
        run_case({"kind": "nonsense"})


def test_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "chrono.bench", "--help"], capture_output=True, text=True, check=True)
    assert "mode: full" in proc.stdout and "suite: model" in proc.stdout  # Hydra lists conf/bench.yaml


def test_quiet_wait_measures_the_cores_and_gives_up_in_time():
    busy = suite.busy_fraction(0.2)
    assert busy is None or 0.0 <= busy <= 1.0
    waited, _ = suite.wait_for_quiet(0.0, threshold=-1.0)  # never quiet enough: returns at once
    assert waited < 2.0
