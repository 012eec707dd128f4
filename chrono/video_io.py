"""Reading videos one window at a time (video files, frame folders, .npy) and writing mp4 / PNG files.

A *frame source* exposes ``name``, ``num_frames``, ``hw`` (decoded size), ``original_hw`` (the file's
own size), ``frame_ids`` (the file's frame number of each selected frame), ``fps`` and
``read(start, stop)`` -> frames [k, H, W, 3] of the selected frames start..stop-1 (uint8; a float
array source gives its floats in [-1, 1]). Nothing is decoded before it is read, so a long video is
never held in memory.

Readers: video files through decord (x86-64 wheels), folders of images through PIL (sorted in natural
order: frame2 before frame10), ``.npy`` [T, H, W, 3] or [1, T, H, W, 3] memory-mapped through numpy.
Writers: mp4 (H.264) through PyAV, PNG through PIL; every file is written under a temporary name in
its folder and renamed into place.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from chrono.errors import ChronoError
from chrono.files import atomic_path
from chrono.pixels import check_array_range

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class VideoError(ChronoError):
    """A video that cannot be read or is empty; the message names the input."""


# --------------------------------------------------------------------------------------------------
# Frame sources


class FrameSource:
    """Selected frames of a video, decoded on demand (see the module docstring)."""

    name: str = "video"
    fps: float = 30.0

    def __init__(self, frame_ids: Sequence[int], original_hw: tuple[int, int], hw: tuple[int, int] | None = None):
        self.frame_ids = np.asarray(frame_ids, dtype=np.int64)
        self.original_hw = tuple(int(v) for v in original_hw)
        self.hw = tuple(int(v) for v in (hw or original_hw))

    @property
    def num_frames(self) -> int:
        return len(self.frame_ids)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames start..stop-1 of the selection: [k, H, W, 3] at size ``hw``."""
        ids = self.frame_ids[start:stop]
        frames = self._decode(ids)
        if frames.shape[1:3] != self.hw:
            from PIL import Image

            from chrono.eval.tapvid import resize_video_lanczos

            # PIL's antialiased bilinear filter (uint8 stays uint8, float frames are resized per channel)
            frames = resize_video_lanczos(frames, self.hw, resample=Image.Resampling.BILINEAR)
        return frames

    def _decode(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.num_frames} frames, {self.hw[0]} x {self.hw[1]})"


class ArraySource(FrameSource):
    """An in-memory (or memory-mapped) array [T, H, W, 3], uint8 or float in [-1, 1]."""

    def __init__(self, array, name: str = "array", frame_ids=None, hw=None, fps: float = 30.0):
        import torch

        if torch.is_tensor(array):
            array = array.detach().cpu().numpy()
        elif not isinstance(array, np.ndarray):
            array = np.asarray(array)
        if array.ndim == 5 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 4 or array.shape[-1] != 3:
            raise VideoError(f"{name}: expected frames [T, H, W, 3] (or [1, T, H, W, 3]), got shape {array.shape}")
        if array.dtype != np.uint8 and array.dtype.kind != "f":
            raise VideoError(f"{name}: frames must be uint8 or float in [-1, 1], got {array.dtype}")
        if len(array) == 0:
            raise VideoError(f"{name}: the video has no frames")
        check_array_range(array, name)
        self.array, self.name, self.fps = array, name, fps
        super().__init__(range(len(array)) if frame_ids is None else frame_ids, array.shape[1:3], hw)

    def _decode(self, ids: np.ndarray) -> np.ndarray:
        frames = np.asarray(self.array[ids])
        return frames.astype(np.float32) if frames.dtype.kind == "f" else frames


class DecordSource(FrameSource):
    """A video file decoded by decord (resized while decoding when ``hw`` is smaller)."""

    def __init__(self, path: Path, reader, frame_ids, original_hw, hw):
        self.path, self.name, self._reader = path, str(path), reader
        self.fps = float(reader.get_avg_fps() or 30.0)
        super().__init__(frame_ids, original_hw, hw)

    def _decode(self, ids: np.ndarray) -> np.ndarray:
        try:
            return self._reader.get_batch(ids.tolist()).asnumpy()
        except Exception as err:  # noqa: BLE001 - decord raises its own error types
            raise VideoError(f"{self.path}: cannot decode frames {ids[0]}-{ids[-1]}: {err}") from err


class FolderSource(FrameSource):
    """A folder of image files, one frame each, in natural sort order."""

    def __init__(self, path: Path, files: list[Path], frame_ids, original_hw, hw):
        self.path, self.name, self.files = path, str(path), files
        super().__init__(frame_ids, original_hw, hw)

    def _decode(self, ids: np.ndarray) -> np.ndarray:
        frames = [read_image(self.files[i]) for i in ids]
        for i, f in zip(ids, frames):
            if f.shape[:2] != self.original_hw:
                raise VideoError(
                    f"{self.files[i]}: frame of {f.shape[0]} x {f.shape[1]} pixels in a folder of "
                    f"{self.original_hw[0]} x {self.original_hw[1]} frames ({self.path})"
                )
        return np.stack(frames)


def as_frame_source(video) -> FrameSource:
    """A frame source as is, or an array [T, H, W, 3] (numpy / torch) wrapped in :class:`ArraySource`."""
    return video if isinstance(video, FrameSource) else ArraySource(video)


def _natural_key(path: Path):
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


