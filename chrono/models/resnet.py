"""TAPIR's ResNet-18, trained from scratch as the ``backbone=resnet18`` baseline of the paper's main table.

Architecture as google-deepmind/tapnet ``tapnet/torch/nets.py`` (class ``ResNet`` with ``BlockGroup`` and
``BlockV2``) is configured by ``tapnet/torch/tapir_model.py`` (TAPIR; LocoTrack's PyTorch model uses the same):

- input: frames in [-1, 1] as they are (tapnet applies no ImageNet normalisation);
- stem: Conv 7x7 / 2, 3 -> 64, no bias, SAME padding, then **no** norm, ReLU or max-pool;
- 4 groups of 2 pre-activation basic blocks (chrono/layers/preact_block.py), widths (64, 128, 256, 256), a
  projection shortcut in the first block of every group (taken from the pre-activation), InstanceNorm
  (affine, eps 1e-5, no running statistics), no norm after the last group;
- strides: TAPIR uses (1, 2, 2, 1) (32 x 32 at 256 x 256 from group 3); here the default is (1, 2, 1, 1),
  the same network with group 2's stride removed, so that group 3 gives the 64 x 64 x 256 grid the tracking
  head needs at 256 x 256 (``strides`` is a constructor argument of tapnet's class, so this is one of its
  configurations; the parameter count, 5,212,480, does not depend on strides).

Initialisation (the source is a port that loads JAX weights, so it keeps PyTorch's defaults): convolutions as
Haiku's default that the JAX model was trained with, a normal truncated at 2 standard deviations with
std 1 / sqrt(fan_in); norms scale 1, offset 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from chrono.layers.preact_block import PreActBlock
from chrono.layers.same_padding import Conv2dSame


@dataclass(frozen=True)
class ResNetConfig:
    """TAPIR's ResNet with a 64 x 64 grid at 256 x 256 input (see the module docstring). Group g has
    ``blocks[g]`` blocks of width ``channels[g]``, the first of them strided by ``strides[g]``."""

    arch: str = "resnet18"
    stem_channels: int = 64
    channels: tuple[int, ...] = (64, 128, 256, 256)
    strides: tuple[int, ...] = (1, 2, 1, 1)
    blocks: tuple[int, ...] = (2, 2, 2, 2)

    ARCH: ClassVar[str] = "resnet18"
    STEM_STRIDE: ClassVar[int] = 2  # the stem's 7x7 / 2 conv
    PER_GROUP: ClassVar[tuple[str, ...]] = ("channels", "strides", "blocks")  # one entry per group each

    def __post_init__(self):
        for name in self.PER_GROUP:  # stored as tuples (Hydra and JSON give lists)
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.arch != self.ARCH or len({len(getattr(self, name)) for name in self.PER_GROUP}) != 1:
            raise ValueError(f"{type(self).__name__}: arch must be {self.ARCH!r} and {', '.join(self.PER_GROUP)} "
                             f"of one length, got {self}")

    @property
    def stride(self) -> int:
        """Input pixels per feature cell: the stem's times the groups' strides (4 by default)."""
        return self.STEM_STRIDE * math.prod(self.strides)

    @property
    def out_channels(self) -> int:
        return self.channels[-1]


def haiku_init_(module: nn.Module) -> None:
    """Haiku's default convolution init on every conv of ``module``: truncated normal (2 std), std 1 / sqrt(fan_in)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            std = 1.0 / math.sqrt(m.weight[0].numel())
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)


def block_groups(in_channels: int, channels, strides, blocks, norm: Callable[[int], nn.Module],
                 shift_fractions=None) -> nn.ModuleList:
    """Groups of pre-activation blocks: group g has ``blocks[g]`` blocks of width ``channels[g]``; its first block
    takes the group's stride and a projection shortcut; ``shift_fractions[g]`` is its temporal shift (TSM)."""
    groups = nn.ModuleList()
    for g, (width, stride, count) in enumerate(zip(channels, strides, blocks)):
        shift = shift_fractions[g] if shift_fractions else 0.0
        groups.append(nn.ModuleList(
            PreActBlock(in_channels if b == 0 else width, width, stride if b == 0 else 1, b == 0, norm, shift)
            for b in range(count)
        ))
        in_channels = width
    return groups


def run_groups(groups: nn.ModuleList, x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """[B * T, C, H, W] through every block of ``groups``."""
    for group in groups:
        for block in group:
            x = block(x, num_frames)
    return x


def frames_to_grid(x: torch.Tensor, batch: int, num_frames: int) -> torch.Tensor:
    """[B * T, C, h, w] -> [B, T, h, w, C]."""
    return x.reshape(batch, num_frames, *x.shape[1:]).permute(0, 1, 3, 4, 2)


def instance_norm(channels: int) -> nn.Module:
    """tapnet's ``BlockV2`` norm: per-frame, per-channel statistics, learned scale and offset."""
    return nn.InstanceNorm2d(channels, eps=1e-5, affine=True, track_running_stats=False)


class ResNet(nn.Module):
    """TAPIR's ResNet on every frame of a clip: frames [B, T, 3, H, W] in [-1, 1] -> features [B, T, H/4, W/4, 256]
    (not normalised; ceil division for sizes that are not multiples of 4). Parameters ``stem.*``, ``groups.{g}.{b}.*``."""

    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = Conv2dSame(3, cfg.stem_channels, 7, 2)
        self.groups = block_groups(cfg.stem_channels, cfg.channels, cfg.strides, cfg.blocks, instance_norm)
        haiku_init_(self)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        B, T = frames.shape[:2]
        x = self.stem(frames.reshape(B * T, *frames.shape[2:]))
        return frames_to_grid(run_groups(self.groups, x, T), B, T)
