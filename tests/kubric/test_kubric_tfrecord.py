"""TFRecord framing (CRC32C) and tf.train.Example decoding, on the real fixture and on damaged copies."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from chrono.kubric.tfrecord import (ExampleDecodeError, decode_varints, encode_example, frame_record, iter_records,
                                  parse_example, write_records)


def test_reads_the_fixture_records(train_file):
    records = list(iter_records(train_file))
    assert [r.index for r in records] == [0, 1] and all(r.error is None for r in records)
    names = set()
    for r in records:
        example = parse_example(r.data)
        names.add(example["metadata/video_name"][0].decode())
        assert len(example["video"]) == 24 and example["video"][0][:8] == b"\x89PNG\r\n\x1a\n"
        assert example["camera/positions"].dtype == np.float32 and example["camera/positions"].shape == (72,)
        assert example["metadata/height"].tolist() == [32]
        assert example["forward_flow"].dtype == np.int64 and example["forward_flow"].size == 24 * 32 * 32 * 2
    assert names == {"scene50", "scene51"}


def test_parse_skips_unwanted_features(train_file):
    record = next(iter_records(train_file))
    example = parse_example(record.data, wanted=lambda key: key.startswith("camera/"))
    assert sorted(example) == ["camera/field_of_view", "camera/focal_length", "camera/positions",
                               "camera/quaternions", "camera/sensor_width"]


def test_encode_parse_roundtrip():
    features = {
        "bytes": [b"", b"abc", bytes(range(256))],
        "floats": np.array([0.5, -1e30, np.inf], np.float32),
        "ints": np.array([0, 1, 127, 128, 300, -1, -(2 ** 63), 2 ** 63 - 1], np.int64),
        "bools": np.array([True, False]),
        "empty_floats": np.zeros(0, np.float32),
        "empty_bytes": [],
    }
    parsed = parse_example(encode_example(features))
    assert parsed["bytes"] == features["bytes"] and parsed["empty_bytes"] == []
    np.testing.assert_array_equal(parsed["floats"], features["floats"])
    np.testing.assert_array_equal(parsed["ints"], features["ints"])
    np.testing.assert_array_equal(parsed["bools"], [1, 0])
    assert parsed["empty_floats"].dtype == np.float32 and parsed["empty_floats"].size == 0


def _field(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_unpacked_repeated_scalars_are_accepted():
    floats = b"".join(bytes([1 << 3 | 5]) + struct.pack("<f", v) for v in (1.5, -2.0))
    ints = bytes([1 << 3 | 0, 5, 1 << 3 | 0, 0x96, 0x01])  # 5, 150
    entries = _field(1, _field(1, b"f") + _field(2, _field(2, floats)))
    entries += _field(1, _field(1, b"i") + _field(2, _field(3, ints)))
    parsed = parse_example(_field(1, entries))
    assert parsed["f"].tolist() == [1.5, -2.0] and parsed["i"].tolist() == [5, 150]


def test_vectorised_varints_match_the_encoder():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.integers(-2 ** 62, 2 ** 62, 500), rng.integers(0, 300, 500), [-1, 0]])
    payload = parse_example(encode_example({"v": values}))
    np.testing.assert_array_equal(payload["v"], values)
    with pytest.raises(ExampleDecodeError, match="truncated"):
        decode_varints(b"\x96")


@pytest.mark.parametrize("data", [b"\x0a\xff", b"\x0a\x02\x0a", b"\x0b", b"\x0a\x03\x0a\x01\x0a"])
def test_malformed_examples_raise(data):
    with pytest.raises(ExampleDecodeError):
        parse_example(data)


def _copy(train_file, tmp_path):
    path = tmp_path / train_file.name
    shutil.copyfile(train_file, path)
    return path, list(iter_records(train_file))


def test_bad_data_crc_skips_only_that_record(train_file, tmp_path):
    path, good = _copy(train_file, tmp_path)
    data = bytearray(path.read_bytes())
    data[good[0].offset + 12 + 1000] ^= 0xFF
    path.write_bytes(bytes(data))
    records = list(iter_records(path))
    assert records[0].data is None and "data CRC mismatch" in records[0].error
    assert str(path) in records[0].where and "record 0" in records[0].where
    assert records[1].error is None and records[1].data == good[1].data


def test_truncated_file_reports_the_last_record(train_file, tmp_path):
    path, good = _copy(train_file, tmp_path)
    path.write_bytes(path.read_bytes()[: good[1].offset + 5000])
    records = list(iter_records(path))
    assert records[0].data == good[0].data
    assert records[1].data is None and "truncated record" in records[1].error and len(records) == 2
    path.write_bytes(path.read_bytes()[: good[1].offset + 5])
    assert "truncated record header" in list(iter_records(path))[1].error


def test_damaged_length_stops_reading(train_file, tmp_path):
    path, good = _copy(train_file, tmp_path)
    data = bytearray(path.read_bytes())
    data[good[1].offset] ^= 0x01
    path.write_bytes(bytes(data))
    records = list(iter_records(path))
    assert len(records) == 2 and "length CRC mismatch" in records[1].error


def test_write_records_roundtrip(tmp_path):
    payloads = [b"", b"x" * 10, bytes(range(256)) * 100]
    write_records(tmp_path / "a.tfrecord", payloads)
    assert [r.data for r in iter_records(tmp_path / "a.tfrecord")] == payloads
    assert frame_record(b"abc")[:8] == struct.pack("<Q", 3)
    assert [p.name for p in tmp_path.iterdir()] == ["a.tfrecord"]  # no temporary file left behind
