"""HDF5 shards of point-tracking clips: the storage format of every training set (synthetic, Kubric).

Layout of one shard file (``<prefix>-00000.h5``)::

    /                         attrs: format="chrono-clips", version=1, source, conventions
    /<clip name>/             one group per clip; attrs: source, num_frames, height, width, num_tracks, ...
                              every dataset carries HDF5's fletcher32 checksum (shards written since issue #13)
        video                 uint8   [T, H, W, 3]  chunked per frame (1, H, W, 3), lzf or uncompressed
        tracks                float32 [N, T, 2]     (x, y) pixels, raster convention (pixel i covers [i, i+1))
        occluded              bool    [N, T]        True = not visible (behind something or outside the frame)
        query_points          float32 [N, 3]        optional: (t, y, x) of each track's query (e.g. Kubric's)
        grid/segments, grid/tracks, grid/occluded   instead of tracks / occluded (version 2): the clip's whole
                              stride-s query grid with segment ids (chrono.data.grid: int16 tracks at 1/64 px,
                              packed occlusion bits, uint8 ids), what kubric's per-read sampling needs

Beside the shards, ``index.json`` lists every shard with its clip names and counts::

    {"format": "chrono-clips-index", "version": 1, "num_clips": 1000, "source": "synthetic",
     "shards": [{"file": "train-00000.h5", "num_clips": 50, "clips": ["clip_000000", ...]}, ...], ...}

Every file is written under a temporary name in the same folder and renamed into place, so a crash
never leaves a half-written shard or index behind. :class:`ShardReader` checks the schema and names the
file and the clip in every error (:class:`ShardError`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from chrono.data.grid import TRACK_SCALE, QueryGrid
from chrono.errors import ChronoError
from chrono.files import make_temp, write_json_atomic

FORMAT = "chrono-clips"
INDEX_FORMAT = "chrono-clips-index"
VERSION = 2  # 2: clips may hold a query grid (grid/...) instead of tracks
INDEX_NAME = "index.json"
CONVENTIONS = (
    "video uint8 [T,H,W,3]; tracks float32 [N,T,2] (x, y) in pixels of the video, raster convention "
    "(pixel i covers [i, i+1), centre i+0.5); occluded bool [N,T] (True = not visible); "
    "query_points float32 [N,3] (t, y, x) in the same pixels; or grid/segments uint8 [Tg,Hg,Wg], grid/tracks int16 "
    "[Tg,Hg,Wg,T,2] (x, y) x track_scale, grid/occluded uint8 packbits [Tg,Hg,Wg,ceil(T/8)] with attrs grid_start "
    "(t, y, x), grid_stride, track_scale: grid point (a, b, c) is pixel grid_start + grid_stride * (a, b, c), "
    "queried at its centre"
)
FLAT = ("tracks", "occluded")
GRID = ("grid/segments", "grid/tracks", "grid/occluded")


class ShardError(ChronoError):
    """A shard or index that cannot be read as Chrono clips; the message names the file (and clip)."""


# --------------------------------------------------------------------------------------------------
# Validation shared by the writer (inputs) and the reader (stored datasets)


def _check_grid_arrays(where: str, t: int, segments, tracks, occluded) -> None:
    """Check the shapes and dtypes of a stored query grid (numpy arrays or h5py datasets) of a T-frame clip."""
    shape = tuple(segments.shape)
    want = {"segments": (segments, np.uint8, shape), "tracks": (tracks, np.int16, shape + (t, 2)),
            "occluded": (occluded, np.uint8, shape + (-(-t // 8),))}
    for key, (arr, dtype, dims) in want.items():
        if arr.dtype != dtype or tuple(arr.shape) != dims or len(shape) != 3:
            raise ShardError(f"{where}: grid/{key} must be {np.dtype(dtype).name} {list(dims)}, "
                             f"got {arr.dtype} {tuple(arr.shape)}")


def _check_clip_arrays(where: str, video, tracks, occluded, query_points=None, grid=None) -> None:
    """Check shapes and dtypes of one clip (numpy arrays or h5py datasets); raise ShardError naming ``where``.
    ``grid``: (segments, tracks, occluded) of a query grid, given instead of ``tracks`` and ``occluded``."""

    def fail(msg):
        raise ShardError(f"{where}: {msg}")

    if video.dtype != np.uint8 or len(video.shape) != 4 or video.shape[-1] != 3:
        fail(f"video must be uint8 [T, H, W, 3], got {video.dtype} {tuple(video.shape)}")
    t = video.shape[0]
    if grid is not None:
        _check_grid_arrays(where, t, *grid)
        if tracks is None:
            return
    if tracks.dtype != np.float32 or len(tracks.shape) != 3 or tracks.shape[1:] != (t, 2):
        fail(f"tracks must be float32 [N, {t}, 2], got {tracks.dtype} {tuple(tracks.shape)}")
    n = tracks.shape[0]
    if occluded.dtype != np.bool_ or tuple(occluded.shape) != (n, t):
        fail(f"occluded must be bool [{n}, {t}], got {occluded.dtype} {tuple(occluded.shape)}")
    if query_points is not None and (query_points.dtype != np.float32 or tuple(query_points.shape) != (n, 3)):
        fail(f"query_points must be float32 [{n}, 3], got {query_points.dtype} {tuple(query_points.shape)}")


def _attr_value(v: Any) -> Any:
    """An HDF5-storable attribute value (nested structures become JSON text)."""
    if isinstance(v, (str, bytes, int, float, bool, np.integer, np.floating, np.bool_)):
        return v
    if isinstance(v, np.ndarray) and v.dtype.kind in "iufb":
        return v
    return json.dumps(v, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


# --------------------------------------------------------------------------------------------------
# Writing


class ShardWriter:
    """Write clips into a folder of HDF5 shards (``<prefix>-00000.h5``, ...) and keep its ``index.json``.

    Usage::

        with ShardWriter(root, prefix="train", source="kubric/panning_movi_e") as w:
            w.add_clip("scene_000", video, tracks, occluded, query_points=q, attrs={"seed": 3})

    A shard is closed (and renamed into place) every ``clips_per_shard`` clips and when the writer is
    closed; then the index is updated (entries of other shards already in the folder are kept). If the
    ``with`` block raises, the shard being written is discarded and the index is left unchanged.
    Several writers may work on disjoint shard numbers (``start_shard``) with ``write_index=False`` and
    the caller then merges their :attr:`entries` with :func:`update_index`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        prefix: str = "shard",
        clips_per_shard: int = 64,
        source: str = "unknown",
        compression: str | None = "lzf",
        start_shard: int = 0,
        attrs: Mapping[str, Any] | None = None,
        write_index: bool = True,
        index_attrs: Mapping[str, Any] | None = None,
    ):
        if compression not in ("lzf", None, "none"):
            raise ValueError(f"compression must be 'lzf' or None, got {compression!r}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.clips_per_shard = int(clips_per_shard)
        self.source = source
        self.compression = None if compression in (None, "none") else compression
        self.file_attrs = dict(attrs or {})
        self.write_index = write_index
        self.index_attrs = dict(index_attrs or {})
        self.entries: list[dict] = []
        self._next_shard = int(start_shard)
        self._file: h5py.File | None = None
        self._tmp: Path | None = None
        self._path: Path | None = None
        self._names: list[str] = []
        self._all_names: set[str] = set()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open_shard(self) -> None:
        self._path = self.root / f"{self.prefix}-{self._next_shard:05d}.h5"
        self._next_shard += 1
        self._tmp = make_temp(self.root, self._path.name)
        self._file = h5py.File(self._tmp, "w")
        self._file.attrs.update(
            {"format": FORMAT, "version": VERSION, "source": self.source, "conventions": CONVENTIONS}
        )
        for k, v in self.file_attrs.items():
            self._file.attrs[k] = _attr_value(v)
        self._names = []

    def _close_shard(self) -> None:
        if self._file is None:
            return
        self._file.close()
        os.replace(self._tmp, self._path)
        self.entries.append({"file": self._path.name, "num_clips": len(self._names), "clips": list(self._names)})
        self._file = self._tmp = None

    def add_clip(
        self,
        name: str,
        video: np.ndarray,
        tracks: np.ndarray | None = None,
        occluded: np.ndarray | None = None,
        query_points: np.ndarray | None = None,
        attrs: Mapping[str, Any] | None = None,
        grid: QueryGrid | None = None,
    ) -> None:
        """Store one clip: video uint8 [T,H,W,3], tracks float32 [N,T,2] (x, y) px, occluded bool [N,T],
        optional query_points float32 [N,3] (t, y, x) px, and extra attributes (scalars, strings or JSON);
        or, instead of tracks / occluded / query_points, the clip's query ``grid`` (:mod:`chrono.data.grid`)."""
        if not name or "/" in name:
            raise ValueError(f"clip name must be a non-empty string without '/', got {name!r}")
        if name in self._all_names:
            raise ValueError(f"clip name {name!r} was already written by this writer")
        if (grid is None) == (tracks is None or occluded is None) or (grid is not None and tracks is not None):
            raise ValueError("give tracks and occluded, or a grid")
        arrays = (grid.segments, grid.tracks, grid.occluded) if grid is not None else None
        _check_clip_arrays(f"clip {name!r}", video, tracks, occluded, query_points, arrays)
        if self._file is None:
            self._open_shard()
        t, h, w, _ = video.shape
        g = self._file.create_group(name)
        # fletcher32: HDF5's own checksum of every chunk, so damaged bytes fail the read instead of
        # coming back as data
        g.create_dataset("video", data=video, chunks=(1, h, w, 3), compression=self.compression, fletcher32=True)
        if grid is not None:
            tg, hg, wg = grid.shape
            g.create_dataset("grid/segments", data=grid.segments, fletcher32=True)
            g.create_dataset("grid/tracks", data=grid.tracks, chunks=(1, hg, wg, t, 2), fletcher32=True)
            g.create_dataset("grid/occluded", data=grid.occluded, fletcher32=True)
            g.attrs.update({"grid_start": np.asarray(grid.start, np.int64), "grid_stride": grid.stride,
                            "track_scale": TRACK_SCALE})
            num_tracks = grid.size
        else:
            g.create_dataset("tracks", data=tracks, fletcher32=True)
            g.create_dataset("occluded", data=occluded, fletcher32=True)
            if query_points is not None:
                g.create_dataset("query_points", data=query_points, fletcher32=True)
            num_tracks = tracks.shape[0]
        g.attrs.update({"source": self.source, "num_frames": t, "height": h, "width": w, "num_tracks": num_tracks})
        for k, v in (attrs or {}).items():
            g.attrs[k] = _attr_value(v)
        self._names.append(name)
        self._all_names.add(name)
        if len(self._names) >= self.clips_per_shard:
            self._close_shard()

    def close(self) -> list[dict]:
        """Finish the open shard, update the index (if ``write_index``) and return this writer's entries."""
        self._close_shard()
        if self.write_index and self.entries:
            update_index(self.root, self.entries, source=self.source, **self.index_attrs)
        return self.entries

    def abort(self) -> None:
        """Discard the shard being written (finished shards stay, but the index is not updated)."""
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            self._file = self._tmp = None


def part_index_name(part: int, parts: int) -> str:
    """The index file of part ``part`` of a conversion split over ``parts`` machines (merged by :func:`read_index`)."""
    return f"index.part-{part:04d}-of-{parts:04d}.json"


def update_index(root: str | os.PathLike, entries: Sequence[Mapping], source: str | None = None,
                 name: str = INDEX_NAME, **attrs) -> dict:
    """Add or replace ``entries`` (``{"file", "num_clips", "clips"}``) in ``<root>/<name>`` (``index.json``),
    atomically."""
    root = Path(root)
    path = root / name
    index = _read_index_file(path) if path.exists() else {"format": INDEX_FORMAT, "version": VERSION, "shards": []}
    shards = {e["file"]: dict(e) for e in index["shards"]}
    for e in entries:
        shards[e["file"]] = {"file": e["file"], "num_clips": int(e["num_clips"]), "clips": list(e["clips"])}
    index["shards"] = [shards[f] for f in sorted(shards)]
    index["num_clips"] = sum(e["num_clips"] for e in index["shards"])
    index["conventions"] = CONVENTIONS
    if source is not None:
        index["source"] = source
    index.update(attrs)
    write_json_atomic(path, index, indent=1)
    return index


def build_index(root: str | os.PathLike, pattern: str = "*.h5", **attrs) -> dict:
    """(Re)write ``index.json`` from the shards found in ``root`` (each is opened and checked)."""
    root = Path(root)
    entries = []
    sources = set()
    for path in sorted(root.glob(pattern)):
        with ShardReader(path) as r:
            entries.append({"file": path.name, "num_clips": len(r.names), "clips": r.names})
            sources.add(r.source)
    if not entries:
        raise ShardError(f"{root}: no shards matching {pattern!r}")
    (root / INDEX_NAME).unlink(missing_ok=True)
    return update_index(root, entries, source="+".join(sorted(sources)), **attrs)


# --------------------------------------------------------------------------------------------------
# Reading


def _read_index_file(path: Path) -> dict:
    """One validated index file."""
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShardError(f"{path}: no shard index (write shards with chrono.data.shards.ShardWriter, "
                         f"or rebuild it with chrono.data.shards.build_index)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ShardError(f"{path}: not a JSON shard index ({e})") from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise ShardError(f"{path}: not a Chrono shard index (format field is not {INDEX_FORMAT!r})")
    for e in index.get("shards", []):
        if not {"file", "num_clips", "clips"} <= set(e) or len(e["clips"]) != e["num_clips"]:
            raise ShardError(f"{path}: malformed shard entry {str(e)[:200]}")
    return index


def _merge_part_indexes(root: Path, paths: list[Path]) -> dict:
    """The index of a conversion run in parts (``index.part-IIII-of-NNNN.json``), once every part is complete."""
    parts = [_read_index_file(p) for p in paths]
    counts = {p.get("parts") for p in parts}
    if len(counts) != 1 or not isinstance(next(iter(counts)), int):
        raise ShardError(f"{root}: part indexes of conversions into different numbers of parts {sorted(map(str, counts))}; "
                         f"remove the stale ones")
    n = counts.pop()
    ready = {p["part"] for p in parts if p.get("complete")}
    missing = [i for i in range(n) if i not in ready]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ShardError(f"{root}: no index.json, and part(s) {shown} of a conversion in {n} parts are missing or "
                         f"unfinished (python -m chrono.data.kubric ... part=I parts={n} for each)")
    shards = sorted((e for p in parts for e in p["shards"]), key=lambda e: e["file"])
    merged = {k: v for k, v in parts[0].items() if k not in ("part", "complete")}
    merged.update(shards=shards, num_clips=sum(e["num_clips"] for e in shards))
    return merged


def read_index(root: str | os.PathLike) -> dict:
    """The validated ``index.json`` of a shard folder; without one, the merge of the per-part indexes a
    conversion on several machines wrote (refused, naming the parts, until every part has finished)."""
    root = Path(root)
    path = root / INDEX_NAME
    if not path.exists():
        parts = sorted(root.glob("index.part-*-of-*.json"))
        if parts:
            return _merge_part_indexes(root, parts)
    return _read_index_file(path)


def list_clips(root: str | os.PathLike) -> list[tuple[Path, str]]:
    """Every (shard path, clip name) of a shard folder, in index order."""
    root = Path(root)
    index = read_index(root)
    clips = [(root / e["file"], name) for e in index["shards"] for name in e["clips"]]
    if not clips:
        raise ShardError(f"{root / INDEX_NAME}: the index lists no clips")
    return clips


NO_GRID = ("no query grid with segment ids (shards converted or generated before issue 14, or generated without "
           "grid_stride): dataset.track_sampling=reference needs one; convert or generate the shards again, or set "
           "dataset.track_sampling=uniform")


def check_shards(root: str | os.PathLike, need_grid: bool = False) -> int:
    """Open every shard the index of ``root`` lists and check each listed clip's schema (shapes and dtypes,
    no data read; with ``need_grid`` that it holds a query grid), so that a missing, truncated or foreign shard
    fails before training starts rather than hours into it; the number of clips. Raises :class:`ShardError`
    naming the file (and clip)."""
    clips = list_clips(root)
    by_file: dict[Path, list[str]] = {}
    for path, name in clips:
        by_file.setdefault(path, []).append(name)
    for path, names in by_file.items():
        with ShardReader(path) as reader:
            for name in names:
                if not reader.info(name)["has_grid"] and need_grid:
                    raise ShardError(f"{path} clip {name!r}: {NO_GRID}")
    return len(clips)


class ShardReader:
    """Read clips from one shard file, checking the schema; every error names the file and the clip.

    The file is opened on construction; h5py handles cannot cross processes, so DataLoader workers
    each make their own reader.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise ShardError(f"{self.path}: shard file not found")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as e:
            raise ShardError(f"{self.path}: not a readable HDF5 file (truncated or not HDF5?): {e}") from None
        attrs = self._file.attrs
        fmt = attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT:
            self._file.close()
            raise ShardError(f"{self.path}: HDF5 file is not a Chrono clip shard (root attribute format={fmt!r}, "
                             f"expected {FORMAT!r})")
        if int(attrs.get("version", -1)) > VERSION:
            self._file.close()
            raise ShardError(f"{self.path}: shard version {attrs.get('version')} is newer than this reader ({VERSION})")
        self.source = str(attrs.get("source", "unknown"))
        self.names = sorted(self._file.keys())
        self._infos: dict[str, dict] = {}  # clips whose schema was checked, with their shape facts and attrs

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _group(self, name: str) -> h5py.Group:
        where = f"{self.path} clip {name!r}"
        if name not in self._file:
            raise ShardError(f"{where}: no such clip in this shard")
        g = self._file[name]
        if not isinstance(g, h5py.Group):
            raise ShardError(f"{where}: expected a group")
        if "video" not in g or not (all(k in g for k in FLAT) or all(k in g for k in GRID)):
            missing = [k for k in ("video", *(GRID if "grid" in g else FLAT)) if k not in g]
            raise ShardError(f"{where}: missing dataset(s) {missing}")
        if "grid" in g:
            if g.attrs.get("track_scale", TRACK_SCALE) != TRACK_SCALE or "grid_start" not in g.attrs:
                raise ShardError(f"{where}: grid attributes grid_start / track_scale={TRACK_SCALE} missing or different")
            _check_clip_arrays(where, g["video"], None, None, grid=[g[k] for k in GRID])
        else:
            _check_clip_arrays(where, g["video"], g["tracks"], g["occluded"],
                               g["query_points"] if "query_points" in g else None)
        return g

    def info(self, name: str) -> dict:
        """Shape facts of a clip without reading its arrays: num_frames, height, width, num_tracks, whether it
        has query points and a query grid, attrs."""
        if name not in self._infos:
            g = self._group(name)
            t, h, w, _ = g["video"].shape
            has_grid = "grid" in g
            self._infos[name] = {
                "num_frames": t, "height": h, "width": w,
                "num_tracks": g["grid/segments"].size if has_grid else g["tracks"].shape[0],
                "has_query_points": has_grid or "query_points" in g, "has_grid": has_grid, "attrs": dict(g.attrs)}
        info = self._infos[name]
        return {**info, "attrs": dict(info["attrs"])}

    def read(self, name: str, frames: slice | None = None) -> dict[str, Any]:
        """One clip as numpy arrays: video, tracks, occluded (and query_points if stored), plus ``attrs``;
        a clip stored as a query grid has ``grid`` (a :class:`~chrono.data.grid.QueryGrid`, all frames)
        instead of tracks / occluded / query_points (``grid.flat()`` gives them).

        ``frames`` (a slice) reads only those frames of the video and of stored tracks; stored query_points
        (and the grid) are returned unchanged (their t still refers to the full clip).
        """
        info = self.info(name)
        g = self._file[name]
        sl = frames if frames is not None else slice(None)
        try:
            out = {"video": g["video"][sl]}
            if "grid" in g:
                segments, tracks, occluded = (g[k][()] for k in GRID)
                attrs = info["attrs"]
                out["grid"] = QueryGrid(tuple(int(v) for v in attrs["grid_start"]), int(attrs["grid_stride"]),
                                        segments, tracks, occluded, info["num_frames"])
            else:
                out["tracks"] = g["tracks"][:, sl]
                out["occluded"] = g["occluded"][:, sl]
            if "query_points" in g:
                out["query_points"] = g["query_points"][()]
        except (OSError, RuntimeError, KeyError) as e:
            raise ShardError(f"{self.path} clip {name!r}: cannot read the data (damaged file: checksum or "
                             f"format error): {str(e).splitlines()[0]}") from None
        for key in ("tracks", "query_points"):
            if key in out and not np.isfinite(out[key]).all():
                raise ShardError(f"{self.path} clip {name!r}: {key} hold non-finite values (NaN or infinity)")
        out["attrs"] = info["attrs"]
        return out

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        for name in self.names:
            yield name, self.read(name)
