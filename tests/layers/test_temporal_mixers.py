"""The temporal adapter's mixers (adapter.type): shapes, reach in time and space, the adapter's zero-init output."""

import pytest
import torch

from chrono.layers.temporal_adapter import MIXERS, TemporalAdapter
from chrono.layers.temporal_conv1d import TemporalConv1d
from chrono.layers.temporal_conv3d import TemporalConv3d

B, T, H, W, C = 2, 16, 3, 4, 8


def _reach(mixer, change):
    """|mixer(x') - mixer(x)| per (frame, cell) where x' changes x at (batch 0, frame 0, cell ``change``)."""
    torch.manual_seed(0)
    x = torch.randn(B * H * W, T, C)
    y = x.clone()
    y[change, 0] += 1.0
    with torch.no_grad():
        diff = (mixer(y, (H, W)) - mixer(x, (H, W))).abs().amax(-1)  # [B * H * W, T]
    return diff.reshape(B, H, W, T)


def test_conv1d_mixes_each_cell_over_the_window_only():
    diff = _reach(TemporalConv1d(C, 13), change=0)
    assert diff.shape == (B, H, W, T)
    assert (diff[0, 0, 0, :7] > 0).all() and (diff[0, 0, 0, 7:] == 0).all()  # frames 0..6: |i - j| <= 6
    diff[0, 0, 0] = 0
    assert (diff == 0).all()  # no other cell, no other clip


def test_conv3d_mixes_neighbouring_cells_and_frames():
    cell = 1 * W + 1  # cell (1, 1) of batch 0
    diff = _reach(TemporalConv3d(C, 5), change=cell)
    touched = diff[0].amax(-1) > 0  # [H, W]
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[0:3, 0:3] = True  # the 3 x 3 neighbourhood of (1, 1)
    assert torch.equal(touched, expected)
    assert (diff[0, 1, 1, :3] > 0).all() and (diff[0, 1, 1, 3:] == 0).all()  # kernel 5: frames 0..2
    assert (diff[1] == 0).all()


@pytest.mark.parametrize("kernel", [0, 4])
def test_conv_mixers_need_an_odd_kernel(kernel):
    for cls in (TemporalConv1d, TemporalConv3d):
        with pytest.raises(ValueError, match="odd"):
            cls(C, kernel)


@pytest.mark.parametrize("mixer", MIXERS)
def test_every_adapter_starts_as_a_zero_update_and_learns(mixer):
    torch.manual_seed(0)
    adapter = TemporalAdapter(16, width=8, num_heads=2, window=5, mixer=mixer)
    x = torch.randn(1, 16, 6, 8, 8, requires_grad=True)
    out = adapter(x)
    assert out.shape == x.shape and (out == 0).all()
    out.sum().backward()
    assert adapter.conv2.weight.grad.abs().sum() > 0  # the zero-initialised output conv gets a gradient


def test_parameter_names_per_mixer():
    names = {m: {k.split(".")[0] for k in TemporalAdapter(16, 8, 2, 13, m).state_dict()} for m in MIXERS}
    official = {"norm", "conv1", "conv_pool", "norm2", "attn_temp", "conv_upsample", "conv2"}
    assert names["attention"] == official
    assert names["conv1d"] == names["conv3d"] == official - {"attn_temp"} | {"conv_temp"}
    assert TemporalAdapter(16, 8, 2, 13, "conv1d").conv_temp.weight.shape == (8, 8, 13)
    assert TemporalAdapter(16, 8, 2, 12, "conv3d").conv_temp.weight.shape == (8, 8, 13, 3, 3)  # 2 (12 // 2) + 1
    with pytest.raises(ValueError, match="unknown temporal mixer"):
        TemporalAdapter(16, 8, 2, 13, "lstm")
