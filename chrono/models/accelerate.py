"""GPU speed-ups of a Chrono tracker that leave its parameters and the CPU float32 path untouched.

On CUDA, :func:`accelerate` turns on:
- bfloat16 autocast for the ViT and the adapters (features come back float32, the head runs in float32);
  in bf16 the attention dispatch (chrono/layers/attention.py) gets xFormers' memory-efficient kernels, or
  PyTorch SDPA's flash / memory-efficient kernels without xFormers, so the 4,097-token frames at 896 x 896
  never materialise their attention matrix;
- channels-last 2-D convolutions in the adapters, or in a CNN backbone (cuDNN's fast layout for bf16
  convolutions; a conv3d adapter's 3-D convolution keeps its layout);
- optionally ``torch.compile`` of every ViT block and adapter, or of a CNN backbone (in place: parameter names
  are kept).
On any other device it changes nothing: bf16 autocast on CPU is several times slower than float32, and the
float32 numbers are the reference's.

Stated tolerance of the bf16 path against float32, asserted by tests/models/test_accelerate.py where a GPU
is present (not yet run on one): tracks at 256 x 256 within 1 px for 90 % of point-frames. bf16 keeps 8
bits of mantissa, so features move by ~1e-2 and the argmax can change cell where the cost volume is flat.
"""

from __future__ import annotations

import torch
from torch import nn

from chrono.models.tracker import ChronoTracker


def channels_last_convs(module: nn.Module) -> None:
    """Every 2-D (transposed) convolution of ``module`` to channels-last, in place (other layers unchanged:
    channels-last exists for 4-D tensors only)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.to(memory_format=torch.channels_last)


def accelerate(tracker: ChronoTracker, bf16: bool = True, channels_last: bool = True, compile: bool = False) -> ChronoTracker:
    """Enable the CUDA fast paths on ``tracker`` (in place) and return it; a no-op unless it is on CUDA."""
    if not tracker._mean.is_cuda:
        return tracker
    if bf16:
        tracker.autocast_dtype = torch.bfloat16
    if channels_last:
        channels_last_convs(tracker.adapter if tracker.is_vit else tracker.cnn)
    if compile:
        for module in (*tracker.dino.blocks, *tracker.adapter) if tracker.is_vit else (tracker.cnn,):
            module.compile()
    return tracker
