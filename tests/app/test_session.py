"""Opening videos within the page's limits, the frame shown, and click -> video pixel (chrono/interactive/session.py)."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.interactive.session import Session, display_scale, open_demo, open_path
from chrono.video_io import VideoError


def test_display_scale_enlarges_small_frames_by_an_integer():
    assert display_scale((256, 256), 640) == 2
    assert display_scale((120, 160), 640) == 4
    assert display_scale((480, 854), 640) == 1
    assert display_scale((2160, 3840), 640) == 1


def test_demo_clip_and_paths_within_the_limits(app_settings, tmp_path):
    settings = app_settings()
    demo = open_demo(settings)
    assert demo.num_frames == settings.demo_frames and demo.hw == (256, 256) and demo.name == "demo clip"
    np.save(tmp_path / "ok.npy", np.zeros((20, 12, 16, 3), np.uint8))
    assert open_path(f"  {tmp_path / 'ok.npy'} ", settings).num_frames == 20
    np.save(tmp_path / "long.npy", np.zeros((21, 12, 16, 3), np.uint8))
    with pytest.raises(VideoError, match="long.npy: 21 frames, more than the page's limit of 20 .*max_frames="):
        open_path(tmp_path / "long.npy", settings)
    with pytest.raises(VideoError, match="no such video file"):
        open_path(tmp_path / "missing.mp4", settings)
    (tmp_path / "junk.mp4").write_bytes(b"this is no video")
    with pytest.raises(VideoError, match="junk.mp4: not a readable video"):
        open_path(tmp_path / "junk.mp4", settings)
    with pytest.raises(VideoError, match="no path given"):
        open_path("  ", settings)
    assert open_path(tmp_path / "ok.npy", app_settings(max_side=8)).hw == (6, 8)  # decoded smaller


def test_frame_shows_this_frames_points_and_the_result(app_settings):
    settings = app_settings()
    session = Session(open_demo(settings), settings)
    assert session.scale == 2 and session.to_video(121, 80) == (60.5, 40.0)
    plain = session.frame(3)
    assert plain.shape == (512, 512, 3) and plain.dtype == np.uint8
    np.testing.assert_array_equal(plain[::2, ::2], session.source.read(3, 4)[0])  # nearest-neighbour x2
    session.points.add(3, 60, 40)
    marked = session.frame(3)
    changed = np.argwhere((marked != plain).any(-1))
    assert abs(changed[:, 0].mean() - 80) < 15 and abs(changed[:, 1].mean() - 120) < 15  # drawn around (120, 80)
    np.testing.assert_array_equal(session.frame(4), session.frame(4))  # no point on frame 4: the frame as is
    assert (session.frame(4) == np.repeat(np.repeat(session.source.read(4, 5)[0], 2, 0), 2, 1)).all()

    class Result:  # what the frame view reads of a tracking result
        source = session.source
        tracks = np.full((1, settings.demo_frames, 2), 200.0, np.float32)
        occluded = np.zeros((1, settings.demo_frames), bool)

    with_result = session.frame(4, Result)
    assert (with_result[400, 400] != session.frame(4)[400, 400]).any()  # the tracked point at (200, 200) x2
    Result.source = open_demo(settings)  # a result of another opened video is not drawn
    np.testing.assert_array_equal(session.frame(4, Result), session.frame(4))
    assert session.clamp_frame(99) == settings.demo_frames - 1 and session.clamp_frame(None) == 0
