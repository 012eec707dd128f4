"""The files of ``chrono.track``: tracks.npz, tracks.csv, overlay.mp4 and summary.png, each written atomically.

- ``tracks.npz``: ``tracks`` [N, T, 2] float32 (x, y) and ``query_points`` [N, 3] (t, y, x) in the
  video's own pixels (raster convention) and frame numbers; ``occluded`` [N, T] bool;
  ``occlusion_logits`` / ``expected_dist_logits`` [N, T]; ``frames`` [T] (the file's frame number of
  each tracked frame); ``video_hw`` (H, W).
- ``tracks.csv``: one row per (frame, point): ``frame,point,x,y,visible``.
- ``overlay.mp4``: the video with a colour per point, short trails, a filled disc when visible and a
  hollow ring when occluded.
- ``summary.png``: the first tracked frame with every trajectory drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from chrono.coords import rescale_tyx, rescale_xy
from chrono.files import atomic_path
from chrono.video_io import FrameSource


def write_tracks_npz(path: Path, result: dict, queries: np.ndarray, source: FrameSource) -> Path:
    """tracks.npz (see the module docstring); ``result`` in the file's pixels (logits only if present)."""
    logits = {f"{k}_logits": result[k] for k in ("occlusion", "expected_dist") if k in result}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, tracks=result["tracks"].astype(np.float32), occluded=result["occluded"].astype(bool),
                     query_points=queries.astype(np.float32), frames=source.frame_ids,
                     video_hw=np.asarray(source.original_hw), **logits)
    return path


def write_tracks_csv(path: Path, tracks: np.ndarray, occluded: np.ndarray, frame_ids: np.ndarray) -> Path:
    """tracks.csv: ``frame,point,x,y,visible``, frame-major, x and y in pixels to 1/1000."""
    N, T = occluded.shape
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write("frame,point,x,y,visible\n")
            for t in range(T):
                f.writelines(f"{frame_ids[t]},{i},{tracks[i, t, 0]:.3f},{tracks[i, t, 1]:.3f},{int(not occluded[i, t])}\n"
                             for i in range(N))
    return path


def write_outputs(out: Path, source: FrameSource, result: dict, queries: np.ndarray, overlay: bool = True,
                  summary: bool = True, trail: int = 8, fps: float | None = None,
                  progress: Callable[[str], None] | None = None, suffix: str = "") -> dict[str, Path]:
    """Write tracks.npz, tracks.csv, overlay.mp4 and summary.png into ``out``.

    Args:
      result: ``tracks`` [N, T, 2] (x, y) in decoded pixels (``source.hw``), ``occluded`` [N, T], logits.
      queries: [N, 3] (t, y, x) in the file's frame numbers and pixels.
      suffix: added to every file name (``_ground_truth`` for the demo's reference tracks).
    """
    from chrono.visualize import draw_summary, write_overlay_video  # PIL and PyAV only when drawing

    out.mkdir(parents=True, exist_ok=True)
    in_file = dict(result, tracks=rescale_xy(result["tracks"], source.hw, source.original_hw))
    files = {
        "npz": write_tracks_npz(out / f"tracks{suffix}.npz", in_file, queries, source),
        "csv": write_tracks_csv(out / f"tracks{suffix}.csv", in_file["tracks"], result["occluded"], source.frame_ids),
    }
    if summary:
        q = rescale_tyx(queries, source.original_hw, source.hw)
        files["summary"] = draw_summary(source.read(0, 1), result["tracks"], result["occluded"], out / f"summary{suffix}.png", q)
    if overlay:
        files["overlay"] = write_overlay_video(out / f"overlay{suffix}.mp4", source, result["tracks"], result["occluded"],
                                               fps=fps, trail=trail, progress=progress)
    return files
