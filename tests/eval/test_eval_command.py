"""The real ``python -m chrono.evaluate`` command: reference means, files, MLflow runs, sweeps, torchrun."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = {"davis": "tapvid_davis.pkl", "rgb_stacking": "tapvid_rgb_stacking.pkl", "kinetics": "kinetics"}


def _paths(tapvid_dir: Path) -> list[str]:
    return [f"paths.{name}={tapvid_dir / file}" for name, file in FILES.items()]


def _assert_means(got: dict, want: dict, num_videos: int) -> None:
    assert got["num_videos"] == num_videos
    assert set(got) == set(want) | {"num_videos"}
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name


def _mlflow_client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


@pytest.mark.slow
def test_single_run_writes_json_csv_and_mlflow(evaluate, tapvid_dir, expected, tmp_path, mlflow_uri):
    results = tmp_path / "out" / "davis_first.json"
    # relative paths are taken from the folder the command starts in (the repository here)
    relative = {p: os.path.relpath(p, REPO) for p in (tapvid_dir / FILES["davis"], results)}
    proc = evaluate(
        "benchmark=davis", f"benchmark.path={relative[tapvid_dir / FILES['davis']]}", "benchmark.query_mode=first",
        "tracker=zero_motion", f"results_file={relative[results]}", "mlflow.experiment=test-eval-single",
    )
    data = json.loads(results.read_text())
    assert list(data) == ["davis/first"]
    _assert_means(data["davis/first"], expected["expected"]["davis/first"]["mean"], 3)
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "results.json").read_text()) == data
    with open(run_dir / "davis_first_videos.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["clip0", "clip1", "clip2"]
    assert [int(r["num_queries"]) for r in rows] == expected["expected"]["davis/first"]["num_queries"]
    assert np.mean([float(r["average_jaccard"]) for r in rows]) == pytest.approx(
        expected["expected"]["davis/first"]["mean"]["average_jaccard"], abs=1e-9
    )
    # progress per video on stderr; the summary row on stdout
    assert sum("[davis/first] video" in line for line in proc.stderr.splitlines()) == 3
    assert "| zero_motion | davis/first | 5.0 | 9.9 | 83.9 | 3 |" in proc.stdout
    client = _mlflow_client(mlflow_uri)
    experiment = client.get_experiment_by_name("test-eval-single")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["davis/first/average_jaccard"] == pytest.approx(
        expected["expected"]["davis/first"]["mean"]["average_jaccard"]
    )
    assert run.data.params["benchmark.query_mode"] == "first"
    assert run.data.tags["mlflow.source.git.commit"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"davis_first_videos.csv", "results.json", "davis_first_videos.json"} <= artifacts


@pytest.mark.slow
def test_multirun_all_formats_both_modes_match_reference(evaluate, tapvid_dir, expected, tmp_path, mlflow_uri):
    """Zero-motion means of every format and query mode equal tapnet's (1e-6), through one sweep that ends
    with one table and one MLflow parent run holding a child run per job."""
    proc = evaluate(
        "benchmark=davis,rgb_stacking,kinetics", "benchmark.query_mode=first,strided", "tracker=zero_motion",
        *_paths(tapvid_dir), "mlflow.experiment=test-eval-sweep", "progress=false", multirun=True,
    )
    sweep = tmp_path / "multirun"
    seen = {}
    for results in sweep.glob("*/results.json"):
        seen.update(json.loads(results.read_text()))
    assert sorted(seen) == sorted(expected["expected"])
    for key, means in seen.items():
        _assert_means(means, expected["expected"][key]["mean"], len(expected["expected"][key]["num_queries"]))
    with open(sweep / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["tracker", "benchmark", "AJ", "<δ^x_avg", "OA", "videos"]
    assert [r["benchmark"] for r in table] == sorted(expected["expected"])
    davis_first = next(r for r in table if r["benchmark"] == "davis/first")
    assert float(davis_first["AJ"]) == pytest.approx(100 * expected["expected"]["davis/first"]["mean"]["average_jaccard"])
    assert (sweep / "summary.md").read_text() in proc.stdout
    client = _mlflow_client(mlflow_uri)
    experiment = client.get_experiment_by_name("test-eval-sweep")
    parent_id = (sweep / "mlflow_parent_run_id").read_text().strip()
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert len(children) == 6
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert {"summary.md", "summary.csv", "summary.json"} <= {a.path for a in client.list_artifacts(parent_id)}


def test_torchrun_counts_each_video_once(run_command, tapvid_dir, expected, tmp_path):
    """Two gloo ranks split 3 Kinetics videos 2 + 1 and gather them: the means of a single process."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    results = tmp_path / "kinetics.json"
    proc = run_command(
        torchrun, "--standalone", "--nproc_per_node=2", "-m", "chrono.evaluate",
        "benchmark=kinetics", f"benchmark.path={tapvid_dir / 'kinetics'}", "benchmark.query_mode=strided",
        f"results_file={results}", "mlflow.enabled=false", f"hydra.run.dir={tmp_path / 'run'}",
    )
    _assert_means(json.loads(results.read_text())["kinetics/strided"], expected["expected"]["kinetics/strided"]["mean"], 3)
    assert "rank 0] video 1 (#0) " in proc.stderr and "rank 1] video 1 (#1) " in proc.stderr
    assert "rank 0] video 2 (#2) " in proc.stderr
    with open(tmp_path / "run" / "kinetics_strided_videos.csv") as f:
        assert [int(r["index"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert proc.stdout.count("| zero_motion | kinetics/strided") == 1  # rank 0 alone reports


def test_chrono_tracker_through_the_command(evaluate, tapvid_dir, fixtures_dir, tmp_path):
    """tracker=chrono with the tiny official checkpoint gives the metrics of calling the tracker directly."""
    import torch

    import chrono
    from chrono.eval.tapvid import iter_entries, decode_entry, sample_queries
    from chrono.metrics import compute_tapvid_metrics

    checkpoint = fixtures_dir / "chrono_official_tiny" / "model.ckpt"
    path = tapvid_dir / FILES["rgb_stacking"]
    evaluate(
        "benchmark=rgb_stacking", f"benchmark.path={path}", "benchmark.query_mode=first", "tracker=chrono",
        f"checkpoint={checkpoint}", "tracker.input_size=224", "max_videos=1", "mlflow.enabled=false",
    )
    with open(tmp_path / "run" / "rgb_stacking_first_videos.csv") as f:
        (row,) = list(csv.DictReader(f))
    video = decode_entry(next(iter_entries("rgb_stacking", path)))
    queries = sample_queries(video, "first")
    tracker = chrono.load_tracker(checkpoint, input_size=224)
    with torch.no_grad():
        out = tracker.predict(video.video[None], queries.query_points[None])
    want = compute_tapvid_metrics(
        queries.query_points[None], queries.occluded[None], queries.target_points[None],
        out["occluded"].numpy(), out["tracks"].double().numpy(), "first",
    )
    assert int(row["num_queries"]) == len(queries.query_points)
    for name, value in want.items():
        assert float(row[name]) == pytest.approx(float(value[0]), abs=1e-9), name


def test_clear_errors_for_missing_paths_and_checkpoints(tmp_path):
    from chrono.checkpoint import CheckpointError
    from chrono.errors import ConfigError
    from chrono.eval.benchmark import benchmark_path
    from chrono.eval.trackers import make_tracker

    with pytest.raises(ConfigError, match="benchmark=davis has no path: give benchmark.path="):
        benchmark_path({"name": "davis", "path": None})
    assert benchmark_path({"name": "davis", "path": "x.pkl"}, lambda p: f"/abs/{p}") == Path("/abs/x.pkl")
    with pytest.raises(ConfigError, match="tracker=chrono needs a checkpoint"):
        make_tracker({"name": "chrono"}, None, "cpu")
    with pytest.raises(CheckpointError, match="none.ckpt: no such checkpoint"):
        make_tracker({"name": "chrono"}, str(tmp_path / "none.ckpt"), "cpu")
    with pytest.raises(ConfigError, match="tracker=cotracker: unknown tracker"):
        make_tracker({"name": "cotracker"}, None, "cpu")


def test_sweep_with_a_failing_job_still_writes_its_table(evaluate, tapvid_dir, tmp_path, mlflow_uri):
    proc = evaluate(
        "benchmark=davis,rgb_stacking", f"paths.davis={tapvid_dir / FILES['davis']}", "benchmark.query_mode=first",
        "mlflow.experiment=test-eval-failing", "progress=false", multirun=True, check=False,
    )
    assert proc.returncode != 0 and "benchmark=rgb_stacking has no path" in proc.stderr
    sweep = tmp_path / "multirun"
    with open(sweep / "summary.csv") as f:
        assert [r["benchmark"] for r in csv.DictReader(f)] == ["davis/first"]
    assert "some jobs failed" in proc.stdout
    parent = _mlflow_client(mlflow_uri).get_run((sweep / "mlflow_parent_run_id").read_text().strip())
    assert parent.info.status == "FAILED"
