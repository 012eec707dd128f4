"""load_tracker on every checkpoint kind, and its errors."""

import pickle

import pytest
import torch

import chrono
from chrono.checkpoint import CheckpointError, build_tracker, tracker_checkpoint, tracker_from_config


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    tracker = build_tracker("tiny", input_size=112)
    for adapter in tracker.adapter:  # make the adapters non-trivial so a lost adapter weight shows
        torch.nn.init.normal_(adapter.conv2.weight, std=0.05)
    return tracker


def _video():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 5, 40, 48, 3, generator=g) * 2 - 1, torch.tensor([[[0.0, 10.0, 20.0], [3.0, 30.0, 5.0]]])


def test_suite_checkpoint_round_trip(tiny, tmp_path):
    path = tmp_path / "run.ckpt"
    torch.save({**tracker_checkpoint(tiny), "step": 7}, path)
    loaded = chrono.load_tracker(path)
    assert loaded.cfg == tiny.cfg and not loaded.training
    video, q = _video()
    with torch.no_grad():
        torch.testing.assert_close(loaded(video, q)["tracks"], tiny.eval()(video, q)["tracks"])


def test_dinov2_pretrain_file_gives_identity_adapters(tiny, tmp_path):
    path = tmp_path / "dinov2_tiny_pretrain.pth"
    torch.save(tiny.dino.state_dict(), path)
    tracker = chrono.load_tracker(path, input_size=112)
    assert len(tracker.adapter) == 2 and all(a.conv2.weight.abs().sum() == 0 for a in tracker.adapter)
    plain = chrono.load_tracker(path, input_size=112, adapter={"enabled": False})
    video, _ = _video()
    with torch.no_grad():
        torch.testing.assert_close(tracker.extract_features(video), plain.extract_features(video))
    torch.testing.assert_close(tracker.dino.state_dict()["pos_embed"], tiny.dino.state_dict()["pos_embed"])


def test_pretrained_backbone_from_hydra_groups(tiny, tmp_path):
    path = tmp_path / "dinov2_tiny_pretrain.pth"
    torch.save(tiny.dino.state_dict(), path)
    tracker = tracker_from_config({"name": "tiny", "pretrained": str(path), "freeze": True},
                                  {"enabled": True, "width": 128}, {"input_size": 112})
    torch.testing.assert_close(tracker.dino.blocks[2].mlp.fc2.weight, tiny.dino.blocks[2].mlp.fc2.weight)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        tracker_from_config({"name": "vits", "pretrained": str(path)}, {}, {"input_size": 112})
    # a folder stands for the hub file of the backbone's name (one value for a sweep over backbones)
    path.rename(tmp_path / "dinov2_tiny14_pretrain.pth")
    tracker = tracker_from_config({"name": "tiny", "pretrained": str(tmp_path)}, {"type": "conv1d"}, {"input_size": 112})
    torch.testing.assert_close(tracker.dino.blocks[0].attn.qkv.weight, tiny.dino.blocks[0].attn.qkv.weight)
    with pytest.raises(CheckpointError, match="dinov2_vits14_pretrain.pth: no such checkpoint"):
        tracker_from_config({"name": "vits", "pretrained": str(tmp_path)}, {}, {"input_size": 112})


def test_truncated_file_names_the_file(tiny, tmp_path):
    path = tmp_path / "broken.ckpt"
    torch.save(tracker_checkpoint(tiny), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="broken.ckpt"):
        chrono.load_tracker(path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        chrono.load_tracker(tmp_path / "nope.ckpt")
    foreign = tmp_path / "resnet.ckpt"
    torch.save({"state_dict": {"model.backbone.conv1.weight": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="not of Chrono"):
        chrono.load_tracker(foreign)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(pickle.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="junk.pth"):
        chrono.load_tracker(junk)


def test_mismatched_shapes_name_first_keys(tiny, tmp_path):
    ckpt = tracker_checkpoint(tiny)
    ckpt["model"]["adapter.0.conv1.weight"] = torch.zeros(3, 3)
    del ckpt["model"]["occ_linear.bias"]
    ckpt["model"]["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as err:
        chrono.load_tracker(path)
    msg = str(err.value)
    assert "bad.ckpt" in msg and "occ_linear.bias" in msg and "extra.weight" in msg and "adapter.0.conv1.weight" in msg


def test_official_layout_with_head_overrides(fixtures_dir):
    tracker = chrono.load_tracker(fixtures_dir / "chrono_official_tiny" / "model.ckpt", input_size=224, window=7)
    assert tracker.cfg.input_size == 224 and tracker.cfg.adapter.window == 7 and tracker.grid_size == 16
    with pytest.raises(TypeError, match="unknown tracker overrides"):
        chrono.load_tracker(fixtures_dir / "chrono_official_tiny" / "model.ckpt", depth=5)
