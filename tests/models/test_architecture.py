"""Backbone presets at their real sizes, DINOv2 naming, adapters."""

import pytest
import torch

from chrono.checkpoint import build_tracker
from chrono.models.backbones import backbone_config
from chrono.models.vit import BACKBONES, DinoVisionTransformer


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "name, vit_params, adapter_params",
    [("vits", 22_056_576, 16_241_280), ("vitb", 86_580_480, 25_986_048)],
)
def test_parameter_counts_equal_dinov2(name, vit_params, adapter_params):
    with torch.device("meta"):
        tracker = build_tracker(name)
    assert count(tracker.dino) == vit_params  # incl. mask_token, as the hub models
    assert len(tracker.adapter) == 11
    assert count(tracker.adapter) == adapter_params
    assert count(tracker.occ_linear) == 8


def test_dinov2_parameter_names():
    with torch.device("meta"):
        vit = DinoVisionTransformer(backbone_config("vits"))
    names = set(vit.state_dict())
    for key in ["cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight", "blocks.11.attn.qkv.bias",
                "blocks.0.ls1.gamma", "blocks.0.mlp.fc1.weight", "blocks.0.ls2.gamma", "norm.weight"]:
        assert key in names, key
    assert vit.state_dict()["pos_embed"].shape == (1, 1 + 37 * 37, 384)


def test_registers_and_swiglu_shapes():
    with torch.device("meta"):
        vit = DinoVisionTransformer(backbone_config("vitg", num_register_tokens=4))
    sd = vit.state_dict()
    assert sd["register_tokens"].shape == (1, 4, 1536)
    assert sd["blocks.0.mlp.w12.weight"].shape == (2 * 4096, 1536)  # DINOv2 ViT-g/14 hidden width 4096
    assert count(vit) == 1_136_480_768 + 4 * 1536  # dinov2_vitg14 + 4 registers


def test_registers_are_prefix_tokens_and_removed():
    torch.manual_seed(0)
    tiny = build_tracker(backbone_config("tiny", num_register_tokens=4), input_size=112)
    video = torch.rand(1, 4, 64, 64, 3) * 2 - 1
    feats = tiny.extract_features(video)
    assert tiny.dino.num_prefix_tokens == 5 and feats.shape == (1, 4, 8, 8, 192)


def test_position_embedding_native_grid_is_unchanged_and_interpolates_otherwise():
    vit = DinoVisionTransformer(BACKBONES["tiny"])
    same = vit.interpolate_pos_encoding(37 * 37, 518, 518)
    assert same is vit.pos_embed
    big = vit.interpolate_pos_encoding(64 * 64, 896, 896)
    assert big.shape == (1, 1 + 64 * 64, 192)
    torch.testing.assert_close(big[:, 0], vit.pos_embed[:, 0])  # the cls position is never resized


def test_fresh_adapters_are_identity():
    """Zero-initialised conv2: a new tracker gives the same features as its adapter-free twin."""
    torch.manual_seed(0)
    with_adapters = build_tracker("tiny", input_size=112)
    plain = build_tracker("tiny", {"enabled": False}, input_size=112)
    plain.load_state_dict({k: v for k, v in with_adapters.state_dict().items() if not k.startswith("adapter.")})
    video = torch.rand(1, 6, 48, 48, 3) * 2 - 1
    torch.testing.assert_close(with_adapters.extract_features(video), plain.extract_features(video))


def _perturb_first_frame_reach(tracker, frames=20):
    video = torch.rand(1, frames, 32, 32, 3) * 2 - 1
    changed = video.clone()
    changed[:, 0] = -changed[:, 0]
    with torch.no_grad():
        return (tracker.extract_features(video) - tracker.extract_features(changed)).abs().amax(dim=(0, 2, 3, 4))


def _tracker_with_live_adapters():
    torch.manual_seed(0)
    tracker = build_tracker("tiny", input_size=112)
    for adapter in tracker.adapter:
        torch.nn.init.normal_(adapter.conv2.weight, std=0.05)
    return tracker


def test_adapter_attention_reaches_window_half_width_per_adapter():
    """Without the clip-wide GroupNorm, frame 0 reaches 6 frames per adapter: 0..12 after two adapters."""
    tracker = _tracker_with_live_adapters()
    for adapter in tracker.adapter:
        adapter.norm = torch.nn.Identity()
    diff = _perturb_first_frame_reach(tracker)
    assert (diff[:13] > 1e-6).all()
    assert (diff[13:] == 0).all()


def test_adapter_groupnorm_spans_the_whole_clip():
    """GroupNorm(1, C) over [B, C, T, h, w] shares statistics across frames: every frame feels frame 0."""
    diff = _perturb_first_frame_reach(_tracker_with_live_adapters())
    assert (diff > 0).all()


def test_input_size_must_fit_patch_and_pooling():
    with pytest.raises(ValueError, match="multiple of 56"):
        build_tracker("tiny", input_size=224 + 14)
    build_tracker("tiny", {"enabled": False}, input_size=224 + 14)  # the plain baseline has no pooling
