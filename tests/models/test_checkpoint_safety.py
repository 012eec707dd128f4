"""Loading a checkpoint never runs code from it unless the user trusts the file; every bad file is one clear error."""

from __future__ import annotations

import argparse
import re
import pathlib
import sys
import types

import pytest
import torch

import chrono
from chrono.checkpoint import CheckpointError, build_tracker, read_checkpoint, tracker_checkpoint

class Exploit:
    """What a malicious pickle holds: unpickling it calls os.makedirs (harmless here, and visible)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.makedirs, (self.marker,)


@pytest.fixture()
def tiny():
    return build_tracker("tiny", input_size=112)


def _official_like(tracker):
    """A Lightning-style dict of the official layout (weights under state_dict, keys model.*)."""
    return {"state_dict": {f"model.{k}": v for k, v in tracker.state_dict().items()}, "epoch": 3,
            "global_step": 100, "pytorch-lightning_version": "2.1.0"}


def test_a_payload_in_a_checkpoint_is_refused_and_does_not_run(tiny, tmp_path):
    path = tmp_path / "evil.ckpt"
    marker = tmp_path / "the-payload-ran"
    torch.save({**_official_like(tiny), "hyper_parameters": Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil.ckpt: holds the object os.makedirs, .*trust_checkpoint=true"):
        chrono.load_tracker(path)
    assert not marker.exists()
    tracker = chrono.load_tracker(path, trusted=True)  # the explicit opt-in for a file one trusts
    assert marker.is_dir() and tracker.cfg.backbone.depth == 3


def test_lightning_hyper_parameters_load_safely_without_lightning(tiny, tmp_path):
    # Lightning pickles its AttributeDict, argparse namespaces and paths: allowed, read as plain values.
    AttributeDict = type("AttributeDict", (dict,), {"__module__": "lightning.fabric.utilities.data"})
    names = ["lightning", "lightning.fabric", "lightning.fabric.utilities", "lightning.fabric.utilities.data"]
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    sys.modules[names[-1]].AttributeDict = AttributeDict
    path = tmp_path / "official.ckpt"
    try:
        torch.save({**_official_like(tiny), "hyper_parameters": AttributeDict(lr=1e-4, model_kwargs={"a": 1}),
                    "args": argparse.Namespace(x=1), "dirpath": pathlib.PosixPath("/ckpt")}, path)
    finally:
        for name in names:
            del sys.modules[name]
    assert dict(read_checkpoint(path)["hyper_parameters"]) == {"lr": 1e-4, "model_kwargs": {"a": 1}}
    tracker = chrono.load_tracker(path)
    torch.testing.assert_close(tracker.state_dict()["occ_linear.weight"], tiny.state_dict()["occ_linear.weight"])


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("hello, I am text"), "not a readable PyTorch checkpoint"),
    (lambda p: p.write_bytes(b""), "the file is empty (0 bytes"),
    (lambda p: p.mkdir(), "is a directory, not a checkpoint file"),
])
def test_files_that_are_not_checkpoints_raise_checkpoint_error(tmp_path, make, message):
    path = tmp_path / "model.ckpt"
    make(path)
    with pytest.raises(CheckpointError, match=re.escape(message)) as err:
        chrono.load_tracker(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_suite_checkpoints_are_safe_to_load(tiny, tmp_path):
    path = tmp_path / "ours.ckpt"
    torch.save(tracker_checkpoint(tiny), path)
    assert chrono.load_tracker(path).cfg == tiny.cfg


def test_the_commands_refuse_with_one_line_and_exit_2(tiny, tmp_path, fixtures_dir):
    import subprocess

    path = tmp_path / "evil.ckpt"
    torch.save({**_official_like(tiny), "hyper_parameters": Exploit(tmp_path / "ran")}, path)
    video = tmp_path / "clip.npy"
    import numpy as np

    np.save(video, np.zeros((4, 32, 32, 3), np.uint8))
    proc = subprocess.run([sys.executable, "-m", "chrono.track", f"video={video}", f"checkpoint={path}", "queries=2",
                           f"out={tmp_path / 'out'}", "progress=false"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"chrono.track: error: {path}: holds the object")
    assert not (tmp_path / "ran").exists()
