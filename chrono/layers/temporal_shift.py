"""The temporal shift of TSM (Lin et al., ICCV 2019) as TAP-Net's TSM-ResNet applies it.

Follows google-deepmind/tapnet ``tapnet/models/tsm_utils.py`` ``temporal_shift_gpu`` (the mode TAP-Net
trains in, a [B, T, ...] video): ``n = int(C * fraction)`` channels come from the next frame and ``n`` from the
previous one, zeros past the clip's ends, and, like tapnet, the shifted groups change place (the last n
channels, taken from frame t + 1, go first; the first n, from frame t - 1, go last). Canonical TSM keeps the
channel positions; the difference is a fixed permutation of the next convolution's inputs, kept here so that
the layer is exactly tapnet's.
"""

from __future__ import annotations

import torch


def temporal_shift(x: torch.Tensor, num_frames: int, fraction: float) -> torch.Tensor:
    """Shift channels of frames across time.

    Args:
      x: [B * T, C, H, W] frames, batch-major (the T frames of one clip are consecutive).
      num_frames: T.
      fraction: share of the channels shifted each way (TAP-Net: 1/8).

    Returns:
      [B * T, C, H, W]: out[t, :n] = x[t + 1, C - n:], out[t, n:C - n] = x[t, n:C - n], out[t, C - n:] = x[t - 1, :n]
      (zeros where t + 1 or t - 1 is outside the clip), n = int(C * fraction).
    """
    C = x.shape[1]
    n = int(C * fraction)
    if n == 0:
        return x
    clip = x.reshape(-1, num_frames, *x.shape[1:])
    zeros = clip.new_zeros(clip.shape[0], 1, n, *clip.shape[3:])
    from_next = torch.cat((clip[:, 1:, C - n :], zeros), dim=1)
    from_previous = torch.cat((zeros, clip[:, :-1, :n]), dim=1)
    return torch.cat((from_next, clip[:, :, n : C - n], from_previous), dim=2).reshape(x.shape)
