"""make demo (python -m chrono.track demo=true): a synthetic mp4, tracked with no download."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.inference.demo import newest_train_checkpoint, run_demo


def test_demo_writes_the_tracked_and_the_exact_outputs(tmp_path, tiny_checkpoint, decord):
    files = run_demo(tmp_path, checkpoint=tiny_checkpoint, queries=4, progress=False, num_frames=16, size=128)
    assert len(decord.VideoReader(str(tmp_path / "demo_input.mp4"))) == 16
    tracked = np.load(files["npz"])
    assert tracked["tracks"].shape == (16, 16, 2) and tracked["video_hw"].tolist() == [128, 128]
    truth = np.load(tmp_path / "tracks_ground_truth.npz")
    assert truth["tracks"].shape[1] == 16 and truth["occluded"].any() and not truth["occluded"].all()
    for name in ("overlay.mp4", "overlay_ground_truth.mp4"):
        assert len(decord.VideoReader(str(tmp_path / name))) == 16
    assert (tmp_path / "summary.png").is_file() and (tmp_path / "summary_ground_truth.png").is_file()


def test_newest_train_checkpoint(tmp_path):
    import os

    assert newest_train_checkpoint(tmp_path) is None
    old = tmp_path / "default" / "2024-01-01" / "checkpoints"
    new = tmp_path / "smoke" / "2025-01-01" / "checkpoints"
    for folder, stamp in ((old, 1_000_000), (new, 2_000_000)):
        folder.mkdir(parents=True)
        for name in ("last.ckpt", "best.ckpt"):
            (folder / name).write_bytes(b"x")
        os.utime(folder, (stamp, stamp))
    assert newest_train_checkpoint(tmp_path) == new / "best.ckpt"
