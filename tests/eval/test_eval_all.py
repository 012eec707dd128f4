"""``make eval-all``: the built-in synthetic benchmark in both query modes, chrono beside zero_motion."""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import sys

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("chrono.data.synthetic") is None,
        reason="the synthetic benchmark generator (chrono.data.synthetic, issue #4) is not in this checkout",
    ),
]


def _make_eval_all(run_command, tmp_path, outputs, *extra: str, args: str = ""):
    stamp = tmp_path / "setup.stamp"  # the environment is ready: keep make from re-running setup
    stamp.touch()
    sweep = tmp_path / "sweep"
    proc = run_command(
        shutil.which("make"), "eval-all", f"PY={sys.executable}", f"STAMP={stamp}", f"EVAL_OUTPUTS={outputs}",
        f"EVAL_ARGS=hydra.sweep.dir={sweep} max_videos=2 {args}", *extra,
    )
    with open(sweep / "summary.csv") as f:
        return proc, list(csv.DictReader(f))


def test_without_checkpoint_prints_the_zero_motion_table(run_command, tmp_path):
    empty = tmp_path / "outputs"
    empty.mkdir()
    proc, rows = _make_eval_all(run_command, tmp_path, empty)
    assert "chrono rows skipped: no CHECKPOINT=... given" in proc.stdout
    assert [(r["tracker"], r["benchmark"]) for r in rows] == [
        ("zero_motion", "synthetic/first"), ("zero_motion", "synthetic/strided")
    ]
    assert "| zero_motion | synthetic/strided |" in proc.stdout
    assert all(0 < float(r["OA"]) <= 100 and int(r["videos"]) == 2 for r in rows)


def test_newest_best_checkpoint_from_training_is_used(run_command, tmp_path, fixtures_dir):
    outputs = tmp_path / "outputs"
    old, new = outputs / "train/a/1/checkpoints/best.ckpt", outputs / "train/a/2/checkpoints/best.ckpt"
    for path in (old, new):
        path.parent.mkdir(parents=True)
    old.write_text("not a checkpoint: must not be chosen")
    shutil.copy(fixtures_dir / "chrono_official_tiny" / "model.ckpt", new)
    os.utime(old, (1, 1))
    proc, rows = _make_eval_all(run_command, tmp_path, outputs, args="tracker.input_size=224 mlflow.enabled=false")
    assert f"chrono tracker from {new}" in proc.stdout
    pairs = [(r["tracker"], r["benchmark"]) for r in rows]
    assert pairs == [
        (tracker, f"{bench}/{mode}")
        for bench in ("synthetic",) for mode in ("first", "strided") for tracker in ("chrono", "zero_motion")
    ]


def test_exported_queries_answered_elsewhere_join_the_table(run_command, tmp_path):
    """EXPORT_QUERIES=DIR, then PREDICTIONS=DIR: the predictions rows (here zero motion computed from the exported
    queries, as another tracker would write them) equal the zero_motion rows of the same table."""
    import numpy as np

    empty = tmp_path / "outputs"
    empty.mkdir()
    queries, answers = tmp_path / "queries", tmp_path / "answers"
    _make_eval_all(run_command, tmp_path, empty, f"EXPORT_QUERIES={queries}", args="mlflow.enabled=false")
    files = sorted(queries.rglob("*.npz"))
    assert {p.relative_to(queries).parts[:2] for p in files} == {("synthetic", "first"), ("synthetic", "strided")}
    for path in files:
        with np.load(path) as data:
            q, num_frames = data["query_points"], int(data["num_frames"])
        target = answers / path.relative_to(queries)
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target, tracks=np.repeat(q[:, None, [2, 1]], num_frames, axis=1), occluded=np.zeros((len(q), num_frames), bool))
    proc, rows = _make_eval_all(run_command, tmp_path, empty, f"PREDICTIONS={answers}", args="mlflow.enabled=false")
    by = {(r["tracker"], r["benchmark"]): r for r in rows}
    assert sorted(by) == [(t, f"synthetic/{m}") for t in ("predictions", "zero_motion") for m in ("first", "strided")]
    for mode in ("first", "strided"):
        zero, predicted = by["zero_motion", f"synthetic/{mode}"], by["predictions", f"synthetic/{mode}"]
        assert {k: v for k, v in predicted.items() if k != "tracker"} == {k: v for k, v in zero.items() if k != "tracker"}
    assert "| predictions | synthetic/strided |" in proc.stdout
