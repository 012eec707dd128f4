"""TAP-Vid benchmark readers and query sampling (the formats and protocol of google-deepmind/tapnet).

Formats (every video entry is a dict with ``video``, ``points`` float [N, T, 2] normalised (x, y) in [0, 1]
and ``occluded`` bool [N, T]):

- ``davis``: one pkl file, a dict name -> entry; ``video`` uint8 [T, H, W, 3].
- ``rgb_stacking``: one pkl file, a list of entries.
- ``kinetics``: a folder of ``*_of_0010.pkl`` shards, each a list (or dict) of entries whose ``video`` is an
  array of JPEG-encoded frames (bytes).
- ``robotap``: a folder of pkl files, each a dict name -> entry.

Videos are read one at a time (see :mod:`chrono.eval.pickle_stream`), their frames resized to the evaluation
resolution with PIL's Lanczos filter exactly as the reference's ``mediapy.resize_video`` does, and their points
scaled from [0, 1] to pixels of that resolution with no half-pixel shift (:mod:`chrono.coords`).
Queries are (t, y, x) and tracks (x, y), both in those pixels.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from chrono.coords import normalised_to_pixels_xy
from chrono.errors import ChronoError
from chrono.eval.pickle_stream import iter_pickle_items
from chrono.metrics import QUERY_MODES

FORMATS = ("davis", "rgb_stacking", "kinetics", "robotap")
EVAL_RESOLUTION = (256, 256)
STRIDE = 5  # the reference's query stride in ``strided`` mode
FIELDS = ("video", "points", "occluded")


class TapVidFormatError(ChronoError):
    """A benchmark file that is missing, of another format, or holds a corrupt entry."""


@dataclass
class TapVidEntry:
    """One undecoded video entry as stored: ``raw`` holds the file's ``video``, ``points`` and ``occluded``."""

    name: str
    index: int  # position in the benchmark (all files together), the basis of the DDP split
    source: Path
    raw: dict

    @property
    def where(self) -> str:
        return f"{self.source}, video {self.name!r}"


@dataclass
class TapVidVideo:
    """One decoded video at the evaluation resolution.

    ``video`` uint8 [T, H, W, 3]; ``points`` float64 [N, T, 2] (x, y) in pixels of ``video``;
    ``occluded`` bool [N, T].
    """

    name: str
    index: int
    source: Path
    video: np.ndarray
    points: np.ndarray
    occluded: np.ndarray


@dataclass
class Queries:
    """Queries of one video with their ground truth.

    ``query_points`` float64 [Q, 3] (t, y, x); ``target_points`` float64 [Q, T, 2] (x, y);
    ``occluded`` bool [Q, T]; ``track_index`` int [Q], the track each query was taken from.
    """

    query_points: np.ndarray
    target_points: np.ndarray
    occluded: np.ndarray
    track_index: np.ndarray


# ----------------------------------------------------------------------------------------------------- files


def benchmark_files(fmt: str, path: str | Path) -> list[Path]:
    """The pkl files of a benchmark in reading order; a clear error for a missing path or an empty folder."""
    if fmt not in FORMATS:
        raise TapVidFormatError(f"unknown TAP-Vid format {fmt!r}; expected one of {FORMATS}")
    path = Path(path)
    if not path.exists():
        raise TapVidFormatError(f"{path}: no such file or folder (the {fmt} benchmark)")
    if path.is_file():
        return [path]
    if fmt in ("davis", "rgb_stacking"):
        expected = path / f"tapvid_{fmt}.pkl"
        if expected.is_file():
            return [expected]
        raise TapVidFormatError(f"{path}: the {fmt} benchmark is one pkl file (e.g. {expected.name}), not a folder")
    pattern = "*_of_0010.pkl" if fmt == "kinetics" else "*.pkl"
    files = sorted(p for p in path.glob(pattern) if p.is_file())
    if not files:
        raise TapVidFormatError(f"{path}: no {pattern} files in this folder (the {fmt} benchmark)")
    return files


def _is_entry(obj: Any) -> bool:
    return isinstance(obj, dict) and all(k in obj for k in FIELDS)


