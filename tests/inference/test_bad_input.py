"""What chrono.track refuses rather than guesses: float frames outside [-1, 1], malformed query rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from chrono.inference.queries import QueryError, read_query_csv
from chrono.pixels import PixelRangeError
from chrono.video_io import ArraySource

REPO = Path(__file__).resolve().parents[2]


def _track(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "chrono.track", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("scale,found", [(255.0, "[0, 255]"), (1.0, "[0, 1]")])
def test_float_frames_outside_minus_one_one_are_refused_with_the_range(tmp_path, tiny_checkpoint, scale, found):
    frames = np.linspace(0, scale, 4 * 16 * 16 * 3, dtype=np.float32).reshape(4, 16, 16, 3)
    video = tmp_path / "clip.npy"
    np.save(video, frames)
    proc = _track([f"video={video}", f"checkpoint={tiny_checkpoint}", "queries=2", f"out={tmp_path / 'out'}"],
                  tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"chrono.track: error: {video}: float frames must lie in [-1, 1], found values in {found}"
        + (" (0..255 frames? give them as uint8)" if scale > 2 else " ([0, 1] frames? scale them to x * 2 - 1)"))
    assert not (tmp_path / "out" / "tracks.npz").exists()


def test_float_frames_in_range_and_non_finite_frames():
    ok = np.full((2, 8, 8, 3), -1.0, np.float32)
    ok[0, 0, 0] = 1.0
    ArraySource(ok)  # accepted
    bad = ok.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(PixelRangeError, match="non-finite"):
        ArraySource(bad, name="frames.npy")


def test_predict_refuses_float_video_outside_the_range():
    import chrono

    tracker = chrono.load_tracker(None, backbone="tiny", input_size=112)
    video = torch.rand(1, 3, 32, 32, 3) * 255
    with pytest.raises(PixelRangeError, match=r"video: float frames must lie in \[-1, 1\]"):
        tracker.predict(video, torch.tensor([[[0.0, 4.0, 4.0]]]))


@pytest.mark.parametrize("text,message", [
    ("0,1\n3,4,5\n6,7,8\n", "q.csv:1: expected three values t,x,y, got 2: '0,1'"),
    ("0,1,a\n3,4,5\n", "q.csv:1: expected three numbers t,x,y, got '0,1,a'"),
    ("0,1,2,3\n", "q.csv:1: expected three values t,x,y, got 4: '0,1,2,3'"),
    ("t,x,y\n0,1,nan\n", "q.csv:2: t, x and y must be finite, got '0,1,nan'"),
])
def test_a_malformed_first_row_is_not_taken_for_a_header(tmp_path, text, message):
    csv = tmp_path / "q.csv"
    csv.write_text(text)
    with pytest.raises(QueryError) as err:
        read_query_csv(csv)
    assert str(err.value) == f"{csv}:{message.split(':', 1)[1]}"


def test_a_header_row_has_no_number(tmp_path):
    csv = tmp_path / "q.csv"
    csv.write_text("frame, x, y\n0,1,2\n4,5,6\n")
    np.testing.assert_array_equal(read_query_csv(csv), [[0, 2, 1], [4, 6, 5]])


def test_a_grid_denser_than_the_pixels_warns(tmp_path, tiny_checkpoint):
    video = tmp_path / "small.npy"
    np.save(video, np.zeros((3, 6, 8, 3), np.uint8))
    proc = _track([f"video={video}", f"checkpoint={tiny_checkpoint}", "queries=7", f"out={tmp_path / 'out'}",
                   "overlay=false", "summary=false", "progress=false"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"chrono.track: warning: queries=7: a 7 x 7 grid is denser than the 8 x 6 pixels of {video}" in proc.stderr
