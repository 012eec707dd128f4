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
