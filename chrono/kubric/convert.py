"""Converting a panning MOVi-E TFDS build (Kubric) into Chrono's HDF5 clip shards with point tracks.

The command is ``python -m chrono.data.kubric src=<build dir> out=<output dir>`` (chrono/data/kubric.py,
conf/kubric.yaml); :func:`convert` is the whole job. No TensorFlow is needed:
records are read by :mod:`chrono.kubric.tfrecord`, decoded with the build's ``features.json`` by
:mod:`chrono.kubric.tfds`, and tracked by :mod:`chrono.kubric.tracks` (kubric's ``track_points``
computation). Each scene keeps kubric's whole stride-4 query grid (one random offset per scene) with every
point's track and segment id, so that the training loader can redo kubric's sampling on every read, after
its random crop (``dataset.track_sampling: reference``, :mod:`chrono.data.sampling`).

Output: ``<out>/<split>/<split>-NNNNN.h5`` (one shard per input TFRecord file, written by
:class:`chrono.data.shards.ShardWriter`), ``<out>/<split>/index.json``, a ``<split>-NNNNN.summary.json`` per
converted input file (what it held, what was skipped and why, the options it was converted with; its presence
marks the file as finished), and ``<out>/conversion_summary.json``. Each clip stores ``video`` uint8
[T, H, W, 3] and its query grid (``grid/segments``, ``grid/tracks``, ``grid/occluded``: :mod:`chrono.data.grid`).

Input files are converted in parallel (one worker per file); a rerun skips finished files, and stops with an
error naming the option when it was asked for other options than the finished files were made with. A corrupt
record (bad CRC, truncated file, undecodable example, missing field) is reported and skipped, never fatal.

Several machines: ``part=i parts=n`` converts the deterministic share ``files[i::n]`` of the input files (sorted
by split and file number); each part then writes ``index.part-IIII-of-NNNN.json`` (and
``conversion_summary.part-IIII-of-NNNN.json``) instead of ``index.json``, and readers merge the part indexes
once every part has finished (:func:`chrono.data.shards.read_index`).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from chrono.data.grid import QueryGrid
from chrono.data.shards import INDEX_NAME, ShardWriter, part_index_name, update_index
from chrono.errors import ChronoError
from chrono.files import remove_stale_temps, write_json_atomic
from chrono.kubric import tfds as tfds_features
from chrono.kubric.tracks import KubricScene, track_grid
from chrono.kubric.tfrecord import iter_records, parse_example
from chrono.progress import Progress

SOURCE = "kubric/panning_movi_e"
SCENE_FIELDS = (
    "video", "depth", "segmentations", "normal", "object_coordinates", "instances/bboxes_3d",
    "instances/quaternions", "camera/focal_length", "camera/sensor_width", "camera/positions",
    "camera/quaternions", "metadata/depth_range",
)
"""The features a scene needs; flows, events and the other instance fields are not decoded."""


class KubricError(ChronoError):
    """A TFDS build that cannot be converted as asked; the message names the folder."""


@dataclass(frozen=True)
class ConvertOptions:
    """The query grid's stride (kubric's ``sampling_stride``, Chrono's 4) and the per-scene seed base (the grid's
    random offset). The per-read sampling values (``max_seg_id``, ``max_sampled_frac``, the budget) are the
    loader's (conf/dataset/kubric.yaml)."""

    sampling_stride: int = 4
    seed: int = 0


@dataclass
class ConvertedClip:
    """One converted scene: video uint8 [T, H, W, 3]; its query grid; video_name from the record's metadata."""

    video: np.ndarray
    grid: QueryGrid
    video_name: str


