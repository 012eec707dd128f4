"""python -m chrono.track runtime=onnx: the same files as the PyTorch path, and one-line errors for bad models."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("decord", reason="decord wheels exist for x86-64 only")
pytestmark = pytest.mark.slow  # two chrono.track runs (and the session's tiny export, shared)
REPO = Path(__file__).resolve().parents[2]


def _run(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "chrono.track", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _rows(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_onnx_runtime_writes_the_same_files_as_pytorch(tmp_path, clip_mp4, tiny_onnx):
    video, _ = clip_mp4
    model, checkpoint, _, _ = tiny_onnx
    common = [f"video={video}", "queries=3", "window=6", "overlap=2"]
    torch_run = _run([*common, f"checkpoint={checkpoint}", "out=torch"], tmp_path)
    onnx_run = _run([*common, "runtime=onnx", f"onnx_model={model}", "out=onnx"], tmp_path)
    assert torch_run.returncode == 0 and onnx_run.returncode == 0, onnx_run.stderr
    assert "tracking: window 3/3" in onnx_run.stderr  # windowed tracking on the streaming graphs
    names = lambda d: sorted(p.name for p in (tmp_path / d).iterdir() if p.is_file())  # noqa: E731
    assert names("onnx") == names("torch") == ["overlay.mp4", "summary.png", "tracks.csv", "tracks.npz"]
    a, b = np.load(tmp_path / "torch" / "tracks.npz"), np.load(tmp_path / "onnx" / "tracks.npz")
    assert sorted(a.files) == sorted(b.files)
    for key in ("query_points", "frames", "video_hw"):
        assert np.array_equal(a[key], b[key]), key
    assert b["tracks"].dtype == np.float32 and np.abs(a["tracks"] - b["tracks"]).max() <= 1e-3
    for key in ("occlusion_logits", "expected_dist_logits"):
        assert np.abs(a[key] - b[key]).max() <= 1e-4, key
    assert np.array_equal(a["occluded"], b["occluded"])
    ra, rb = _rows(tmp_path / "torch" / "tracks.csv"), _rows(tmp_path / "onnx" / "tracks.csv")
    assert ra[0] == rb[0] and len(ra) == len(rb)
    for x, y in zip(ra[1:], rb[1:]):
        assert x[:2] == y[:2] and x[4] == y[4]  # frame, point, visible
        assert abs(float(x[2]) - float(y[2])) <= 2e-3 and abs(float(x[3]) - float(y[3])) <= 2e-3  # 1/1000 px rounding


def test_bad_or_missing_onnx_model_is_one_line(tmp_path, clip_mp4, tiny_onnx, capsys):
    from chrono import track

    video, _ = clip_mp4
    model, _, _, _ = tiny_onnx
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    res = _run([f"video={video}", "out=o", "runtime=onnx", f"onnx_model={tmp_path / 'none.onnx'}"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr  # the real command line
    assert res.stderr.strip().splitlines()[-1] == f"chrono.track: error: {tmp_path / 'none.onnx'}: no such ONNX model " \
        "(python -m chrono.export writes one)"
    cases = [  # the same guard in-process (chrono.cli.one_line_errors), quicker
        (["runtime=onnx", f"onnx_model={bad}"], "bad.features.onnx: missing beside"),
        (["runtime=onnx"], "runtime=onnx needs onnx_model=PATH"),
        (["runtime=onnx", f"onnx_model={model}", "resolution=[128,128]"], "exported for 256 x 256 frames"),
        (["runtime=onnx", f"onnx_model={model}", "tracker.input_size=224"], "tracker.input_size=224: fixed in an"),
        (["precision=int8", f"onnx_model={model}"], "is run by runtime=onnx"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as stop:
            track.main([f"video={video}", f"out={tmp_path / 'o'}", "progress=false", *args])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("chrono.track: error: "), args
        assert message in err, (args, err)
