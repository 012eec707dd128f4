"""The paper-tables report (``python -m chrono.report``, chrono/paper/): which run fills which row, the tables in
the paper's layout, the CSV and the bar chart as a person sees it, from a real sweep."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from chrono.paper import chart
from chrono.paper.measured import Matcher, Measurement, newest, read_results_file, results_files
from chrono.paper.published import MAIN, RGB_STACKING, TABLES
from chrono.paper.tables import NO_RUN, fill, table_markdown, table_rows

DELTAS = ("pts_within_1", "pts_within_2", "pts_within_4", "pts_within_8", "pts_within_16", "average_pts_within_thresh")


def _cell(means: dict) -> str:
    """The measured cell text of the backbones table for these means."""
    values = [f"{100 * means[name]:.1f}" for name in DELTAS]
    return " ".join(values[:-1]) + " / " + values[-1]


def test_published_figures_agree_with_each_other_and_the_readme():
    from chrono.paper.published import ADAPTER_TYPE, PLACEMENT

    main = {row.model: row.published for row in MAIN.rows}
    for model, cells in main.items():
        for column, figures in cells.items():
            if (model, column) != ("dinov2_vitb", "davis/strided"):  # as published: 54.4 vs a mean of 53.7
                assert np.mean(figures[:5]) == pytest.approx(figures[5], abs=0.25), (model, column)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for model, name in (("chrono_vits", "Chrono ViT-S/14"), ("chrono_vitb", "Chrono ViT-B/14")):
        cells = [main[model][key][-1] for key in ("davis/first", "davis/strided", "kinetics/first", "kinetics/strided")]
        assert f"| {name} | " + " | ".join(f"{v:.1f}" for v in cells) + " |" in readme
    for table in (ADAPTER_TYPE, PLACEMENT):  # the reference variant is the backbones table's Chrono ViT-S/14
        assert table.rows[0].published["davis/strided"] == main["chrono_vits"]["davis/strided"][-1:]
    assert ADAPTER_TYPE.rows[-1].published["davis/strided"] == main["dinov2_vits"]["davis/strided"][-1:]


@pytest.mark.parametrize("facts,model", [
    ({"tracker": "chrono", "backbone.name": "vits"}, "chrono_vits"),  # an older run: reference adapters
    ({"tracker": "chrono", "backbone.name": "vitb", "adapter.enabled": "True", "adapter.type": "attention"}, "chrono_vitb"),
    ({"tracker": "chrono", "backbone.name": "vits", "adapter.enabled": False}, "dinov2_vits"),
    ({"tracker": "chrono", "backbone.name": "vits", "adapter.type": "none"}, "dinov2_vits"),
    ({"tracker": "chrono", "backbone.name": "vits", "adapter.type": "conv1d"}, "chrono_vits_conv1d"),
    ({"tracker": "chrono", "backbone.name": "vits", "adapter.placement": "early"}, "chrono_vits_early"),
    ({"tracker": "chrono", "backbone.name": "resnet18"}, "resnet18"),
    ({"tracker": "zero_motion", "backbone.name": "vits"}, "zero_motion"),  # eval-all passes the checkpoint to both
    ({"tracker": "chrono"}, None),  # an official checkpoint without a label: unknown
    ({"tracker": "predictions"}, None),
    ({"tracker": "predictions", "label": "chrono_vitb"}, "chrono_vitb"),
    ({"tracker": "chrono", "backbone.name": "vits", "label": "None"}, "chrono_vits"),
    ({"tracker": "chrono", "label": "no_such_row"}, None),
])
def test_which_run_fills_which_row(facts, model):
    assert Matcher().model(facts) == model


def test_backbone_names_map_the_paper_to_miniatures():
    matcher = Matcher({"vits": "tiny"})
    assert matcher.model({"tracker": "chrono", "backbone.name": "tiny", "adapter.type": "conv3d"}) == "chrono_vits_conv3d"
    assert matcher.model({"tracker": "chrono", "backbone.name": "vits"}) is None


def _write_config(folder: Path, config: dict) -> None:
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))


def test_results_files_of_evaluate_and_train(tmp_path):
    """An evaluation whose checkpoint came from a training run (whose config predates adapter.type) and that
    training run's own results.json with its final evaluation."""
    train = tmp_path / "train" / "run"
    _write_config(train, {"name": "mini", "backbone": {"name": "vits"}, "adapter": {"enabled": True, "width": 128}})
    (train / "results.json").write_text(json.dumps({
        "steps": 10, "final/davis/strided/mini/delta_avg": 61.5, "final/davis/strided/mini/AJ": 40.0,
        "final/davis/strided/zero_motion/delta_avg": 17.9, "final/davis/strided/untrained/delta_avg": 3.0}))
    run = tmp_path / "eval" / "run"
    _write_config(run, {"tracker": {"name": "chrono"}, "checkpoint": str(train / "checkpoints" / "best.ckpt"),
                        "label": None})
    means = {name: 0.5 for name in DELTAS}
    (run / "results.json").write_text(json.dumps({"davis/first": {**means, "num_videos": 3}}))
    found = results_files([str(tmp_path / "eval"), f"dinov2_vitb={train / 'results.json'}"])
    assert found == [(run / "results.json", None), (train / "results.json", "dinov2_vitb")]
    (m,) = read_results_file(run / "results.json", Matcher())
    assert (m.model, m.key, m.metrics) == ("chrono_vits", "davis/first", means)
    got = {(x.model, x.key): x.metrics for x in read_results_file(train / "results.json", Matcher())}
    assert got == {("chrono_vits", "davis/strided"): {"average_pts_within_thresh": 0.615, "average_jaccard": 0.4},
                   ("zero_motion", "davis/strided"): {"average_pts_within_thresh": 0.179}}
    labelled = read_results_file(train / "results.json", Matcher(), label="dinov2_vitb")
    assert {x.model for x in labelled} == {"dinov2_vitb", "zero_motion"}


