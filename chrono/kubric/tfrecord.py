"""TFRecord files and ``tf.train.Example`` messages, without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little endian)
    uint32 masked CRC32C of the 8 length bytes
    byte   data[length]
    uint32 masked CRC32C of the data

where ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). Each record of a TFDS build holds
one serialized ``tf.train.Example``::

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }      # map entries: key = 1, value = 2
    Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1; }  Int64List { repeated int64 value = 1; }

The decoder below is a small hand-written protobuf wire-format reader for exactly these messages (packed and
unpacked repeated scalars are both accepted, unknown fields are skipped). The encoder writes the same messages;
the tests and the benchmark use it to build records in the real format.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping, Union

import google_crc32c
import numpy as np

FeatureValue = Union[list, np.ndarray]
"""A decoded ``Feature``: ``list[bytes]`` (BytesList), float32 array (FloatList) or int64 array (Int64List)."""

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")


class ExampleDecodeError(ValueError):
    """A record's payload is not a well-formed ``tf.train.Example``."""


def masked_crc32c(data: bytes | memoryview) -> int:
    """The masked CRC32C that TFRecord framing stores for ``data``."""
    crc = google_crc32c.value(bytes(data)) if isinstance(data, memoryview) else google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class Record:
    """One record of a TFRecord file: ``data`` is its payload, or None with ``error`` saying why it is unusable.

    ``index`` counts records from 0 in file order and ``offset`` is the byte offset of the record's header.
    """

    path: str
    index: int
    offset: int
    data: bytes | None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path}: record {self.index} (byte offset {self.offset})"


