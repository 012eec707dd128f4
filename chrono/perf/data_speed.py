"""Speed of the training data: synthetic generation time and training-loader throughput, measured in one run.

    python -m chrono.bench suite=data                     # 1,000 clips on all cores, then the loader
    python -m chrono.bench suite=data data.gen_clips=100  # quicker: extrapolates to 1,000 clips

Targets (issue #4; printed, never asserted): 1,000 training clips of 24 x 256 x 256 in under 5 minutes
on 2 cores, and at least 10 augmented 24-frame 256 x 256 clips per second per loader worker. The clips
are written to a temporary folder (deleted afterwards unless ``data.keep=true``); the loader then reads them
with the default ``conf/dataset/synthetic.yaml`` settings and 0, 1 and 2 workers.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch

from chrono.data.loader import LoaderOptions, build_train_loader
from chrono.data.shards import read_index
from chrono.cli import compose
from chrono.data.synthetic.store import write_train_shards


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_generation(root: Path, num_clips: int, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all processes) to generate and write ``num_clips`` default
    training clips (conf/dataset/synthetic.yaml's generation options) with ``workers`` processes."""
    per_shard = min(50, max(1, -(-num_clips // (4 * workers))))  # enough shards to keep every process busy
    options = dict(compose("train", ["dataset=synthetic"]).dataset.generate.options or {})
    cpu, start = _cpu_seconds(), time.perf_counter()
    write_train_shards(root, num_clips=num_clips, seed=0, workers=workers, clips_per_shard=per_shard, **options)
    return time.perf_counter() - start, _cpu_seconds() - cpu


def default_loader_options(root: Path, **overrides) -> LoaderOptions:
    """The loader settings of conf/dataset/synthetic.yaml reading the shards in ``root``."""
    dataset = dict(compose("train", ["dataset=synthetic"]).dataset)
    return LoaderOptions.from_config({**dataset, "root": str(root), **overrides})


def loader_rate(root: Path, num_workers: int, seconds: float, **overrides) -> float:
    """Clips per second the training loader delivers (after its first batch, which starts the workers)."""
    opts = default_loader_options(root, num_workers=num_workers, batch_size=1, **overrides)
    it = iter(build_train_loader(opts, seed=0))
    next(it)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = next(it)
        count += batch["video"].shape[0]
    rate = count / (time.perf_counter() - start)
    del it
    return rate


def example_cpu_seconds(root: Path, count: int = 30) -> float:
    """CPU seconds per augmented example in this process with one torch thread (as in a worker):
    a figure that other processes on the machine do not distort."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ds = build_train_loader(default_loader_options(root, num_workers=0), seed=0).dataset
        it = iter(ds)
        next(it)
        start = time.process_time()
        for _ in range(count):
            next(it)
        return (time.process_time() - start) / count
    finally:
        torch.set_num_threads(threads)


def run(gen_clips: int = 1000, gen_workers: int | None = None, seconds: float = 10.0, workers=(0, 1, 2),
        folder: str | Path | None = None, keep: bool = False) -> None:
    """Generate ``gen_clips`` clips (figures scaled to 1,000) with ``gen_workers`` processes (default: all
    cores) into a temporary folder inside ``folder``, then measure the loader with each of ``workers``
    worker counts for ``seconds``; prints the figures. The clips are deleted unless ``keep``."""
    gen_workers = gen_workers or os.cpu_count() or 1
    base = Path(tempfile.mkdtemp(prefix="chrono-data-bench-", dir=folder))
    root = base / "train"
    try:
        print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads")
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (other processes slow every figure)")
        secs, cpu = time_generation(root, gen_clips, gen_workers)
        scale = 1000 / gen_clips
        size = sum(f.stat().st_size for f in root.iterdir()) / 1e9
        print(f"generate: {gen_clips} clips (24 x 256 x 256, {read_index(root)['num_clips']} written, "
              f"{size:.2f} GB) with {gen_workers} processes: {secs:.1f} s wall, {cpu:.1f} s CPU")
        print(f"  -> {secs * scale:.0f} s wall per 1,000 clips (target < 300 s); on {gen_workers} otherwise idle "
              f"cores about {cpu * scale / gen_workers:.0f} s (CPU time / processes)")
        print("loader: conf/dataset/synthetic.yaml settings (24 frames, 256 x 256, 256 tracks, crop + colour)")
        per_example = example_cpu_seconds(root)
        print(f"  CPU per example (1 thread): {per_example * 1000:.0f} ms -> {1 / per_example:.1f} clips/s per worker "
              f"on an idle core (target >= 10)")
        for w in workers:
            rate = loader_rate(root, w, seconds)
            label = "in the main process" if w == 0 else f"{w} worker{'s' if w > 1 else ''}"
            per = rate / max(w, 1)
            print(f"  {label:>20}: {rate:6.1f} clips/s total, {per:6.1f} clips/s per worker (target >= 10)")
    finally:
        if keep:
            print(f"shards kept in {root}")
        else:
            shutil.rmtree(base, ignore_errors=True)
