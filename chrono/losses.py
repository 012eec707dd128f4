"""The reference training loss (TAPIR's, as Chrono trains it), in 256 x 256 pixel units."""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from chrono.coords import rescale_xy

LOSS_RESOLUTION = (256, 256)


def huber(tracks: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    """Per-point Huber loss [...] of the distance between (x, y) points [..., 2] (eps 1e-6 in the sqrt)."""
    dist_sq = ((tracks - target) ** 2).sum(-1)
    dist = torch.sqrt(dist_sq + 1e-6)
    return torch.where(dist < delta, dist_sq / 2, delta * (dist - delta / 2))


def tracking_loss(
    output: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    *,
    position_weight: float,
    huber_delta: float,
    expected_dist_thresh: float,
    overall_weight: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Chrono's loss. The weights are the ``loss`` node of conf/train.yaml (the reference's: 0.05, Huber
    delta 4, expected-distance threshold 6 px, overall weight 2).

    Args:
      output: ``tracks`` [B, N, T, 2] (x, y) in pixels of the clip, ``occlusion`` and ``expected_dist``
        [B, N, T] logits.
      batch: ``video`` [B, T, H, W, 3] (only its size is used), ``target_points`` [B, N, T, 2] (x, y)
        pixels, ``occluded`` [B, N, T] bool.
      overall_weight: the reference adds its "refined" and "unrefined" outputs' losses, which for the
        refiner-free Chrono are the same tensors, so its effective loss is 2 x the sum of the terms;
        with grad-norm clipping at 1.0 that factor changes the updates, hence the reference's 2.

    Returns:
      (loss, terms): terms ``position``, ``occlusion``, ``expected_dist`` (each unweighted by
      ``overall_weight``, position already times ``position_weight``). Means run over every (b, n, t),
      occluded points contributing zero to the position and expected-distance terms, as in the reference.
    """
    hw = tuple(batch["video"].shape[2:4])
    tracks = rescale_xy(output["tracks"], hw, LOSS_RESOLUTION)
    target = rescale_xy(batch["target_points"].to(tracks.dtype), hw, LOSS_RESOLUTION)
    occluded = batch["occluded"].to(tracks.dtype)
    visible = 1.0 - occluded
    position = (huber(tracks, target, huber_delta) * visible).mean() * position_weight
    far = (((tracks.detach() - target) ** 2).sum(-1) > expected_dist_thresh**2).to(tracks.dtype)
    expected = (F.binary_cross_entropy_with_logits(output["expected_dist"], far, reduction="none") * visible).mean()
    occlusion = F.binary_cross_entropy_with_logits(output["occlusion"], occluded)
    terms = {"position": position, "occlusion": occlusion, "expected_dist": expected}
    return overall_weight * (position + occlusion + expected), terms
