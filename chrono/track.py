"""Track points through your own video: ``python -m chrono.track video=... checkpoint=... queries=... out=...``.

Reads a video file (decord), a folder of frames or a ``.npy`` array one window at a time, tracks query
points given on any frame (forward and backward in time) with features computed over overlapping
windows of frames (chrono/windowed.py: bounded memory), and writes into ``out``:

- ``tracks.npz``: ``tracks`` [N, T, 2] float32 (x, y) and ``query_points`` [N, 3] (t, y, x) in the
  video's own pixels (raster convention) and frame numbers; ``occluded`` [N, T] bool;
  ``occlusion_logits`` / ``expected_dist_logits`` [N, T]; ``frames`` [T] (the file's frame number of
  each tracked frame); ``video_hw`` (H, W).
- ``tracks.csv``: one row per (frame, point): ``frame,point,x,y,visible``.
- ``overlay.mp4``: the video with a colour per point, short trails, a filled disc when visible and a
  hollow ring when occluded.
- ``summary.png``: the first tracked frame with every trajectory drawn (small videos enlarged to at
  least 256 pixels on the shorter side).

Queries: an integer n for an n x n grid on frame ``grid_frame``, or a CSV file of ``t,x,y`` rows (a
header line is allowed; t is the file's frame number, x and y its pixels). ``demo=true`` makes a short
synthetic video and tracks a grid on it with no download (``make demo``).

Python: :func:`track` does all of the above; ``tracker.track_video(video, queries)`` is the tracking
alone (see README, "Track your own video").
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from chrono.coords import rescale_tyx, rescale_xy
from chrono.video_io import FrameSource, VideoError, atomic_path, open_video

REPO = Path(__file__).resolve().parents[1]


class TrackError(ValueError):
    """Settings of chrono.track that cannot be used; the message names them."""


class QueryError(TrackError):
    """Query points that cannot be used; the message names where they came from."""


class Progress:
    """One line per step on stderr, with the elapsed time."""

    def __init__(self, enabled: bool = True, prefix: str = "chrono.track"):
        self.enabled, self.prefix, self.t0 = enabled, prefix, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{self.prefix} {time.perf_counter() - self.t0:7.1f}s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Queries


def grid_queries(n: int, frame: int, hw: tuple[int, int]) -> np.ndarray:
    """An n x n grid of (t, y, x) queries at the centres of an n x n tiling of an (H, W) frame."""
    if n < 1:
        raise QueryError(f"queries={n}: a grid needs at least 1 x 1 points")
    H, W = hw
    c = (np.arange(n) + 0.5) / n
    y, x = np.meshgrid(c * H, c * W, indexing="ij")
    return np.stack([np.full(n * n, float(frame)), y.ravel(), x.ravel()], -1).astype(np.float32)


def read_query_csv(path: str | Path) -> np.ndarray:
    """Rows ``t,x,y`` (frame number, pixels) of a CSV file -> [N, 3] (t, y, x); an optional header line."""
    path = Path(path)
    if not path.is_file():
        raise QueryError(f"{path}: no such query file (queries= takes a grid size or a CSV of t,x,y rows)")
    rows = []
    for line_no, row in enumerate(csv.reader(io.StringIO(path.read_text())), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        try:
            t, x, y = (float(c) for c in row)
        except ValueError:
            if line_no == 1 and not rows:
                continue  # a header
            raise QueryError(f"{path}:{line_no}: expected three numbers t,x,y, got {','.join(row)!r}") from None
        rows.append((t, y, x))
    if not rows:
        raise QueryError(f"{path}: no query rows (expected lines of t,x,y)")
    return np.asarray(rows, np.float32)


def is_grid_spec(spec: Any) -> bool:
    """Whether ``queries=`` names a grid size n (an integer, or a string of digits) rather than a CSV file."""
    return isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit())


def queries_for(spec: Any, source: FrameSource, grid_frame: int = 0) -> tuple[np.ndarray, str]:
    """Queries (t, y, x) in the file's frame numbers and pixels, and a name for error messages."""
    if is_grid_spec(spec):
        return grid_queries(int(spec), grid_frame, source.original_hw), f"queries={spec} (grid on frame {grid_frame})"
    return read_query_csv(spec), str(spec)


