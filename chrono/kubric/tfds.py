"""TFDS builds without TensorFlow: the build folder, its ``features.json``, and decoding examples with it.

A TFDS build folder (e.g. ``panning_movi_e/256x256/1.0.0/``) holds ``dataset_info.json`` (splits, shard
counts), ``features.json`` (the FeaturesDict) and ``<name>-<split>.tfrecord-NNNNN-of-MMMMM`` files whose records
are ``tf.train.Example`` messages (:mod:`chrono.kubric.tfrecord`). TFDS flattens nested features into keys joined
by ``/`` (``camera/positions``, ``instances/bboxes_3d``); a feature inside a ``Sequence`` gets a leading axis
(its values are stored concatenated); a feature with more than one unknown dimension is stored ragged as
``<key>/ragged_flat_values`` plus ``<key>/ragged_row_lengths_<i>``.

:func:`decode_example` turns a parsed example back into what ``tfds.as_numpy`` yields: nested dicts of numpy
arrays of the declared dtypes and shapes. Images and PNG videos become ``[..., H, W, C]`` arrays (uint8 or
uint16, bit exact; 16-bit RGB PNGs keep all 16 bits), ``Text`` becomes ``str`` and ragged features become
lists of arrays.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from chrono.kubric.tfrecord import FeatureValue

try:  # libspng: a small C PNG decoder with 16-bit output (PIL reduces 16-bit RGB to 8 bits)
    import pyspng
except ImportError:  # pragma: no cover - exercised only where no wheel exists
    pyspng = None


class FeatureError(ValueError):
    """An example does not match its ``features.json``: a missing field, a wrong size, an undecodable image."""


_DTYPES = {
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "float16": np.float16, "float32": np.float32, "float64": np.float64, "bool": np.bool_,
}


@dataclass(frozen=True)
class FeatureSpec:
    """One node of a FeaturesDict.

    ``kind`` is one of "dict", "sequence", "tensor", "image", "video", "text", "class_label", "bbox".
    ``shape`` is the declared shape of one element (None for an unknown dimension; for a video it includes
    the frame axis); ``length`` is a sequence's length (None if variable); ``feature`` a sequence's element;
    ``children`` a dict's members; ``encoding`` a tensor's encoding or an image's format.
    """

    kind: str
    dtype: str | None = None
    shape: tuple[int | None, ...] = ()
    encoding: str = "none"
    length: int | None = None
    feature: "FeatureSpec | None" = None
    children: Mapping[str, "FeatureSpec"] = field(default_factory=dict)


def _dims(shape: Mapping[str, Any] | None) -> tuple[int | None, ...]:
    dims = (shape or {}).get("dimensions", [])
    return tuple(None if int(d) < 0 else int(d) for d in dims)


def parse_spec(node: Mapping[str, Any], name: str = "<root>") -> FeatureSpec:
    """A :class:`FeatureSpec` tree from the JSON of ``features.json`` (the TFDS 4.x layout)."""
    if "featuresDict" in node:
        members = node["featuresDict"].get("features", {})
        return FeatureSpec("dict", children={k: parse_spec(v, f"{name}/{k}") for k, v in members.items()})
    if "sequence" in node:
        seq = node["sequence"]
        length = int(seq.get("length", -1))
        return FeatureSpec("sequence", length=None if length < 0 else length,
                           feature=parse_spec(seq["feature"], name))
    if "tensor" in node:
        t = node["tensor"]
        return FeatureSpec("tensor", t["dtype"], _dims(t.get("shape")), t.get("encoding", "none"))
    if "image" in node:
        t = node["image"]
        return FeatureSpec("image", t.get("dtype", "uint8"), _dims(t.get("shape")), t.get("encodingFormat", "png"))
    if "video" in node:
        t = node["video"]
        return FeatureSpec("video", t.get("dtype", "uint8"), _dims(t.get("shape")), t.get("encodingFormat", "png"))
    if "text" in node:
        return FeatureSpec("text", "string")
    if "classLabel" in node:
        return FeatureSpec("class_label", "int64")
    if "boundingBox" in node:
        t = node["boundingBox"]
        return FeatureSpec("bbox", t.get("dtype", "float32"), _dims(t.get("shape")) or (4,))
    raise FeatureError(f"feature {name}: unsupported feature type {node.get('pythonClassName', sorted(node))}")


def load_features(path: str | Path) -> FeatureSpec:
    """Read a build's ``features.json`` (``path`` may be the file or the build folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "features.json"
    try:
        return parse_spec(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise FeatureError(f"{path}: not a readable TFDS features.json ({e})") from e


# ----------------------------------------------------------------------------------------------------------
# PNG


def decode_png(data: bytes) -> np.ndarray:
    """Decode a PNG to [H, W, C] uint8 or uint16 (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), bit exact.

    Uses libspng (``pyspng``) when installed, else (and for gray+alpha, which libspng cannot output and
    TFDS does not write) the pure numpy/zlib decoder :func:`decode_png_numpy`.
    """
    channels, depth = _png_header(data)
    if pyspng is None or channels == 2:
        return decode_png_numpy(data)
    try:
        # 16-bit: libspng's automatic format gives GA16 for gray and RGBA16 for RGB (the added alpha is dropped).
        arr = pyspng.load(data, None if depth == 16 else _SPNG_8BIT[channels])
    except RuntimeError as e:
        raise FeatureError(f"undecodable PNG: {e}") from e
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if depth == 16 and arr.dtype != np.uint16:
        raise FeatureError("16-bit PNG decoded to 8 bits")
    return arr[:, :, :channels]


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SPNG_8BIT = {1: "L", 3: "RGB", 4: "RGBA"}
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _png_chunks(data: bytes):
    if data[:8] != _PNG_SIGNATURE:
        raise FeatureError("not a PNG (bad signature)")
    pos = 8
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + size > len(data):
            raise FeatureError(f"truncated PNG chunk {kind!r}")
        yield kind, data[pos + 8:pos + 8 + size]
        pos += 12 + size
        if kind == b"IEND":
            return
    raise FeatureError("truncated PNG (no IEND)")


def _png_header(data: bytes) -> tuple[int, int]:
    kind, ihdr = next(_png_chunks(data))
    if kind != b"IHDR" or len(ihdr) != 13:
        raise FeatureError("PNG without IHDR")
    depth, colour = ihdr[8], ihdr[9]
    if colour not in _PNG_CHANNELS or depth not in (8, 16) or ihdr[12] != 0:
        raise FeatureError(f"unsupported PNG (colour type {colour}, bit depth {depth}, interlace {ihdr[12]})")
    return _PNG_CHANNELS[colour], depth


def decode_png_numpy(data: bytes) -> np.ndarray:
    """Pure numpy/zlib PNG decoder (8/16-bit gray, gray+alpha, RGB, RGBA; not interlaced), bit exact.

    Slow on Average/Paeth rows (a Python loop per byte): a fallback and an independent check of
    :func:`decode_png`, not the fast path.
    """
    channels, depth = _png_header(data)
    chunks = list(_png_chunks(data))
    width, height = struct.unpack(">II", chunks[0][1][:8])
    bpp = channels * depth // 8
    stride = width * bpp
    try:
        raw = zlib.decompress(b"".join(c for k, c in chunks if k == b"IDAT"))
    except zlib.error as e:
        raise FeatureError(f"undecodable PNG data: {e}") from e
    if len(raw) != height * (stride + 1):
        raise FeatureError(f"PNG data has {len(raw)} bytes, expected {height * (stride + 1)}")
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for r in range(height):
        kind, line = rows[r, 0], rows[r, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:
            cur = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:
            cur = line + prev
        elif kind in (3, 4):
            cur_l, up = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur_l[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    pred = (a + b) >> 1
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur_l[i] = (cur_l[i] + pred) & 0xFF
            cur = np.array(cur_l, np.uint8)
        else:
            raise FeatureError(f"PNG row {r}: unknown filter type {kind}")
        out[r] = prev = cur
    if depth == 16:
        return out.view(">u2").astype(np.uint16).reshape(height, width, channels)
    return out.reshape(height, width, channels)


def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """Encode [H, W] or [H, W, C] uint8/uint16 (C in 1..4) as a PNG (filter type Up on every row).

    The tests and the benchmark use it to write records in the real format.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    height, width, channels = image.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}[image.dtype]
    rows = image.astype(">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(height, -1)
    filtered = np.diff(rows, axis=0, prepend=np.zeros((1, rows.shape[1]), np.uint8))  # Up: x - above (mod 256)
    raw = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------------------------------------
# Examples


def selector(select: Iterable[str] | None) -> Callable[[str], bool]:
    """A predicate on feature keys: True for keys at, under or above a path of ``select`` (None = all).

    Pass it as ``parse_example(..., wanted=selector(paths))`` to skip decoding unneeded fields.
    """
    if select is None:
        return lambda key: True
    paths = tuple(select)
    return lambda key: any(key == p or key.startswith(p + "/") or p.startswith(key + "/") for p in paths)


def decode_example(spec: FeatureSpec, flat: Mapping[str, FeatureValue], select: Iterable[str] | None = None) -> dict:
    """Decode a parsed example (:func:`chrono.kubric.tfrecord.parse_example`) with its FeaturesDict.

    ``select``: feature paths to decode (e.g. ``["video", "instances/bboxes_3d", "camera"]``); None = all.
    Returns nested dicts like ``tfds.as_numpy``. Raises :class:`FeatureError` naming the feature when a field
    is missing, has the wrong size or holds an undecodable image.
    """
    if spec.kind != "dict":
        raise FeatureError("the root of features.json must be a FeaturesDict")
    return _decode_dict(spec, flat, "", (), selector(select))


def _decode_dict(spec: FeatureSpec, flat, prefix: str, outer: tuple, wants) -> dict:
    out = {}
    for name, child in spec.children.items():
        key = f"{prefix}{name}"
        if wants(key):
            out[name] = _decode(child, flat, key, outer, wants)
    return out


def _decode(spec: FeatureSpec, flat, key: str, outer: tuple, wants):
    """``outer``: the lengths (None if variable) of the sequences this feature sits in, outermost first."""
    if spec.kind == "dict":
        return _decode_dict(spec, flat, key + "/", outer, wants)
    if spec.kind == "sequence":
        if spec.feature.kind in ("image", "video") and not outer:
            frames = _bytes(flat, key)
            if spec.length is not None and len(frames) != spec.length:
                raise FeatureError(f"feature {key}: {len(frames)} frames, features.json says {spec.length}")
            return _decode_images(spec.feature, frames, key)
        return _decode(spec.feature, flat, key, outer + (spec.length,), wants)
    if spec.kind == "video":
        if outer:
            raise FeatureError(f"feature {key}: a Video inside a Sequence is not supported")
        frames = _bytes(flat, key)
        if spec.shape and spec.shape[0] is not None and len(frames) != spec.shape[0]:
            raise FeatureError(f"feature {key}: {len(frames)} frames, features.json says {spec.shape[0]}")
        return _decode_images(FeatureSpec("image", spec.dtype, spec.shape[1:], spec.encoding), frames, key)
    if spec.kind == "image":
        if outer:
            raise FeatureError(f"feature {key}: an Image inside nested sequences is not supported")
        images = _decode_images(spec, _bytes(flat, key), key)
        if len(images) != 1:
            raise FeatureError(f"feature {key}: {len(images)} images, expected 1")
        return images[0]
    if spec.kind == "text":
        values = _bytes(flat, key)
        texts = [v.decode("utf-8", errors="replace") for v in values]
        return texts if outer else (texts[0] if len(texts) == 1 else _size_error(key, len(texts), "1 string"))
    dtype = np.int64 if spec.kind == "class_label" else _DTYPES.get(spec.dtype)
    if dtype is None:
        raise FeatureError(f"feature {key}: unsupported dtype {spec.dtype}")
    shape = outer + tuple(spec.shape)
    if sum(d is None for d in shape) > 1:
        return _decode_ragged(flat, key, shape, dtype)
    values = _tensor_values(flat, key, spec, dtype)
    return _reshape(values, shape, key)


def _size_error(key: str, got: int, expected: str):
    raise FeatureError(f"feature {key}: {got} values, expected {expected}")


def _bytes(flat, key: str) -> list:
    if key not in flat:
        raise FeatureError(f"missing feature {key!r}")
    value = flat[key]
    if not isinstance(value, list):
        if np.size(value) == 0:
            return []
        raise FeatureError(f"feature {key}: expected a BytesList, found {np.asarray(value).dtype} values")
    return value


def _tensor_values(flat, key: str, spec: FeatureSpec, dtype) -> np.ndarray:
    if key not in flat:
        raise FeatureError(f"missing feature {key!r}")
    value = flat[key]
    if spec.encoding in ("bytes", "zlib"):
        blobs = _bytes(flat, key)
        if spec.encoding == "zlib":
            blobs = [zlib.decompress(b) for b in blobs]
        return np.frombuffer(b"".join(blobs), dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    if isinstance(value, list):
        raise FeatureError(f"feature {key}: expected numbers, found a BytesList")
    if np.size(value) and value.dtype.kind == "f" and np.dtype(dtype).kind != "f":
        raise FeatureError(f"feature {key}: stored as floats, features.json says {spec.dtype}")
    return value.astype(dtype)


def _reshape(values: np.ndarray, shape: tuple, key: str) -> np.ndarray:
    known = int(np.prod([d for d in shape if d is not None], dtype=np.int64))
    if None in shape:
        if known == 0 or values.size % known:
            _size_error(key, values.size, f"a multiple of {known} (shape {shape})")
        shape = tuple(values.size // known if d is None else d for d in shape)
    elif values.size != known:
        _size_error(key, values.size, f"{known} (shape {shape})")
    return values.reshape(shape)


def _decode_ragged(flat, key: str, shape: tuple, dtype) -> list:
    """A ragged feature as nested lists (one level per unknown dimension but the last) of arrays."""
    values = _tensor_values(flat, f"{key}/ragged_flat_values", FeatureSpec("tensor", str(np.dtype(dtype))), dtype)
    n_ragged = sum(d is None for d in shape) - 1
    lengths = []
    for i in range(n_ragged):
        name = f"{key}/ragged_row_lengths_{i}"
        if name not in flat or isinstance(flat[name], list):
            raise FeatureError(f"missing feature {name!r}")
        lengths.append(np.asarray(flat[name], np.int64))
    tail = tuple(shape[max(i for i, d in enumerate(shape) if d is None) + 1:])
    element = int(np.prod(tail, dtype=np.int64))
    rows = lengths[-1]
    if rows.sum() * element != values.size:
        _size_error(key, values.size, f"{int(rows.sum())} rows of {element}")
    items: list = [v.reshape((-1,) + tail) for v in np.split(values, np.cumsum(rows)[:-1] * element)]
    for level in reversed(lengths[:-1]):
        if level.sum() != len(items):
            _size_error(key, len(items), f"{int(level.sum())} rows")
        bounds = np.concatenate([[0], np.cumsum(level)])
        items = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return items


def _decode_images(spec: FeatureSpec, frames: list, key: str) -> np.ndarray:
    if spec.encoding not in ("png", None, "none"):
        raise FeatureError(f"feature {key}: image encoding {spec.encoding!r} is not supported (only png)")
    dtype = _DTYPES[spec.dtype]
    decoded = []
    for i, data in enumerate(frames):
        try:
            image = decode_png(data)
        except FeatureError as e:
            raise FeatureError(f"feature {key}, frame {i}: {e}") from None
        if image.dtype != dtype:
            raise FeatureError(f"feature {key}, frame {i}: PNG holds {image.dtype}, features.json says {spec.dtype}")
        expected = tuple(spec.shape)
        if expected and (len(expected) != image.ndim or any(e not in (None, g) for e, g in zip(expected, image.shape))):
            raise FeatureError(f"feature {key}, frame {i}: image of shape {image.shape}, expected {expected}")
        decoded.append(image)
    if not decoded:
        return np.zeros((0,) + tuple(d or 0 for d in spec.shape), dtype)
    return np.stack(decoded)


def encode_example(spec: FeatureSpec, nested: Mapping[str, Any]) -> dict[str, FeatureValue]:
    """The flat feature map TFDS would store for ``nested`` (the inverse of :func:`decode_example`).

    Covers what the tests and the benchmark write: dicts, tensors, images and PNG videos, texts and
    sequences of those (no ragged features). Pass the result to :func:`chrono.kubric.tfrecord.encode_example`.
    """
    flat: dict[str, FeatureValue] = {}

    def walk(node: FeatureSpec, value: Any, key: str) -> None:
        if node.kind == "dict":
            for name, child in node.children.items():
                if name in value:
                    walk(child, value[name], f"{key}/{name}" if key else name)
        elif node.kind == "sequence" and node.feature.kind in ("image", "video", "dict", "sequence"):
            if node.feature.kind == "image":
                flat[key] = [encode_png(frame) for frame in value]
            else:
                walk(node.feature, value, key)
        elif node.kind == "video":
            flat[key] = [encode_png(frame) for frame in value]
        elif node.kind == "image":
            flat[key] = [encode_png(value)]
        elif node.kind == "text":
            flat[key] = [s.encode("utf-8") for s in ([value] if isinstance(value, str) else value)]
        else:
            arr = np.asarray(value)
            flat[key] = arr.astype(np.float32) if arr.dtype.kind == "f" else arr.astype(np.int64)

    walk(spec, nested, "")
    return flat


_SHARD_RE = re.compile(r"\.tfrecord-(\d{5})-of-(\d{5})$")


@dataclass(frozen=True)
class TfdsFile:
    """One TFRecord file of a build: its split, shard number, and the record count from dataset_info.json."""

    path: Path
    split: str
    shard: int
    num_shards: int
    num_records: int | None


def find_builds(src: str | Path) -> list[Path]:
    """Build folders (those with ``features.json`` and TFRecord files) at or under ``src``, sorted."""
    src = Path(src)
    found = sorted({p.parent for p in src.rglob("features.json")} | ({src} if (src / "features.json").is_file()
                                                                        else set()))
    return [b for b in found if any(_SHARD_RE.search(p.name) for p in b.iterdir())]


def build_files(build: str | Path) -> list[TfdsFile]:
    """The TFRecord files of a build folder, with record counts where ``dataset_info.json`` gives them."""
    build = Path(build)
    counts: dict[tuple[str, int], int] = {}
    info_path = build / "dataset_info.json"
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
            for split in info.get("splits", []):
                for i, n in enumerate(split.get("shardLengths", [])):
                    counts[(split["name"], i)] = int(n)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            counts = {}
    files = []
    for p in sorted(build.iterdir()):
        m = _SHARD_RE.search(p.name)
        if not m or not p.is_file():
            continue
        stem = p.name[:m.start()]
        split = stem.rsplit("-", 1)[-1] if "-" in stem else stem
        shard = int(m.group(1))
        files.append(TfdsFile(p, split, shard, int(m.group(2)), counts.get((split, shard))))
    return files
