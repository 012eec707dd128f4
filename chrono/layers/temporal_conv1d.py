"""A temporal 1-D convolution: the ``conv1d`` mixer of the temporal adapter (``adapter.type=conv1d``).

It replaces the adapter's banded temporal attention with fixed weights over the same frames: a
convolution along time with an odd kernel (``2 * (window // 2) + 1`` = 13 at the reference window), zero
padding at the clip's ends, applied to every spatial cell's sequence independently.
"""

from __future__ import annotations

import torch
from torch import nn


class TemporalConv1d(nn.Conv1d):
    """Sequences [N, T, C] -> [N, T, C] (N = batch x cells): ``Conv1d(C, C, kernel, padding=kernel // 2)`` along T.

    Parameters ``weight`` [C, C, kernel] and ``bias`` [C]. ``grid`` is accepted for the mixers' common
    signature and not used: every cell is its own sequence.
    """

    def __init__(self, width: int, kernel_size: int):
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"temporal kernel must be odd and positive, got {kernel_size}")
        super().__init__(width, width, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)
