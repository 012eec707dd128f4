"""TAP-Vid readers (published formats, one video at a time), Lanczos resize, query sampling, clear errors."""

from __future__ import annotations

import io
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chrono.eval.pickle_stream import iter_pickle_items
from chrono.eval.tapvid import (
    TapVidFormatError,
    decode_entry,
    iter_entries,
    read_benchmark,
    resize_video_lanczos,
    sample_queries,
    sample_queries_first,
    sample_queries_strided,
)

FORMATS = {"davis": "tapvid_davis.pkl", "rgb_stacking": "tapvid_rgb_stacking.pkl", "kinetics": "kinetics"}


def _jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _entry(rng, num_frames=12, size=(24, 32), num_tracks=6, jpeg=False) -> dict:
    video = rng.integers(0, 256, (num_frames, *size, 3), dtype=np.uint8)
    occluded = rng.random((num_tracks, num_frames)) < 0.3
    return {
        # JPEG frames as generate_tapvid.py writes them: a numpy array of bytes (dtype 'S...')
        "video": np.array([_jpeg(f) for f in video]) if jpeg else video,
        "points": rng.random((num_tracks, num_frames, 2)).astype(np.float64 if jpeg else np.float32),
        "occluded": occluded,
    }


def _dump(obj, path: Path, protocol=pickle.DEFAULT_PROTOCOL) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_fixture_formats_read_with_reference_scaling(tapvid_dir, expected, fmt):
    path = tapvid_dir / FORMATS[fmt]
    videos = list(read_benchmark(fmt, path))
    first_file = path if path.is_file() else sorted(path.glob("*_of_0010.pkl"))[0]
    with open(first_file, "rb") as f:
        raw = pickle.load(f)
    raw0 = raw[next(iter(raw))] if isinstance(raw, dict) else raw[0]
    v = videos[0]
    assert [x.index for x in videos] == list(range(len(videos)))
    assert v.video.dtype == np.uint8 and v.video.shape[1:] == (256, 256, 3)
    assert v.points.dtype == np.float64 and v.occluded.dtype == bool
    np.testing.assert_array_equal(v.points, raw0["points"].astype(np.float64) * 256)  # no half-pixel shift
    np.testing.assert_array_equal(v.occluded, raw0["occluded"])
    for mode in ("first", "strided"):
        counts = [len(sample_queries(x, mode).query_points) for x in videos]
        assert counts == expected["expected"][f"{fmt}/{mode}"]["num_queries"]


def test_fixture_names(tapvid_dir):
    assert [e.name for e in iter_entries("davis", tapvid_dir / FORMATS["davis"])] == ["clip0", "clip1", "clip2"]
    assert [e.name for e in iter_entries("rgb_stacking", tapvid_dir / FORMATS["rgb_stacking"])] == ["0", "1"]
    names = [e.name for e in iter_entries("kinetics", tapvid_dir / "kinetics")]
    assert names == ["0000_of_0010/0", "0000_of_0010/1", "0001_of_0010/0"]


