"""Chrono's temporal adapter: a residual branch between ViT blocks that mixes features across time.

Parameter names equal the official checkpoints' (``norm, conv1, conv_pool, norm2, attn_temp.qkv,
attn_temp.proj, conv_upsample, conv2``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chrono.layers.attention import SelfAttention

# Spatial down-sampling of the adapter's temporal attention (conv_pool stride): the token grid must be a
# multiple of it, so with patch 14 the input size must be a multiple of 56.
ADAPTER_POOL = 4


class TemporalAdapter(nn.Module):
    """Maps patch tokens [B, C, T, h, w] to a residual update of the same shape.

    GroupNorm(1, C) over the whole clip -> Conv3x3 C->width + ReLU -> Conv4x4 stride 4 + ReLU ->
    per spatial cell x + Attn(LayerNorm(x)) along time (``num_heads`` heads, qkv without bias,
    band mask |i - j| <= window // 2, no temporal position code) -> ConvTranspose4x4 stride 4 + ReLU
    -> Conv3x3 width->C, zero-initialised so that a fresh adapter is the identity of the block stack.
    h and w must be multiples of 4.
    """

    def __init__(self, dim: int, width: int = 128, num_heads: int = 4, window: int = 13):
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.conv1 = nn.Conv2d(dim, width, kernel_size=3, padding=1)
        self.conv_pool = nn.Conv2d(width, width, kernel_size=ADAPTER_POOL, stride=ADAPTER_POOL)
        self.norm2 = nn.LayerNorm(width)
        self.attn_temp = SelfAttention(width, num_heads, qkv_bias=False, band=window // 2)
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
        x = x + self.attn_temp(self.norm2(x))
        x = x.reshape(B, hp * wp, T, width).permute(0, 2, 3, 1).reshape(B * T, width, hp, wp)
        x = self.conv2(F.relu(self.conv_upsample(x)))
        return x.reshape(B, T, C, h, w).permute(0, 2, 1, 3, 4)
