"""The checkpoints the page offers and loading them (chrono/interactive/checkpoints.py)."""

from __future__ import annotations

import os

import pytest

from chrono.checkpoint import CheckpointError
from chrono.interactive.checkpoints import UNTRAINED, TrackerLoader, checkpoint_choices, find_checkpoints, note_for


def _touch(path, stamp):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (stamp, stamp))
    os.utime(path.parent, (stamp, stamp))
    return path


def test_offered_checkpoints_newest_first_and_the_default(tmp_path):
    assert checkpoint_choices(None, tmp_path) == ([UNTRAINED], UNTRAINED)
    official = _touch(tmp_path / "checkpoints" / "chrono_vits.ckpt", 3_000_000)
    dinov2 = _touch(tmp_path / "checkpoints" / "dinov2" / "dinov2_vits14_pretrain.pth", 1_000)
    old = _touch(tmp_path / "outputs" / "train" / "a" / "checkpoints" / "best.ckpt", 1_000_000)
    new = _touch(tmp_path / "outputs" / "train" / "b" / "checkpoints" / "last.ckpt", 2_000_000)
    _touch(tmp_path / "outputs" / "train" / "b" / "notes.ckpt", 4_000_000)  # not in a checkpoints/ folder
    assert find_checkpoints(tmp_path) == [official, new, old, dinov2]
    choices, default = checkpoint_choices(None, tmp_path)
    assert choices == [str(official), str(new), str(old), str(dinov2), UNTRAINED]
    assert default == str(new)  # the newest make-train checkpoint, not the newest file
    choices, default = checkpoint_choices("/elsewhere/mine.ckpt", tmp_path)
    assert default == "/elsewhere/mine.ckpt" and choices[0] == default


def test_loading_says_what_is_wrong_and_keeps_the_tracker(tmp_path, tiny_checkpoint):
    loader = TrackerLoader("cpu", {})
    with pytest.raises(CheckpointError, match="missing.ckpt: no such checkpoint file"):
        loader.get(str(tmp_path / "missing.ckpt"))
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        loader.get(str(tmp_path / "junk.ckpt"))
    tracker, replaced = loader.get(str(tiny_checkpoint))
    assert replaced is None and loader.get(str(tiny_checkpoint)) == (tracker, None)  # loaded once
    said = []
    untrained, replaced = loader.get(UNTRAINED, said.append)
    assert replaced is tracker and "meaningless" in said[0]
    assert "meaningless" in note_for(UNTRAINED) and "meaningless" in note_for(None)
    assert note_for(str(tiny_checkpoint)) == f"Checkpoint: `{tiny_checkpoint}`"