def convert_record(payload: bytes, spec: tfds_features.FeatureSpec, rng: np.random.Generator,
                   options: ConvertOptions = ConvertOptions(), timings: dict | None = None) -> ConvertedClip:
    """Decode one panning MOVi-E record and track its whole query grid (offset drawn from ``rng``).

    Raises ``ExampleDecodeError`` / ``FeatureError`` / ``SceneError`` for a record that cannot be used.
    ``timings``, if given, receives the seconds spent per stage.
    """
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        clock.append(time.perf_counter())
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + clock[-1] - clock[-2]

    flat = parse_example(payload, tfds_features.selector(SCENE_FIELDS + ("metadata/video_name",)))
    lap("parse record")
    example = tfds_features.decode_example(spec, flat, SCENE_FIELDS)
    lap("decode PNGs")
    scene = KubricScene.from_example(example)
    # kubric draws the offset inside the crop on every read; one per scene here (chrono.data.sampling)
    start = rng.integers(0, options.sampling_stride, 3)
    grid = track_grid(scene, start, options.sampling_stride)  # each track passes exactly through its query
    lap("tracks")
    name = flat.get("metadata/video_name")
    name = name[0].decode("utf-8", errors="replace") if isinstance(name, list) and name else ""
    return ConvertedClip(example["video"], grid, name)


def scene_rng(seed: int, split: str, shard: int, record: int) -> np.random.Generator:
    """The random generator of one scene: fixed by (seed, split, shard, record), so reruns give the same tracks."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), shard, record])


# ----------------------------------------------------------------------------------------------------------
# One input file -> one shard


@dataclass(frozen=True)
class FileTask:
    """Convert one TFRecord file into ``<out_dir>/<split>-<shard>.h5``."""

    tfrecord: str
    features: str
    split: str
    shard: int
    out_dir: str
    options: ConvertOptions
    compression: Optional[str]

    @property
    def stem(self) -> str:
        return f"{self.split}-{self.shard:05d}"

    @property
    def summary_path(self) -> Path:
        return Path(self.out_dir) / f"{self.stem}.summary.json"

    @property
    def settings(self) -> dict:
        """What the output depends on besides the input: recorded in the summary, compared on a rerun."""
        return {**asdict(self.options), "compression": self.compression}


def is_finished(task: FileTask) -> dict | None:
    """The summary of a finished file, else None: a file is finished when its summary exists and the shard it
    lists (if any) is in place. A finished file made with other settings raises a :class:`KubricError` naming
    the first differing option (a rerun never mixes outputs of different options)."""
    try:
        summary = _read_json(task.summary_path)
    except (OSError, ValueError):
        return None
    if not all((Path(task.out_dir) / e["file"]).is_file() for e in summary.get("entries", [])):
        return None
    before = summary.get("settings")
    if before is None:
        raise KubricError(f"{task.summary_path}: converted by an earlier version of the converter (candidate tracks, "
                          f"no query grid); convert into another out= (or delete that folder)")
    for key, value in task.settings.items():
        if before.get(key) != value:
            raise KubricError(f"{task.summary_path}: finished with {key}={before.get(key)}, this run asks "
                              f"{key}={value}; rerun with {key}={before.get(key)} or convert into another out=")
    return summary


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


_progress: Any = None


def _init_worker(queue) -> None:
    global _progress
    _progress = queue.put


def convert_file(task: FileTask, progress: Callable[[int], None] | None = None) -> dict:
    """Convert every usable record of one TFRecord file into one shard; return (and write) its summary.

    The summary: tfrecord, scenes, tracks, skipped [{record, offset, reason}], entries (for index.json),
    settings (the options it was made with). ``progress(1)`` is called after each record (the worker
    processes report through a queue).
    """
    progress = progress or _progress or (lambda n: None)
    spec = tfds_features.load_features(task.features)
    skipped, scenes, tracks = [], 0, 0
    writer = ShardWriter(task.out_dir, prefix=task.split, clips_per_shard=1 << 30, source=SOURCE,
                         compression=task.compression, start_shard=task.shard, write_index=False,
                         attrs={"tfrecord": Path(task.tfrecord).name, "converter": "chrono.data.kubric",
                                **{f"tracks_{k}": v for k, v in asdict(task.options).items()}})
    with writer:
        for record in iter_records(task.tfrecord):
            if record.error is not None:
                skipped.append({"record": record.index, "offset": record.offset, "reason": record.error})
                progress(1)
                continue
            try:
                clip = convert_record(record.data, spec, scene_rng(task.options.seed, task.split, task.shard,
                                                                   record.index), task.options)
            except Exception as e:  # noqa: BLE001 - any failure of one record skips that record only
                skipped.append({"record": record.index, "offset": record.offset,
                                "reason": f"{type(e).__name__}: {e}"})
                progress(1)
                continue
            writer.add_clip(f"{task.stem}_{record.index:05d}", clip.video, grid=clip.grid,
                            attrs={"video_name": clip.video_name, "tfrecord": Path(task.tfrecord).name,
                                   "record": record.index})
            scenes += 1
            tracks += clip.grid.size
            progress(1)
    summary = {"tfrecord": task.tfrecord, "split": task.split, "shard": task.shard, "scenes": scenes,
               "tracks": tracks, "skipped": skipped, "entries": writer.entries, "settings": task.settings}
    write_json_atomic(task.summary_path, summary, indent=1)
    return summary


# ----------------------------------------------------------------------------------------------------------
# The whole build


@dataclass
class Summary:
    """What a conversion did: converted this run, found already finished, skipped records, failed files."""

    out: str
    converted_files: int = 0
    scenes: int = 0
    tracks: int = 0
    finished_before: int = 0
    scenes_before: int = 0
    skipped: list = field(default_factory=list)
    skipped_before: list = field(default_factory=list)
    failed_files: list = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"Kubric conversion into {self.out}:",
               f"  this run: {self.converted_files} files, {self.scenes} scenes, {self.tracks} tracks "
               f"in {self.seconds:.1f} s",
               f"  already finished before (skipped): {self.finished_before} files, {self.scenes_before} scenes",
               f"  skipped records: {len(self.skipped)}"]

        def skipped(s: dict) -> str:
            return f"    {s['tfrecord']}: record {s['record']} (byte offset {s['offset']}): {s['reason']}"

        out += [skipped(s) for s in self.skipped]
        if self.skipped_before:
            out.append(f"  skipped records of the files finished before: {len(self.skipped_before)}")
            out += [skipped(s) for s in self.skipped_before]
        if self.failed_files:
            out.append(f"  failed files (rerun to retry): {len(self.failed_files)}")
            out += [f"    {f['tfrecord']}: {f['reason']}" for f in self.failed_files]
        return out


def find_build(src: str | os.PathLike) -> Path:
    """The one TFDS build folder at or under ``src`` (e.g. ``.../panning_movi_e/256x256/1.0.0``)."""
    builds = tfds_features.find_builds(src)
    if not builds:
        raise KubricError(f"{src}: no TFDS build here (no folder with features.json and "
                                f"*.tfrecord-NNNNN-of-NNNNN files)")
    if len(builds) > 1:
        listing = "\n  ".join(str(b) for b in builds)
        raise KubricError(f"{src}: several TFDS builds, point src at one of:\n  {listing}")
    return builds[0]


class _RecordCounter:
    """Records converted so far, reported through the suite's progress printer (a line every 10 s)."""

    def __init__(self, total: int | None, enabled: bool):
        self.done = 0
        self.meter = Progress("kubric", total=total, unit="record", enabled=enabled, min_interval=10.0)

    def update(self, n: int) -> None:
        self.done += n
        self.meter.update(self.done)