def to_selection(queries: np.ndarray, source: FrameSource, origin: str) -> np.ndarray:
    """File frame numbers and pixels -> (index among the tracked frames, decoded pixels); QueryError if outside."""
    from chrono.windowed import queries_outside

    H, W = source.original_hw
    t = queries[:, 0]
    where = np.searchsorted(source.frame_ids, np.round(t))
    known = (where < source.num_frames) & (source.frame_ids[np.minimum(where, source.num_frames - 1)] == np.round(t))
    outside = queries_outside(queries, source.original_hw)
    untracked = ~known | (t != np.round(t))
    bad = np.flatnonzero(outside | untracked)
    if len(bad):  # the first bad query; outside the frame takes precedence over an untracked frame
        i = int(bad[0])
        if outside[i]:
            raise QueryError(f"{origin}: query {i} (t={t[i]:g}, x={queries[i, 2]:g}, y={queries[i, 1]:g}) lies outside "
                             f"the frame of {source.name} ({W} x {H} pixels)")
        f = source.frame_ids
        kept = f"{f[0]}, {f[1]}, ..., {f[-1]}" if len(f) > 2 else ", ".join(map(str, f))
        raise QueryError(f"{origin}: query {i} is on frame {t[i]:g}, which is not a tracked frame of "
                         f"{source.name} (tracked: {kept})")
    out = rescale_tyx(queries.astype(np.float32), source.original_hw, source.hw)
    out[:, 0] = where
    return out


# --------------------------------------------------------------------------------------------------
# Outputs


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
    from chrono.visualize import draw_summary, write_overlay_video

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


# --------------------------------------------------------------------------------------------------
# The whole job


def track(
    video: str | Path | FrameSource,
    checkpoint=None,
    queries: int | str | Path = 10,
    out: str | Path = "outputs/track",
    *,
    grid_frame: int = 0,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    max_side: int | None = None,
    window: int | None = None,
    overlap: int | None = None,
    resolution: tuple[int, int] = (256, 256),
    device: str = "auto",
    tracker_overrides: dict | None = None,
    overlay: bool = True,
    summary: bool = True,
    trail: int = 8,
    fps: float | None = None,
    progress: bool | Callable[[str], None] = True,
) -> dict[str, Path]:
    """Track ``queries`` through ``video`` and write the files of ``python -m chrono.track`` into ``out``.

    Args:
      video: path of a video file / frame folder / .npy, or an opened frame source.
      checkpoint: path (see :func:`chrono.load_tracker`) or a tracker already loaded.
      queries: n (an n x n grid on ``grid_frame``) or a CSV file of ``t,x,y`` rows (file frame numbers,
        pixels of the video).
      start, end, stride, max_side: frame selection and decoding size (:func:`chrono.video_io.open_video`).
      window, overlap: frames per backbone pass and shared by consecutive passes (None: the defaults of
        :mod:`chrono.windowed`; overlap None with a window given: half of it); window=0 puts the whole
        video through at once.
      resolution: (H, W) frames are resized to for tracking (the reference's 256 x 256).
      tracker_overrides: head settings for :func:`chrono.load_tracker` (e.g. ``input_size``).

    Returns:
      {"npz", "csv", "summary", "overlay"} -> written paths.
    """
    from chrono.windowed import DEFAULT_OVERLAP, DEFAULT_WINDOW

    say = progress if callable(progress) else Progress(bool(progress))
    if window is None:
        window, overlap = DEFAULT_WINDOW, DEFAULT_OVERLAP if overlap is None else overlap
    elif overlap is None:
        overlap = window // 2
    if window < 0 or (window and not 0 <= overlap < window):
        raise TrackError(f"window={window}, overlap={overlap}: need window >= 1 (0: all frames at once) and "
                         f"0 <= overlap < window")
    source = video if isinstance(video, FrameSource) else open_video(video, start, end, stride, max_side)
    q_file, origin = queries_for(queries, source, grid_frame)
    q_sel = to_selection(q_file, source, origin)
    tracker = _tracker(checkpoint, device, tracker_overrides or {})
    say(f"{source.name}: {source.num_frames} frames of {source.hw[0]} x {source.hw[1]} "
        f"(file: {source.original_hw[0]} x {source.original_hw[1]}), {len(q_sel)} queries")
    result = tracker.track_video(source, q_sel, window=window or None, overlap=overlap if window else 0,
                                 resolution=tuple(resolution), progress=say)
    files = write_outputs(Path(out), source, result, q_file, overlay=overlay, summary=summary, trail=trail, fps=fps,
                          progress=say)
    say(f"wrote {', '.join(str(p) for p in files.values())}")
    return files


def _tracker(checkpoint, device: str, overrides: dict):
    from torch import nn

    import chrono
    from chrono.checkpoint import CheckpointError
    from chrono.evaluate import resolve_device

    if isinstance(checkpoint, nn.Module):
        return checkpoint
    if checkpoint is None:
        raise CheckpointError("checkpoint= is required: an official Chrono .ckpt, a DINOv2 *_pretrain.pth or a "
                         "chrono.train checkpoint (make demo runs without one)")
    return chrono.load_tracker(checkpoint, device=resolve_device(device), **overrides)


# --------------------------------------------------------------------------------------------------
# make demo


def newest_train_checkpoint(root: Path = REPO / "outputs" / "train") -> Path | None:
    """The newest checkpoint ``make train`` wrote (``outputs/train/**/checkpoints/{best,last}.ckpt``; of one
    run, best before last), or None."""
    found = [p for name in ("best.ckpt", "last.ckpt") for p in root.glob(f"**/checkpoints/{name}")] if root.is_dir() else []
    return max(found, key=lambda p: (p.parent.stat().st_mtime, p.name == "best.ckpt")) if found else None


