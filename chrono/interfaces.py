"""What the suite expects of the things it plugs together: a point tracker and a frame source.

These are structural types (``typing.Protocol``): any object with these members works, whatever its class.
Conventions: query points (t, y, x) and tracks (x, y) in pixels of the video given, raster convention
(pixel i covers [i, i + 1), its centre is i + 0.5); t is a frame index.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class PointTracker(Protocol):
    """Anything the evaluation loop can score (:func:`chrono.eval.benchmark.evaluate_benchmark`): Chrono
    (``chrono.load_tracker``), the zero-motion baseline, or a wrapper around another tracker."""

    def predict(self, video, query_points, resolution: Sequence[int] = (256, 256)) -> Mapping[str, object]:
        """Track queries through a clip, answering in the input's pixels.

        Args:
          video: [B, T, H, W, 3] uint8 (0..255) or float in [-1, 1]; numpy or torch.
          query_points: [B, N, 3] (t, y, x) in pixels of ``video``.
          resolution: (H, W) the tracker works at (the reference: 256 x 256).

        Returns:
          ``tracks`` [B, N, T, 2] (x, y) in pixels of ``video`` and ``occluded`` bool [B, N, T] (torch).
        """
        ...


@runtime_checkable
class FeatureTracker(PointTracker, Protocol):
    """A point tracker whose two halves can be called apart, as windowed tracking
    (:func:`chrono.inference.windowed.track_video`) needs them: features of a window of frames, then the head on
    those features and query features sampled elsewhere. Implemented by the PyTorch tracker
    (:class:`chrono.models.tracker.ChronoTracker`) and the ONNX Runtime one (:class:`chrono.deploy.runtime.OnnxTracker`).
    Tensors are torch tensors on ``device``."""

    @property
    def device(self):
        """The torch device inputs are put on (``cpu`` for an ONNX Runtime tracker on the CPU)."""
        ...

    def extract_features(self, video):
        """Video [B, T, H, W, 3] float in [-1, 1] at the tracking resolution -> features [B, T, g, g, C]."""
        ...

    def sample_query_features(self, features, query_points, video_hw: Sequence[int]):
        """Features [B, N, C] of query points [B, N, 3] (t, y, x), pixels of a video of size ``video_hw``, t a
        frame index into ``features``."""
        ...

    def track_features(self, features, query_points, video_hw: Sequence[int], query_features=None) -> Mapping[str, object]:
        """The head: ``tracks`` [B, N, T, 2] (x, y) pixels of ``video_hw``, ``occlusion`` and ``expected_dist``
        [B, N, T] logits of query points [B, N, 3] (t, y, x) against ``features`` [B, T, g, g, C]."""
        ...


@runtime_checkable
class VideoAware(Protocol):
    """A tracker that must know which benchmark video it is answering for (e.g. one that reads stored
    predictions, :class:`chrono.eval.predictions.PredictionsTracker`): the evaluation loop calls
    ``begin_video`` before each ``predict``."""

    def begin_video(self, name: str, num_frames: int) -> None:
        """The next ``predict`` call is for the benchmark video ``name`` of ``num_frames`` frames."""
        ...


@runtime_checkable
class FrameSource(Protocol):
    """Frames of a video decoded on demand, so that a long video is never held in memory whole
    (implemented by :class:`chrono.video_io.FrameSource` and its readers)."""

    name: str
    fps: float
    frame_ids: np.ndarray  # [T] the file's frame number of each selected frame
    hw: tuple[int, int]  # (H, W) of the frames read
    original_hw: tuple[int, int]  # (H, W) of the file

    @property
    def num_frames(self) -> int:
        ...

    def read(self, start: int, stop: int) -> np.ndarray:
        """Selected frames start..stop-1: [k, H, W, 3] uint8 (or float in [-1, 1])."""
        ...
