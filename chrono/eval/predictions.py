"""Scoring anyone's predictions: the protocol's queries written per video, and a folder of predictions read back.

``python -m chrono.evaluate ... export_queries=DIR`` writes, for every video that has a query, ``DIR/<video>.npz``:

- ``query_points`` float64 [N, 3]: (t, y, x), the exact queries of the protocol
  (:func:`chrono.eval.tapvid.sample_queries`), in pixels of the evaluation resolution (256 x 256);
- ``num_frames`` int: T, the video's frame count;
- ``video_name`` str: the video's name in the benchmark (a Kinetics or RoboTAP name is ``<file stem>/<key>``,
  so its file lies in a subfolder ``DIR/<file stem>/<key>.npz``);
- ``query_mode`` str and ``resolution`` int [2] (H, W): what the queries were sampled for.

``tracker=predictions predictions=DIR`` scores ``DIR/<video>.npz`` files holding, for those queries in that
order, ``tracks`` float [N, T, 2] (x, y) and ``occluded`` bool [N, T] in the same pixels (an optional
``query_points`` must then equal the exported one). :class:`PredictionsTracker` follows
:class:`chrono.interfaces.PointTracker` and :class:`chrono.interfaces.VideoAware`, so these files go through the
same loop, tables, files and MLflow logging as any tracker. A missing file, a wrong shape or a non-finite value
stops with one line naming the file (:class:`PredictionsError`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
import torch

from chrono.errors import ChronoError, ConfigError
from chrono.files import atomic_path


class PredictionsError(ChronoError):
    """A predictions (or exported queries) file that is missing or does not fit; the message names the file."""


def video_file(folder: str | Path, name: str) -> Path:
    """``folder/<name>.npz``: the file of video ``name`` (a name with ``/`` lies in a subfolder)."""
    parts = PurePosixPath(str(name)).parts
    if not parts or any(p in ("", ".", "..") for p in parts) or PurePosixPath(str(name)).is_absolute():
        raise PredictionsError(f"{folder}: video name {name!r} cannot be a file name inside this folder")
    return Path(folder).joinpath(*parts[:-1], parts[-1] + ".npz")


def write_queries(folder: str | Path, name: str, query_points: np.ndarray, num_frames: int, query_mode: str,
                  resolution: Sequence[int]) -> Path:
    """Write ``folder/<name>.npz`` with the protocol's queries of one video (see the module docstring)."""
    path = video_file(folder, name)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, query_points=np.asarray(query_points, np.float64), num_frames=np.int64(num_frames),
                     video_name=np.str_(name), query_mode=np.str_(query_mode),
                     resolution=np.asarray(resolution, np.int64))
    return path


def _load(path: Path, name: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise PredictionsError(
            f"{path}: no predictions for video {name!r} (expected <video>.npz with tracks [N, T, 2] and "
            f"occluded [N, T]; `export_queries=DIR` writes the queries)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise PredictionsError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from err


def read_predictions(path: Path, name: str, query_points: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``tracks`` float64 [N, T, 2] and ``occluded`` bool [N, T] of ``path``, checked against the video's
    ``query_points`` [N, 3] and ``num_frames`` T; :class:`PredictionsError` naming the file otherwise."""
    data = _load(path, name)
    missing = [key for key in ("tracks", "occluded") if key not in data]
    if missing:
        raise PredictionsError(f"{path}: no {' and no '.join(missing)} array (found {sorted(data)})")
    tracks, occluded = data["tracks"], data["occluded"]
    num = len(query_points)
    want = f"for the {num} queries of video {name!r} over its {num_frames} frames"
    if tracks.shape != (num, num_frames, 2):
        raise PredictionsError(f"{path}: tracks has shape {list(tracks.shape)}; expected [N, T, 2] = "
                               f"[{num}, {num_frames}, 2] {want}")
    if occluded.shape != (num, num_frames):
        raise PredictionsError(f"{path}: occluded has shape {list(occluded.shape)}; expected [N, T] = "
                               f"[{num}, {num_frames}] {want}")
    if not (np.issubdtype(tracks.dtype, np.floating) or np.issubdtype(tracks.dtype, np.integer)):
        raise PredictionsError(f"{path}: tracks must be float (x, y) pixels; got {tracks.dtype}")
    bad = int(np.size(tracks) - np.isfinite(tracks).sum())
    if bad:
        raise PredictionsError(f"{path}: tracks holds {bad} non-finite value(s) (NaN or Inf); give a position for "
                               f"every frame (mark hidden points in occluded)")
    if occluded.dtype != bool:
        if not (np.issubdtype(occluded.dtype, np.integer) and np.isin(occluded, (0, 1)).all()):
            raise PredictionsError(f"{path}: occluded must be bool [N, T] (or 0/1 integers); got {occluded.dtype}")
        occluded = occluded.astype(bool)
    if "query_points" in data:
        stored = data["query_points"]
        if stored.shape != query_points.shape or not np.allclose(stored, query_points, rtol=0, atol=1e-3):
            raise PredictionsError(f"{path}: its query_points are not this video's queries (another query mode "
                                   f"or benchmark?); export them again with export_queries=DIR")
    return tracks.astype(np.float64), occluded


class PredictionsTracker:
    """Predictions read from ``folder/<video>.npz`` instead of computed (see the module docstring).

    The loop announces each video (:meth:`begin_video`) before asking :meth:`predict` for its queries.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ConfigError(f"predictions={folder}: no such folder (tracker=predictions scores a folder of "
                              f"<video>.npz files)")
        self.video: str | None = None

    def begin_video(self, name: str, num_frames: int) -> None:
        """The next :meth:`predict` call is for video ``name`` (of ``num_frames`` frames)."""
        self.video = name

    def predict(self, video, query_points, resolution: Sequence[int] = (256, 256)) -> dict[str, torch.Tensor]:
        """Args: video [1, T, H, W, 3] (only T is used), query_points [1, N, 3] (t, y, x) at the evaluation
        resolution. Returns the file's ``tracks`` [1, N, T, 2] (x, y) and ``occluded`` bool [1, N, T]."""
        if self.video is None:
            raise RuntimeError("PredictionsTracker.predict called before begin_video(name, num_frames)")
        queries = np.asarray(torch.as_tensor(query_points).detach().cpu().numpy()[0], np.float64)
        num_frames = int(video.shape[1])
        if len(queries) == 0:  # a video with nothing visible has no query, and needs no file
            tracks, occluded = np.zeros((0, num_frames, 2)), np.zeros((0, num_frames), bool)
        else:
            tracks, occluded = read_predictions(video_file(self.folder, self.video), self.video, queries, num_frames)
        return {"tracks": torch.from_numpy(tracks)[None], "occluded": torch.from_numpy(occluded)[None]}
