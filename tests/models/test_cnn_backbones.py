"""backbone=resnet18 and backbone=tsm_resnet18: the 64 x 64 grid at 256 input, tapnet's sizes, the tracker around them."""

import pytest
import torch

import chrono
from chrono.checkpoint import build_tracker, tracker_checkpoint, tracker_from_config
from chrono.errors import ConfigError
from chrono.models.backbones import backbone_config, build_cnn

CNNS = ["resnet18", "tsm_resnet18"]


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name, params", [("resnet18", 5_212_480), ("tsm_resnet18", 2_785_600)])
def test_parameter_counts_equal_tapnets(name, params):
    """TAPIR's ResNet (tapnet/torch/nets.py, widths 64-128-256-256, projections in every group) and TAP-Net's
    TSM-ResNet-18 up to unit 2 (BatchNorm scale and offset included); strides do not change them."""
    with torch.device("meta"):
        assert count(build_cnn(backbone_config(name))) == params


@pytest.mark.slow  # one 256 x 256 frame pair through each network (~10 s on a loaded 2-core machine)
@pytest.mark.parametrize("name", CNNS)
def test_64x64_l2_normalised_grid_at_256_input(name):
    torch.manual_seed(0)
    tracker = build_tracker(name)
    assert tracker.cfg.input_size == 256 and tracker.grid_size == 64 and len(tracker.adapter) == 0
    video = torch.rand(1, 2, 256, 256, 3) * 2 - 1
    with torch.no_grad():
        raw = tracker.cnn(video.permute(0, 1, 4, 2, 3))
        feats = tracker.extract_features(video)
    assert raw.shape == feats.shape == (1, 2, 64, 64, 256)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(1, 2, 64, 64))


def _frame_reach(net, frames=12, size=32):
    """How much each frame's features move when frame 0 changes."""
    torch.manual_seed(0)
    video = torch.rand(1, frames, 3, size, size) * 2 - 1
    changed = video.clone()
    changed[:, 0] = -changed[:, 0]
    with torch.no_grad():
        return (net(changed) - net(video)).abs().amax(dim=(0, 2, 3, 4))


def test_resnet_sees_each_frame_alone():
    diff = _frame_reach(build_cnn(backbone_config("resnet18")))
    assert diff[0] > 0 and (diff[1:] == 0).all()


def test_tsm_reaches_four_frames_through_four_shifting_blocks():
    """Units 0 and 1 shift (2 blocks each), unit 2 does not: frame 0 reaches frames 0..4 (BatchNorm in eval
    mode, so that batch statistics do not spread it everywhere)."""
    net = build_cnn(backbone_config("tsm_resnet18")).eval()
    diff = _frame_reach(net)
    assert (diff[:5] > 0).all() and (diff[5:] == 0).all()
    no_shift = build_cnn(backbone_config("tsm_resnet18", shift_fractions=(0.0, 0.0, 0.0))).eval()
    assert (_frame_reach(no_shift)[1:] == 0).all()


def test_tsm_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    net = build_cnn(backbone_config("tsm_resnet18"))
    before = net.units[0][0].norm_0.running_mean.clone()
    net.train()(torch.rand(1, 2, 3, 16, 16) * 2 - 1)
    assert not torch.equal(net.units[0][0].norm_0.running_mean, before)
    net.eval()
    video = torch.rand(2, 2, 3, 16, 16) * 2 - 1
    with torch.no_grad():  # eval: one clip's features do not depend on the other clips of the batch
        torch.testing.assert_close(net(video)[:1], net(video[:1]))


@pytest.mark.parametrize("name", CNNS)
def test_cnn_tracker_parameters_checkpoint_and_freezing(name, tmp_path):
    torch.manual_seed(0)
    tracker = build_tracker(name, input_size=32).eval()
    names = {k.split(".")[0] for k in tracker.state_dict()}
    assert names == {"cnn", "occ_linear"}
    path = tmp_path / "cnn.ckpt"
    torch.save(tracker_checkpoint(tracker), path)
    loaded = chrono.load_tracker(path)
    assert loaded.cfg == tracker.cfg and loaded.cfg.backbone.arch == name
    video, queries = torch.rand(1, 4, 40, 48, 3) * 2 - 1, torch.tensor([[[0.0, 10.0, 20.0], [3.0, 30.0, 5.0]]])
    with torch.no_grad():
        out, ref = loaded(video, queries), tracker(video, queries)
    for key in ("tracks", "occlusion", "expected_dist"):
        torch.testing.assert_close(out[key], ref[key])
    tracker.freeze_backbone(True)
    assert not any(p.requires_grad for p in tracker.cnn.parameters()) and tracker.occ_linear.weight.requires_grad
    tracker.freeze_backbone(False)
    assert all(p.requires_grad for p in tracker.cnn.parameters())


def test_adapters_with_a_cnn_are_refused():
    with pytest.raises(ConfigError, match="ViT backbones only"):
        build_tracker("resnet18", {"enabled": True})
    with pytest.raises(ConfigError, match="trained from scratch"):
        tracker_from_config({"name": "tsm_resnet18", "pretrained": "dinov2_vits14_pretrain.pth"}, {"enabled": False})
    with pytest.raises(ValueError, match="multiple of 4"):
        build_tracker("resnet18", input_size=30)


def test_cnn_fields_override_from_hydra_lists():
    tracker = tracker_from_config({"name": "resnet18", "channels": [8, 16, 32, 32], "freeze": False},
                                  {"enabled": False}, {"input_size": 32})
    assert tracker.cfg.backbone.channels == (8, 16, 32, 32) and tracker.grid_size == 8
    with pytest.raises(ConfigError, match="allowed"):
        tracker_from_config({"name": "resnet18", "depth": 3}, {"enabled": False})
