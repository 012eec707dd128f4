"""The pre-activation (ResNet v2) basic block of tapnet's ResNets, with TSM's optional temporal shift.

One block serves both baselines, as their sources agree on everything but the norm and the shift:
- TAPIR's ``BlockV2`` (google-deepmind/tapnet ``tapnet/torch/nets.py``): InstanceNorm, no shift;
- TAP-Net's ``TSMResNetBlock`` at depth 18 (``tapnet/models/tsm_resnet.py``): BatchNorm, temporal shift.

    pre      = relu(norm_0(x))
    shortcut = proj(pre) (1x1 conv, stride) if projection else x     # from the pre-activation, not from x
    pre      = temporal_shift(pre) if shift_fraction else pre         # the residual branch only (TSM)
    h        = conv_0(pre) (3x3, stride, SAME)
    h        = conv_1(relu(norm_1(h))) (3x3, SAME)
    out      = shortcut + h                                           # no ReLU after the sum

Convolutions have no bias; every padding is JAX's ``SAME`` (chrono/layers/same_padding.py).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from chrono.layers.same_padding import Conv2dSame
from chrono.layers.temporal_shift import temporal_shift


class PreActBlock(nn.Module):
    """[B * T, C_in, H, W] -> [B * T, C_out, ceil(H / stride), ceil(W / stride)].

    ``norm`` builds a normalisation layer from a channel count (one per use: ``norm_0``, ``norm_1``);
    ``shift_fraction`` > 0 shifts that share of the channels each way in time (needs ``num_frames``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, projection: bool,
                 norm: Callable[[int], nn.Module], shift_fraction: float = 0.0):
        super().__init__()
        if not projection and (stride != 1 or in_channels != out_channels):
            raise ValueError("a block that changes shape needs a projection shortcut")
        self.shift_fraction = shift_fraction
        self.norm_0 = norm(in_channels)
        self.proj = Conv2dSame(in_channels, out_channels, 1, stride) if projection else None
        self.conv_0 = Conv2dSame(in_channels, out_channels, 3, stride)
        self.norm_1 = norm(out_channels)
        self.conv_1 = Conv2dSame(out_channels, out_channels, 3, 1)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        pre = F.relu(self.norm_0(x))
        shortcut = x if self.proj is None else self.proj(pre)
        if self.shift_fraction:
            if num_frames is None:
                raise ValueError("a temporal-shift block needs num_frames")
            pre = temporal_shift(pre, num_frames, self.shift_fraction)
        h = self.conv_0(pre)
        h = self.conv_1(F.relu(self.norm_1(h)))
        return shortcut + h
