"""Chrono: a frozen DINOv2 ViT with temporal adapters between its blocks, used as a point tracker.

Public entry points (lazy: importing ``chrono`` loads nothing heavy):

- :func:`load_tracker`: a tracker from any checkpoint kind (chrono/checkpoint.py);
- :func:`track_video`: points through a video of any length in bounded memory (chrono/inference/windowed.py).

What a point tracker is to the rest of the suite: :class:`chrono.interfaces.PointTracker`.
"""

__version__ = "0.1.0"


def load_tracker(path=None, device="cpu", **overrides):
    """A :class:`chrono.models.tracker.ChronoTracker` from a checkpoint (see chrono.checkpoint.load_tracker)."""
    from chrono.checkpoint import load_tracker as _load

    return _load(path, device=device, **overrides)


def track_video(tracker, video, query_points, **options):
    """Track ``query_points`` [N, 3] (t, y, x) through ``video`` (array [T, H, W, 3] or frame source) in the
    memory of one window of frames; numpy ``tracks`` [N, T, 2] (x, y) and ``occluded`` [N, T] in the video's
    pixels (see :func:`chrono.inference.windowed.track_video` for the options)."""
    from chrono.inference.windowed import track_video as _track

    return _track(tracker, video, query_points, **options)


__all__ = ["load_tracker", "track_video", "__version__"]
