"""One opened video on the page and its points: opening it within the limits, the frame shown, clicks.

The frame shown is the decoded frame (``source.hw``) enlarged by an integer factor ``scale`` (nearest
neighbour) when it is small, so that it is large enough to click and a click lands on 1/scale of a pixel.
The browser reports a click as the nearest whole pixel of the image it shows (the corner between pixels,
in raster coordinates), so a click at shown pixel (u, v) is the video point (u / scale, v / scale): within
half a shown pixel of where the pointer was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chrono.coords import rescale_tyx, rescale_xy
from chrono.interactive.points import PointList
from chrono.interactive.settings import AppSettings
from chrono.video_io import ArraySource, FrameSource, VideoError, open_video, to_uint8
from chrono.visualize import draw_points, label_points, marker_radius


def display_scale(hw: tuple[int, int], display_side: int) -> int:
    """The integer enlargement of a frame of ``hw`` = (H, W) for the page: the largest k with k * max(H, W)
    <= ``display_side``, at least 1 (large frames are shown as they are and scaled by the browser)."""
    return max(1, int(display_side) // max(hw))


def open_path(path: str | Path, settings: AppSettings) -> FrameSource:
    """A video file, a folder of frames or a .npy array on this machine (chrono.video_io.open_video at
    ``max_side``); VideoError naming it when it cannot be read or is longer than ``max_frames``."""
    text = str(path).strip()
    if not text:
        raise VideoError("no path given: type the path of a video file, a folder of frames or a .npy array")
    source = open_video(Path(text).expanduser(), max_side=settings.max_side)
    return check_length(source, settings)


def open_demo(settings: AppSettings) -> FrameSource:
    """The built-in demo clip: :func:`chrono.inference.demo.demo_clip` (synthetic, ``demo_frames`` frames of
    ``demo_size`` pixels), as an in-memory frame source."""
    from chrono.inference.demo import demo_clip

    video = demo_clip(settings.demo_frames, settings.demo_size)["video"]
    return check_length(ArraySource(video, name="demo clip", fps=12.0), settings)


def check_length(source: FrameSource, settings: AppSettings) -> FrameSource:
    if source.num_frames > settings.max_frames:
        raise VideoError(f"{source.name}: {source.num_frames} frames, more than the page's limit of "
                         f"{settings.max_frames} (start the page with max_frames=... to allow more)")
    return source


class Session:
    """One opened video and its points (the page keeps one per browser tab)."""

    def __init__(self, source: FrameSource, settings: AppSettings):
        self.source = source
        self.points = PointList(source.num_frames, source.hw, settings.max_points)
        self.scale = display_scale(source.hw, settings.display_side)
        self.trail = settings.trail

    def describe(self) -> str:
        H, W = self.source.hw
        oh, ow = self.source.original_hw
        size = f"{W} x {H} pixels" + (f" (decoded from {ow} x {oh})" if (oh, ow) != (H, W) else "")
        shown = f", shown x{self.scale}" if self.scale > 1 else ""
        return f"**{Path(self.source.name).name}**: {self.source.num_frames} frames of {size}{shown}"

    def clamp_frame(self, t) -> int:
        return int(min(max(int(round(float(t or 0))), 0), self.source.num_frames - 1))

    def to_video(self, u: float, v: float) -> tuple[float, float]:
        """A click at pixel (u, v) of the shown image -> (x, y) in pixels of the decoded frames."""
        return u / self.scale, v / self.scale

    def frame(self, t: int, tracked=None) -> np.ndarray:
        """Frame t as shown: [H * scale, W * scale, 3] uint8 with, when ``tracked`` (a tracking result: its
        ``source``, ``tracks`` [N, T, 2] (x, y) decoded pixels, ``occluded`` [N, T]) belongs to this video,
        every tracked point's position and trail (the overlay's style and colours), and this frame's query
        points as larger discs with their numbers (the point list's colours)."""
        t = self.clamp_frame(t)
        k = self.scale
        image = to_uint8(self.source.read(t, t + 1))[0]
        if k > 1:
            image = np.repeat(np.repeat(image, k, 0), k, 1)
        hw = image.shape[:2]
        if tracked is not None and tracked.source is self.source and tracked.tracks.shape[1] > t:
            lo = max(0, t - self.trail + 1)
            trails = rescale_xy(tracked.tracks[:, lo : t + 1].astype(np.float64), self.source.hw, hw)
            image = draw_points(image, trails, tracked.occluded[:, lo : t + 1])
        on = self.points.on_frame(t)
        if len(on):
            q = rescale_tyx(self.points.queries()[on].astype(np.float64), self.source.hw, hw)
            xy = q[:, None, [2, 1]]
            colors = self.points.colors()[on]
            image = draw_points(image, xy, np.zeros(xy.shape[:2], bool), colors, radius=1.6 * marker_radius(hw))
            image = label_points(image, xy[:, 0], [str(i) for i in on], colors)
        return image
