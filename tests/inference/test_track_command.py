"""python -m chrono.track end to end: files written, queries on any frame, frame selection, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from chrono.checkpoint import CheckpointError
from chrono.inference.job import track
from chrono.inference.queries import QueryError, TrackError, grid_queries, read_query_csv
from chrono.video_io import VideoError

decord = pytest.importorskip("decord", reason="decord wheels exist for x86-64 only")
REPO = Path(__file__).resolve().parents[2]


def _run(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "chrono.track", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_command_writes_tracks_csv_overlay_and_summary(tmp_path, clip_mp4, tiny_checkpoint):
    video, clip = clip_mp4
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "clip.mp4").write_bytes(video.read_bytes())
    # relative paths are taken from the folder the command starts in
    res = _run(["video=in/clip.mp4", f"checkpoint={tiny_checkpoint}", "queries=3", "out=result", "window=6",
                "overlap=2"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "tracking: window 3/3" in res.stderr  # progress, one line per window
    out = tmp_path / "result"
    data = np.load(out / "tracks.npz")
    T, H, W = 12, 64, 80
    assert data["tracks"].shape == (9, T, 2) and data["tracks"].dtype == np.float32
    assert data["occluded"].shape == (9, T) and data["occluded"].dtype == bool
    assert data["occlusion_logits"].shape == data["expected_dist_logits"].shape == (9, T)
    np.testing.assert_allclose(data["query_points"], grid_queries(3, 0, (H, W)))
    assert data["frames"].tolist() == list(range(T)) and data["video_hw"].tolist() == [H, W]
    # on its own frame a track is its query point, (x, y) = query (x, y)
    np.testing.assert_allclose(data["tracks"][:, 0], data["query_points"][:, [2, 1]], atol=1e-4)
    assert np.isfinite(data["tracks"]).all()

    lines = (out / "tracks.csv").read_text().splitlines()
    assert lines[0] == "frame,point,x,y,visible" and len(lines) == 1 + 9 * T
    frame, point, x, y, visible = lines[1 + 9 * 5 + 4].split(",")
    assert (int(frame), int(point)) == (5, 4)
    assert float(x) == pytest.approx(data["tracks"][4, 5, 0], abs=1e-3)
    assert float(y) == pytest.approx(data["tracks"][4, 5, 1], abs=1e-3)
    assert int(visible) == int(not data["occluded"][4, 5])

    overlay = decord.VideoReader(str(out / "overlay.mp4"))
    assert len(overlay) == T and overlay[0].shape == (H, W, 3)
    from PIL import Image

    assert Image.open(out / "summary.png").size == (4 * W, 4 * H)  # enlarged to >= 256 pixels
    assert (out / ".hydra" / "config.yaml").is_file()


def test_queries_on_any_frame_with_stride_and_max_side(tmp_path, clip_mp4, tiny_checkpoint):
    video, _ = clip_mp4
    csv = tmp_path / "q.csv"
    csv.write_text("t,x,y\n6,40.0,30.0\n\n0,10.5,60.25\n10,79.0,1.0\n")
    files = track(video, tiny_checkpoint, csv, tmp_path / "o", stride=2, max_side=40, window=3, overlap=1,
                  overlay=False, progress=False)
    assert set(files) == {"npz", "csv", "summary"}
    data = np.load(files["npz"])
    assert data["frames"].tolist() == [0, 2, 4, 6, 8, 10]
    assert data["tracks"].shape == (3, 6, 2)
    # in the file's own pixels (not the 32 x 40 decoded ones), pinned on each query's frame
    np.testing.assert_allclose(data["tracks"][0, 3], (40.0, 30.0), atol=1e-4)  # frame 6 = 4th tracked frame
    np.testing.assert_allclose(data["tracks"][1, 0], (10.5, 60.25), atol=1e-4)
    np.testing.assert_allclose(data["tracks"][2, 5], (79.0, 1.0), atol=1e-4)
    np.testing.assert_allclose(data["query_points"][0], (6, 30.0, 40.0))
    rows = files["csv"].read_text().splitlines()
    assert rows[1].startswith("0,0,") and rows[-1].startswith("10,2,")


def test_query_csv_errors_name_the_file_and_row(tmp_path, clip_mp4, tiny_checkpoint):
    video, _ = clip_mp4
    csv = tmp_path / "q.csv"
    csv.write_text("t,x,y\n0,1,2\n0,1\n")
    with pytest.raises(QueryError, match=r"q.csv:3: expected three values t,x,y, got 2"):
        read_query_csv(csv)
    for text, match in [
        ("0,10,10\n3,80.5,10\n", r"q.csv: query 1 \(t=3, x=80.5, y=10\) lies outside the frame of .*clip.mp4 \(80 x 64"),
        ("12,1,1\n", r"query 0 is on frame 12, which is not a tracked frame"),
        ("5,1,1\n", r"query 0 is on frame 5, which is not a tracked frame .*tracked: 0, 2, \.\.\., 10"),
        ("t,x,y\n", r"q.csv: no query rows"),
    ]:
        csv.write_text(text)
        with pytest.raises(QueryError, match=match):
            track(video, tiny_checkpoint, csv, tmp_path / "o", stride=2, progress=False)
    with pytest.raises(QueryError, match=r"queries=2 \(grid on frame 40\): query 0 is on frame 40"):
        track(video, tiny_checkpoint, 2, tmp_path / "o", grid_frame=40, progress=False)
    with pytest.raises(QueryError, match="nope.csv: no such query file"):
        track(video, tiny_checkpoint, tmp_path / "nope.csv", tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()  # nothing written on bad input


def test_checkpoint_that_does_not_fit_is_named(tmp_path, clip_mp4):
    video, _ = clip_mp4
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.ckpt: a Lightning checkpoint, but not of Chrono"):
        track(video, foreign, 2, tmp_path / "o", progress=False)
    with pytest.raises(CheckpointError, match="checkpoint= is required"):
        track(video, None, 2, tmp_path / "o", progress=False)


def test_bad_window_settings(clip_mp4, tiny_checkpoint, tmp_path):
    with pytest.raises(TrackError, match=r"window=4, overlap=4: need"):
        track(clip_mp4[0], tiny_checkpoint, 2, tmp_path / "o", window=4, overlap=4, progress=False)


def test_command_reports_bad_input_without_a_traceback(tmp_path, tiny_checkpoint):
    junk = tmp_path / "holiday.mp4"
    junk.write_bytes(b"\x00" * 1000)
    res = _run([f"video={junk}", f"checkpoint={tiny_checkpoint}", f"out={tmp_path / 'o'}"], cwd=tmp_path)
    assert res.returncode == 2
    assert f"chrono.track: error: {junk}: not a readable video" in res.stderr
    assert "Traceback" not in res.stderr
