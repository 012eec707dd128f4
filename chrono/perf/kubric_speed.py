"""Speed and size of the Kubric data: conversion stage by stage, the shards' bytes, the loader's clips/s.

``python -m chrono.bench suite=kubric`` (options ``kubric.size``, ``kubric.frames``, ``kubric.repeats``,
``kubric.scenes``, ``kubric.seconds``) ray-casts synthetic scenes in the real format (chrono.kubric.fake_build,
with realistic pixel noise), then
1. times the conversion of one scene on one pinned core: record parsing, PNG decoding, tracking the whole
   stride-4 query grid, writing the clip to an HDF5 shard (target: < 1 s at 256 x 256, 24 frames);
2. converts ``scenes`` scenes as a build and reports the stored bytes per scene and dataset (video, the grid's
   tracks, occlusion bits and segment ids), scaled to the 10,000 scenes of panning MOVi-E;
3. measures the training loader on them (conf/dataset/kubric.yaml: 24 frames, 256 x 256, 256 tracks, crop and
   colour) with ``track_sampling`` reference and uniform, in this process: clips/s and CPU ms per clip.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from chrono.data.shards import ShardWriter
from chrono.kubric import tfds as tfds_features, tfrecord
from chrono.kubric.convert import ConvertOptions, convert_record
from chrono.kubric.fake_build import encode_scene, features_json, make_realistic, synthetic_scene


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity here)"


def run(size: int, frames: int, repeats: int, scenes: int = 3, seconds: float = 10.0) -> dict[str, float]:
    """Convert one synthetic ``size`` x ``size`` scene of ``frames`` frames ``repeats`` times (after a warm-up),
    then measure storage and the loader on ``scenes`` scenes (:func:`storage_and_loader`); prints and returns
    the median seconds of each stage (and ``total``) and the storage and loader figures."""

    pinned = _pin_one_core()
    example, _ = synthetic_scene(size, size, frames, seed=0)
    example = make_realistic(example, np.random.default_rng(0))
    spec = tfds_features.parse_spec(features_json(frames, size, size, flows=True))
    payload = encode_scene(example, spec)
    options = ConvertOptions()
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp) / "bench.tfrecord-00000-of-00001"
        tfrecord.write_records(records, [payload])
        for rep in range(repeats + 1):  # the first run warms up and is not counted
            timings: dict[str, float] = {}
            start = time.perf_counter()
            (record,) = list(tfrecord.iter_records(records))
            timings["read + CRC"] = time.perf_counter() - start
            clip = convert_record(record.data, spec, np.random.default_rng(rep), options, timings=timings)
            start = time.perf_counter()
            with ShardWriter(tmp, prefix=f"bench{rep}", write_index=False) as writer:
                writer.add_clip("scene", clip.video, grid=clip.grid)
            timings["write shard"] = time.perf_counter() - start
            if rep:
                for k, v in timings.items():
                    stages.setdefault(k, []).append(v)
        shard_mb = sum(p.stat().st_size for p in Path(tmp).glob("bench*.h5")) / (repeats + 1) / 2 ** 20
    total = np.sum([np.median(v) for v in stages.values()])
    print(f"Kubric conversion, one synthetic scene: {size} x {size}, {frames} frames, "
          f"{clip.grid.size} grid tracks, record {len(payload) / 2 ** 20:.1f} MiB, shard {shard_mb:.1f} MiB; "
          f"one core ({pinned}); median of {repeats}")
    for k, v in stages.items():
        print(f"  {k:<14s} {np.median(v) * 1000:8.1f} ms")
    print(f"  {'total':<14s} {total * 1000:8.1f} ms per scene (target < 1000 ms)")
    figures = storage_and_loader(size, frames, scenes, seconds) if scenes else {}
    return {**{k: float(np.median(v)) for k, v in stages.items()}, "total": float(total), **figures}


FULL_SET = 10_000  # scenes of panning MOVi-E (train)


def _stored_bytes(root: Path) -> dict[str, int]:
    """Bytes on disk per dataset name (video, grid/tracks, ...) over every clip of the shards in ``root``."""
    import h5py

    sizes: dict[str, int] = {}
    for path in sorted(root.glob("*.h5")):
        with h5py.File(path) as f:
            def add(name, obj):
                if isinstance(obj, h5py.Dataset):
                    key = name.split("/", 1)[1]
                    sizes[key] = sizes.get(key, 0) + obj.id.get_storage_size()
            f.visititems(add)
    return sizes


def _loader_rate(root: Path, seconds: float, **overrides) -> tuple[float, float]:
    """(clips/s, CPU ms per clip) of the Kubric training loader in this process (no workers), one torch thread."""
    import torch

    from chrono.cli import compose
    from chrono.data.loader import LoaderOptions, build_train_loader

    dataset = dict(compose("train", ["dataset=kubric"]).dataset)
    opts = LoaderOptions.from_config({**dataset, "root": str(root), "num_workers": 0, **overrides})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        it = iter(build_train_loader(opts, seed=0))
        next(it)
        count, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            next(it)
            count += 1
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)
    return count / wall, 1000 * cpu / count


def storage_and_loader(size: int, frames: int, scenes: int, seconds: float) -> dict[str, float]:
    """Convert ``scenes`` realistic synthetic scenes as a TFDS build; print and return the stored MB per scene
    (per dataset and in all, and GB for 10,000 scenes) and the loader's clips/s per track_sampling rule."""
    from chrono.kubric.convert import convert
    from chrono.kubric.fake_build import write_build

    spec = tfds_features.parse_spec(features_json(frames, size, size, flows=True))
    rng = np.random.default_rng(1)
    payloads = [encode_scene(make_realistic(synthetic_scene(size, size, frames, seed=s)[0], rng), spec)
                for s in range(scenes)]
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        build = write_build(Path(tmp) / "build", {"train": [payloads]}, frames, size, size)
        convert(build, Path(tmp) / "out", workers=1, progress=False)
        root = Path(tmp) / "out" / "train"
        sizes = _stored_bytes(root)
        total = sum(p.stat().st_size for p in root.glob("*.h5")) / scenes
        print(f"storage: {scenes} converted scenes ({size} x {size}, {frames} frames; the video with realistic noise, "
              f"lzf), bytes on disk per scene and for {FULL_SET:,} scenes")
        for key, value in sorted(sizes.items()):
            print(f"  {key:<14s} {value / scenes / 1e6:8.3f} MB  {value / scenes * FULL_SET / 1e9:7.2f} GB")
            figures[f"MB {key}"] = value / scenes / 1e6
        grid = sum(v for k, v in sizes.items() if k.startswith("grid/")) / scenes
        print(f"  {'grid (all)':<14s} {grid / 1e6:8.3f} MB  {grid * FULL_SET / 1e9:7.2f} GB")
        print(f"  {'shard file':<14s} {total / 1e6:8.3f} MB  {total * FULL_SET / 1e9:7.2f} GB")
        figures.update({"MB grid": grid / 1e6, "MB scene": total / 1e6, "GB full set": total * FULL_SET / 1e9})
        print(f"loader: conf/dataset/kubric.yaml ({frames} frames, {size} x {size}, 256 tracks, crop + colour), "
              f"in this process, one torch thread, {seconds:.0f} s each")
        for rule in ("reference", "uniform"):
            rate, cpu_ms = _loader_rate(root, seconds, track_sampling=rule, num_frames=frames, size=size)
            print(f"  track_sampling={rule:<9s} {rate:6.1f} clips/s, {cpu_ms:6.1f} CPU ms per clip "
                  f"({1000 / cpu_ms:.1f} clips/s on an idle core)")
            figures[f"clips/s {rule}"], figures[f"cpu ms {rule}"] = rate, cpu_ms
    return figures
