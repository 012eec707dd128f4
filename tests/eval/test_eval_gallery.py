"""``python -m chrono.evaluate ... visualize=K`` (chrono/eval/gallery.py): the K lowest- and highest-AJ videos drawn,
written to the run folder and logged to MLflow."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from chrono.eval.gallery import drawn_queries, pick_videos
from chrono.eval.tapvid import Queries, decode_entry, iter_entries, sample_queries
from chrono.visualize import draw_comparison_summary, point_colors


def _rows(ajs):
    return [{"index": i, "name": f"v{i}", "average_jaccard": aj} for i, aj in enumerate(ajs)]


def test_pick_videos_lowest_and_highest_once_each():
    picked = pick_videos(_rows([0.5, 0.1, float("nan"), 0.9, 0.3, 0.9]), 2)
    assert [(label, row["index"]) for label, row in picked] == [("worst1", 1), ("worst2", 4), ("best1", 3),
                                                                ("best2", 5)]
    # fewer videos than 2K: each drawn once, worst first
    picked = pick_videos(_rows([0.5, 0.1, 0.7]), 2)
    assert [(label, row["index"]) for label, row in picked] == [("worst1", 1), ("worst2", 0), ("best1", 2)]
    assert pick_videos(_rows([float("nan")]), 3) == []


def test_drawn_queries_one_per_track_then_spread():
    queries = Queries(np.zeros((7, 3)), np.zeros((7, 4, 2)), np.zeros((7, 4), bool), np.array([3, 5, 3, 1, 5, 9, 1]))
    assert drawn_queries(queries, 10).tolist() == [0, 1, 3, 5]  # each track's first query, in query order
    assert drawn_queries(queries, 2).tolist() == [0, 5]


def _colour_near(picture, xy, radii, colour):
    """How many pixels whose centre lies at a distance in ``radii`` from raster point ``xy`` have ``colour``."""
    ys, xs = np.mgrid[0 : picture.shape[0], 0 : picture.shape[1]]
    dist = np.hypot(xs + 0.5 - xy[0], ys + 0.5 - xy[1])
    near = (dist >= radii[0]) & (dist <= radii[1])
    return int((picture[near] == colour).all(axis=-1).sum())


@pytest.mark.slow
def test_visualize_writes_worst_and_best_and_logs_them(evaluate, tapvid_dir, tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    path = tapvid_dir / "tapvid_davis.pkl"
    proc = evaluate("benchmark=davis", f"benchmark.path={path}", "benchmark.query_mode=first", "tracker=zero_motion",
                    "visualize=1", "mlflow.experiment=test-gallery", "progress=false")
    run_dir = tmp_path / "run"
    with open(run_dir / "davis_first_videos.csv") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: float(r["average_jaccard"]))
    worst, best = rows[0], rows[-1]
    gallery = run_dir / "visualize"
    index = json.loads((gallery / "index.json").read_text())
    assert [(v["label"], v["video"]) for v in index["videos"]] == [("worst1", worst["name"]), ("best1", best["name"])]
    assert index["videos"][0]["AJ"] == pytest.approx(100 * float(worst["average_jaccard"]))
    files = {p.name for p in gallery.iterdir()}
    assert files == {"index.md", "index.json", f"worst1_{worst['name']}.png", f"worst1_{worst['name']}.mp4",
                     f"best1_{best['name']}.png", f"best1_{best['name']}.mp4"}
    assert f"worst and best videos: {gallery / 'index.md'}" in proc.stdout
    assert (gallery / f"worst1_{worst['name']}.mp4").stat().st_size > 1000

    # The picture as a person sees it: on every frame panel a disc on each (isolated) prediction and a ring on
    # each (isolated) ground-truth point, in the point's colour.
    video = next(decode_entry(e) for e in iter_entries("davis", path) if e.name == worst["name"])
    queries = sample_queries(video, "first")
    keep = drawn_queries(queries, 64)
    pred = np.repeat(queries.query_points[keep][:, None, [2, 1]], video.video.shape[0], axis=1)  # zero motion
    gt, gt_occluded = queries.target_points[keep], queries.occluded[keep]
    picture = np.asarray(Image.open(gallery / f"worst1_{worst['name']}.png").convert("RGB"))
    expected, panels = draw_comparison_summary(np.zeros_like(video.video), pred, np.zeros_like(gt_occluded), gt,
                                               gt_occluded, "caption")
    assert picture.shape == expected.shape
    colors = point_colors(len(keep))
    discs = rings = 0
    for name, panel in panels.items():
        if panel.frame is None:
            continue
        t, offset, s = panel.frame, np.array([panel.x0, panel.y0]), panel.scale
        for i in range(len(keep)):
            others = np.delete(np.arange(len(keep)), i)
            p, g = pred[i, t], gt[i, t]
            if np.min(np.linalg.norm(pred[others, t] - p, axis=-1)) > 6 and p[1] > 20:
                x, y = (p * s).astype(int) + offset
                assert picture[y, x].tolist() == colors[i].tolist(), (name, i)
                discs += 1
            clear = min(np.linalg.norm(pred[others, t] - g, axis=-1).min(), np.linalg.norm(gt[others, t] - g, axis=-1).min())
            if not gt_occluded[i, t] and clear > 10 and g[1] > 20:
                assert _colour_near(picture, g * s + offset, (2.2, 4.2), colors[i]) >= 6, (name, i)
                rings += 1
    assert discs >= 20 and rings >= 5

    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("test-gallery").experiment_id])
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "visualize")}
    assert {f"visualize/{name}" for name in files} == logged
    assert run.data.tags["run_dir"] == str(run_dir.resolve())
