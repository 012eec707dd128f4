"""Data benchmark: synthetic generation time and training-loader throughput, measured in one run.

    python -m chrono.data.bench                      # 1,000 clips on all cores, then the loader
    python -m chrono.data.bench --gen-clips 100      # quicker: extrapolates to 1,000 clips

Targets (issue #4; printed, never asserted): 1,000 training clips of 24 x 256 x 256 in under 5 minutes
on 2 cores, and at least 10 augmented 24-frame 256 x 256 clips per second per loader worker. The clips
are written to a temporary folder (deleted afterwards unless ``--keep``); the loader then reads them
with the default ``conf/dataset/synthetic.yaml`` settings and 0, 1 and 2 workers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from chrono.data.loader import LoaderOptions, build_train_loader
from chrono.data.shards import read_index
from chrono.data.synthetic import write_train_shards


def time_generation(root: Path, num_clips: int, workers: int) -> float:
    """Seconds to generate and write ``num_clips`` default training clips with ``workers`` processes."""
    per_shard = min(50, max(1, -(-num_clips // (4 * workers))))  # enough shards to keep every process busy
    start = time.perf_counter()
    write_train_shards(root, num_clips=num_clips, seed=0, workers=workers, clips_per_shard=per_shard)
    return time.perf_counter() - start


def loader_rate(root: Path, num_workers: int, seconds: float, **overrides) -> float:
    """Clips per second the training loader delivers (after its first batch, which starts the workers)."""
    opts = LoaderOptions(root=str(root), num_workers=num_workers, batch_size=1, **overrides)
    it = iter(build_train_loader(opts, seed=0))
    next(it)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = next(it)
        count += batch["video"].shape[0]
    rate = count / (time.perf_counter() - start)
    del it
    return rate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m chrono.data.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--gen-clips", type=int, default=1000, help="clips to generate (figure scaled to 1,000)")
    p.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per loader setting")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader worker counts to compare")
    p.add_argument("--dir", type=Path, default=None, help="where to write the clips (default: a temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the generated shards")
    args = p.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="chrono-data-bench-", dir=args.dir))
    root = base / "train"
    try:
        print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads")
        secs = time_generation(root, args.gen_clips, args.gen_workers)
        per_1000 = secs * 1000 / args.gen_clips
        size = sum(f.stat().st_size for f in root.iterdir()) / 1e9
        print(f"generate: {args.gen_clips} clips (24 x 256 x 256, {read_index(root)['num_clips']} written, "
              f"{size:.2f} GB) with {args.gen_workers} processes: {secs:.1f} s "
              f"-> {per_1000:.0f} s per 1,000 clips (target < 300 s)")
        print("loader: conf/dataset/synthetic.yaml defaults (24 frames, 256 x 256, 256 tracks, crop + colour)")
        for w in args.workers:
            rate = loader_rate(root, w, args.seconds)
            label = "in the main process" if w == 0 else f"{w} worker{'s' if w > 1 else ''}"
            per = rate / max(w, 1)
            print(f"  {label:>20}: {rate:6.1f} clips/s total, {per:6.1f} clips/s per worker (target >= 10)")
    finally:
        if args.keep:
            print(f"shards kept in {root}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
