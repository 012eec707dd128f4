"""python -m chrono.data.kubric: fixture build -> HDF5 shards with the query grid, resuming, corrupt records,
missing fields, conversion in parts, reruns with other options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from chrono.data.grid import grid_pixels
from chrono.data.shards import ShardError, ShardReader, list_clips, read_index
from chrono.kubric import fake_build, tfds as tfds_features
from chrono.kubric.convert import ConvertOptions, KubricError, convert, part_files
from chrono.kubric.tfrecord import iter_records

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture()
def converted(kubric_converted):
    return kubric_converted


def test_fixture_converts_to_shards(converted, train_examples):
    out, summary = converted
    assert (summary.converted_files, summary.scenes, summary.skipped, summary.failed_files) == (2, 3, [], [])
    assert read_index(out / "train")["num_clips"] == 2 and read_index(out / "validation")["num_clips"] == 1
    saved = json.loads((out / "conversion_summary.json").read_text())
    assert saved["scenes"] == 3 and saved["tracks"] == summary.tracks == 3 * 6 * 8 * 8
    for shard, name in list_clips(out / "train"):
        with ShardReader(shard) as reader:
            clip = reader.read(name)
        np.testing.assert_array_equal(clip["video"], train_examples[clip["attrs"]["video_name"]]["video"])
        grid = clip["grid"]
        assert grid.stride == 4 and all(0 <= r < 4 for r in grid.start) and grid.shape == (6, 8, 8)
        flat = grid.flat()
        q = flat["query_points"]
        n, t = np.arange(len(q)), q[:, 0].astype(np.int64)
        # The track passes exactly through its query pixel centre on the query frame.
        np.testing.assert_array_equal(flat["tracks"][n, t], q[:, [2, 1]])
        assert np.all(np.mod(q[:, 1:], 1) == 0.5) and not flat["occluded"][n, t].any()


def _reference_rows(queries_tyx: np.ndarray, pix: np.ndarray, size: int = 32) -> np.ndarray:
    """Rows of the fixture's reference_tracks for integer pixels (t, y, x) [..., 3] (rows are ordered by segment)."""
    key = lambda p: (p[..., 0] * size + p[..., 1]) * size + p[..., 2]  # noqa: E731
    row_of = np.empty(len(queries_tyx), np.int64)
    row_of[key(np.floor(queries_tyx).astype(np.int64))] = np.arange(len(queries_tyx))
    return row_of[key(pix)]


def test_stored_grid_agrees_with_kubric(converted, reference_tracks, train_examples):
    """Every stored grid point: kubric's segment id there, kubric's track (within the float16 of the reference
    plus the 1/128 px of the storage) and kubric's occlusion flags exactly."""
    out, _ = converted
    for shard, name in list_clips(out / "train"):
        with ShardReader(shard) as reader:
            clip = reader.read(name)
        video_name = clip["attrs"]["video_name"]
        ref_queries, ref_tracks, ref_occluded, _ = reference_tracks[video_name]
        grid = clip["grid"]
        pix = grid_pixels(grid.start, grid.stride, grid.shape)
        seg = train_examples[video_name]["segmentations"][..., 0]
        np.testing.assert_array_equal(grid.segments, seg[pix[..., 0], pix[..., 1], pix[..., 2]])
        rows = _reference_rows(ref_queries, pix.reshape(-1, 3))
        flat = grid.flat()
        np.testing.assert_array_equal(flat["occluded"], ref_occluded[rows])
        visible = ~ref_occluded[rows]
        assert np.abs(flat["tracks"] - ref_tracks[rows])[visible].max() < 0.025


def test_rerun_skips_finished_files(converted, kubric_build):
    out, _ = converted
    shard = out / "train" / "train-00000.h5"
    before = shard.stat().st_mtime_ns
    summary = convert(kubric_build, out, workers=1, progress=False)
    assert (summary.converted_files, summary.finished_before, summary.scenes_before) == (0, 2, 3)
    assert shard.stat().st_mtime_ns == before and read_index(out / "train")["num_clips"] == 2