def test_frames_resized_like_mediapy(tapvid_dir):
    """mediapy.resize_video on uint8 RGB is PIL's Lanczos per frame, dtype kept (checked once against mediapy
    1.2.7 itself, float and 2-channel inputs included; mediapy is not a dependency)."""
    entry = next(iter_entries("davis", tapvid_dir / FORMATS["davis"]))
    video = decode_entry(entry).video
    for t in (0, 7):
        pil = Image.fromarray(entry.raw["video"][t]).resize((256, 256), resample=Image.Resampling.LANCZOS)
        np.testing.assert_array_equal(video[t], np.asarray(pil))
    frames = np.random.default_rng(0).random((2, 10, 14, 3)).astype(np.float32)
    out = resize_video_lanczos(frames, (20, 28))
    assert out.dtype == np.float32 and out.shape == (2, 20, 28, 3)
    channel = Image.fromarray(frames[1, :, :, 2]).resize((28, 20), resample=Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(out[1, :, :, 2], np.asarray(channel))


def test_query_sampling_follows_the_reference():
    occluded = np.array(
        [
            [1, 1, 1, 1, 1, 1, 1],  # never visible: no query
            [1, 1, 0, 0, 1, 0, 1],  # first visible at frame 2
            [0, 1, 1, 1, 1, 0, 0],
        ],
        bool,
    )
    points = np.arange(3 * 7 * 2, dtype=np.float64).reshape(3, 7, 2)
    first = sample_queries_first(occluded, points)
    np.testing.assert_array_equal(first.track_index, [1, 2])
    np.testing.assert_array_equal(first.query_points, [[2, *points[1, 2, ::-1]], [0, *points[2, 0, ::-1]]])
    np.testing.assert_array_equal(first.target_points, points[[1, 2]])
    strided = sample_queries_strided(occluded, points, stride=5)
    # frame 0: track 2 visible; frame 5: tracks 1 and 2 visible; ordered by frame, then track
    np.testing.assert_array_equal(strided.track_index, [2, 1, 2])
    np.testing.assert_array_equal(strided.query_points[:, 0], [0, 5, 5])
    np.testing.assert_array_equal(strided.query_points[1], [5, *points[1, 5, ::-1]])
    np.testing.assert_array_equal(strided.occluded, occluded[[2, 1, 2]])
    assert sample_queries_first(np.ones((2, 3), bool), np.zeros((2, 3, 2))).query_points.shape == (0, 3)


def test_robotap_folder_and_dict_shards(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "robotap"
    folder.mkdir()
    a = {"a0": _entry(rng), "a1": _entry(rng)}
    _dump(a, folder / "robotap_split0.pkl")
    _dump({"b0": _entry(rng)}, folder / "robotap_split1.pkl")
    videos = list(read_benchmark("robotap", folder))
    assert [v.name for v in videos] == ["robotap_split0/a0", "robotap_split0/a1", "robotap_split1/b0"]
    np.testing.assert_array_equal(videos[1].occluded, a["a1"]["occluded"])
    shards = tmp_path / "kinetics"
    shards.mkdir()
    _dump({"x": _entry(rng, jpeg=True), "y": _entry(rng, jpeg=True)}, shards / "0003_of_0010.pkl")
    assert [v.name for v in read_benchmark("kinetics", shards)] == ["0003_of_0010/x", "0003_of_0010/y"]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_streamed_items_equal_pickle_load(tmp_path, protocol):
    rng = np.random.default_rng(2)
    entries = [_entry(rng, jpeg=True) for _ in range(3)] + [_entry(rng)]
    for obj in (entries, {f"v{i}": e for i, e in enumerate(entries)}, entries[:1]):
        path = _dump(obj, tmp_path / "x.pkl", protocol)
        got = list(iter_pickle_items(path, lambda o: isinstance(o, dict) and "video" in o))
        want = list(obj.items()) if isinstance(obj, dict) else list(enumerate(obj))
        assert [k for _, k, _ in got] == [k for k, _ in want]
        for (_, _, a), (_, b) in zip(got, want):
            for field in ("video", "points", "occluded"):
                np.testing.assert_array_equal(a[field], b[field])


def _peak_bytes_reading(path: Path) -> int:
    tracemalloc.start()
    try:
        for entry in iter_entries("kinetics", path):
            assert entry.raw["video"].shape[0] == 20
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_kinetics_shard_is_read_lazily(tmp_path):
    """Peak memory while reading a shard does not grow with its number of videos (pickle.load's would)."""
    rng = np.random.default_rng(3)
    video = np.array([_jpeg(f) for f in rng.integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)])
    sizes = {}
    for count in (8, 64):
        folder = tmp_path / f"k{count}"
        folder.mkdir()
        entries = [
            {"video": video.copy(), "points": rng.random((50, 20, 2)), "occluded": rng.random((50, 20)) < 0.2}
            for _ in range(count)
        ]
        shard = _dump(entries, folder / "0000_of_0010.pkl")
        del entries
        sizes[count] = (shard.stat().st_size, _peak_bytes_reading(folder))
    (small_file, small_peak), (big_file, big_peak) = sizes[8], sizes[64]
    assert big_file > 7 * small_file
    assert big_peak < 1.1 * small_peak, sizes  # 8x the videos, (almost) the same peak
    assert big_peak < big_file / 8, sizes


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(TapVidFormatError, match=r"nowhere\.pkl: no such file"):
        list(iter_entries("davis", tmp_path / "nowhere.pkl"))
    with pytest.raises(TapVidFormatError, match=r"no \*_of_0010\.pkl files"):
        list(iter_entries("kinetics", tmp_path))
    with pytest.raises(TapVidFormatError, match="one pkl file"):
        list(iter_entries("davis", tmp_path))
    with pytest.raises(TapVidFormatError, match="unknown TAP-Vid format"):
        list(iter_entries("sintel", tmp_path))


def test_wrong_format_names_the_file(tapvid_dir, tmp_path):
    rgb = tapvid_dir / FORMATS["rgb_stacking"]
    with pytest.raises(TapVidFormatError, match=r"tapvid_rgb_stacking\.pkl: the davis format is a dict"):
        list(iter_entries("davis", rgb))
    not_a_pickle = tmp_path / "tapvid_davis.pkl"
    not_a_pickle.write_text("hello")
    with pytest.raises(TapVidFormatError, match=r"tapvid_davis\.pkl: not a readable TAP-Vid davis pickle"):
        list(iter_entries("davis", not_a_pickle))
    array = _dump(np.zeros(3), tmp_path / "array.pkl")
    with pytest.raises(TapVidFormatError, match=r"array\.pkl: .*not a list or dict"):
        list(iter_entries("davis", array))
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes((tapvid_dir / FORMATS["davis"]).read_bytes()[:5000])
    with pytest.raises(TapVidFormatError, match=r"truncated\.pkl"):
        list(iter_entries("davis", truncated))


def test_corrupt_entries_name_file_and_video(tmp_path):
    rng = np.random.default_rng(4)
    cases = {
        "no_points": ({k: v for k, v in _entry(rng).items() if k != "points"}, "expected a dict with video"),
        "short_points": (
            {**_entry(rng), "points": rng.random((6, 5, 2)), "occluded": np.zeros((6, 5), bool)},
            "points cover 5 frames",
        ),
        "bad_occluded": ({**_entry(rng), "occluded": np.zeros((6, 3), bool)}, "does not match points"),
        "float_video": ({**_entry(rng), "video": np.zeros((12, 8, 8, 3), np.float32)}, "video must be uint8"),
        "bad_jpeg": ({**_entry(rng, jpeg=True), "video": np.array([b"\xff\xd8 not a jpeg"] * 12)}, "frame 0"),
    }
    for name, (entry, message) in cases.items():
        path = _dump({"fine": _entry(rng), name: entry}, tmp_path / f"{name}.pkl")
        with pytest.raises(TapVidFormatError, match=rf"{name}\.pkl, video '{name}': .*{message}"):
            list(read_benchmark("davis", path))
