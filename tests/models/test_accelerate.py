"""The CUDA fast paths: a no-op on CPU, the autocast plumbing, and (on a GPU) bf16 against float32."""

import pytest
import torch

import chrono
from chrono.models.accelerate import accelerate


def _tracker(device="cpu"):
    torch.manual_seed(0)
    tracker = chrono.load_tracker(None, backbone="tiny", input_size=112, device=device)
    for adapter in tracker.adapter:
        torch.nn.init.normal_(adapter.conv2.weight, std=0.02)
    return tracker


def _clip(device="cpu"):
    g = torch.Generator().manual_seed(1)
    video = (torch.rand(1, 4, 64, 64, 3, generator=g) * 2 - 1).to(device)
    queries = torch.tensor([[[0, 10.0, 20.0], [3, 40.0, 30.0], [1, 63.0, 1.0]]], device=device)
    return video, queries


def test_accelerate_leaves_a_cpu_tracker_untouched():
    tracker = _tracker()
    video, queries = _clip()
    with torch.no_grad():
        before = tracker(video, queries)
        assert accelerate(tracker, compile=True) is tracker and tracker.autocast_dtype is None
        after = tracker(video, queries)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_channels_last_reaches_the_2d_convs_of_every_adapter_type_and_cnn():
    from chrono.models.accelerate import channels_last_convs

    tracker = chrono.load_tracker(None, backbone="tiny", input_size=112, adapter={"type": "conv3d"})
    channels_last_convs(tracker.adapter)  # Module.to(channels_last) would fail on the 5-D conv3d weight
    adapter = tracker.adapter[0]
    assert adapter.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert adapter.conv_upsample.weight.is_contiguous(memory_format=torch.channels_last)
    assert adapter.conv_temp.weight.is_contiguous()
    cnn = chrono.load_tracker(None, backbone="resnet18", input_size=32)
    channels_last_convs(cnn.cnn)
    assert cnn.cnn.stem.weight.is_contiguous(memory_format=torch.channels_last)


def test_autocast_features_come_back_float32():
    # bf16 autocast on CPU is slow but runs the same code path as on CUDA.
    tracker = _tracker()
    video, _ = _clip()
    with torch.no_grad():
        reference = tracker.extract_features(video)
        tracker.autocast_dtype = torch.bfloat16
        low = tracker.extract_features(video)
    assert low.dtype == torch.float32 and low.shape == reference.shape
    assert torch.allclose(low.norm(dim=-1), torch.ones(()), atol=1e-3)  # still unit vectors
    assert (low - reference).abs().max() < 0.1


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_path_tracks_like_float32():
    """The stated tolerance of chrono.models.accelerate: 90 % of point-frames within 1 px at 256 x 256."""
    tracker = _tracker("cuda")
    video, queries = _clip("cuda")
    with torch.no_grad():
        exact = tracker(video, queries)["tracks"]
        fast = accelerate(tracker)(video, queries)["tracks"]
    assert tracker.autocast_dtype == torch.bfloat16
    assert all(a.conv1.weight.is_contiguous(memory_format=torch.channels_last) for a in tracker.adapter)
    err = (fast - exact).norm(dim=-1) * 256 / 64  # the clip is 64 x 64
    assert torch.quantile(err.flatten(), 0.9) < 1.0
