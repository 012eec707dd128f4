"""The synthetic data sets on disk: training clips as HDF5 shards and the ``synthetic`` TAP-Vid benchmark.

Both are generated on first use (:func:`ensure_train_shards`, :func:`ensure_benchmark`) under
``<data root>/synthetic/`` (``$CHRONO_DATA_DIR`` or ``<repo>/data``), atomically and under a lock, so
concurrent callers (DDP ranks, parallel tests) wait for one generation and then reuse it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from chrono.coords import rescale_xy
from chrono.data.shards import INDEX_NAME, ShardError, ShardWriter, read_index, update_index
from chrono.data.synthetic.clips import (BENCHMARK_DEFAULTS, GENERATOR_VERSION, benchmark_seed, clip_options,
                                         generate_clip, train_seed)
from chrono.files import atomic_path, data_root, file_lock, make_temp
from chrono.progress import Progress

def _write_shard_task(task: tuple) -> list[dict]:
    """Worker: generate clips ``indices`` and write them as shard number ``shard`` (one file)."""
    folder, shard, indices, seed, compression, options = task
    with ShardWriter(folder, prefix="train", clips_per_shard=len(indices) + 1, source="synthetic",
                     compression=compression, start_shard=shard, write_index=False,
                     attrs={"generator": "chrono.data.synthetic", "generator_version": GENERATOR_VERSION}) as w:
        for i in indices:
            s = train_seed(seed, i)
            c = generate_clip(s, **options)
            if "grid" in c:  # grid_stride: the whole query grid with surface ids (kubric's per-read sampling)
                w.add_clip(f"clip_{i:06d}", c["video"], grid=c["grid"], attrs={"seed": s})
            else:
                w.add_clip(f"clip_{i:06d}", c["video"], c["tracks"], c["occluded"], query_points=c["query_points"],
                           attrs={"seed": s})
    return w.entries


def _run_tasks(fn, tasks: list, workers: int | None, what: str, total: int, count_result, progress: bool) -> list:
    """Run ``fn`` over ``tasks`` on ``workers`` processes (spawned: safe inside a torch process),
    reporting progress; ``count_result`` says how many clips a result holds."""
    import multiprocessing as mp

    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    done, results = 0, []
    meter = Progress(f"synthetic {what}", total=total, unit="clip", enabled=progress)
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        for result in (pool.imap_unordered(fn, tasks) if pool else map(fn, tasks)):
            results.append(result)
            done += count_result(result)
            meter.update(done)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return results


def write_train_shards(
    root: str | os.PathLike,
    num_clips: int = 1000,
    seed: int = 0,
    clips_per_shard: int = 50,
    workers: int | None = None,
    compression: str | None = None,
    exist_ok: bool = False,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Generate ``num_clips`` synthetic training clips as HDF5 shards (plus index.json) in ``root``.

    Clip ``i`` is ``generate_clip(seed * 1_000_000 + i, **options)``, stored as ``clip_{i:06d}`` with its
    candidate tracks and their query points. The whole folder appears at once (built under a temporary
    name, then renamed), and a lock file beside it makes concurrent callers (e.g. DDP ranks) wait for
    one generation. With ``exist_ok`` an existing set made with the same settings is reused; a set made
    with other settings raises a ShardError.
    """
    root = Path(root)
    opts = clip_options(**options)
    if opts.return_segmentation:
        raise ValueError("return_segmentation is not stored in shards")
    settings = json.loads(json.dumps({"num_clips": int(num_clips), "seed": int(seed),
                                      "generator_version": GENERATOR_VERSION,
                                      "options": dataclasses.asdict(opts)}))
    with file_lock(root.parent / f".{root.name}.lock"):
        if (root / INDEX_NAME).exists():
            existing = read_index(root).get("generator")
            if exist_ok and existing == settings:
                return root
            raise ShardError(f"{root}: already holds a training set generated with {existing}, not {settings}; "
                             f"delete the folder or choose another one")
        if root.exists() and any(root.iterdir()):
            raise ShardError(f"{root}: folder exists and is not empty but has no {INDEX_NAME}; delete it first")
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp(root.parent, root.name, directory=True)
        try:
            tasks = [(tmp, k, list(range(start, min(start + clips_per_shard, num_clips))), seed, compression, options)
                     for k, start in enumerate(range(0, num_clips, clips_per_shard))]
            Progress("synthetic", enabled=progress).say(f"generating {num_clips} training clips into {root}")
            results = _run_tasks(_write_shard_task, tasks, workers, "train", num_clips,
                                 lambda r: sum(e["num_clips"] for e in r), progress)
            entries = [e for r in results for e in r]
            update_index(tmp, entries, source="synthetic", generator=settings)
            if root.exists():
                root.rmdir()
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root