def test_tables_newest_run_no_run_and_chart():
    old = Measurement("chrono_vits", "davis", "strided", {n: 0.1 for n in DELTAS}, "old", 1.0)
    new = Measurement("chrono_vits", "davis", "strided", {n: 0.7 for n in DELTAS}, "new", 2.0, "/g/visualize/index.md")
    partial = Measurement("chrono_vitb", "rgb_stacking", "strided", {"average_pts_within_thresh": 0.85}, "f", 1.0)
    filled = fill(MAIN, newest([new, old, partial]))
    text = table_markdown(filled, links_from=Path("/g"))
    assert "| Chrono ViT-S/14 | published | 24.8 46.2 65.8 77.5 83.1 / 59.5 | 24.0 49.2 71.2 82.8 87.9 / 63.0 |" in text
    assert "|  | measured | no run | no run | no run | 70.0 70.0 70.0 70.0 70.0 / 70.0 |" in text
    assert "|  | difference | – | – | – | +40.3 +13.6 -6.7 -16.8 -20.9 / +2.0 |" in text
    assert "| TSM-ResNet-18 | published | 7.8 28.1 55.2 71.4 80.2 / 48.6 | 7.3 23.1 46.7 66.6 79.2 / 44.6 | " \
           "9.15 33.2 64.6 79.2 86.5 / 54.5 |" in text
    assert "- Chrono ViT-S/14, DAVIS strided: new (newest of 2); worst and best videos: [index.md](visualize/index.md)" in text
    rows = table_rows(filled)
    resnet = [r for r in rows if r["model"] == "resnet18"]
    assert [r["kind"] for r in resnet] == ["published", "measured", "difference"]
    assert resnet[1]["status"] == NO_RUN and resnet[1]["DAVIS strided δ_avg"] is None
    assert resnet[0]["Kinetics strided δ^0"] == 10.5
    rgb = fill(RGB_STACKING, newest([partial]))
    assert "|  | measured | 85.0 |" in table_markdown(rgb) and "|  | difference | -1.0 |" in table_markdown(rgb)
    picture = chart.bar_chart(rgb)
    assert picture.shape == (chart.TOP + 3 * chart.ROW_H + chart.BOTTOM, chart.LABEL_W + chart.PANEL_W + 10, 3)
    y = chart.TOP + 5 + chart.BAR_H + 3 + chart.BAR_H // 2  # the measured bar of row 0 (Chrono ViT-B/14)
    bar = np.flatnonzero((picture[y] == chart.MEASURED).all(axis=-1))
    assert bar.min() <= chart.LABEL_W + 2 and bar.max() == pytest.approx(chart.LABEL_W + 0.85 * chart.BAR_W, abs=2)
    assert not (picture[y + chart.ROW_H] == chart.MEASURED).all(axis=-1).any()  # row 1: no run


