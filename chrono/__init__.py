"""Chrono: a frozen DINOv2 ViT with temporal adapters between its blocks, used as a point tracker.

Public entry point: :func:`chrono.load_tracker` (see chrono/checkpoint.py).
"""

__version__ = "0.1.0"


def load_tracker(path=None, device="cpu", **overrides):
    """A :class:`chrono.models.tracker.ChronoTracker` from a checkpoint (see chrono.checkpoint.load_tracker)."""
    from chrono.checkpoint import load_tracker as _load

    return _load(path, device=device, **overrides)


__all__ = ["load_tracker", "__version__"]
