"""Chrono: a frozen DINOv2 ViT with temporal adapters between its blocks, used as a point tracker.

Public entry point: :func:`chrono.load_tracker`.
"""

__version__ = "0.1.0"