def _blue_bar_end(picture, row: int, column: int) -> int | None:
    y = chart.TOP + chart.ROW_H * row + 5 + chart.BAR_H + 3 + chart.BAR_H // 2
    x0 = chart.LABEL_W + chart.PANEL_W * column
    found = np.flatnonzero((picture[y, x0 : x0 + chart.PANEL_W] == chart.MEASURED).all(axis=-1))
    return None if not len(found) else x0 + int(found.max())


@pytest.mark.slow
def test_report_from_a_real_sweep(evaluate, run_command, tapvid_dir, expected, tmp_path, mlflow_uri):
    """A zero_motion sweep on the fixtures (DAVIS and RGB-Stacking, both modes) and one run labelled chrono_vits
    that drew its worst/best videos, all in a private MLflow store; the report reads them from MLflow and from
    the results files alike."""
    paths = [f"paths.davis={tapvid_dir / 'tapvid_davis.pkl'}", f"paths.rgb_stacking={tapvid_dir / 'tapvid_rgb_stacking.pkl'}"]
    evaluate("benchmark=davis,rgb_stacking", "benchmark.query_mode=first,strided", "tracker=zero_motion", *paths,
             "mlflow.experiment=test-report", "progress=false", multirun=True)
    evaluate("benchmark=davis", "benchmark.query_mode=strided", "label=chrono_vits", "visualize=1", *paths,
             "mlflow.experiment=test-report", "progress=false")
    out = tmp_path / "report"
    proc = run_command(sys.executable, "-m", "chrono.report", "mlflow.experiments=[test-report,absent]", f"out={out}")
    markdown = (out / "paper_tables.md").read_text()
    assert markdown in proc.stdout
    assert "MLflow experiment 'absent' not found" in markdown
    mean = {key: value["mean"] for key, value in expected["expected"].items()}

    main = markdown[markdown.index("## Backbones"):markdown.index("## Ablation: adapter type")]
    assert f"|  | measured | no run | {_cell(mean['davis/first'])} | no run | {_cell(mean['davis/strided'])} |" in main
    assert main.count(f"|  | measured | no run | no run | no run | no run |") == 5  # five backbones without a run
    assert f"|  | measured | no run | no run | no run | {_cell(mean['davis/strided'])} |" in main  # chrono_vits
    diff = 100 * mean["davis/strided"]["average_pts_within_thresh"] - 68.0
    assert f"/ {diff:+.1f} |" in main
    link = main[main.index("worst and best videos: [index.md](") + 34:].split(")")[0]
    assert (out / link).resolve() == (tmp_path / "run" / "visualize" / "index.md").resolve()
    rgb = markdown[markdown.index("## RGB-Stacking"):]
    avg = 100 * mean["rgb_stacking/strided"]["average_pts_within_thresh"]
    assert f"| zero motion (floor, not in the paper) | published | – |\n|  | measured | {avg:.1f} |" in rgb
    assert "| Chrono ViT-S/14 | published | 84.3 |\n|  | measured | no run |" in rgb

    with open(out / "main.csv") as f:
        rows = {(r["model"], r["kind"]): r for r in csv.DictReader(f)}
    assert float(rows["zero_motion", "measured"]["DAVIS first δ_avg"]) == pytest.approx(
        100 * mean["davis/first"]["average_pts_within_thresh"])
    assert rows["resnet18", "measured"]["status"] == NO_RUN and rows["resnet18", "measured"]["DAVIS first δ_avg"] == ""
    assert float(rows["chrono_vits", "difference"]["DAVIS strided δ_avg"]) == pytest.approx(diff)
    with open(out / "measurements.csv") as f:
        sources = {(r["table"], r["model"], r["column"]): r["source"] for r in csv.DictReader(f)}
    assert sources["main", "chrono_vits", "DAVIS strided"].startswith("MLflow run ")
    assert sources["main", "resnet18", "DAVIS strided"] == NO_RUN

    # the chart as a person sees it: the right size, mostly white, grey published bars, blue measured bars where
    # (and only where) a run measured the row, as long as the figure
    for name, table in TABLES.items():
        with Image.open(out / f"{name}.png") as image:
            assert image.size == (chart.LABEL_W + chart.PANEL_W * len(table.columns) + 10,
                                  chart.TOP + chart.ROW_H * len(table.rows) + chart.BOTTOM)
    picture = np.asarray(Image.open(out / "main.png").convert("RGB"))
    assert 0.02 < (picture != 255).any(axis=-1).mean() < 0.5
    assert (picture == chart.PUBLISHED).all(axis=-1).sum() > 24 * 100
    order = [row.model for row in MAIN.rows]
    for model in order:
        for c, column in enumerate(MAIN.columns):
            end = _blue_bar_end(picture, order.index(model), c)
            if (model, column.key) in {("zero_motion", "davis/first"), ("zero_motion", "davis/strided"),
                                       ("chrono_vits", "davis/strided")}:
                want = chart.LABEL_W + chart.PANEL_W * c + chart.BAR_W * 100 * mean[column.key][DELTAS[-1]] / 100
                assert end == pytest.approx(want, abs=2), (model, column.key)
            else:
                assert end is None, (model, column.key)

    # the same tables from the results files alone
    files = run_command(sys.executable, "-m", "chrono.report", "mlflow.enabled=false",
                        f"results=[{tmp_path / 'multirun'},{tmp_path / 'run' / 'results.json'}]", f"out={tmp_path / 'r2'}",
                        "tables=[main]")
    again = (tmp_path / "r2" / "paper_tables.md").read_text()
    assert f"|  | measured | no run | {_cell(mean['davis/first'])} | no run | {_cell(mean['davis/strided'])} |" in again
    assert f"/ {diff:+.1f} |" in again and "## RGB-Stacking" not in again
    assert files.returncode == 0


