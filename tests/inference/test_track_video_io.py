"""Reading videos (mp4 through decord, frame folders, .npy) and writing mp4 / PNG (chrono/video_io.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chrono.video_io import ArraySource, Mp4Writer, VideoError, open_video, write_png


def _has_decord() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


# reading video files needs decord (the ``decord`` fixture); folders and .npy arrays do not
needs_decord = pytest.mark.skipif(not _has_decord(), reason="decord wheels exist for x86-64 only")


def test_mp4_round_trip_frame_count_size_and_content(clip_mp4, decord):
    path, clip = clip_mp4
    source = open_video(path)
    assert source.num_frames == 12 and source.hw == source.original_hw == (64, 80) and source.fps == 10
    frames = source.read(3, 7)
    assert frames.shape == (4, 64, 80, 3) and frames.dtype == np.uint8
    # H.264 (yuv420p: colour at half resolution) keeps the frames close to the originals, in order
    error = np.abs(frames.astype(int) - clip["video"][3:7]).mean()
    assert error < 6 and error < np.abs(frames.astype(int) - clip["video"][4:8]).mean() / 3


def test_selection_and_max_side(clip_mp4, decord):
    path, clip = clip_mp4
    source = open_video(path, start=2, end=11, stride=3, max_side=40)
    assert source.frame_ids.tolist() == [2, 5, 8] and source.original_hw == (64, 80) and source.hw == (32, 40)
    assert source.fps == pytest.approx(10 / 3)  # plays at the original speed
    frames = source.read(0, 3)
    assert frames.shape == (3, 32, 40, 3)
    small = np.asarray(Image.fromarray(clip["video"][5]).resize((40, 32), Image.BILINEAR)).astype(int)
    assert np.abs(frames[1].astype(int) - small).mean() < 8  # frame 5, downscaled
    assert open_video(path, end=100).num_frames == 12  # an end past the video means "to the end"


def test_frame_folder_in_natural_order_and_npy(tmp_path):
    video = np.stack([np.full((10, 14, 3), 10 * i, np.uint8) for i in range(12)])
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(video):
        Image.fromarray(f).save(folder / f"frame{i}.png")  # frame2 must come before frame10
    (folder / "notes.txt").write_text("not a frame")
    source = open_video(folder, stride=2)
    assert source.num_frames == 6 and source.read(0, 6)[:, 0, 0, 0].tolist() == [0, 20, 40, 60, 80, 100]
    np.save(tmp_path / "v.npy", video[None])  # [1, T, H, W, 3] is accepted too
    source = open_video(tmp_path / "v.npy", start=10)
    assert isinstance(source, ArraySource) and source.read(0, 2)[:, 0, 0, 0].tolist() == [100, 110]
    floats = ArraySource(video.astype(np.float32) / 127.5 - 1)
    assert floats.read(0, 1).dtype == np.float32


def _bytes(name, data):
    def make(d):
        (d / name).write_bytes(data)
        return d / name

    return make


def _npy(name, array):
    def make(d):
        np.save(d / name, array)
        return d / name

    return make


def _folder(d):
    (d / "frames").mkdir()
    return d / "frames"


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda d: d / "missing.mp4", "no such video"),
        (_bytes("empty.mp4", b""), "empty file"),
        pytest.param(_bytes("junk.mp4", b"not a video at all" * 100), "not a readable video", marks=needs_decord),
        (_folder, "empty video"),
        (_npy("bad.npy", np.zeros((4, 5))), r"expected frames \[T, H, W, 3\]"),
        (_npy("none.npy", np.zeros((0, 4, 4, 3), np.uint8)), "no frames"),
        (_bytes("trunc.npy", b"\x93NUMPY garbage"), "not a readable .npy"),
    ],
)
def test_bad_videos_are_named(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(VideoError, match=match) as err:
        open_video(path)
    assert str(path) in str(err.value)


def test_bad_frame_range_and_frames(clip_mp4, tmp_path, decord):
    path, _ = clip_mp4
    with pytest.raises(VideoError, match=r"start=12 is outside the video's frames 0..11"):
        open_video(path, start=12)
    with pytest.raises(VideoError, match="selects no frame"):
        open_video(path, start=5, end=5)
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "0.png")
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(folder / "1.png")
    (folder / "2.png").write_bytes(b"broken")
    source = open_video(folder)
    with pytest.raises(VideoError, match=r"1.png: frame of 9 x 8 pixels"):
        source.read(0, 2)
    with pytest.raises(VideoError, match=r"2.png: not a readable image"):
        source.read(2, 3)


def test_mp4_writer_pads_odd_sizes_and_is_atomic(tmp_path, decord):
    path = tmp_path / "odd.mp4"
    with Mp4Writer(path, fps=5) as w:
        for i in range(5):
            w.write(np.full((15, 21, 3), 40 * i, np.uint8))
    reader = decord.VideoReader(str(path))
    assert len(reader) == 5 and reader[0].shape == (16, 22, 3)
    with pytest.raises(RuntimeError, match="boom"):
        with Mp4Writer(tmp_path / "failed.mp4") as w:
            w.write(np.zeros((8, 8, 3), np.uint8))
            raise RuntimeError("boom")
    with pytest.raises(ValueError, match="no frame to write"):
        with Mp4Writer(tmp_path / "nothing.mp4"):
            pass
    with pytest.raises(ValueError, match="the first was"):
        with Mp4Writer(tmp_path / "sizes.mp4") as w:
            w.write(np.zeros((8, 8, 3), np.uint8))
            w.write(np.zeros((10, 8, 3), np.uint8))
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "odd.mp4"]  # no partial or temporary files


@needs_decord
def test_decord_does_not_break_pyspng():
    """decord's RTLD_GLOBAL zlib broke a pyspng loaded after it ("zlib init error"); import_decord loads
    pyspng first. In a fresh process, since the order of loading is what matters."""
    import subprocess
    import sys

    pytest.importorskip("pyspng")
    probe = ("import io, numpy as np\nfrom PIL import Image\nfrom chrono.video_io import import_decord\n"
             "import_decord()\nimport pyspng\nb = io.BytesIO()\n"
             "Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(b, format='PNG')\nprint(pyspng.load(b.getvalue()).shape)")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "(8, 8, 3)", res.stderr[-500:]
