"""How far two trackers' answers lie apart: the export's check, the tests and the int8 price use this.

Answers are mappings with ``tracks`` [..., T, 2] (x, y) pixels and either ``occlusion``, ``expected_dist`` [..., T]
logits or ``occluded`` [..., T] flags (``predict``'s answer; then there is no logit to compare), as numpy arrays or
torch tensors with any leading axes. Track deviation is the Euclidean distance per point-frame, in the pixels of
the tracks given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np
import torch

from chrono.models.head import occluded_from_logits


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


@dataclass(frozen=True)
class Deviation:
    """Track distance per point-frame (px): max, median, 99th percentile, the fraction above 1 px; the largest
    logit difference (occlusion and expected distance; NaN when an answer has flags only); the fraction of
    occlusion flags (the reference's rule, :func:`chrono.models.head.occluded_from_logits`) that differ; how many
    point-frames were compared."""

    track_max_px: float
    track_median_px: float
    track_p99_px: float
    over_1px: float
    logit_max: float
    occluded_flips: float
    point_frames: int

    def as_dict(self) -> dict:
        return asdict(self)

    def brief(self) -> str:
        """One line: tracks max / median / p99 px, logits max, occlusion flags changed."""
        return (f"tracks max {self.track_max_px:.2g} px (median {self.track_median_px:.2g}, p99 "
                f"{self.track_p99_px:.2g}, {self.over_1px:.2%} > 1 px), logits max {self.logit_max:.2g}, "
                f"occlusion flags changed {self.occluded_flips:.2%} of {self.point_frames} point-frames")


def deviation(reference: Mapping, other: Mapping) -> Deviation:
    """:class:`Deviation` of ``other`` from ``reference`` (same shapes)."""
    a, b = _numpy(reference["tracks"]).astype(np.float64), _numpy(other["tracks"]).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"tracks of shape {b.shape} compared with {a.shape}")
    dist = np.linalg.norm(a - b, axis=-1).reshape(-1)
    keys = ("occlusion", "expected_dist")
    logits = None  # no logits to compare: NaN in the result
    if all(k in answer for k in keys for answer in (reference, other)):
        logits = max(float(np.abs(_numpy(reference[k]).astype(np.float64) - _numpy(other[k]).astype(np.float64)).max())
                     for k in keys)

    def flags(answer):
        if "occluded" in answer:
            return _numpy(answer["occluded"]).astype(bool)
        return _numpy(occluded_from_logits(*(torch.as_tensor(_numpy(answer[k])) for k in keys)))

    nan_to_inf = lambda v: float(v) if np.isfinite(v) else float("inf")  # noqa: E731 - a NaN must fail any check
    return Deviation(
        track_max_px=nan_to_inf(dist.max()), track_median_px=nan_to_inf(np.median(dist)),
        track_p99_px=nan_to_inf(np.percentile(dist, 99)), over_1px=float((~(dist <= 1.0)).mean()),
        logit_max=float("nan") if logits is None else nan_to_inf(logits), occluded_flips=float((flags(reference) != flags(other)).mean()),
        point_frames=int(dist.size),
    )