def demo_tracker(checkpoint, device: str, say: Callable[[str], None], overrides: dict | None = None):
    """The demo's tracker: ``checkpoint``, else the newest make-train checkpoint, else the random-weight
    official-layout fixture (../shared/fixtures), else a fresh tiny tracker."""
    import chrono
    from chrono.evaluate import resolve_device

    overrides = dict(overrides or {})
    if checkpoint is not None:
        return _tracker(checkpoint, device, overrides)
    found = newest_train_checkpoint()
    if found is not None:
        say(f"using the newest make-train checkpoint {found}")
        return chrono.load_tracker(found, device=resolve_device(device), **overrides)
    fixture = REPO.parent / "shared" / "fixtures" / "chrono_official_tiny" / "model.ckpt"
    if fixture.is_file():
        overrides.setdefault("input_size", 448)
        say(f"NO TRAINED CHECKPOINT: using {fixture}, a tiny Chrono with RANDOM weights, at input "
            f"{overrides['input_size']}. Its tracks are meaningless; this demo only shows the pipeline (compare "
            "*_ground_truth files). Run `make train` for a trained one.")
        return chrono.load_tracker(fixture, device=resolve_device(device), **overrides)
    say("NO TRAINED CHECKPOINT: using a fresh tiny tracker with RANDOM weights. Its tracks are meaningless; this "
        "demo only shows the pipeline (compare *_ground_truth files). Run `make train` for a trained one.")
    overrides.setdefault("input_size", 224)
    return chrono.load_tracker(None, device=resolve_device(device), backbone="tiny", **overrides)


def demo_clip(num_frames: int = 48, size: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """A synthetic clip with exact tracks: video [T, H, W, 3] uint8, tracks [N, T, 2], occluded [N, T],
    query_points [N, 3] (see chrono.data.synthetic.generate_clip)."""
    from chrono.data.synthetic import generate_clip

    return generate_clip(seed, height=size, width=size, num_frames=num_frames, num_tracks=64, num_objects=3)


def run_demo(out: Path, checkpoint=None, queries: Any = 8, device: str = "auto", progress: bool = True,
             tracker_overrides: dict | None = None, num_frames: int = 48, size: int = 256,
             **options: Any) -> dict[str, Path]:
    """``make demo``: write a synthetic mp4 into ``out``, track an n x n grid on it, and also draw the clip's
    exact tracks through the same outputs (``*_ground_truth``) for comparison."""
    from chrono.video_io import Mp4Writer

    say = Progress(progress, "chrono.track demo")
    clip = demo_clip(num_frames, size)
    video_path = Path(out) / "demo_input.mp4"
    with Mp4Writer(video_path, fps=12, crf=12) as writer:
        for frame in clip["video"]:
            writer.write(frame)
    say(f"wrote the synthetic input {video_path} ({len(clip['video'])} frames)")
    source = open_video(video_path)
    truth = {"tracks": clip["tracks"], "occluded": clip["occluded"]}
    write_outputs(Path(out), source, truth, clip["query_points"], suffix="_ground_truth", progress=say)
    tracker = demo_tracker(checkpoint, device, say, tracker_overrides)
    return track(source, tracker, queries, out, progress=say, **options)


# --------------------------------------------------------------------------------------------------
# Command line


def _main(cfg) -> None:
    from hydra.utils import to_absolute_path

    from chrono.checkpoint import CheckpointError

    absolute = lambda p: to_absolute_path(str(p)) if p is not None else None  # noqa: E731
    queries = cfg.queries if is_grid_spec(cfg.queries) else absolute(cfg.queries)
    options = dict(grid_frame=cfg.grid_frame, window=cfg.window, overlap=cfg.overlap,
                   resolution=tuple(cfg.resolution), overlay=cfg.overlay, summary=cfg.summary, trail=cfg.trail,
                   fps=cfg.fps)
    overrides = {k: v for k, v in cfg.tracker.items() if k != "name" and v is not None}
    try:
        if cfg.demo:
            run_demo(Path(absolute(cfg.out)), absolute(cfg.checkpoint), queries, cfg.device, cfg.progress, overrides,
                     **options)
            return
        if cfg.video is None:
            raise VideoError("video= is required: a video file, a folder of frames or a .npy array")
        track(absolute(cfg.video), absolute(cfg.checkpoint), queries, absolute(cfg.out), start=cfg.start, end=cfg.end,
              stride=cfg.stride, max_side=cfg.max_side, device=cfg.device, tracker_overrides=overrides,
              progress=cfg.progress, **options)
    except (VideoError, TrackError, CheckpointError) as err:  # each names the input at fault
        print(f"chrono.track: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    import hydra

    hydra.main(version_base="1.3", config_path="../conf", config_name="track")(_main)()


if __name__ == "__main__":
    main()
