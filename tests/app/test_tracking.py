"""One Track press (chrono/interactive/tracking.py): chrono.track's own job and files, window features reused."""

from __future__ import annotations

import numpy as np

from chrono.inference.job import load_tracker_for, track
from chrono.inference.queries import read_query_csv, to_selection, write_query_csv
from chrono.inference.windowed import FeatureStore
from chrono.interactive.session import open_demo
from chrono.interactive.tracking import WindowProgress, file_queries, run_track
from chrono.video_io import open_video


def test_queries_csv_round_trips_bit_for_bit(tmp_path):
    q = np.array([[3, 1 / 3, 2 / 3], [0, 255.99, 0.0], [12, 100.5, 7.25]], np.float32)  # (t, y, x)
    path = write_query_csv(tmp_path / "queries.csv", q)
    assert path.read_text().splitlines()[0] == "t,x,y"
    np.testing.assert_array_equal(read_query_csv(path), q)


def test_file_queries_are_the_inverse_of_chrono_track_selection(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((30, 40, 60, 3), np.uint8))
    source = open_video(tmp_path / "v.npy", start=4, stride=3, max_side=30)  # frames 4, 7, ...; 20 x 30 pixels
    page = np.array([[0, 10.0, 15.0], [2, 19.5, 0.5]], np.float32)  # (t index, y, x) decoded pixels
    in_file = file_queries(page, source)
    np.testing.assert_array_equal(in_file, [[4, 20.0, 30.0], [10, 39.0, 1.0]])
    np.testing.assert_allclose(to_selection(in_file, source, "test"), page)


def test_run_track_is_chrono_track_and_reuses_features(app_settings, tmp_path):
    settings = app_settings()
    source, store = open_demo(settings), FeatureStore()
    tracker = load_tracker_for(settings.checkpoint, "cpu", {})  # the store keys on this very tracker
    queries = np.array([[5, 40.0, 60.0], [0, 200.0, 180.5], [15, 128.0, 3.0]], np.float32)  # (t, y, x)
    reports = []
    first = run_track(source, queries, tracker, store, settings, lambda f, text: reports.append((f, text)))
    assert first.computed == 3  # 16 frames, windows of 8 sharing 4: each window once
    assert any(text.startswith("windows 1/") and "ETA" in text and "query features" in text for _, text in reports)
    assert reports[-1][0] == 1.0 and "overlay" in reports[-1][1]
    assert sorted(p.name for p in first.files.values()) == ["overlay.mp4", "queries.csv", "summary.png",
                                                           "tracks.csv", "tracks.npz"]
    np.testing.assert_array_equal(first.queries, queries)
    assert first.describe().startswith("Tracked 3 points over 16 frames in ")

    ref = track(open_demo(settings), settings.checkpoint, queries=first.files["queries"], out=tmp_path / "ref",
                window=settings.window, overlap=settings.overlap, progress=False)
    mine, theirs = np.load(first.files["npz"]), np.load(ref["npz"])
    assert sorted(mine.files) == sorted(theirs.files)
    for key in mine.files:
        np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)
    assert first.files["csv"].read_bytes() == ref["csv"].read_bytes()
    np.testing.assert_array_equal(first.tracks, theirs["tracks"])  # the demo is decoded at its own size

    second = run_track(source, queries[:2], tracker, store, settings)
    assert second.computed == 0 and store.computed == 3
    assert second.files["npz"].parent != first.files["npz"].parent  # every Track writes a new folder


def test_window_progress_reports_count_eta_and_the_suite_line():
    lines = []
    progress = WindowProgress(lambda fraction, text: lines.append((fraction, text)))
    progress.say("tracking: window 1/2 (frames 0-7, keeping 0-5)")
    progress.on_window(1, 4)
    assert lines[-1][0] == 0.25 and lines[-1][1].startswith("windows 1/4, ETA ") and "keeping 0-5" in lines[-1][1]
    progress.say("overlay: frames 0-15 of 16")
    assert lines[-1] == (1.0, "writing overlay.mp4: overlay: frames 0-15 of 16")