def iter_entries(fmt: str, path: str | Path) -> Iterator[TapVidEntry]:
    """Stream the undecoded entries of a benchmark, one at a time, in file order."""
    files = benchmark_files(fmt, path)
    index = 0
    for file in files:
        multi = len(files) > 1 or fmt in ("kinetics", "robotap")
        top_kind = None
        try:
            for kind, key, raw in iter_pickle_items(file, _is_entry):
                if top_kind is None:
                    top_kind = kind
                    _check_container(fmt, file, kind)
                name = f"{file.stem}/{key}" if multi else str(key)
                if not _is_entry(raw):
                    got = f"a dict with keys {sorted(map(str, raw))}" if isinstance(raw, dict) else type(raw).__name__
                    raise TapVidFormatError(
                        f"{file}, video {name!r}: expected a dict with {', '.join(FIELDS)}; found {got}"
                    )
                yield TapVidEntry(name=name, index=index, source=file, raw=raw)
                index += 1
        except TapVidFormatError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, ImportError) as e:
            raise TapVidFormatError(f"{file}: not a readable TAP-Vid {fmt} pickle ({type(e).__name__}: {e})") from e


def _check_container(fmt: str, file: Path, kind: str) -> None:
    expected = {"davis": ("dict",), "rgb_stacking": ("list",), "kinetics": ("list", "dict"), "robotap": ("dict",)}
    if kind not in expected[fmt]:
        want = " or ".join(expected[fmt])
        raise TapVidFormatError(f"{file}: the {fmt} format is a {want} of videos, but this file holds a {kind}")


# ---------------------------------------------------------------------------------------------------- decoding


