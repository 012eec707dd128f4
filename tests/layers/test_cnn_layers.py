"""The CNN baselines' building blocks: JAX 'SAME' padding, TSM's temporal shift, the pre-activation block."""

import pytest
import torch
import torch.nn.functional as F

from chrono.layers.preact_block import PreActBlock
from chrono.layers.same_padding import Conv2dSame, max_pool_same, same_padding
from chrono.layers.temporal_shift import temporal_shift


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (256, 7, 2, (2, 3)),   # the stems: tapnet's torch port pads (2, 4), whose last row the 7x7/2 window never reads
    (256, 3, 2, (0, 1)),   # a strided 3x3 (tapnet's torch port: (0, 2))
    (256, 3, 1, (1, 1)),
    (256, 1, 2, (0, 0)),   # a strided projection reads no padding
    (255, 3, 2, (1, 1)),   # odd sizes: ceil(255 / 2) = 128 outputs
    (64, 3, 2, (0, 1)),    # the max-pool of TSM-ResNet's stem at 128 x 128 frames
])
def test_same_padding_is_jax_same(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected
    before, after = expected
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)


def test_stem_equals_tapnet_torch_padding():
    """tapnet/torch/nets.py pads the stem with F.pad(x, (2, 4, 2, 4)) and strided 3x3 convs with (0, 2, 0, 2)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    stem = Conv2dSame(3, 8, 7, 2)
    torch.testing.assert_close(stem(x), F.conv2d(F.pad(x, (2, 4, 2, 4)), stem.weight, stride=2), rtol=0, atol=0)
    conv = Conv2dSame(3, 8, 3, 2)
    torch.testing.assert_close(conv(x), F.conv2d(F.pad(x, (0, 2, 0, 2)), conv.weight, stride=2), rtol=0, atol=0)


def test_max_pool_same_never_picks_padding():
    x = -torch.rand(1, 2, 8, 8) - 1  # all negative: a zero-padded pool would answer 0 at the border
    out = max_pool_same(x, 3, 2)
    assert out.shape == (1, 2, 4, 4) and (out < -1).all()
    torch.testing.assert_close(out[..., -1, -1], x[..., 6:, 6:].amax(dim=(-1, -2)))


def _coded(B, T, C, H=2, W=2):
    """x[b, t, c] = 1000 b + 100 (t + 1) + c, as [B * T, C, H, W]."""
    b = torch.arange(B).view(B, 1, 1)
    t = torch.arange(T).view(1, T, 1)
    c = torch.arange(C).view(1, 1, C)
    return (1000 * b + 100 * (t + 1) + c).float()[..., None, None].expand(B, T, C, H, W).reshape(B * T, C, H, W)


def test_temporal_shift_is_tapnets_gpu_mode():
    B, T, C = 2, 4, 16
    n = int(C * 0.125)  # 2 channels each way
    x = _coded(B, T, C)
    out = temporal_shift(x, T, 0.125).reshape(B, T, C, 2, 2)[..., 0, 0]
    clip = x.reshape(B, T, C, 2, 2)[..., 0, 0]
    for t in range(T):
        # the first n channels come from the next frame's last n, the last n from the previous frame's first n
        expected_next = clip[:, t + 1, C - n:] if t + 1 < T else torch.zeros(B, n)
        expected_prev = clip[:, t - 1, :n] if t > 0 else torch.zeros(B, n)
        torch.testing.assert_close(out[:, t, :n], expected_next)
        torch.testing.assert_close(out[:, t, n:C - n], clip[:, t, n:C - n])
        torch.testing.assert_close(out[:, t, C - n:], expected_prev)
    # nothing crosses from one clip of the batch to the other: clip b's values all lie in [1000 b, 1000 (b + 1))
    assert ((out[1] == 0) | (out[1] >= 1000)).all() and (out[0] < 1000).all()
    assert temporal_shift(x, T, 0.0) is x
    assert int(64 * 0.125) == 8 and int(128 * 0.125) == 16  # TAP-Net's units 0 and 1


def test_preact_block_shapes_and_shortcut():
    torch.manual_seed(0)
    norm = lambda c: torch.nn.InstanceNorm2d(c, affine=True)  # noqa: E731
    block = PreActBlock(8, 16, 2, True, norm)
    assert block(torch.randn(6, 8, 9, 9)).shape == (6, 16, 5, 5)
    identity = PreActBlock(8, 8, 1, False, norm)
    torch.nn.init.zeros_(identity.conv_1.weight)  # residual branch off: the block is its (un-normalised) input
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(identity(x), x)
    with pytest.raises(ValueError, match="projection"):
        PreActBlock(8, 16, 1, False, norm)
    with pytest.raises(ValueError, match="num_frames"):
        PreActBlock(8, 8, 1, False, norm, shift_fraction=0.125)(x)
