"""chrono.train in-process: exact resume, checkpoints that load, gradient accumulation, configs."""

from pathlib import Path

import pytest
import torch

import chrono
from chrono.checkpoint import read_checkpoint



def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


def test_resume_gives_identical_weights(tmp_path, trainer, fast):
    straight = tmp_path / "straight" / "run"
    trainer([*fast, "steps=4", "checkpoint_every=2"], straight)
    sliced_root = tmp_path / "sliced"
    first = trainer([*fast, "steps=4", "checkpoint_every=2", "stop_after=2", "resume=auto"], sliced_root / "a")
    assert first["steps"] == 2
    second = trainer([*fast, "steps=4", "checkpoint_every=2", "resume=auto"], sliced_root / "b")
    assert second["steps"] == 4
    a, b = weights(straight / "checkpoints" / "last.ckpt"), weights(sliced_root / "b" / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the optimizer really moved the weights (a resume that restored nothing would differ from step 2 on)
    start = weights(sliced_root / "a" / "checkpoints" / "last.ckpt")
    assert any(not torch.equal(start[k], a[k]) for k in a)


def test_checkpoint_holds_training_state_and_loads_as_tracker(tmp_path, trainer, fast):
    trainer([*fast, "steps=2"], tmp_path / "run")
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = read_checkpoint(path)
    assert {"optimizer", "scheduler", "scaler", "progress", "rng", "config", "model"} <= set(state)
    assert state["progress"]["step"] == 2 and state["config"]["name"] == "smoke"
    tracker = chrono.load_tracker(path)
    assert tracker.cfg.input_size == 112 and len(tracker.adapter) == 2
    assert not list(tmp_path.glob("run/checkpoints/*.tmp"))


def test_frozen_backbone_is_not_updated(tmp_path, trainer, fast):
    trainer([*fast, "steps=2", "backbone.freeze=true"], tmp_path / "run")
    state = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    trained_init = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["config"]
    assert trained_init["backbone"]["freeze"] is True
    # only adapters and occ_linear are in the optimizer
    n_params = sum(len(g["params"]) for g in state["optimizer"]["param_groups"])
    assert n_params == sum(1 for k in state["model"] if not k.startswith("dino."))


def test_gradient_accumulation_matches_a_larger_batch(tmp_path, trainer, fast):
    """2 micro-batches of 1 clip == 1 batch of 2 clips (same examples, mean loss)."""
    trainer([*fast, "steps=2", "grad_accum=2", "dataset.batch_size=1"], tmp_path / "accum")
    trainer([*fast, "steps=2", "grad_accum=1", "dataset.batch_size=2"], tmp_path / "batch")
    a = weights(tmp_path / "accum" / "checkpoints" / "last.ckpt")
    b = weights(tmp_path / "batch" / "checkpoints" / "last.ckpt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)


CONF = Path(chrono.__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(str(p.relative_to(CONF / "experiment").with_suffix("")) for p in (CONF / "experiment").rglob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)  # conf/experiment/paper/* included
def test_every_experiment_composes(experiment, composer):
    cfg = composer([f"experiment={experiment}"])
    assert cfg.steps > 0
    if experiment != "chrono_paper":  # the recipe its chrono_vit* experiments share names no run
        assert cfg.name == experiment.replace("/", "_")


@pytest.mark.parametrize("experiment", ["chrono_vits", "chrono_vitb"])
def test_paper_recipes_refuse_to_start_without_dinov2_weights(experiment, composer, tmp_path):
    from chrono.train import train

    cfg = composer([f"experiment={experiment}"])
    assert cfg.backbone.name == experiment.split("_")[1] and cfg.backbone.freeze and cfg.dataset.name == "kubric"
    with pytest.raises(ValueError, match="backbone.pretrained is required"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_slurm_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir

    conf = Path(chrono.__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "experiment=smoke"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.timeout_min == 4320


def test_initial_model_is_the_model_training_starts_from(tmp_path, trainer, fast, composer):
    """The final table's 'untrained' row is the run's own starting point, not another random draw."""
    from chrono.train import initial_model

    trainer([*fast, "steps=1", "optim.lr=0"], tmp_path / "run")  # learning rate 0: the weights stay as built
    start = weights(tmp_path / "run" / "checkpoints" / "last.ckpt")
    rebuilt = initial_model(composer(fast), torch.device("cpu")).state_dict()
    assert start.keys() == rebuilt.keys()
    for key in start:
        assert torch.equal(start[key], rebuilt[key]), key
    other_seed = initial_model(composer([*fast, "seed=1"]), torch.device("cpu")).state_dict()
    assert any(not torch.equal(start[k], other_seed[k]) for k in start)


def _poison_occlusion_gradient(monkeypatch):
    """Every step, the gradient of occ_linear.weight becomes NaN (the other parameters' stay finite)."""
    import chrono.train

    build = chrono.train.build_model

    def poisoned(cfg):
        model = build(cfg)
        model.occ_linear.weight.register_hook(lambda grad: grad * float("nan"))
        return model

    monkeypatch.setattr(chrono.train, "build_model", poisoned)


@pytest.mark.parametrize("mode", ["skip", "zero_nan"])
def test_nonfinite_gradients(mode, tmp_path, trainer, fast, composer, monkeypatch):
    """skip (the default): the update is skipped and counted; zero_nan (the reference): the parameter holding a NaN
    gradient gets a zero gradient and the step happens for the others."""
    from chrono.train import initial_model

    start = initial_model(composer(fast), torch.device("cpu")).state_dict()
    _poison_occlusion_gradient(monkeypatch)
    result = trainer([*fast, "steps=1", f"optim.nonfinite={mode}"], tmp_path / "run")
    after = weights(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert torch.equal(after["occ_linear.weight"], start["occ_linear.weight"])
    moved = [k for k in after if not torch.equal(after[k], start[k])]
    if mode == "skip":
        assert (result["skipped_steps"], result["nan_zeroed_steps"]) == (1, 0) and moved == []
    else:
        assert (result["skipped_steps"], result["nan_zeroed_steps"]) == (0, 1)
        assert "occ_linear.bias" in moved and any(k.startswith("adapter.") for k in moved)


def test_zero_nan_gradients_leaves_inf_alone():
    from chrono.training.runtime import zero_nan_gradients

    params = [torch.nn.Parameter(torch.ones(3)) for _ in range(3)]
    for p, g in zip(params, ([1.0, float("nan"), 2.0], [float("inf"), 1.0, 1.0], [1.0, 2.0, 3.0])):
        p.grad = torch.tensor(g)
    assert zero_nan_gradients(params) == 1
    assert params[0].grad.tolist() == [0, 0, 0] and params[1].grad[0] == float("inf")


@pytest.mark.parametrize("precision,dtype", [("auto", None), ("bf16", torch.bfloat16), ("fp32", None)])
def test_validation_runs_at_val_precision(precision, dtype, tmp_path, trainer, fast, monkeypatch, fixtures_dir):
    import chrono.training.validation as validation
    from chrono.eval.baselines import ZeroMotionTracker

    seen, evaluate = [], validation.evaluate_benchmark

    def spy(tracker, *args, dtype=None, **kwargs):
        seen.append(dtype)
        return evaluate(ZeroMotionTracker(), *args, dtype=dtype, **kwargs)

    monkeypatch.setattr(validation, "evaluate_benchmark", spy)
    davis = fixtures_dir / "tapvid_tiny" / "tapvid_davis.pkl"
    trainer([*fast, "steps=1", "val.every=1", f"paths.davis={davis}",
             f"val.precision={precision}"], tmp_path / "run")
    assert seen == [dtype]


@pytest.mark.parametrize("override,message", [
    ("val.precision=fp16", "val.precision=fp16: expected one of auto, fp32, bf16"),
    ("optim.nonfinite=ignore", "optim.nonfinite=ignore: expected skip or zero_nan"),
    ("dataset.track_sampling=kubric", "dataset.track_sampling=kubric: expected reference or uniform"),
    ("dataset.color_scope=rank", "dataset.color_scope=rank: expected step or clip"),
])
def test_new_settings_are_checked_before_anything_runs(override, message):
    from chrono.cli import compose
    from chrono.errors import ConfigError
    from chrono.training.runtime import check_settings

    with pytest.raises(ConfigError, match=message):
        check_settings(compose("train", ["experiment=smoke", override]))


def test_checkpoints_from_before_the_new_settings_compare_with_what_they_did():
    """A checkpoint written before optim.nonfinite / track_sampling / color_scope existed skipped NaN steps, drew
    tracks uniformly and coloured per clip: resuming it asks for exactly those."""
    from omegaconf import OmegaConf

    from chrono.cli import compose
    from chrono.training.state import schedule_differences

    now = OmegaConf.to_container(compose("train", ["experiment=smoke"]), resolve=True)
    old = {**now, "optim": {k: v for k, v in now["optim"].items() if k != "nonfinite"},
           "dataset": {k: v for k, v in now["dataset"].items() if k not in ("track_sampling", "color_scope")}}
    assert schedule_differences(old, now) == ["dataset.color_scope: clip -> step",
                                              "dataset.track_sampling: uniform -> reference"]
    same = {**now, "dataset": {**now["dataset"], "track_sampling": "uniform", "color_scope": "clip"}}
    assert schedule_differences(old, same) == []
