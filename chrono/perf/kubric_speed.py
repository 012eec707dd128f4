"""Speed of the Kubric conversion: one synthetic scene in the real format, converted stage by stage on one core.

``python -m chrono.bench suite=kubric`` (options ``kubric.size``, ``kubric.frames``, ``kubric.tracks``,
``kubric.repeats``) ray-casts a synthetic scene (chrono.kubric.fake_build), encodes it as a TFDS record,
then times its conversion on one pinned core: record parsing, PNG decoding, track computation, writing the
clip to an HDF5 shard. It prints the per-scene time of each stage and the total (target: < 1 s at
256 x 256, 24 frames, 2,048 tracks).
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


def run(size: int, frames: int, tracks: int, repeats: int) -> dict[str, float]:
    """Convert one synthetic ``size`` x ``size`` scene of ``frames`` frames ``repeats`` times (after a warm-up);
    prints and returns the median seconds of each stage (and ``total``)."""

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
    return {**{k: float(np.median(v)) for k, v in stages.items()}, "total": float(total)}
