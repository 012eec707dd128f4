"""chrono.evaluate refuses damaged benchmarks (one line naming the file, the video and the field; exit 2),
and keeps every entry of a results file it writes into."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest


def _broken_davis(tapvid_dir, tmp_path, change):
    data = pickle.loads((tapvid_dir / "tapvid_davis.pkl").read_bytes())
    change(data["clip1"])
    path = tmp_path / "broken_davis.pkl"
    path.write_bytes(pickle.dumps(data))
    return path


def _nan_point(video):
    video["points"][3, 5, 0] = np.nan


def _inf_point(video):
    video["points"][0, 0, 1] = np.inf


def _float_video(video):
    video["video"] = video["video"].astype(np.float32)


@pytest.mark.parametrize("change,message", [
    (_nan_point, "video 'clip1': points hold 1 non-finite (NaN or infinite) values, first at track 3, frame 5"),
    (_inf_point, "video 'clip1': points hold 1 non-finite (NaN or infinite) values, first at track 0, frame 0"),
    (_float_video, "video 'clip1': video must be uint8 [T, H, W, 3] or JPEG bytes per frame; got float32"),
])
def test_damaged_benchmarks_are_refused_not_scored(evaluate, tapvid_dir, tmp_path, change, message):
    path = _broken_davis(tapvid_dir, tmp_path, change)
    proc = evaluate("benchmark=davis", f"benchmark.path={path}", "mlflow.enabled=false", "progress=false",
                    check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"chrono.evaluate: error: {path}, {message}")
    assert not (tmp_path / "run" / "results.json").exists()


def test_first_then_strided_into_one_results_file_keeps_both(evaluate, tapvid_dir, tmp_path, expected):
    results = tmp_path / "davis.json"
    results.write_text(json.dumps({"kinetics/first": {"average_jaccard": 0.5, "num_videos": 3}}))
    for mode in ("first", "strided"):
        evaluate("benchmark=davis", f"benchmark.path={tapvid_dir / 'tapvid_davis.pkl'}",
                 f"benchmark.query_mode={mode}", f"results_file={results}", "mlflow.enabled=false", "progress=false")
    saved = json.loads(results.read_text())
    assert set(saved) == {"kinetics/first", "davis/first", "davis/strided"}  # nothing written before is lost
    for key in ("davis/first", "davis/strided"):
        assert saved[key]["average_jaccard"] == pytest.approx(expected["expected"][key]["mean"]["average_jaccard"])


def test_bad_settings_are_one_line(evaluate, tapvid_dir, tmp_path):
    for args, message in ((["max_videos=0"], "max_videos=0: expected an integer >= 1 or null"),
                          (["benchmark.query_mode=middle"], "benchmark.query_mode=middle: expected one of first, strided"),
                          (["tracker=chrono", f"checkpoint={tmp_path}"], f"{tmp_path}: is a directory")):
        proc = evaluate("benchmark=davis", f"benchmark.path={tapvid_dir / 'tapvid_davis.pkl'}", "mlflow.enabled=false",
                        *args, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1].startswith(f"chrono.evaluate: error: {message}")
