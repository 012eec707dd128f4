"""Reference baselines: the floor rows of every evaluation table."""

from __future__ import annotations

from typing import Sequence

import torch


class ZeroMotionTracker:
    """Predicts every query to stay where it is and to stay visible in every frame.

    Same contract as the Chrono tracker's ``predict`` (:class:`chrono.interfaces.PointTracker`), so the evaluation
    treats both alike.
    """

    def predict(
        self,
        video: torch.Tensor,
        query_points: torch.Tensor,
        resolution: Sequence[int] = (256, 256),
    ) -> dict[str, torch.Tensor]:
        """Args: video [B, T, H, W, 3] (uint8 or float in [-1, 1]; only its shape is used), query_points
        [B, N, 3] (t, y, x) in the video's pixels; ``resolution`` is accepted for interface parity.

        Returns ``tracks`` [B, N, T, 2] (x, y) in the video's pixels (the query's position in every frame) and
        ``occluded`` bool [B, N, T] (all False).
        """
        query_points = torch.as_tensor(query_points)
        batch, num_queries, _ = query_points.shape
        num_frames = video.shape[1]
        xy = query_points[..., [2, 1]]
        tracks = xy[:, :, None, :].expand(batch, num_queries, num_frames, 2).clone()
        occluded = torch.zeros(batch, num_queries, num_frames, dtype=torch.bool, device=query_points.device)
        return {"tracks": tracks, "occluded": occluded}
