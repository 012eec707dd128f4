"""Track points through your own video: ``python -m chrono.track video=... checkpoint=... queries=... out=...``.

Reads a video file (decord), a folder of frames or a ``.npy`` array one window at a time, tracks query
points given on any frame (forward and backward in time) with features computed over overlapping
windows of frames (chrono/inference/windowed.py: bounded memory), and writes into ``out``:

``tracks.npz``, ``tracks.csv``, ``overlay.mp4`` and ``summary.png`` (their layout:
:mod:`chrono.inference.outputs`).

Queries: an integer n for an n x n grid on frame ``grid_frame``, or a CSV file of ``t,x,y`` rows (a
header line is allowed; t is the file's frame number, x and y its pixels). ``demo=true`` makes a short
synthetic video and tracks a grid on it with no download (``make demo``).

``runtime=onnx onnx_model=X.onnx`` tracks with a model exported by ``python -m chrono.export`` in ONNX Runtime
(``precision=int8``: its int8 version; docs/deploy.md), with the same outputs and files.

Python: :func:`chrono.inference.job.track` does all of the above; ``chrono.track_video(tracker, video,
queries)`` is the tracking alone (docs/tracking.md).
"""

from __future__ import annotations

from pathlib import Path

from chrono.cli import hydra_command
from chrono.config import register
from chrono.errors import ConfigError
from chrono.inference.demo import run_demo
from chrono.inference.job import track
from chrono.inference.queries import is_grid_spec
from chrono.video_io import VideoError

register()


@hydra_command("track", prog="chrono.track")
def main(cfg) -> None:
    """Track the queries through the video (or run the demo) and write the files into ``out``."""
    from hydra.utils import to_absolute_path

    absolute = lambda p: to_absolute_path(str(p)) if p is not None else None  # noqa: E731
    queries = cfg.queries if is_grid_spec(cfg.queries) else absolute(cfg.queries)
    options = dict(grid_frame=cfg.grid_frame, window=cfg.window, overlap=cfg.overlap,
                   resolution=tuple(cfg.resolution), overlay=cfg.overlay, summary=cfg.summary, trail=cfg.trail,
                   fps=cfg.fps)
    overrides = {k: v for k, v in cfg.tracker.items() if k != "name" and v is not None}
    if cfg.demo:
        if cfg.runtime != "torch":
            raise ConfigError(f"demo=true runtime={cfg.runtime}: the demo tracks in PyTorch; track its video with "
                              "video=outputs/demo/<clip>.mp4 runtime=onnx onnx_model=...")
        run_demo(Path(absolute(cfg.out)), absolute(cfg.checkpoint), queries, cfg.device, cfg.progress, overrides,
                 **options)
        return
    if cfg.video is None:
        raise VideoError("video= is required: a video file, a folder of frames or a .npy array")
    track(absolute(cfg.video), absolute(cfg.checkpoint), queries, absolute(cfg.out), start=cfg.start, end=cfg.end,
          stride=cfg.stride, max_side=cfg.max_side, device=cfg.device, tracker_overrides=overrides,
          progress=cfg.progress, trusted=cfg.trust_checkpoint, runtime=cfg.runtime,
          onnx_model=absolute(cfg.onnx_model), precision=cfg.precision, **options)


if __name__ == "__main__":
    main()
