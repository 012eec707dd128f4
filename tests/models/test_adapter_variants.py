"""adapter.type and adapter.placement: which blocks get an adapter, identity at init, checkpoints of every variant."""

import pytest
import torch

import chrono
from chrono.checkpoint import CheckpointError, build_tracker, infer_tracker_config, tracker_checkpoint
from chrono.errors import ConfigError
from chrono.layers.temporal_adapter import MIXERS
from chrono.models.tracker import PLACEMENTS, AdapterConfig, TrackerConfig, adapter_blocks
from chrono.models.backbones import backbone_config


def test_placements_of_a_12_block_vit():
    assert adapter_blocks("all", 12) == tuple(range(11))  # the reference: after every block but the last
    assert adapter_blocks("early", 12) == (0, 1, 2, 3, 4, 5)
    assert adapter_blocks("late", 12) == (5, 6, 7, 8, 9, 10)
    assert adapter_blocks("alternate", 12) == (0, 2, 4, 6, 8, 10)
    assert adapter_blocks("early", 5) == (0, 1) and adapter_blocks("late", 5) == (2, 3)  # mini_placement's ViT
    assert adapter_blocks("alternate", 5) == (0, 2)
    with pytest.raises(ConfigError, match="placement"):
        adapter_blocks("middle", 12)


def test_unknown_type_or_placement_is_a_config_error():
    with pytest.raises(ConfigError, match="adapter.type=lstm"):
        AdapterConfig(type="lstm")
    with pytest.raises(ConfigError, match="adapter.placement=middle"):
        AdapterConfig(placement="middle")


def test_old_configs_without_type_and_placement_read_as_the_reference():
    stored = TrackerConfig(backbone=backbone_config("tiny"), input_size=112).to_dict()
    del stored["adapter"]["type"], stored["adapter"]["placement"]
    cfg = TrackerConfig.from_dict(stored)
    assert cfg.adapter.type == "attention" and cfg.adapter.placement == "all"


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_adapters_are_named_by_the_block_they_follow(placement):
    with torch.device("meta"):
        tracker = build_tracker(backbone_config("tiny", depth=5), {"placement": placement}, input_size=112)
    blocks = adapter_blocks(placement, 5)
    assert tracker.adapter.blocks == blocks and len(tracker.adapter) == len(blocks)
    assert {int(k.split(".")[1]) for k in tracker.state_dict() if k.startswith("adapter.")} == set(blocks)
    assert [a for a in tracker.adapter] == [tracker.adapter[b] for b in blocks]  # iteration: adapters, block order


def _twins(adapter: dict, depth=5):
    """A tracker with fresh adapters and the adapter-free tracker with the same ViT."""
    torch.manual_seed(0)
    vit = backbone_config("tiny", depth=depth)
    tracker = build_tracker(vit, adapter, input_size=112)
    plain = build_tracker(vit, {"enabled": False}, input_size=112)
    plain.load_state_dict({k: v for k, v in tracker.state_dict().items() if not k.startswith("adapter.")})
    return tracker, plain


@pytest.mark.parametrize("adapter", [{"type": t} for t in MIXERS] + [{"placement": p} for p in PLACEMENTS[1:]],
                         ids=lambda a: next(iter(a.values())))
def test_untrained_adapters_of_any_kind_leave_features_unchanged(adapter):
    tracker, plain = _twins(adapter)
    video = torch.rand(1, 6, 48, 48, 3) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(tracker.extract_features(video), plain.extract_features(video), rtol=0, atol=0)


def _live(tracker):
    for adapter in tracker.adapter:  # make the adapters non-trivial so a lost or misplaced adapter shows
        torch.nn.init.normal_(adapter.conv2.weight, std=0.05)
    return tracker.eval()


@pytest.mark.parametrize("type_, placement", [("conv1d", "late"), ("conv3d", "alternate"), ("attention", "early")])
def test_official_layout_of_any_variant_loads_with_type_and_placement_inferred(type_, placement, tmp_path):
    tracker, _ = _twins({"type": type_, "placement": placement, "width": 32, "window": 5})
    tracker = _live(tracker)
    lightning = {"state_dict": {f"model.{k}": v for k, v in tracker.state_dict().items()}}
    path = tmp_path / "variant.ckpt"
    torch.save(lightning, path)
    loaded = chrono.load_tracker(path, input_size=112, **({"window": 5} if type_ == "attention" else {}))
    a = loaded.cfg.adapter
    assert (a.type, a.placement, a.width) == (type_, placement, 32)
    assert a.window == 5  # a conv's kernel is read off its weight; the attention's window was given at load
    video, queries = torch.rand(1, 6, 48, 48, 3) * 2 - 1, torch.tensor([[[0.0, 10.0, 20.0], [4.0, 30.0, 5.0]]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(video, queries)["tracks"], tracker(video, queries)["tracks"])


def test_suite_checkpoint_of_a_variant_round_trips(tmp_path):
    tracker, _ = _twins({"type": "conv3d", "placement": "late", "window": 3})
    tracker = _live(tracker)
    path = tmp_path / "run.ckpt"
    torch.save(tracker_checkpoint(tracker), path)
    loaded = chrono.load_tracker(path)
    assert loaded.cfg == tracker.cfg and loaded.adapter.blocks == (2, 3)
    video = torch.rand(1, 5, 40, 48, 3) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.extract_features(video), tracker.extract_features(video))


def test_adapters_that_match_no_placement_are_refused(tmp_path):
    tracker, _ = _twins({})
    state = {k: v for k, v in tracker.state_dict().items() if not k.startswith("adapter.1.")}  # blocks 0, 2, 3
    with pytest.raises(CheckpointError, match=r"adapters after blocks \[0, 2, 3\].*match no placement"):
        infer_tracker_config(state, tmp_path / "odd.ckpt")
