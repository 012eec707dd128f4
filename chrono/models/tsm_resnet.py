"""TAP-Net's TSM-ResNet-18, trained from scratch as the ``backbone=tsm_resnet18`` baseline of the paper's main table.

Architecture as google-deepmind/tapnet ``tapnet/models/tsm_resnet.py`` (``TSMResNetV2``, ``TSMResNetUnit``,
``TSMResNetBlock``) and ``tapnet/models/tsm_utils.py`` (the shift), configured as ``tapnet/models/tapnet_model.py``
builds it (depth 18, ``channel_shift_fraction=[0.125, 0.125, 0, 0]``, BatchNorm):

- input: frames in [-1, 1] as they are; the clip's frames are batch-major (tapnet's 'gpu' mode, T from the tensor);
- stem: Conv 7x7 / 2, 3 -> 64, no bias, SAME; no norm, no ReLU; then max-pool 3x3 / 2, SAME;
- units 0-2 of 2 pre-activation basic blocks (chrono/layers/preact_block.py), widths (64, 128, 256) (tapnet's
  (256, 512, 1024) // 4 without bottleneck), a projection shortcut in every unit's first block (taken from the
  pre-activation), BatchNorm (eps 1e-5, momentum 0.1 = Haiku's decay 0.9; statistics over B x T x H x W);
- temporal shift of 1/8 of the channels each way on the residual branch of every block of units 0 and 1
  (after the shortcut is taken, before conv_0), zeros past the clip's ends, tapnet's channel order;
- output: unit 2 (TAP-Net's ``final_endpoint='tsm_resnet_unit_2'``), no final norm or ReLU; unit 3 is not built;
- strides: ``output_stride=4`` of tapnet's options (all units stride 1; the dilation rates it sets reach only
  bottleneck blocks, so depth 18 never dilates), giving the 64 x 64 x 256 grid at 256 x 256. TAP-Net itself used
  output stride 8 (32 x 32). Parameters: 2,785,600.

Initialisation as chrono/models/resnet.py (Haiku's default for convolutions; BatchNorm scale 1, offset 0).
TAP-Net synchronises BatchNorm across devices; chrono.train converts it to SyncBatchNorm for DDP on CUDA
(PyTorch's SyncBatchNorm has no CPU kernels, so CPU runs keep per-process statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from chrono.layers.same_padding import Conv2dSame, max_pool_same
from chrono.models.resnet import ResNetConfig, block_groups, frames_to_grid, haiku_init_, run_groups


@dataclass(frozen=True)
class TSMResNetConfig(ResNetConfig):
    """TAP-Net's TSM-ResNet-18 up to unit 2 at output stride 4 (see the module docstring): a ResNet config whose
    groups are tapnet's units, with ``shift_fractions[u]`` of the channels shifted each way in unit u."""

    arch: str = "tsm_resnet18"
    channels: tuple[int, ...] = (64, 128, 256)
    strides: tuple[int, ...] = (1, 1, 1)
    blocks: tuple[int, ...] = (2, 2, 2)
    shift_fractions: tuple[float, ...] = (0.125, 0.125, 0.0)

    ARCH: ClassVar[str] = "tsm_resnet18"
    STEM_STRIDE: ClassVar[int] = 4  # the stem's 7x7 / 2 conv and 3x3 / 2 max-pool
    PER_GROUP: ClassVar[tuple[str, ...]] = ("channels", "strides", "blocks", "shift_fractions")


def batch_norm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class TSMResNet(nn.Module):
    """TSM-ResNet on a clip: frames [B, T, 3, H, W] in [-1, 1] -> features [B, T, H/4, W/4, 256] (not normalised).

    The shift mixes neighbouring frames, so a clip must be given whole (T > 1 for any temporal context).
    Parameters ``stem.*``, ``units.{u}.{b}.*``; BatchNorm running statistics are buffers (``model.eval()`` uses them).
    """

    def __init__(self, cfg: TSMResNetConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = Conv2dSame(3, cfg.stem_channels, 7, 2)
        self.units = block_groups(cfg.stem_channels, cfg.channels, cfg.strides, cfg.blocks, batch_norm,
                                  cfg.shift_fractions)
        haiku_init_(self)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        B, T = frames.shape[:2]
        x = max_pool_same(self.stem(frames.reshape(B * T, *frames.shape[2:])), 3, 2)
        return frames_to_grid(run_groups(self.units, x, T), B, T)