def part_files(files: list, part: int, parts: int) -> list:
    """Part ``part`` of ``parts`` of the build's input files: ``files[part::parts]`` of the list sorted by
    (split, shard), so every machine computes the same split without talking to the others."""
    if not (isinstance(parts, int) and parts >= 1 and isinstance(part, int) and 0 <= part < parts):
        raise KubricError(f"part={part} parts={parts}: expected parts >= 1 and 0 <= part < parts")
    return sorted(files, key=lambda f: (f.split, f.shard))[part::parts]


def convert(src: str | os.PathLike, out: str | os.PathLike, workers: int = 0, splits: list[str] | None = None,
            options: ConvertOptions = ConvertOptions(), compression: str | None = "lzf",
            progress: bool = True, part: int = 0, parts: int = 1) -> Summary:
    """Convert the build at ``src`` into shards under ``out`` (see the module docstring).

    workers: processes (0 = all cores; 1 = in this process). splits: the splits to convert (default all).
    part, parts: convert only :func:`part_files` (several machines; per-part indexes and summary).
    Returns the :class:`Summary`, also written to ``<out>/conversion_summary.json`` (per part with parts > 1).
    """
    start = time.monotonic()
    build, out = find_build(src), Path(out)
    every = [f for f in tfds_features.build_files(build) if splits is None or f.split in splits]
    if splits is not None and not every:
        raise KubricError(f"{build}: no TFRecord files for splits {splits}")
    files = part_files(every, part, parts)
    split_dirs = sorted({str(out / f.split) for f in every})
    tasks = [FileTask(str(f.path), str(build / "features.json"), f.split, f.shard, str(out / f.split), options,
                      compression) for f in files]
    for task in tasks:  # and what a hard kill of an earlier run left half-written of this task's files
        Path(task.out_dir).mkdir(parents=True, exist_ok=True)
        for name in (f"{task.stem}.h5", task.summary_path.name):
            for leftover in remove_stale_temps(task.out_dir, name):
                print(f"chrono.data.kubric: removed {leftover} (a write interrupted by a hard kill)", file=sys.stderr)
    summary = Summary(str(out))
    finished = {t: before for t in tasks if (before := is_finished(t)) is not None}  # raises on other settings
    pending = [t for t in tasks if t not in finished]
    counts = {str(f.path): f.num_records for f in files}
    total = sum(counts[t.tfrecord] for t in pending) if all(counts[t.tfrecord] for t in pending) else None
    bar = _RecordCounter(total, progress)
    index_name = INDEX_NAME if parts == 1 else part_index_name(part, parts)
    index_attrs = {"source": SOURCE, "query_grid": True, "sampling_stride": options.sampling_stride}
    if parts > 1:
        index_attrs.update(part=part, parts=parts, complete=False)
    done: dict[str, list] = {d: [] for d in split_dirs}  # index entries of this part's finished files

    def finish(task: FileTask, result: dict) -> None:
        summary.converted_files += 1
        summary.scenes += result["scenes"]
        summary.tracks += result["tracks"]
        summary.skipped += [{"tfrecord": task.tfrecord, **s} for s in result["skipped"]]
        done[task.out_dir] += result["entries"]
        if result["entries"]:  # indexed at once, so that an interrupted run leaves a usable index
            update_index(task.out_dir, result["entries"], name=index_name, **index_attrs)

    def fail(task: FileTask, error: BaseException) -> None:
        summary.failed_files.append({"tfrecord": task.tfrecord, "reason": f"{type(error).__name__}: {error}"})

    workers = min(workers or os.cpu_count() or 1, max(len(pending), 1))
    if workers == 1:
        for task in pending:
            try:
                finish(task, convert_file(task, bar.update))
            except Exception as e:  # noqa: BLE001 - an unreadable file fails alone
                fail(task, e)
    else:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
            futures = {pool.submit(convert_file, task): task for task in pending}
            while futures:
                done_now, _ = cf.wait(futures, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                _drain(queue, bar)
                for future in done_now:
                    task = futures.pop(future)
                    try:
                        finish(task, future.result())
                    except Exception as e:  # noqa: BLE001
                        fail(task, e)
            _drain(queue, bar)

    for task, before in finished.items():  # what earlier runs did, from their summaries
        summary.finished_before += 1
        summary.scenes_before += before["scenes"]
        summary.skipped_before += [{"tfrecord": task.tfrecord, **s} for s in before["skipped"]]
        done[task.out_dir] += before["entries"]
    # Earlier runs' shards are indexed again: a run stopped between a file's summary and its index update
    # leaves a finished file that is not in the index. This run's shards were indexed as they finished.
    # A part's index is marked complete when all of its files of that split are finished.
    failed = {f["tfrecord"] for f in summary.failed_files}
    for out_dir in split_dirs:
        if parts > 1:
            index_attrs["complete"] = not any(t.tfrecord in failed for t in tasks if t.out_dir == out_dir)
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            update_index(out_dir, done[out_dir], name=index_name, **index_attrs)
        elif done[out_dir]:
            update_index(out_dir, done[out_dir], name=index_name, **index_attrs)
    summary.seconds = time.monotonic() - start
    name = "conversion_summary.json" if parts == 1 else f"conversion_summary.part-{part:04d}-of-{parts:04d}.json"
    write_json_atomic(out / name, asdict(summary), indent=1)
    return summary


def _drain(queue, bar: _RecordCounter) -> None:
    while True:
        try:
            bar.update(queue.get_nowait())
        except Exception:  # queue.Empty
            return