def resize_video_lanczos(
    video: np.ndarray, hw: Sequence[int], resample: Image.Resampling = Image.Resampling.LANCZOS
) -> np.ndarray:
    """Resize frames [T, H, W, C] to ``hw`` = (H', W') as ``mediapy.resize_video`` does.

    uint8 frames with 3 or 4 channels go through PIL's Lanczos filter directly and stay uint8; other dtypes
    (float, or uint8 with another channel count) are resized channel by channel as PIL 'F' / 'L' images,
    keeping the input dtype, as mediapy does. ``resample`` swaps in another PIL filter (chrono.video_io
    uses bilinear); the default is the reference's Lanczos.
    """
    video = np.asarray(video)
    size = (int(hw[1]), int(hw[0]))  # PIL takes (width, height)

    def frame(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2 or (image.dtype == np.uint8 and image.shape[-1] in (3, 4)):
            if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
                raise ValueError(f"cannot resize frames of dtype {image.dtype}: uint8 or float expected")
            return np.array(Image.fromarray(image).resize(size, resample=resample), dtype=image.dtype)
        return np.dstack([frame(channel) for channel in np.moveaxis(image, -1, 0)])

    return np.array([frame(image) for image in video])


def _decode_frames(frames: Any, where: str) -> np.ndarray:
    """Frames stored as uint8 [T, H, W, 3] or as a sequence of JPEG bytes -> uint8 [T, H, W, 3]."""
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise TapVidFormatError(f"{where}: video must be uint8 [T, H, W, 3]; got shape {frames.shape}")
        return frames
    if len(frames) == 0 or not isinstance(frames[0], bytes):
        kind = getattr(frames, "dtype", type(frames).__name__)
        raise TapVidFormatError(f"{where}: video must be uint8 [T, H, W, 3] or JPEG bytes per frame; got {kind}"
                                + (f" {frames.shape}" if isinstance(frames, np.ndarray) else ""))
    decoded = []
    for t, data in enumerate(frames):
        try:
            with Image.open(io.BytesIO(bytes(data))) as image:
                decoded.append(np.asarray(image.convert("RGB")))
        except Exception as e:  # PIL raises several kinds for broken data
            raise TapVidFormatError(f"{where}: frame {t} is not a decodable image ({e})") from e
    if len({f.shape for f in decoded}) != 1:
        raise TapVidFormatError(f"{where}: frames differ in size: {sorted({f.shape for f in decoded})}")
    return np.stack(decoded)


def decode_entry(entry: TapVidEntry, resolution: Sequence[int] | None = EVAL_RESOLUTION) -> TapVidVideo:
    """Decode one entry: frames resized to ``resolution`` (H, W) (None keeps them), points scaled to its pixels."""
    where = entry.where
    frames = _decode_frames(entry.raw["video"], where)
    points = np.asarray(entry.raw["points"])
    occluded = np.asarray(entry.raw["occluded"])
    num_frames = frames.shape[0]
    if points.ndim != 3 or points.shape[-1] != 2 or not np.issubdtype(points.dtype, np.floating):
        raise TapVidFormatError(f"{where}: points must be float [N, T, 2]; got {points.dtype} {points.shape}")
    bad = ~np.isfinite(points).all(-1)
    if bad.any():
        n, t = np.argwhere(bad)[0]
        raise TapVidFormatError(f"{where}: points hold {int(bad.sum())} non-finite (NaN or infinite) values, "
                                f"first at track {n}, frame {t}")
    if occluded.shape != points.shape[:2]:
        raise TapVidFormatError(f"{where}: occluded {occluded.shape} does not match points {points.shape}")
    if occluded.dtype != bool:
        if not (np.issubdtype(occluded.dtype, np.integer) and np.isin(occluded, (0, 1)).all()):
            raise TapVidFormatError(f"{where}: occluded must be bool [N, T]; got {occluded.dtype}")
        occluded = occluded.astype(bool)
    if points.shape[1] != num_frames:
        raise TapVidFormatError(f"{where}: points cover {points.shape[1]} frames but the video has {num_frames}")
    if resolution is not None and tuple(resolution) != frames.shape[1:3]:
        frames = resize_video_lanczos(frames, resolution)
    # float64 like the reference (float32 points times an integer array promote to float64)
    points = normalised_to_pixels_xy(points.astype(np.float64), frames.shape[1:3])
    return TapVidVideo(entry.name, entry.index, entry.source, frames, points, occluded)


def read_benchmark(
    fmt: str,
    path: str | Path,
    resolution: Sequence[int] | None = EVAL_RESOLUTION,
    select: Callable[[int], bool] | None = None,
) -> Iterator[TapVidVideo]:
    """Yield the decoded videos of a benchmark one at a time; ``select(index)`` skips others before decoding."""
    for entry in iter_entries(fmt, path):
        if select is None or select(entry.index):
            yield decode_entry(entry, resolution)


# ------------------------------------------------------------------------------------------------ query sampling


def sample_queries_first(occluded: np.ndarray, points: np.ndarray) -> Queries:
    """One query per track at its first visible frame; tracks never visible are dropped.

    ``occluded`` bool [N, T], ``points`` [N, T, 2] (x, y) -> :class:`Queries` in the same pixels.
    """
    occluded = np.asarray(occluded, dtype=bool)
    tracks = np.flatnonzero((~occluded).any(axis=1))
    first = np.argmax(~occluded[tracks], axis=1)
    xy = points[tracks, first]
    query_points = np.stack([first.astype(np.float64), xy[:, 1], xy[:, 0]], axis=-1).reshape(-1, 3)
    return Queries(query_points, points[tracks], occluded[tracks], tracks)


def sample_queries_strided(occluded: np.ndarray, points: np.ndarray, stride: int = STRIDE) -> Queries:
    """Queries at frames 0, stride, 2 * stride, ...: every track visible at such a frame gives one query there.

    Queries are ordered by frame, then by track, as in the reference.
    """
    occluded = np.asarray(occluded, dtype=bool)
    frames, tracks = [], []
    for t in range(0, occluded.shape[1], stride):
        visible = np.flatnonzero(~occluded[:, t])
        frames.append(np.full(len(visible), t))
        tracks.append(visible)
    frame, track = np.concatenate(frames), np.concatenate(tracks)
    xy = points[track, frame]
    query_points = np.stack([frame.astype(np.float64), xy[:, 1], xy[:, 0]], axis=-1).reshape(-1, 3)
    return Queries(query_points, points[track], occluded[track], track)


def sample_queries(video: TapVidVideo, query_mode: str) -> Queries:
    """The reference's queries for ``query_mode`` (``first`` or ``strided``, stride 5)."""
    if query_mode == "first":
        return sample_queries_first(video.occluded, video.points)
    if query_mode == "strided":
        return sample_queries_strided(video.occluded, video.points)
    raise ValueError(f"unknown query mode {query_mode!r}; expected one of {QUERY_MODES}")
