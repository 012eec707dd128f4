"""Scoring anyone's predictions: ``export_queries=DIR`` and ``tracker=predictions predictions=DIR``
(chrono/eval/predictions.py) on the tapvid_tiny fixtures."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from chrono.eval.baselines import ZeroMotionTracker
from chrono.eval.benchmark import evaluate_benchmark
from chrono.eval.predictions import PredictionsError, PredictionsTracker, video_file
from chrono.eval.tapvid import decode_entry, iter_entries, sample_queries

DAVIS = "tapvid_davis.pkl"


def zero_motion_predictions(queries_dir: Path, out_dir: Path) -> list[Path]:
    """What another tracker would write for the exported queries: every query stays put and visible."""
    written = []
    for path in sorted(queries_dir.rglob("*.npz")):
        with np.load(path) as data:
            queries, num_frames = data["query_points"], int(data["num_frames"])
        target = out_dir / path.relative_to(queries_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target, tracks=np.repeat(queries[:, None, [2, 1]], num_frames, axis=1),
                 occluded=np.zeros((len(queries), num_frames), bool))
        written.append(target)
    return written


@pytest.mark.parametrize("fmt,file", [("davis", DAVIS), ("kinetics", "kinetics")])
@pytest.mark.parametrize("query_mode", ["first", "strided"])
def test_exported_queries_answered_by_zero_motion_score_exactly_as_zero_motion(tapvid_dir, expected, tmp_path, fmt,
                                                                             file, query_mode):
    path = tapvid_dir / file
    queries_dir, predictions_dir = tmp_path / "queries", tmp_path / "predictions"
    reference = evaluate_benchmark(ZeroMotionTracker(), fmt, fmt, path, query_mode, progress=False,
                                   export_queries=queries_dir)
    # the exported files: the protocol's queries at 256 x 256, one file per video
    for entry in iter_entries(fmt, path):
        video = decode_entry(entry)
        with np.load(video_file(queries_dir, video.name)) as data:
            assert np.array_equal(data["query_points"], sample_queries(video, query_mode).query_points)
            assert int(data["num_frames"]) == video.video.shape[0] and str(data["video_name"]) == video.name
            assert str(data["query_mode"]) == query_mode and data["resolution"].tolist() == [256, 256]
    assert len(zero_motion_predictions(queries_dir, predictions_dir)) == 3
    scored = evaluate_benchmark(PredictionsTracker(predictions_dir), fmt, fmt, path, query_mode, progress=False)
    assert scored.means == reference.means  # exactly, every metric
    assert scored.rows == reference.rows
    for name, value in expected["expected"][f"{fmt}/{query_mode}"]["mean"].items():
        assert scored.means[name] == pytest.approx(value, abs=1e-6), name


def _queries(tapvid_dir):
    video = decode_entry(next(iter(iter_entries("davis", tapvid_dir / DAVIS))))
    return video, sample_queries(video, "first").query_points


def _bad_files(n: int, t: int) -> dict[str, tuple[dict | bytes, str]]:
    good = {"tracks": np.zeros((n, t, 2), np.float32), "occluded": np.zeros((n, t), bool)}
    nan, inf = good["tracks"].copy(), good["tracks"].copy()
    nan[-1, -1, 0] = np.nan
    inf[0, 0, 1] = np.inf
    return {
        "tracks shape": ({**good, "tracks": np.zeros((n, t - 1, 2))}, rf"tracks has shape \[{n}, {t - 1}, 2\]; expected"),
        "tracks (y, x, t)": ({**good, "tracks": np.zeros((n, t, 3))}, "tracks has shape"),
        "occluded shape": ({**good, "occluded": np.zeros((n + 1, t), bool)}, "occluded has shape"),
        "NaN": ({**good, "tracks": nan}, r"1 non-finite value\(s\)"),
        "Inf": ({**good, "tracks": inf}, r"1 non-finite value\(s\)"),
        "float occluded": ({**good, "occluded": np.full((n, t), 0.5)}, "occluded must be bool"),
        "no occluded": ({"tracks": good["tracks"]}, "no occluded array"),
        "other queries": ({**good, "query_points": np.zeros((n, 3))}, "query_points are not this video's queries"),
        "not an npz": (b"certainly not a zip file", "not a readable .npz file"),
    }


@pytest.mark.parametrize("case", list(_bad_files(2, 3)))
def test_bad_prediction_files_are_named_in_one_line(tapvid_dir, tmp_path, case):
    video, queries = _queries(tapvid_dir)
    content, message = _bad_files(len(queries), video.video.shape[0])[case]
    path = video_file(tmp_path, video.name)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.savez(path, **content)
    tracker = PredictionsTracker(tmp_path)
    tracker.begin_video(video.name, video.video.shape[0])
    with pytest.raises(PredictionsError, match=message) as err:
        tracker.predict(video.video[None], queries[None])
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_missing_video_and_missing_folder(tapvid_dir, tmp_path):
    from chrono.errors import ConfigError

    video, queries = _queries(tapvid_dir)
    tracker = PredictionsTracker(tmp_path)
    tracker.begin_video(video.name, video.video.shape[0])
    with pytest.raises(PredictionsError, match="^" + re.escape(f"{tmp_path / video.name}.npz: no predictions for video")):
        tracker.predict(video.video[None], queries[None])
    with pytest.raises(ConfigError, match="predictions=.*nowhere: no such folder"):
        PredictionsTracker(tmp_path / "nowhere")
    with pytest.raises(PredictionsError, match="cannot be a file name"):
        video_file(tmp_path, "../outside")


def test_command_exits_2_with_one_line_naming_the_file(tapvid_dir, tmp_path, capsys):
    """The real command body (composed by Hydra, without a run folder): exit code 2, one line on stderr."""
    from chrono.evaluate import main

    video, queries = _queries(tapvid_dir)
    bad = video_file(tmp_path, video.name)
    num_frames = video.video.shape[0]
    np.savez(bad, tracks=np.full((len(queries), num_frames, 2), np.nan), occluded=np.zeros((len(queries), num_frames), bool))
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark=davis", f"benchmark.path={tapvid_dir / DAVIS}", "benchmark.query_mode=first",
              "tracker=predictions", f"predictions={tmp_path}", "mlflow.enabled=false", "progress=false"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"chrono.evaluate: error: {bad}: ") and "non-finite" in line


@pytest.mark.slow
def test_predictions_through_the_command_sweep_csv_and_mlflow(evaluate, tapvid_dir, expected, tmp_path, mlflow_uri):
    """The command: queries exported by a sweep over both query modes, answered by zero motion, scored by another
    sweep whose per-video CSVs, means, table and MLflow runs are those of the zero_motion tracker."""
    from mlflow.tracking import MlflowClient

    queries, answers = tmp_path / "queries", tmp_path / "answers"
    common = ["benchmark=davis", f"benchmark.path={tapvid_dir / DAVIS}", "benchmark.query_mode=first,strided",
              "progress=false"]
    evaluate(*common, "tracker=zero_motion", f"export_queries={queries}/${{benchmark.query_mode}}",
             "mlflow.experiment=test-predictions-ref", multirun=True)
    reference = tmp_path / "reference"
    (tmp_path / "multirun").rename(reference)
    for mode in ("first", "strided"):
        zero_motion_predictions(queries / mode, answers / mode)
    proc = evaluate(*common, "tracker=predictions", f"predictions={answers}/${{benchmark.query_mode}}",
                    "mlflow.experiment=test-predictions", multirun=True)
    sweep = tmp_path / "multirun"
    for job in ("0", "1"):
        assert (sweep / job / "results.json").read_text() == (reference / job / "results.json").read_text()
        (csv_name,) = [p.name for p in (sweep / job).glob("*_videos.csv")]
        assert (sweep / job / csv_name).read_text() == (reference / job / csv_name).read_text()
        means = json.loads((sweep / job / "results.json").read_text())
        for key, values in means.items():
            assert values["average_jaccard"] == pytest.approx(expected["expected"][key]["mean"]["average_jaccard"])
    with open(sweep / "summary.csv") as f:
        assert [(r["tracker"], r["benchmark"]) for r in csv.DictReader(f)] == [
            ("predictions", "davis/first"), ("predictions", "davis/strided")]
    assert "| predictions | davis/first |" in proc.stdout
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("test-predictions").experiment_id],
                              "tags.tracker = 'predictions'")
    assert len(runs) == 2 and {r.data.params["predictions"] for r in runs} == {str(answers / m) for m in ("first", "strided")}