@pytest.mark.slow
def test_mlflow_evaluation_inherits_its_training_runs_settings(tmp_path, monkeypatch):
    """An evaluation run whose checkpoint lies in a training run's folder (gone from disk: only MLflow knows it) fills
    that training run's row; the training run's own final evaluation fills its row too (δ_avg only)."""
    from chrono import mlflow_runs
    from chrono.paper.measured import read_mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    train_dir = str(tmp_path / "gone" / "train" / "run")
    with mlflow_runs.start_run("test-train", tags={"run_dir": train_dir}) as run:
        run.log_params({"name": "b", "backbone.name": "vitb", "adapter.enabled": True, "adapter.type": "conv3d"})
        run.log_metrics({"final/davis/strided/b/delta_avg": 55.0, "final/davis/strided/zero_motion/delta_avg": 17.0,
                         "final/davis/strided/untrained/delta_avg": 2.0})
    with mlflow_runs.start_run("test-eval", tags={"tracker": "chrono", "benchmark": "davis", "query_mode": "first"}) as run:
        run.log_params({"checkpoint": f"{train_dir}/checkpoints/best.ckpt", "label": None})
        run.log_metrics({f"davis/first/{name}": 0.25 for name in DELTAS})
    with mlflow_runs.start_run("test-eval", tags={"tracker": "chrono", "benchmark": "davis", "query_mode": "strided"}):
        pass  # a run without figures (e.g. killed before logging) adds nothing
    found, notes = read_mlflow(["test-eval", "test-train", "absent"], Matcher({"vitb": "vitb"}), uri)
    assert notes == [f"MLflow experiment 'absent' not found in {uri}"]
    got = sorted((m.model, m.key, m.metrics.get("average_pts_within_thresh")) for m in found)
    # no chrono_vitb_conv3d row exists: the evaluation (conv3d on ViT-B) fills none; ViT-B attention would
    assert got == [("zero_motion", "davis/strided", 0.17)]
    with mlflow_runs.start_run("test-train", tags={"run_dir": train_dir + "2"}) as run:
        run.log_params({"name": "s", "backbone.name": "vits", "adapter.type": "conv3d"})
        run.log_metrics({"final/davis/strided/s/delta_avg": 60.0})
    with mlflow_runs.start_run("test-eval", tags={"tracker": "chrono", "benchmark": "davis", "query_mode": "first"}) as run:
        run.log_params({"checkpoint": f"{train_dir}2/checkpoints/best.ckpt"})
        run.log_metrics({f"davis/first/{name}": 0.5 for name in DELTAS})
    found, _ = read_mlflow(["test-eval", "test-train"], Matcher(), uri)
    got = sorted((m.model, m.key, m.metrics.get("average_pts_within_thresh"), m.source.split()[0]) for m in found)
    assert got == [("chrono_vits_conv3d", "davis/first", 0.5, "MLflow"),
                   ("chrono_vits_conv3d", "davis/strided", 0.6, "MLflow"), ("zero_motion", "davis/strided", 0.17, "MLflow")]
