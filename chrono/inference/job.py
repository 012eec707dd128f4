"""The whole job of ``python -m chrono.track``: open a video, place the queries, track, write the files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from chrono import dist
from chrono.checkpoint import CheckpointError
from chrono.inference.outputs import write_outputs
from chrono.inference.queries import TrackError, queries_for, to_selection
from chrono.inference.windowed import DEFAULT_OVERLAP, DEFAULT_WINDOW, FeatureStore, track_video
from chrono.interfaces import FeatureTracker
from chrono.progress import as_callback
from chrono.video_io import FrameSource, open_video


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
    trusted: bool = False,
    runtime: str = "torch",
    onnx_model: str | Path | None = None,
    precision: str = "fp32",
    overlay: bool = True,
    summary: bool = True,
    trail: int = 8,
    fps: float | None = None,
    progress: bool | Callable[[str], None] = True,
    feature_store: FeatureStore | None = None,
    on_window: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """Track ``queries`` through ``video`` and write the files of ``python -m chrono.track`` into ``out``.

    Args:
      video: path of a video file / frame folder / .npy, or an opened frame source.
      checkpoint: path (see :func:`chrono.load_tracker`) or a tracker already loaded (PyTorch or ONNX Runtime).
      queries: n (an n x n grid on ``grid_frame``) or a CSV file of ``t,x,y`` rows (file frame numbers,
        pixels of the video).
      start, end, stride, max_side: frame selection and decoding size (:func:`chrono.video_io.open_video`).
      window, overlap: frames per backbone pass and shared by consecutive passes (None: the defaults of
        :mod:`chrono.inference.windowed`; overlap None with a window given: half of it); window=0 puts the whole
        video through at once.
      resolution: (H, W) frames are resized to for tracking (the reference's 256 x 256).
      tracker_overrides: head settings for :func:`chrono.load_tracker` (e.g. ``input_size``).
      trusted: full unpickling of a checkpoint file you trust (see :func:`chrono.checkpoint.read_checkpoint`).
      runtime, onnx_model, precision: ``runtime="onnx"`` tracks with the exported model ``onnx_model`` in ONNX
        Runtime (``precision="int8"``: its int8 version) instead of the checkpoint in PyTorch
        (:func:`chrono.deploy.runtime.open_tracker`).
      feature_store, on_window: passed to :func:`chrono.inference.windowed.track_video` (features kept
        across calls on the same opened ``video``; a structured per-window progress hook).

    Returns:
      {"npz", "csv", "summary", "overlay"} -> written paths.
    """
    say = as_callback(progress, "chrono.track")
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
    tracker = load_tracker_for(checkpoint, device, tracker_overrides or {}, trusted, runtime, onnx_model, precision)
    say(f"{source.name}: {source.num_frames} frames of {source.hw[0]} x {source.hw[1]} "
        f"(file: {source.original_hw[0]} x {source.original_hw[1]}), {len(q_sel)} queries")
    result = track_video(tracker, source, q_sel, window=window or None, overlap=overlap if window else 0,
                         resolution=tuple(resolution), progress=say, feature_store=feature_store,
                         on_window=on_window)
    files = write_outputs(Path(out), source, result, q_file, overlay=overlay, summary=summary, trail=trail, fps=fps,
                          progress=say)
    say(f"wrote {', '.join(str(p) for p in files.values())}")
    return files


def load_tracker_for(checkpoint, device: str, overrides: dict, trusted: bool = False, runtime: str = "torch",
                     onnx_model=None, precision: str = "fp32"):
    """``checkpoint`` as it is when it is already a tracker; else the tracker of the runtime settings
    (:func:`chrono.deploy.runtime.open_tracker`): :func:`chrono.load_tracker` of the path ``checkpoint``, or the
    exported model ``onnx_model`` in ONNX Runtime."""
    import chrono
    from chrono.deploy.runtime import open_tracker

    if isinstance(checkpoint, FeatureTracker):
        return checkpoint

    def load_torch():
        if checkpoint is None:
            raise CheckpointError("checkpoint= is required: an official Chrono .ckpt, a DINOv2 *_pretrain.pth or a "
                                  "chrono.train checkpoint (make demo runs without one; runtime=onnx reads onnx_model=)")
        return chrono.load_tracker(checkpoint, device=dist.resolve_device(device), trusted=trusted, **overrides)

    return open_tracker(runtime, onnx_model, precision, device, overrides, load_torch)
