"""chrono.train as users run it: the smoke experiment end to end, torchrun DDP, a Hydra sweep."""

import shutil
from pathlib import Path

import pytest
import torch

import chrono
from chrono.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow


def mlflow_runs(env):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("chrono-train")
    return client, client.search_runs([experiment.experiment_id]) if experiment else []


def test_smoke_experiment_end_to_end(tmp_path, command, isolated):
    out = tmp_path / "run"
    proc = command(["-m", "chrono.train", "experiment=smoke", f"hydra.run.dir={out}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "final evaluation on synthetic" in proc.stderr and "zero_motion" in proc.stderr
    assert "| untrained |" in (out / "final_eval.md").read_text()
    for name in ("last.ckpt", "best.ckpt"):
        tracker = chrono.load_tracker(out / "checkpoints" / name)
        assert tracker.cfg.backbone.depth == 3
    assert (out / "final_eval.md").is_file() and (out / "results.json").is_file()
    client, runs = mlflow_runs(isolated)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.params["name"] == "smoke"
    assert run.data.tags["mlflow.source.git.commit"]
    for key in ("train/loss", "train/lr", "train/grad_norm", "train/skipped_steps", "train/clips_per_s",
                "val/average_jaccard", "val/average_pts_within_thresh", "val/occlusion_accuracy"):
        assert key in run.data.metrics, key
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 4  # one per step (log_every=1)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "hydra" in artifacts and "final_eval.md" in artifacts


def test_torchrun_two_ranks_equal_one_process_with_the_same_global_batch(tmp_path, command, fast):
    if shutil.which("torchrun") is None and not Path(torch.__file__).parent.joinpath("distributed/run.py").exists():
        pytest.skip("torchrun is not available")
    common = [*fast, "steps=3", "dataset.num_workers=0"]
    single = tmp_path / "single"
    proc = command(["-m", "chrono.train", *common, "dataset.batch_size=2", f"hydra.run.dir={single}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = read_checkpoint(single / "checkpoints" / "last.ckpt")["model"]
    for attempt in range(5):  # every launch must exit cleanly (gloo used to abort at exit)
        ddp = tmp_path / f"ddp{attempt}"
        proc = command(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "chrono.train",
                        *common, "dataset.batch_size=1", f"hydra.run.dir={ddp}"])
        assert proc.returncode == 0, f"attempt {attempt}: {proc.stderr[-3000:]}"
        assert "terminate called" not in proc.stderr
        got = read_checkpoint(ddp / "checkpoints" / "last.ckpt")
        assert got["progress"]["step"] == 3
        for key, value in reference.items():
            # Adam normalises updates, so float-rounding differences in tiny gradients show up at ~lr scale
            torch.testing.assert_close(got["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_sweep_makes_a_parent_run_with_one_child_per_job(tmp_path, command, fast, isolated):
    sweep = tmp_path / "sweep"
    proc = command(["-m", "chrono.train", "-m", *[o for o in fast if not o.startswith("mlflow")], "steps=2",
                    "adapter=chrono,none", f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Sweep results" in proc.stdout and (sweep / "summary.md").is_file()
    _, runs = mlflow_runs(isolated)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert {c.data.params["adapter.enabled"] for c in children} == {"True", "False"}
