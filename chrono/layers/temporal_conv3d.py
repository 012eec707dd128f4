"""A spatio-temporal 3-D convolution: the ``conv3d`` mixer of the temporal adapter (``adapter.type=conv3d``).

It replaces the adapter's banded temporal attention with a convolution over time and the adapter's pooled
cell grid at once: kernel (k, 3, 3) with an odd temporal k (``2 * (window // 2) + 1`` = 13 at the reference
window), zero padding in time and space.
"""

from __future__ import annotations

import torch
from torch import nn

SPATIAL_KERNEL = 3  # cells of the adapter's pooled grid per kernel side


class TemporalConv3d(nn.Conv3d):
    """Sequences [B * h * w, T, C] (cells in raster order, batch-major) and ``grid`` = (h, w) -> the same shape,
    through ``Conv3d(C, C, (k, 3, 3), padding=(k // 2, 1, 1))`` on the volume [B, C, T, h, w].

    Parameters ``weight`` [C, C, k, 3, 3] and ``bias`` [C].
    """

    def __init__(self, width: int, kernel_size: int):
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"temporal kernel must be odd and positive, got {kernel_size}")
        super().__init__(width, width, (kernel_size, SPATIAL_KERNEL, SPATIAL_KERNEL),
                         padding=(kernel_size // 2, SPATIAL_KERNEL // 2, SPATIAL_KERNEL // 2))

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        N, T, C = x.shape
        h, w = grid
        volume = x.reshape(N // (h * w), h, w, T, C).permute(0, 4, 3, 1, 2)
        return super().forward(volume).permute(0, 3, 4, 2, 1).reshape(N, T, C)