def _scaled_hw(hw: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """(H, W) scaled down so that the longer side is at most ``max_side`` (never up)."""
    H, W = hw
    if not max_side or max(H, W) <= max_side:
        return H, W
    s = max_side / max(H, W)
    return max(1, round(H * s)), max(1, round(W * s))


def _select(total: int, start: int, end: int | None, stride: int, name: str) -> np.ndarray:
    if total <= 0:
        raise VideoError(f"{name}: the video has no frames")
    if stride < 1:
        raise VideoError(f"{name}: stride must be >= 1, got {stride}")
    if not 0 <= start < total:
        raise VideoError(f"{name}: start={start} is outside the video's frames 0..{total - 1}")
    end = total if end is None else min(int(end), total)
    if end <= start:
        raise VideoError(f"{name}: the frame range start={start}, end={end} selects no frame")
    return np.arange(start, end, stride)


def import_decord():
    """The decord module, imported after pyspng when pyspng is installed.

    decord loads its library with RTLD_GLOBAL, so the zlib bundled with it enters the process's global symbol
    scope; pyspng (Kubric's PNGs, chrono.kubric.tfds) loaded after that binds to it and fails every decode with
    "zlib init error". Loaded before decord, pyspng keeps its own zlib.
    """
    try:
        import pyspng  # noqa: F401
    except ImportError:
        pass
    import decord

    return decord


def open_video(
    path: str | os.PathLike, start: int = 0, end: int | None = None, stride: int = 1, max_side: int | None = None
) -> FrameSource:
    """Open a video file, a folder of frames or a ``.npy`` array, selecting frames start, start+stride, ... < end.

    Args:
      path: video file (anything ffmpeg reads: mp4, mov, avi, webm, ...), folder of images, or ``.npy``
        [T, H, W, 3] / [1, T, H, W, 3] uint8 (or float in [-1, 1]).
      start, end, stride: frame selection in the file's own frame numbers (``end`` exclusive, None = all).
      max_side: decode at a size whose longer side is at most this (aspect kept); None = full size.

    Raises:
      VideoError naming ``path``: missing, unreadable, empty, or a selection with no frame.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such video file or folder")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            raise VideoError(f"{path}: an empty video (the folder holds no {'/'.join(IMAGE_SUFFIXES)} image)")
        ids = _select(len(files), start, end, stride, str(path))
        hw = read_image(files[ids[0]]).shape[:2]
        return FolderSource(path, files, ids, hw, _scaled_hw(hw, max_side))
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, mmap_mode="r")
        except (ValueError, OSError, EOFError) as err:
            raise VideoError(f"{path}: not a readable .npy array: {err}") from err
        probe = ArraySource(array, name=str(path))  # validates the shape and dtype
        ids = _select(probe.num_frames, start, end, stride, str(path))
        return ArraySource(probe.array, str(path), ids, _scaled_hw(probe.original_hw, max_side))
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: an empty file")
    try:
        decord = import_decord()
    except ImportError as err:
        raise VideoError(
            f"{path}: reading video files needs decord (x86-64 wheels only); convert the video to a folder "
            f"of frames or a .npy array on this machine"
        ) from err
    try:
        probe = decord.VideoReader(str(path), num_threads=1)
        total, hw = len(probe), tuple(probe[0].shape[:2]) if len(probe) else (0, 0)
    except Exception as err:  # noqa: BLE001 - decord raises its own error types
        raise VideoError(f"{path}: not a readable video (decord: {str(err).splitlines()[0][:200]})") from err
    ids = _select(total, start, end, stride, str(path))
    size = _scaled_hw(hw, max_side)
    reader = probe if size == hw else decord.VideoReader(str(path), width=size[1], height=size[0], num_threads=1)
    source = DecordSource(path, reader, ids, hw, size)
    source.fps /= stride  # the selected frames play at the original speed
    return source


# --------------------------------------------------------------------------------------------------
# Images


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3]; VideoError naming the file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise VideoError(f"{path}: not a readable image: {err}") from err


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Frames as uint8: uint8 as is, float in [-1, 1] mapped to 0..255."""
    if frames.dtype == np.uint8:
        return frames
    return np.clip(np.round((np.asarray(frames, np.float32) + 1) * 127.5), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Writing


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """An RGB image [H, W, 3] uint8 as a PNG file, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(path)


class Mp4Writer:
    """H.264 mp4 (yuv420p, widely playable) through PyAV, written to a temporary name and renamed on close.

    Frames are uint8 [H, W, 3], all of one size; odd sizes are padded by one black row / column
    (yuv420p needs even sizes). Use as a context manager; nothing appears at ``path`` unless it exits
    without an error after at least one frame.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, crf: int = 20):
        self.path, self.fps, self.crf = Path(path), fps, crf
        self._container = self._stream = None
        self.frames_written = 0

    def __enter__(self) -> "Mp4Writer":
        import av

        self._tmp_ctx = atomic_path(self.path)
        self._container = av.open(str(self._tmp_ctx.__enter__()), mode="w", format="mp4")
        return self

    def write(self, frame: np.ndarray) -> None:
        import av

        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        H, W = frame.shape[:2]
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = W + W % 2, H + H % 2
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf)}
        if (H + H % 2, W + W % 2) != (self._stream.height, self._stream.width):
            raise ValueError(f"{self.path}: frame {self.frames_written} is {H} x {W}, the first was "
                             f"{self._stream.height} x {self._stream.width}")
        if H % 2 or W % 2:
            frame = np.pad(frame, ((0, H % 2), (0, W % 2), (0, 0)))
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        empty = exc_type is None and self.frames_written == 0
        try:
            if exc_type is None and not empty:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
        if empty:
            err = ValueError(f"{self.path}: no frame to write")
            self._tmp_ctx.__exit__(ValueError, err, None)  # removes the temporary file
            raise err
        return self._tmp_ctx.__exit__(exc_type, exc, tb)  # renames into place, or removes on error
