"""``make demo``: a synthetic video with exact tracks, tracked with the newest ``make train`` checkpoint.

With no trained checkpoint the demo says loudly that the tracker is untrained (random weights) and its
tracks are meaningless; it still shows the whole pipeline, beside the clip's exact tracks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from chrono import dist
from chrono.files import project_root, repo_root
from chrono.inference.job import load_tracker_for, track
from chrono.inference.outputs import write_outputs
from chrono.progress import Progress
from chrono.video_io import open_video


def newest_train_checkpoint(root: Path | None = None) -> Path | None:
    """The newest checkpoint ``make train`` wrote (``outputs/train/**/checkpoints/{best,last}.ckpt``; of one
    run, best before last), or None."""
    root = project_root() / "outputs" / "train" if root is None else Path(root)
    found = [p for name in ("best.ckpt", "last.ckpt") for p in root.glob(f"**/checkpoints/{name}")] if root.is_dir() else []
    return max(found, key=lambda p: (p.parent.stat().st_mtime, p.name == "best.ckpt")) if found else None


def demo_tracker(checkpoint, device: str, say: Callable[[str], None], overrides: dict | None = None):
    """The demo's tracker: ``checkpoint``, else the newest make-train checkpoint, else an untrained one
    (:func:`untrained_tracker`)."""
    import chrono

    overrides = dict(overrides or {})
    if checkpoint is not None:
        return load_tracker_for(checkpoint, device, overrides)
    found = newest_train_checkpoint()
    if found is not None:
        say(f"using the newest make-train checkpoint {found}")
        return chrono.load_tracker(found, device=dist.resolve_device(device), **overrides)
    return untrained_tracker(device, say, overrides, "this demo only shows the pipeline (compare *_ground_truth files)")


UNTRAINED_WARNING = ("NO TRAINED CHECKPOINT: using {what} with RANDOM weights. Its tracks are meaningless; {shows}. "
                     "Run `make train` for a trained one.")


def untrained_tracker(device: str, say: Callable[[str], None], overrides: dict | None = None,
                      shows: str = "it only shows the pipeline"):
    """A tracker with random weights, said loudly: the official-layout fixture ``../shared/fixtures/
    chrono_official_tiny`` (at input 448) when it is beside the checkout, else a fresh tiny tracker (input 224).
    ``shows``: what the run is still good for, in the warning."""
    import chrono

    overrides = dict(overrides or {})
    fixture = repo_root().parent / "shared" / "fixtures" / "chrono_official_tiny" / "model.ckpt"
    if fixture.is_file():
        overrides.setdefault("input_size", 448)
        say(UNTRAINED_WARNING.format(what=f"{fixture}, a tiny Chrono at input {overrides['input_size']},", shows=shows))
        return chrono.load_tracker(fixture, device=dist.resolve_device(device), **overrides)
    say(UNTRAINED_WARNING.format(what="a fresh tiny tracker", shows=shows))
    overrides.setdefault("input_size", 224)
    return chrono.load_tracker(None, device=dist.resolve_device(device), backbone="tiny", **overrides)


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

    say = Progress("chrono.track demo", enabled=progress)
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
