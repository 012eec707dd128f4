"""Chrono's tracking head: cosine cost volume -> local soft-argmax -> tracks, plus occlusion logits.

This module holds the reference formulation (it materialises the [B, N, T, h, w, 2] soft-argmax tensor
exactly as the reference code does, and is the readable oracle for faster heads).

Coordinates: feature-grid cells are unit squares with centres at i + 0.5 (raster convention); the head
answers in a fixed 256 x 256 frame (the reference's ``initial_resolution``) before the caller rescales
to the video.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The reference expresses head outputs at this resolution before rescaling them to the video.
HEAD_RESOLUTION = (256, 256)


def sample_query_features(features: torch.Tensor, query_points_grid: torch.Tensor) -> torch.Tensor:
    """Trilinear feature sample at query points.

    Args:
      features: [B, T, h, w, C] feature grid.
      query_points_grid: [B, N, 3] (t, y, x) with y, x in grid cells (cell centres at i + 0.5) and t a
        frame index (integer t samples that frame exactly).

    Returns:
      [B, N, C] features, bilinear in (y, x), border padding.
    """
    B, T, h, w, C = features.shape
    grid = query_points_grid[:, :, None, None, :].float().clone()
    grid[..., 0] = grid[..., 0] + 0.5  # frame t's centre
    grid = 2 * grid / torch.tensor((T, h, w), device=grid.device, dtype=grid.dtype) - 1
    grid = grid.flip(-1)  # grid_sample wants (x, y, t)
    out = F.grid_sample(features.permute(0, 4, 1, 2, 3), grid, mode="bilinear", align_corners=False, padding_mode="border")
    return out[:, :, :, 0, 0].permute(0, 2, 1)


def cost_volume(query_features: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Cosine similarities [B, N, T, h, w] of query features [B, N, C] with grid features [B, T, h, w, C]."""
    return torch.einsum("bnc,bthwc->bnthw", query_features, features)


def occlusion_inputs(cost: torch.Tensor) -> torch.Tensor:
    """[mean, max, min] over space of a cost volume [B, N, T, h, w] -> [B, N, T, 3], detached."""
    return torch.stack((cost.mean(dim=(-1, -2)), cost.amax(dim=(-1, -2)), cost.amin(dim=(-1, -2))), dim=-1).detach()


def local_soft_argmax_reference(heatmaps: torch.Tensor, radius: float) -> torch.Tensor:
    """Soft-argmax restricted to cells strictly within ``radius`` cells of the argmax.

    Args:
      heatmaps: [B, N, T, h, w] non-negative weights (a softmax over the h * w cells).
      radius: in cells; a cell counts when its squared centre distance to the argmax cell is < radius^2.

    Returns:
      [B, N, T, 2] (x, y) in grid cells, centres at i + 0.5.
    """
    B, N, T, h, w = heatmaps.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=heatmaps.device), torch.arange(w, device=heatmaps.device), indexing="ij"
    )
    coords = torch.stack([xs + 0.5, ys + 0.5], dim=-1).to(heatmaps.dtype)  # [h, w, 2]
    argmax = heatmaps.reshape(B, N, T, h * w).argmax(dim=-1)
    peak = coords.reshape(-1, 2)[argmax]  # [B, N, T, 2]
    near = ((coords - peak[:, :, :, None, None, :]) ** 2).sum(-1, keepdim=True) < radius**2
    weights = near * heatmaps[..., None]  # [B, N, T, h, w, 1]
    total = (coords * weights).sum(dim=(3, 4))
    norm = torch.clamp(weights.sum(dim=(3, 4)), min=1e-12)
    return total / norm


def tracks_from_cost(
    cost: torch.Tensor, softmax_temperature: float, radius: float
) -> torch.Tensor:
    """Tracks [B, N, T, 2] (x, y) in HEAD_RESOLUTION pixels from a cost volume [B, N, T, h, w]."""
    B, N, T, h, w = cost.shape
    heat = F.softmax(cost.reshape(B, N, T, h * w) * softmax_temperature, dim=-1).reshape(B, N, T, h, w)
    cells = local_soft_argmax_reference(heat, radius)
    scale = torch.tensor((HEAD_RESOLUTION[1] / w, HEAD_RESOLUTION[0] / h), device=cells.device, dtype=cells.dtype)
    return cells * scale


def pin_query_frames(tracks: torch.Tensor, query_points: torch.Tensor) -> torch.Tensor:
    """On each query's own frame (round(t)), replace the track by the query's (x, y).

    Args:
      tracks: [B, N, T, 2] (x, y).
      query_points: [B, N, 3] (t, y, x) in the same pixel frame as ``tracks``.
    """
    T = tracks.shape[2]
    frames = torch.arange(T, device=tracks.device)
    on_query = (torch.round(query_points[..., 0:1].detach()) == frames)[..., None]  # [B, N, T, 1]
    query_xy = query_points[:, :, None, 1:].flip(-1)  # [B, N, 1, 2]
    return tracks * ~on_query + query_xy * on_query
