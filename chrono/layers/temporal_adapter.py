"""Chrono's temporal adapter: a residual branch between ViT blocks that mixes features across time.

Parameter names equal the official checkpoints' (``norm, conv1, conv_pool, norm2, attn_temp.qkv,
attn_temp.proj, conv_upsample, conv2``). The ablation variants (``adapter.type``) keep every part but the
temporal mixer, which becomes ``conv_temp`` (chrono/layers/temporal_conv1d.py, temporal_conv3d.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chrono.layers.attention import SelfAttention
from chrono.layers.temporal_conv1d import TemporalConv1d
from chrono.layers.temporal_conv3d import TemporalConv3d

# Spatial down-sampling of the adapter's temporal mixer (conv_pool stride): the token grid must be a
# multiple of it, so with patch 14 the input size must be a multiple of 56.
ADAPTER_POOL = 4

# The temporal mixers: the reference's banded attention and the paper's ablation variants.
MIXERS = ("attention", "conv1d", "conv3d")
_CONVS = {"conv1d": TemporalConv1d, "conv3d": TemporalConv3d}


class TemporalAdapter(nn.Module):
    """Maps patch tokens [B, C, T, h, w] to a residual update of the same shape.

    GroupNorm(1, C) over the whole clip -> Conv3x3 C->width + ReLU -> Conv4x4 stride 4 + ReLU ->
    per spatial cell x + mix(LayerNorm(x)) along time -> ConvTranspose4x4 stride 4 + ReLU -> Conv3x3 width->C,
    zero-initialised so that a fresh adapter (of any mixer) is the identity of the block stack.
    h and w must be multiples of 4. The temporal mix (``mixer``) sees the frames |i - j| <= window // 2:

    - ``attention`` (the reference): ``attn_temp``, ``num_heads`` heads, qkv without bias, band mask
      |i - j| <= window // 2, no temporal position code; at a clip's ends it attends to the frames there are;
    - ``conv1d``: ``conv_temp``, a temporal convolution per cell, kernel 2 (window // 2) + 1, zero-padded;
    - ``conv3d``: ``conv_temp``, a convolution over (time, pooled cells), kernel (2 (window // 2) + 1, 3, 3).
    """

    def __init__(self, dim: int, width: int = 128, num_heads: int = 4, window: int = 13, mixer: str = "attention"):
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"unknown temporal mixer {mixer!r}; choose one of {', '.join(MIXERS)}")
        self.mixer = mixer
        self.norm = nn.GroupNorm(1, dim)
        self.conv1 = nn.Conv2d(dim, width, kernel_size=3, padding=1)
        self.conv_pool = nn.Conv2d(width, width, kernel_size=ADAPTER_POOL, stride=ADAPTER_POOL)
        self.norm2 = nn.LayerNorm(width)
        if mixer == "attention":
            self.attn_temp = SelfAttention(width, num_heads, qkv_bias=False, band=window // 2)
        else:
            self.conv_temp = _CONVS[mixer](width, 2 * (window // 2) + 1)
        self.conv_upsample = nn.ConvTranspose2d(width, width, kernel_size=ADAPTER_POOL, stride=ADAPTER_POOL)
        self.conv2 = nn.Conv2d(width, dim, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, h, w = x.shape
        if h % ADAPTER_POOL or w % ADAPTER_POOL:
            raise ValueError(f"the adapter needs a token grid divisible by {ADAPTER_POOL}, got {h}x{w}")
        if torch.is_grad_enabled() and not x.requires_grad and not x.is_contiguous():
            # PyTorch's channels-last GroupNorm backward on CPU segfaults when the input needs no gradient
            # (the first adapter behind a frozen ViT, i.e. the reference recipe); the contiguous kernel works.
            x = x.contiguous()
        x = self.norm(x)
        x = x.permute(0, 2, 1, 3, 4).reshape(B * T, C, h, w)
        x = F.relu(self.conv_pool(F.relu(self.conv1(x))))
        width, hp, wp = x.shape[1:]
        # One temporal sequence per (batch, cell): [(B hp wp), T, width].
        x = x.reshape(B, T, width, hp * wp).permute(0, 3, 1, 2).reshape(B * hp * wp, T, width)
        if self.mixer == "attention":
            x = x + self.attn_temp(self.norm2(x))
        else:
            x = x + self.conv_temp(self.norm2(x), (hp, wp))
        x = x.reshape(B, hp * wp, T, width).permute(0, 2, 3, 1).reshape(B * T, width, hp, wp)
        x = self.conv2(F.relu(self.conv_upsample(x)))
        return x.reshape(B, T, C, h, w).permute(0, 2, 1, 3, 4)
