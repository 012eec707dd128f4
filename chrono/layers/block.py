"""The DINOv2 transformer block: pre-norm attention and feed-forward, each scaled by LayerScale."""

from __future__ import annotations

import torch
from torch import nn

from chrono.layers.attention import SelfAttention
from chrono.layers.mlp import Mlp, SwiGLU


class LayerScale(nn.Module):
    """Per-channel scale ``x * gamma`` (DINOv2's ``ls1`` / ``ls2``)."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """x + ls1(attn(norm1(x))), then + ls2(mlp(norm2(x))), on [B, L, dim] tokens."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, ffn: str = "mlp", layerscale_init: float = 1.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads)
        self.ls1 = LayerScale(dim, layerscale_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        ffn_cls = {"mlp": Mlp, "swiglu": SwiGLU}[ffn]
        self.mlp = ffn_cls(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layerscale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))
