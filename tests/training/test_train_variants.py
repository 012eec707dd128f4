"""Every ablation variant and baseline backbone trains through chrono.train and its checkpoints reload; every
backbone and adapter option composes; the paper's sweeps live in their experiment files (every experiment
composes: tests/training/test_train_loop.py)."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import chrono
from chrono.checkpoint import read_checkpoint
from chrono.errors import ConfigError
from chrono.models.tracker import ChronoTracker, TrackerConfig
from chrono.train import build_model
from chrono.training.runtime import seed_everything

CONF = Path(chrono.__file__).resolve().parents[1] / "conf"

VARIANTS = {
    "conv1d": ["adapter=conv1d"],
    "conv3d": ["adapter=conv3d"],
    "early": ["adapter.placement=early", "+backbone.depth=4"],
    "late": ["adapter.placement=late", "+backbone.depth=4"],
    "alternate": ["adapter.placement=alternate", "+backbone.depth=4"],
    "resnet18": ["backbone=resnet18", "model.input_size=32"],
    "tsm_resnet18": ["backbone=tsm_resnet18", "model.input_size=32"],
}


@pytest.mark.slow  # a few seconds each on an idle machine, several times that on a shared one
@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_trains_and_its_checkpoint_reloads(variant, tmp_path, trainer, fast):
    result = trainer([*fast, "steps=2", *VARIANTS[variant]], tmp_path / "run")
    assert result["steps"] == 2
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = read_checkpoint(path)
    loaded = chrono.load_tracker(path)
    cfg = loaded.cfg
    if variant in ("conv1d", "conv3d"):
        assert cfg.adapter.type == variant and all(hasattr(a, "conv_temp") for a in loaded.adapter)
    elif variant in ("early", "late", "alternate"):
        assert cfg.adapter.placement == variant and len(loaded.adapter) == 2 and cfg.backbone.depth == 4
    else:
        assert cfg.backbone.arch == variant and not cfg.adapter.enabled and len(loaded.adapter) == 0
    # the weights that training wrote, rebuilt by hand, answer exactly as what load_tracker gives
    rebuilt = ChronoTracker(TrackerConfig.from_dict(state["tracker_config"]))
    rebuilt.load_state_dict(state["model"])
    rebuilt.eval()
    # trained weights, not a fresh model: the run's own initialisation (train() seeds, then builds the model),
    # moved by the 2 AdamW steps by about lr each (a different random init would differ by far more)
    config = OmegaConf.create(state["config"])
    seed_everything(config.seed)
    init = dict(build_model(config).named_parameters())  # parameters: BatchNorm's running statistics are no step's
    moved = {k: (state["model"][k] - v.detach()).abs().max().item() for k, v in init.items()}
    assert max(moved.values()) > 0
    assert max(moved.values()) <= 3 * 2 * config.optim.lr, max(moved.items(), key=lambda kv: kv[1])
    video, queries = torch.rand(1, 6, 64, 64, 3) * 2 - 1, torch.tensor([[[0.0, 10.0, 20.0], [5.0, 40.0, 50.0]]])
    with torch.no_grad():
        out, ref = loaded(video, queries), rebuilt(video, queries)
    for key in ("tracks", "occlusion", "expected_dist"):
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=0)


@pytest.mark.slow
def test_checkpoints_from_before_adapter_type_and_placement_resume(tmp_path, trainer, fast):
    root = tmp_path / "runs"
    trainer([*fast, "steps=3", "stop_after=2", "resume=auto"], root / "a")
    path = root / "a" / "checkpoints" / "last.ckpt"
    state = read_checkpoint(path)
    del state["tracker_config"]["adapter"]["type"], state["tracker_config"]["adapter"]["placement"]
    torch.save(state, path)
    assert trainer([*fast, "steps=3", "resume=auto"], root / "b")["steps"] == 3


@pytest.mark.parametrize("backbone", sorted(p.stem for p in (CONF / "backbone").glob("*.yaml")))
@pytest.mark.parametrize("adapter", sorted(p.stem for p in (CONF / "adapter").glob("*.yaml")))
def test_every_backbone_and_adapter_compose(backbone, adapter, composer):
    cfg = composer([f"backbone={backbone}"])  # a CNN backbone's file selects adapter=none
    assert cfg.backbone.name == backbone and cfg.adapter.enabled == (backbone not in ("resnet18", "tsm_resnet18"))
    cfg = composer([f"backbone={backbone}", f"adapter={adapter}"])
    assert cfg.adapter.enabled == (adapter != "none")


def test_paper_sweeps_are_in_their_files(composer):
    from hydra import compose, initialize_config_dir

    sweeps = {"paper/adapter_type": {"adapter": "chrono,conv1d,conv3d"},
              "paper/placement": {"adapter.placement": "all,early,late,alternate"},
              "paper/mini_adapter_type": {"adapter": "chrono,conv1d,conv3d,none"},
              "paper/mini_adapter_type_pre14": {"adapter": "chrono,conv1d,conv3d,none"},
              "paper/mini_placement": {"adapter.placement": "all,early,late,alternate"}}
    with initialize_config_dir(str(CONF), version_base="1.3"):
        for experiment, params in sweeps.items():
            cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
            assert dict(cfg.hydra.sweeper.params) == params, experiment
    minis = [composer([f"experiment=paper/mini_{t}"]) for t in ("adapter_type", "placement", "main_table")]
    assert len({m.steps for m in minis}) == 1  # equal steps for every miniature
    assert minis[1].backbone.depth == 5  # so that early, late and alternate differ
    pre14 = composer(["experiment=paper/mini_adapter_type_pre14"])  # the measured table's data, before issue #14
    assert (pre14.steps, pre14.dataset.num_tracks, pre14.dataset.track_sampling, pre14.dataset.color_scope,
            pre14.dataset.generate.options.grid_stride) == (minis[0].steps, 2048, "uniform", "clip", None)


def test_paper_recipe_takes_cnns_without_dinov2_and_refuses_adapters_on_them(tmp_path, composer):
    from chrono.train import build_model, train

    cfg = composer(["experiment=paper/main_table", "backbone=tsm_resnet18"])
    assert not cfg.adapter.enabled and not cfg.backbone.freeze and cfg.backbone.require_pretrained
    tracker = build_model(cfg)  # require_pretrained concerns DINOv2 backbones only
    assert tracker.cfg.input_size == 256 and tracker.grid_size == 64
    with pytest.raises(ConfigError, match="ViT backbones only"):
        train(composer(["experiment=smoke", "backbone=resnet18", "adapter=chrono", "mlflow.enabled=false"]),
              tmp_path / "run")
    with pytest.raises(ConfigError, match="backbone.pretrained is required"):
        train(composer(["experiment=paper/main_table", "backbone=vits", "adapter=none"]), tmp_path / "run")
