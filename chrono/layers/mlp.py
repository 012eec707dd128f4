"""Feed-forward layers of the DINOv2 blocks (parameter names equal the hub models')."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 on [..., dim]; the ViT-S/B/L feed-forward."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """w12 -> silu(x1) * x2 -> w3 on [..., dim]; the ViT-g/14 feed-forward (DINOv2's SwiGLUFFNFused).

    ``hidden`` is the nominal mlp_ratio * dim; DINOv2 shrinks it to 2/3 and rounds up to a multiple of 8.
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)
