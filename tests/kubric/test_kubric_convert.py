"""python -m chrono.data.kubric: fixture build -> HDF5 shards, resuming, corrupt records, missing fields."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from chrono.kubric import fake_build, tfds as tfds_features
from chrono.kubric.convert import ConvertOptions, convert
from chrono.data.shards import ShardReader, list_clips, read_index
from chrono.kubric.tfrecord import iter_records

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def converted(kubric_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("kubric_out")
    summary = convert(kubric_build, out, workers=1, progress=False)
    return out, summary


def test_fixture_converts_to_shards(converted, train_examples):
    out, summary = converted
    assert (summary.converted_files, summary.scenes, summary.skipped, summary.failed_files) == (2, 3, [], [])
    assert read_index(out / "train")["num_clips"] == 2 and read_index(out / "validation")["num_clips"] == 1
    saved = json.loads((out / "conversion_summary.json").read_text())
    assert saved["scenes"] == 3 and saved["tracks"] == summary.tracks > 0
    for shard, name in list_clips(out / "train"):
        with ShardReader(shard) as reader:
            clip = reader.read(name)
        np.testing.assert_array_equal(clip["video"], train_examples[clip["attrs"]["video_name"]]["video"])
        q = clip["query_points"]
        assert q.dtype == np.float32 and len(q) == clip["tracks"].shape[0] > 20
        n, t = np.arange(len(q)), q[:, 0].astype(np.int64)
        # The track passes exactly through its query pixel centre on the query frame.
        np.testing.assert_array_equal(clip["tracks"][n, t], q[:, [2, 1]])
        assert np.all(np.mod(q[:, 1:], 1) == 0.5) and not clip["occluded"][n, t].any()


def test_written_tracks_agree_with_kubric(converted, reference_tracks):
    out, _ = converted
    errors, agree = [], []
    for shard, name in list_clips(out / "train"):
        with ShardReader(shard) as reader:
            clip = reader.read(name)
        ref_queries, ref_tracks, ref_occluded, _ = reference_tracks[clip["attrs"]["video_name"]]
        raster = lambda q: (q[:, 0] * 32 + np.floor(q[:, 1])) * 32 + np.floor(q[:, 2])  # noqa: E731
        row_of = np.empty(len(ref_queries), np.int64)
        row_of[raster(ref_queries).astype(np.int64)] = np.arange(len(ref_queries))
        rows = row_of[raster(clip["query_points"]).astype(np.int64)]
        np.testing.assert_array_equal(ref_queries[rows], clip["query_points"])
        visible = ~ref_occluded[rows]
        errors.append(np.linalg.norm(clip["tracks"] - ref_tracks[rows], axis=-1)[visible])
        agree.append(clip["occluded"] == ref_occluded[rows])
    assert np.percentile(np.concatenate(errors), 99) < 0.5
    assert np.concatenate([a.reshape(-1) for a in agree]).mean() >= 0.99


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
    summary = convert(build, tmp_path / "out", workers=1, progress=False,
                      options=ConvertOptions(tracks_per_scene=64))
    assert summary.scenes == 1 and len(summary.skipped) == 1
    assert summary.skipped[0]["record"] == 0 and "missing feature 'normal'" in summary.skipped[0]["reason"]
    ((shard, name),) = list_clips(tmp_path / "out" / "train")
    with ShardReader(shard) as reader:
        clip = reader.read(name)
    assert clip["attrs"]["video_name"] == "good" and clip["tracks"].shape[1:] == (8, 2)


def test_command_line_in_parallel(kubric_build, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "chrono.data.kubric", f"src={kubric_build.parents[2]}", f"out={out}", "workers=2",
           "progress=false", "tracks_per_scene=64"]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "this run: 2 files, 3 scenes" in run.stdout and "skipped records: 0" in run.stdout
    assert read_index(out / "train")["tracks_per_scene"] == 64  # the option reaches ConvertOptions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # Hydra leaves no run folder behind
    help_text = subprocess.run([sys.executable, "-m", "chrono.data.kubric", "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    assert "A Hydra command" in help_text and "tracks_per_scene" in help_text
    missing = subprocess.run([sys.executable, "-m", "chrono.data.kubric", f"src={kubric_build}"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "out=<dir>" in missing.stderr


def test_benchmark_runs(capsys):
    from chrono import bench

    bench.main(["suite=kubric", "kubric.size=32", "kubric.frames=8", "kubric.tracks=64", "kubric.repeats=1"])
    out = capsys.readouterr().out
    assert "per scene" in out and "decode PNGs" in out


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
