"""Drawing (chrono/visualize.py): markers where the tracks are, filled vs hollow, and the overlay of exact tracks.

``test_overlay_of_exact_tracks_sits_on_the_moving_content`` saves frames of the overlay as PNG files in
its test output (and in $CHRONO_TEST_ARTIFACTS when set) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from chrono.visualize import draw_points, draw_summary, draw_trajectories, point_colors, write_overlay_video


def test_point_colors_are_distinct():
    c = point_colors(10)
    assert c.shape == (10, 3) and c.dtype == np.uint8 and len({tuple(x) for x in c}) == 10
    assert point_colors(1).shape == (1, 3) and point_colors(0).shape == (0, 3)


def test_markers_sit_on_the_raster_position_filled_or_hollow():
    frame = np.full((40, 40, 3), 128, np.uint8)
    colors = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    # point 0 visible at the centre of pixel (x=10, y=20); point 1 occluded at pixel (30, 5)
    trails = np.array([[[10.5, 20.5]], [[30.5, 5.5]]], np.float32)
    out = draw_points(frame, trails, np.array([[False], [True]]), colors, radius=3)
    assert out[20, 10].tolist() == [255, 0, 0]  # a filled disc centred on its pixel
    assert out[20, 7].tolist() != [128, 128, 128] and out[20, 13].tolist() != [128, 128, 128]  # symmetric
    assert out[5, 30].tolist() == [128, 128, 128]  # a hollow ring: the centre shows the frame
    assert out[5, 27].tolist() == [0, 0, 255] and out[5, 33].tolist() == [0, 0, 255]
    # a trail: the segment from the older to the current position is drawn between them
    trails = np.array([[[5.5, 5.5], [25.5, 5.5]]], np.float32)
    out = draw_points(frame, trails, np.zeros((1, 2), bool), colors[:1], radius=2)
    assert (out[5, 10:20] != 128).any(axis=-1).all()


def test_trajectories_summary(tmp_path):
    frame = np.zeros((20, 30, 3), np.uint8)
    tracks = np.array([[[2.5, 2.5], [20.5, 2.5], [20.5, 15.5]]], np.float32)
    out = draw_trajectories(frame, tracks, np.zeros((1, 3), bool), np.array([[0, 2.5, 2.5]]), dim=0)
    assert out.shape == (20, 30, 3)
    assert (out[2, 5:18].sum(-1) > 0).all() and (out[5:13, 20].sum(-1) > 0).all()  # both segments
    big = draw_trajectories(frame, tracks, np.zeros((1, 3), bool), min_side=64)
    assert big.shape == (80, 120, 3) and (big[4 * 2 + 2, 20:72].sum(-1) > 0).all()  # enlarged x4, tracks too
    video = np.zeros((3, 20, 30, 3), np.float32) - 1  # float in [-1, 1] as training holds it
    path = draw_summary(video, tracks, np.zeros((1, 3), bool), tmp_path / "pictures" / "tracks.png", min_side=0)
    assert np.array_equal(np.asarray(Image.open(path)), draw_trajectories(frame, tracks, np.zeros((1, 3), bool)))


def test_overlay_of_exact_tracks_sits_on_the_moving_content(tmp_path, make_moving_clip, decord):
    """Exact tracks of a moving clip drawn through the overlay code: every visible point's marker is at
    its track position (so the markers move with the content), and the mp4 read back holds those frames."""
    clip = make_moving_clip(num_frames=16, height=96, width=128, grid=5)
    tracks, occluded = clip["tracks"], clip["occluded"]
    path = write_overlay_video(tmp_path / "overlay.mp4", clip["video"], tracks, occluded, fps=8, trail=8)
    reader = decord.VideoReader(str(path))
    assert len(reader) == 16 and reader[0].shape == (96, 128, 3)
    colors = point_colors(len(tracks))
    hits = total = 0
    for t in (0, 7, 15):
        lo = max(0, t - 7)
        drawn = draw_points(clip["video"][t], tracks[:, lo : t + 1], occluded[:, lo : t + 1], colors)
        for i in np.flatnonzero(~occluded[:, t]):
            x, y = tracks[i, t].astype(int)
            total += 1
            hits += drawn[y, x].tolist() == colors[i].tolist()
        decoded = reader[t].asnumpy()
        # H.264 (chroma at half resolution) blurs the small discs' colour a little, nothing more
        assert np.abs(decoded.astype(int) - drawn).mean() < 6
        assert np.abs(decoded.astype(int) - drawn).mean() < np.abs(decoded.astype(int) - clip["video"][t]).mean()
        Image.fromarray(np.repeat(np.repeat(decoded, 3, 0), 3, 1)).save(tmp_path / f"overlay_frame{t:02d}.png")
    artifacts = os.environ.get("CHRONO_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        for png in tmp_path.glob("*.png"):
            shutil.copy(png, Path(artifacts) / png.name)
    assert total > 40 and hits == total, f"{hits} of {total} visible markers at their track positions"


def test_comparison_ring_for_truth_disc_for_prediction_line_when_apart():
    from chrono.visualize import draw_comparison

    frame = np.full((60, 60, 3), 128, np.uint8)
    bg, red, blue = [128, 128, 128], [255, 0, 0], [0, 0, 255]
    colors = np.array([red, blue], np.uint8)
    # point 0: prediction 6 px right of the truth (no line); point 1: 20 px apart (a line joins them)
    gt = np.array([[10.5, 10.5], [10.5, 40.5]])
    pred = np.array([[16.5, 10.5], [30.5, 40.5]])
    out = draw_comparison(frame, pred, np.zeros(2, bool), gt, np.zeros(2, bool), colors, radius=2)
    assert out[10, 16].tolist() == red and out[10, 8].tolist() == red  # the disc's centre, the ring (radius 2)
    assert out[10, 10].tolist() == bg and out[10, 13].tolist() == bg  # hollow ring, no line between
    assert out[40, 30].tolist() == blue and out[40, 8].tolist() == blue
    line = out[40, 14:28].astype(int)  # the line (drawn slightly see-through, under the markers)
    assert (line[:, 2] > 220).all() and (line[:, :2] < 40).all()
    ring_only = draw_comparison(frame, pred, np.ones(2, bool), gt, np.zeros(2, bool), colors, radius=2)
    assert ring_only[10, 8].tolist() == red and ring_only[10, 16].tolist() == bg  # predicted occluded: no disc
    assert ring_only[40, 30].tolist() == bg and ring_only[40, 20].tolist() == bg  # and no line
    disc_only = draw_comparison(frame, pred, np.zeros(2, bool), gt, np.ones(2, bool), colors, radius=2)
    assert disc_only[10, 8].tolist() == bg and disc_only[40, 30].tolist() == blue  # truth occluded: no ring


def test_comparison_summary_panels_and_video(tmp_path, decord):
    from chrono.visualize import draw_comparison_summary, write_comparison_video

    T, H, W = 9, 32, 48
    video = np.full((T, H, W, 3), 100, np.uint8)
    gt = np.tile(np.array([[24.5, 8.5], [40.5, 14.5]])[:, None], (1, T, 1))  # clear of the panel labels
    gt[0, :, 0] += np.arange(T)  # point 0 moves right by 1 px per frame
    pred = gt + np.array([0.0, 12.0])  # 12 px below the truth
    occluded = np.zeros((2, T), bool)
    picture, panels = draw_comparison_summary(video, pred, occluded, gt, occluded, "caption", frames=4, scale=2)
    assert set(panels) == {"ground truth", "prediction", "frame 0", "frame 3", "frame 5", "frame 8"}
    assert picture.shape == (18 + 2 * H + H, 4 * W, 3)
    colors = point_colors(2)
    for name in ("frame 3", "frame 8"):
        p = panels[name]
        for i in range(2):
            x, y = (pred[i, p.frame] * p.scale).astype(int) + (p.x0, p.y0)
            assert picture[y, x].tolist() == colors[i].tolist(), (name, i)  # a disc on the prediction
            x, y = (gt[i, p.frame] * p.scale).astype(int) + (p.x0, p.y0)
            assert picture[y, x - 2].tolist() == colors[i].tolist(), (name, i)  # a ring (radius 2) on the truth
    path = write_comparison_video(tmp_path / "cmp.mp4", video, pred, occluded, gt, occluded, fps=5, scale=2)
    reader = decord.VideoReader(str(path))
    assert len(reader) == T and reader[0].shape == (2 * H, 2 * W, 3)