def iter_records(path: str | os.PathLike) -> Iterator[Record]:
    """Yield the records of a TFRecord file in order, checking both CRCs of each.

    A record whose data CRC does not match is yielded with ``data=None`` and an ``error``, and reading goes on
    (its framing is intact). A damaged length field or a truncated file is yielded as a last error record,
    since the records after it cannot be located. Opening the file may raise ``OSError``.
    """
    path = str(path)
    with open(path, "rb") as f:
        index = 0
        while True:
            offset = f.tell()
            header = _read_exact(f, _HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                yield Record(path, index, offset, None, f"truncated record header ({len(header)} of 12 bytes)")
                return
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                yield Record(path, index, offset, None, "length CRC mismatch: the length field is damaged, "
                             "so this record and all after it in the file are unreadable")
                return
            body = _read_exact(f, length + 4)
            if len(body) < length + 4:
                yield Record(path, index, offset, None,
                             f"truncated record: {length} data bytes + 4 CRC bytes expected, "
                             f"the file ends after {len(body)}")
                return
            data, (data_crc,) = body[:length], struct.unpack("<I", body[length:])
            if masked_crc32c(data) != data_crc:
                yield Record(path, index, offset, None, "data CRC mismatch: the record is corrupt")
            else:
                yield Record(path, index, offset, data)
            index += 1


def _read_exact(f: BinaryIO, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = f.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def frame_record(payload: bytes) -> bytes:
    """``payload`` framed as one TFRecord record (header, data, data CRC)."""
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", masked_crc32c(header)) + payload + struct.pack("<I", masked_crc32c(payload))


def write_records(path: str | os.PathLike, payloads: Iterable[bytes]) -> None:
    """Write a TFRecord file atomically (a temporary file in the same folder, then ``os.replace``)."""
    from chrono.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for payload in payloads:
            f.write(frame_record(payload))


# ----------------------------------------------------------------------------------------------------------
# Protobuf wire format


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ExampleDecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ExampleDecodeError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) for each field of a message: an int for varints, else the raw bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ExampleDecodeError(f"field {number}: length {size} runs past the end of its message")
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ExampleDecodeError(f"field {number}: truncated fixed-size value")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ExampleDecodeError(f"field {number}: unsupported wire type {wire}")
        yield number, wire, value


def decode_varints(data: bytes | memoryview) -> np.ndarray:
    """All varints of a packed repeated int64 field, vectorised, as int64 (two's complement like protobuf)."""
    b = np.frombuffer(data, np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int64)
    if b[-1] & 0x80:
        raise ExampleDecodeError("truncated packed varint list")
    ends = np.flatnonzero(b < 0x80)
    if ends.size == b.size:
        return b.astype(np.int64)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise ExampleDecodeError("varint longer than 10 bytes")
    shift = (np.arange(b.size) - np.repeat(starts, lengths)).astype(np.uint64) * np.uint64(7)
    parts = (b & 0x7F).astype(np.uint64) << shift
    return np.bitwise_or.reduceat(parts, starts).view(np.int64)


def _decode_feature(buf: memoryview) -> FeatureValue:
    kind, payload = None, None
    for number, wire, value in _fields(buf):
        if number in (1, 2, 3) and wire == 2:
            kind, payload = number, value  # oneof: the last one set wins
    if kind is None:
        return np.zeros(0, np.int64)
    if kind == 1:
        return [bytes(v) for n, w, v in _fields(payload) if n == 1 and w == 2]
    parts: list[np.ndarray] = []
    for number, wire, value in _fields(payload):
        if number != 1:
            continue
        if kind == 2:
            if wire not in (2, 5):
                raise ExampleDecodeError(f"FloatList value with wire type {wire}")
            parts.append(np.frombuffer(value, "<f4"))
        elif wire == 2:
            parts.append(decode_varints(value))
        elif wire == 0:
            parts.append(np.array([value], np.uint64).view(np.int64))
        else:
            raise ExampleDecodeError(f"Int64List value with wire type {wire}")
    dtype = np.float32 if kind == 2 else np.int64
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def parse_example(data: bytes | memoryview, wanted: Callable[[str], bool] | None = None) -> dict[str, FeatureValue]:
    """Decode a serialized ``tf.train.Example`` into {feature name: value}.

    Values are ``list[bytes]`` for a BytesList, a float32 array for a FloatList and an int64 array for an
    Int64List (all flat, as stored). ``wanted(name)`` False skips a feature's values (they are not decoded).
    Raises ``ExampleDecodeError`` on malformed input.
    """
    out: dict[str, FeatureValue] = {}
    for number, wire, features in _fields(memoryview(data)):
        if number != 1 or wire != 2:
            continue
        for n, w, entry in _fields(features):
            if n != 1 or w != 2:
                continue
            key, value = None, memoryview(b"")
            for en, ew, ev in _fields(entry):
                if en == 1 and ew == 2:
                    key = bytes(ev)
                elif en == 2 and ew == 2:
                    value = ev
            if key is None:
                raise ExampleDecodeError("feature map entry without a key")
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ExampleDecodeError(f"feature name is not UTF-8: {key[:40]!r}") from e
            if wanted is not None and not wanted(name):
                continue
            try:
                out[name] = _decode_feature(value)
            except ExampleDecodeError as e:
                raise ExampleDecodeError(f"feature {name!r}: {e}") from None
    return out


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialize {name: value} as a ``tf.train.Example`` (the inverse of :func:`parse_example`).

    A list of bytes becomes a BytesList, a floating array a packed FloatList (float32), an integer or boolean
    array a packed Int64List.
    """
    entries = []
    for name, value in features.items():
        if isinstance(value, (list, tuple)):
            inner = _len_field(1, b"".join(_len_field(1, bytes(v)) for v in value))
        else:
            arr = np.asarray(value).reshape(-1)
            if arr.dtype.kind == "f":
                inner = _len_field(2, _len_field(1, arr.astype("<f4").tobytes()))
            elif arr.dtype.kind in "biu":
                packed = b"".join(_encode_varint(int(v)) for v in arr.astype(np.int64))
                inner = _len_field(3, _len_field(1, packed))
            else:
                raise TypeError(f"feature {name!r}: cannot encode dtype {arr.dtype}")
        entries.append(_len_field(1, _len_field(1, name.encode("utf-8")) + _len_field(2, inner)))
    return _len_field(1, b"".join(entries))
