"""JAX/TensorFlow ``padding='SAME'`` for PyTorch 2-D convolutions and pooling.

tapnet's networks were written in JAX with ``SAME`` padding: the output has ceil(size / stride) cells and
the padding is split with the smaller half before (top, left), the larger after. PyTorch's symmetric
``padding=k // 2`` is not the same for strided layers (it shifts the window by a pixel), so the ResNet
baselines (chrono/models/resnet.py, tsm_resnet.py) pad explicitly with these functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one spatial dimension of ``size`` for JAX's ``SAME``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """[N, C, H, W] padded for a ``kernel`` x ``kernel`` window at ``stride`` as JAX's ``SAME`` does."""
    top, bottom = same_padding(x.shape[-2], kernel, stride)
    left, right = same_padding(x.shape[-1], kernel, stride)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


class Conv2dSame(nn.Conv2d):
    """A square, bias-free ``nn.Conv2d`` with JAX ``SAME`` padding: [N, C_in, H, W] -> [N, C_out, ceil(H/s), ceil(W/s)]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self.kernel_size[0], self.stride[0]))


def max_pool_same(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """Max-pooling [N, C, H, W] with JAX ``SAME`` padding (padded cells are -inf, so they never win)."""
    return F.max_pool2d(pad_same(x, kernel, stride, value=float("-inf")), kernel, stride)