def _copy_build(kubric_build, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(kubric_build, build)
    for p in build.iterdir():
        p.chmod(0o644)
    return build


def test_corrupt_and_truncated_records_are_reported_and_skipped(kubric_build, tmp_path):
    build = _copy_build(kubric_build, tmp_path)
    train = next(build.glob("*-train.tfrecord-*"))
    records = list(iter_records(train))
    data = bytearray(train.read_bytes())
    data[records[1].offset + 12 + 500] ^= 0x55  # record 1: bad data CRC
    train.write_bytes(bytes(data))
    validation = next(build.glob("*-validation.tfrecord-*"))
    validation.write_bytes(validation.read_bytes()[:-100])  # truncated
    summary = convert(build, tmp_path / "out", workers=1, progress=False)
    reasons = {(os.path.basename(s["tfrecord"]), s["record"]): s["reason"] for s in summary.skipped}
    assert "data CRC mismatch" in reasons[(train.name, 1)]
    assert "truncated record" in reasons[(validation.name, 0)]
    assert summary.scenes == 1 and not summary.failed_files
    assert read_index(tmp_path / "out" / "train")["num_clips"] == 1
    assert not (tmp_path / "out" / "validation" / "validation-00000.h5").exists()
    assert "data CRC mismatch" in "\n".join(summary.lines())
    # The file without any usable scene is finished too: a rerun does not redo it, and still reports.
    again = convert(build, tmp_path / "out", workers=1, progress=False)
    assert again.finished_before == 2 and again.converted_files == 0 and len(again.skipped_before) == 2


def test_scene_with_a_missing_field_is_skipped(tmp_path):
    spec = tfds_features.parse_spec(fake_build.features_json(8, 32, 32))
    good, _ = fake_build.synthetic_scene(32, 32, 8, seed=0, name="good")
    bad, _ = fake_build.synthetic_scene(32, 32, 8, seed=1, name="bad")
    del bad["normal"]
    build = fake_build.write_build(tmp_path / "build", {"train": [[fake_build.encode_scene(bad, spec),
                                                                     fake_build.encode_scene(good, spec)]]},
                                     8, 32, 32)
    summary = convert(build, tmp_path / "out", workers=1, progress=False)
    assert summary.scenes == 1 and len(summary.skipped) == 1
    assert summary.skipped[0]["record"] == 0 and "missing feature 'normal'" in summary.skipped[0]["reason"]
    ((shard, name),) = list_clips(tmp_path / "out" / "train")
    with ShardReader(shard) as reader:
        clip = reader.read(name)
    assert clip["attrs"]["video_name"] == "good" and clip["grid"].tracks.shape[-2:] == (8, 2)


def test_command_line_in_parallel(kubric_build, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "chrono.data.kubric", f"src={kubric_build.parents[2]}", f"out={out}", "workers=2",
           "progress=false", "sampling_stride=2"]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "this run: 2 files, 3 scenes" in run.stdout and "skipped records: 0" in run.stdout
    assert read_index(out / "train")["sampling_stride"] == 2  # the option reaches ConvertOptions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # Hydra leaves no run folder behind
    help_text = subprocess.run([sys.executable, "-m", "chrono.data.kubric", "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    assert "A Hydra command" in help_text and "sampling_stride" in help_text and "parts" in help_text
    missing = subprocess.run([sys.executable, "-m", "chrono.data.kubric", f"src={kubric_build}"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "out=<dir>" in missing.stderr


def test_benchmark_runs(capsys):
    from chrono import bench

    bench.main(["suite=kubric", "kubric.size=32", "kubric.frames=8", "kubric.repeats=1", "kubric.scenes=1",
                "kubric.seconds=0.5"])
    out = capsys.readouterr().out
    assert "per scene" in out and "decode PNGs" in out
    assert "grid/tracks" in out and "10,000 scenes" in out and "track_sampling=reference" in out


def test_bad_sources_are_one_line_and_leftovers_of_a_hard_kill_are_removed(kubric_build, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "chrono.data.kubric", f"src={empty}", f"out={tmp_path / 'o'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"chrono.data.kubric: error: {empty}: no TFDS build here")

    out = tmp_path / "out"
    (out / "train").mkdir(parents=True)
    leftover = out / "train" / ".train-00000.h5.k1l2m3.tmp"  # what a SIGKILL mid-write leaves behind
    leftover.write_bytes(b"half a shard")
    convert(kubric_build, out, workers=1, progress=False)
    assert not leftover.exists() and (out / "train" / "train-00000.h5").is_file()


def test_parts_are_a_deterministic_split_and_their_indexes_merge(kubric_build, converted, tmp_path):
    files = tfds_features.build_files(kubric_build)
    shares = [part_files(list(reversed(files)), i, 2) for i in range(2)]  # any input order: the same split
    assert shares == [part_files(files, i, 2) for i in range(2)]
    assert sorted((f.split, f.shard) for s in shares for f in s) == sorted((f.split, f.shard) for f in files)
    assert all(shares)  # 2 files (train, validation) over 2 parts: one each
    with pytest.raises(KubricError, match="part=2 parts=2"):
        part_files(files, 2, 2)

    out = tmp_path / "out"
    first = convert(kubric_build, out, workers=1, progress=False, part=1, parts=2)
    assert first.converted_files == 1 and not (out / "train" / "index.json").exists()
    assert (out / "conversion_summary.part-0001-of-0002.json").is_file()
    for split in ("train", "validation"):  # one part missing: the readers refuse, naming it
        with pytest.raises(ShardError, match="part.s. 0 of a conversion in 2 parts are missing or unfinished"):
            read_index(out / split)
    convert(kubric_build, out, workers=1, progress=False, part=0, parts=2)
    whole, _ = converted
    for split in ("train", "validation"):
        merged, single = read_index(out / split), read_index(whole / split)
        assert merged["shards"] == single["shards"] and merged["num_clips"] == single["num_clips"]
        assert list_clips(out / split) == [(out / p.parent.name / p.name, n) for p, n in list_clips(whole / split)]


def test_a_rerun_with_other_options_names_the_option(converted, kubric_build, tmp_path):
    out, _ = converted
    with pytest.raises(KubricError, match=r"finished with sampling_stride=4, this run asks sampling_stride=2"):
        convert(kubric_build, out, workers=1, progress=False, options=ConvertOptions(sampling_stride=2))
    with pytest.raises(KubricError, match=r"finished with compression=lzf, this run asks compression=None"):
        convert(kubric_build, out, workers=1, progress=False, compression=None)
    proc = subprocess.run([sys.executable, "-m", "chrono.data.kubric", f"src={kubric_build}", f"out={out}", "seed=7",
                           "progress=false"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "finished with seed=0, this run asks seed=7" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_parts_as_a_hydra_multirun(kubric_build, tmp_path):
    """The documented multi-machine command, with Hydra's local launcher standing in for SLURM."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "chrono.data.kubric", "-m", f"src={kubric_build}", f"out={out}",
                           "part=0,1", "parts=2", "workers=1", "progress=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_index(out / "train")["num_clips"] == 2 and read_index(out / "validation")["num_clips"] == 1
    assert sorted(p.name for p in (out / "train").glob("index*.json")) == [
        "index.part-0000-of-0002.json", "index.part-0001-of-0002.json"]