def _benchmark_video(task: tuple) -> tuple[str, dict]:
    seed, index, options = task
    c = generate_clip(benchmark_seed(seed, index), **options)
    h, w = c["video"].shape[1:3]
    # Visible points are inside the frame by construction; clipping only moves occluded ones that left it.
    points = np.clip(rescale_xy(c["tracks"], (h, w), (1.0, 1.0)), 0.0, 1.0).astype(np.float32)
    return f"synthetic_{index:03d}", {"video": c["video"], "points": points, "occluded": c["occluded"]}


def write_benchmark(path: str | os.PathLike, num_videos: int = BENCHMARK_DEFAULTS["num_videos"], seed: int = 0,
                    workers: int | None = 1, progress: bool = True, **options: Any) -> Path:
    """Write the ``synthetic`` evaluation benchmark: a TAP-Vid DAVIS-format pickle, atomically.

    The file holds a dict ``video_name -> {'video': uint8 [T,H,W,3], 'points': float32 [N,T,2] (x, y)
    normalised to [0, 1] (pixels divided by (W, H); occluded points that left the frame are clipped
    into [0, 1]), 'occluded': bool [N,T]}``, exactly the layout of ``tapvid_davis.pkl``. Every track is
    visible on at least one frame. Seeds are disjoint from the training set's (:func:`benchmark_seed`).
    Options default to :data:`BENCHMARK_DEFAULTS` (small enough for CPU evaluation).
    """
    opts = {k: v for k, v in BENCHMARK_DEFAULTS.items() if k != "num_videos"}
    opts.update(options)
    clip_options(**opts)
    tasks = [(seed, i, opts) for i in range(num_videos)]
    results = dict(sorted(_run_tasks(_benchmark_video, tasks, workers, "benchmark", num_videos, lambda r: 1,
                                      progress)))
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(results, f, protocol=4)
    return path


def default_benchmark_path() -> Path:
    """``<data root>/synthetic/tapvid_synthetic.pkl``: where :func:`ensure_benchmark` puts the benchmark."""
    return data_root() / "synthetic" / "tapvid_synthetic.pkl"


def ensure_benchmark(path: str | os.PathLike | None = None, **kwargs: Any) -> Path:
    """The ``synthetic`` benchmark file (default ``<repo>/data/synthetic/tapvid_synthetic.pkl``),
    generated atomically (see :func:`write_benchmark`, which receives ``kwargs``) if it is missing."""
    path = Path(path) if path is not None else default_benchmark_path()
    if path.exists():
        return path
    with file_lock(path.parent / f".{path.name}.lock"):
        if not path.exists():
            Progress("synthetic", enabled=kwargs.get("progress", True)).say(
                f"generating the synthetic benchmark into {path}")
            write_benchmark(path, **kwargs)
    return path


def default_train_root() -> Path:
    """``<data root>/synthetic/train``: where :func:`ensure_train_shards` puts the default training set."""
    return data_root() / "synthetic" / "train"


def ensure_generated(generate: Mapping[str, Any], **kwargs: Any) -> Path:
    """The training set a dataset config's ``generate`` node describes (``dir``, ``num_clips``, ``seed``,
    ``options``: conf/dataset/synthetic.yaml), in ``<data root>/synthetic/<dir>``, generated on first use.
    Each set lives in its own folder, so experiments with different generation settings never collide.
    ``kwargs`` (workers, progress, ...) go to :func:`write_train_shards`."""
    gen = dict(generate)
    options = dict(gen.pop("options", None) or {})
    folder = gen.pop("dir", None)
    return ensure_train_shards(data_root() / "synthetic" / folder if folder else None, **gen, **options, **kwargs)


def ensure_train_shards(root: str | os.PathLike | None = None, num_clips: int = 1000, seed: int = 0, **kwargs) -> Path:
    """The folder of synthetic training shards, generated on first use and reused afterwards.

    ``root`` defaults to ``<data root>/synthetic/train``. If the folder already holds an index made with
    other generation settings, a ShardError says so (delete the folder or pick another root). Extra
    keyword arguments go to :func:`write_train_shards` (clips_per_shard, workers, compression, and clip
    options such as num_tracks, height, width, num_frames).
    """
    return write_train_shards(root if root is not None else default_train_root(), num_clips=num_clips, seed=seed,
                              exist_ok=True, **kwargs)
