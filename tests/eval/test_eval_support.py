"""Helpers the evaluation shares with training: dist (world of one), tracking (MLflow), sweep tables, configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from chrono import dist, mlflow_runs
from chrono.files import write_json_atomic
from chrono.results import table_csv, table_markdown
from chrono.sweep import collect_rows

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_dist_without_torchrun_is_a_world_of_one(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    with dist.distributed() as where:
        assert (where.rank, where.world_size, where.backend) == (0, 1, None)
        assert dist.is_main_process() and dist.all_gather_objects({"a": 1}) == [{"a": 1}]
        assert dist.broadcast_object(3) == 3
        assert dist.rank_zero_only(lambda: "ran")() == "ran"
        dist.barrier()
    assert dist.run_key()[:2] == "20"  # a timestamp


def test_owns_splits_every_index_exactly_once():
    worlds = [dist.DistInfo(rank=r, world_size=3) for r in range(3)]
    owners = [[r.rank for r in worlds if dist.owns(i, r)] for i in range(10)]
    assert all(len(o) == 1 for o in owners)
    assert [o[0] for o in owners] == [i % 3 for i in range(10)]


def test_run_key_is_shared_by_torchrun_ranks(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc123")
    assert dist.run_key() == "torchrun-abc123"


def test_tracking_uri_and_parent_run(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert mlflow_runs.tracking_uri() == f"sqlite:///{mlflow_runs.project_root() / 'outputs' / 'mlflow.db'}"
    assert mlflow_runs.artifact_location() == (mlflow_runs.project_root() / "outputs" / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'store.db'}")
    assert mlflow_runs.tracking_uri() == f"sqlite:///{tmp_path / 'store.db'}"
    assert mlflow_runs.artifact_location() == (tmp_path / "mlartifacts").as_uri()  # beside the store, not ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert mlflow_runs.artifact_location() is None
    monkeypatch.delenv(mlflow_runs.PARENT_RUN_ENV, raising=False)
    assert mlflow_runs.parent_run_id(tmp_path) is None
    (tmp_path / mlflow_runs.PARENT_RUN_FILE).write_text("from-file\n")
    assert mlflow_runs.parent_run_id(tmp_path) == "from-file"
    monkeypatch.setenv(mlflow_runs.PARENT_RUN_ENV, "from-env")
    assert mlflow_runs.parent_run_id(tmp_path) == "from-env"


def test_flatten_config_resolves_and_skips_hydra():
    cfg = OmegaConf.create({"a": {"b": 1, "c": "${a.b}"}, "l": [1, 2], "hydra": {"x": 1}, "n": None})
    assert mlflow_runs.flatten_config(cfg) == {"a.b": "1", "a.c": "1", "l": "[1, 2]", "n": "None"}


def test_git_commit_of_the_checkout():
    commit = mlflow_runs.git_commit()
    assert commit is None or len(commit.split("-")[0]) == 40


def _job(sweep: Path, num: int, overrides: list[str], cfg: dict, results: dict | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(cfg), job / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if results is not None:
        write_json_atomic(job / "results.json", results)


def test_sweep_table_from_keyed_and_flat_results(tmp_path):
    keyed = tmp_path / "keyed"
    _job(keyed, 0, ["tracker=zero_motion"], {"tracker": {"name": "zero_motion"}},
         {"davis/first": {"average_jaccard": 0.25, "occlusion_accuracy": 0.5, "num_videos": 3}})
    _job(keyed, 1, ["tracker=chrono"], {"tracker": {"name": "chrono"}},
         {"davis/first": {"average_jaccard": 0.5, "occlusion_accuracy": 0.75, "num_videos": 3}})
    _job(keyed, 2, ["tracker=broken"], {"tracker": {"name": "broken"}}, None)
    rows, missing = collect_rows(
        keyed, key_column="benchmark", id_fields={"tracker": "tracker.name"},
        columns={"average_jaccard": "AJ", "occlusion_accuracy": "OA", "num_videos": "videos"},
        percent=["average_jaccard", "occlusion_accuracy"], sort_by=["benchmark", "tracker"],
    )
    assert rows == [
        {"tracker": "chrono", "benchmark": "davis/first", "AJ": 50.0, "OA": 75.0, "videos": 3},
        {"tracker": "zero_motion", "benchmark": "davis/first", "AJ": 25.0, "OA": 50.0, "videos": 3},
    ]
    assert missing == [str(keyed / "2")]
    assert "| chrono | davis/first | 50.0 | 75.0 | 3 |" in table_markdown(rows)
    assert table_csv(rows).splitlines()[0] == "tracker,benchmark,AJ,OA,videos"

    flat = tmp_path / "flat"
    for num, lr in enumerate((0.1, 0.01)):
        _job(flat, num, [f"optim.lr={lr}"], {"optim": {"lr": lr}}, {"val/aj": lr * 2, "step": 10})
    rows, missing = collect_rows(flat)
    assert rows == [{"job": "optim.lr=0.1", "val/aj": 0.2, "step": 10}, {"job": "optim.lr=0.01", "val/aj": 0.02, "step": 10}]
    assert not missing


@pytest.mark.parametrize("benchmark", ["davis", "rgb_stacking", "kinetics", "robotap", "synthetic"])
@pytest.mark.parametrize("tracker", ["chrono", "zero_motion"])
def test_every_config_composes(benchmark, tracker):
    from hydra import compose, initialize_config_dir

    import chrono.checkpoint
    import chrono.evaluate  # noqa: F401  (registers the chrono.* resolvers)

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"benchmark={benchmark}", f"tracker={tracker}", "paths.davis=/d.pkl"])
    assert cfg.benchmark.name == benchmark and cfg.tracker.name == tracker
    assert cfg.benchmark.format in ("davis", "rgb_stacking", "kinetics", "robotap")
    assert cfg.benchmark.query_mode in ("first", "strided") and list(cfg.benchmark.resolution) == [256, 256]
    assert cfg.benchmark.path == ("/d.pkl" if benchmark == "davis" else None)
    allowed = set(chrono.checkpoint.HEAD_OVERRIDES + chrono.checkpoint.ADAPTER_OVERRIDES) | {"name"}
    assert set(cfg.tracker) <= allowed
    json.dumps(OmegaConf.to_container(cfg, resolve=True))
