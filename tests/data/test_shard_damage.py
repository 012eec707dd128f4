"""Damaged shards fail loudly (HDF5 checksums, non-finite tracks), naming the file and the clip."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from chrono.data.shards import ShardError, ShardReader, ShardWriter, check_shards
from chrono.data.synthetic import generate_clip


def _write(root, tracks_value=None):
    c = generate_clip(0, height=24, width=32, num_frames=4, num_tracks=8, num_objects=1)
    tracks = c["tracks"].copy()
    if tracks_value is not None:
        tracks[2, 1, 0] = tracks_value
    with ShardWriter(root, prefix="train", source="test") as w:
        w.add_clip("clip_0", c["video"], tracks, c["occluded"], query_points=c["query_points"])
    return root / "train-00000.h5"


def test_every_dataset_carries_a_checksum(tmp_path):
    path = _write(tmp_path)
    with h5py.File(path) as f:
        assert all(f["clip_0"][k].fletcher32 for k in ("video", "tracks", "occluded", "query_points"))


@pytest.mark.parametrize("dataset", ["tracks", "video"])
def test_damaged_bytes_fail_the_read_and_name_the_clip(tmp_path, dataset):
    path = _write(tmp_path)
    with h5py.File(path) as f:
        info = f["clip_0"][dataset].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    data[info.byte_offset + 9] ^= 0xFF  # one damaged byte inside the first chunk
    path.write_bytes(bytes(data))
    with ShardReader(path) as reader, pytest.raises(ShardError) as err:
        reader.read("clip_0")
    assert str(err.value).startswith(f"{path} clip 'clip_0': cannot read the data (damaged file: checksum")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_tracks_are_refused_on_read(tmp_path, value):
    path = _write(tmp_path, tracks_value=value)
    with ShardReader(path) as reader, pytest.raises(ShardError, match="clip 'clip_0': tracks hold non-finite"):
        reader.read("clip_0")


def test_check_shards_finds_missing_and_truncated_files(tmp_path):
    path = _write(tmp_path)
    assert check_shards(tmp_path) == 1
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ShardError, match="train-00000.h5: not a readable HDF5 file"):
        check_shards(tmp_path)
    path.unlink()
    with pytest.raises(ShardError, match="train-00000.h5: shard file not found"):
        check_shards(tmp_path)
