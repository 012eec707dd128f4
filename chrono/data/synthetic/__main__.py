"""Generate the synthetic data sets: ``python -m chrono.data.synthetic [what=all|train|benchmark] [key=value ...]``.

    python -m chrono.data.synthetic                                   # default training shards + benchmark
    python -m chrono.data.synthetic what=train num_clips=1000 workers=2 out=data/synthetic/train
    python -m chrono.data.synthetic what=benchmark out=data/synthetic/tapvid_synthetic.pkl num_videos=20

Options: conf/synthetic.yaml. The argparse form of earlier versions still works
(``python -m chrono.data.synthetic train --num-clips 1000 --out ...``). Each set is made only if missing
(``force=true`` replaces it).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from chrono.cli import compose, hydra_command
from chrono.config import register
from chrono.data.synthetic.store import (default_benchmark_path, ensure_benchmark, ensure_generated,
                                         write_train_shards)
from chrono.errors import ConfigError
from chrono.progress import Progress

register()
CLIP_KEYS = ("height", "width", "num_frames", "num_tracks", "motion", "grid_stride")


def clip_overrides(cfg) -> dict:
    """The clip options given on the command line (null ones keep the generator's defaults)."""
    opts = {k: cfg[k] for k in CLIP_KEYS if cfg[k] is not None}
    if cfg.num_objects is not None:
        n = cfg.num_objects
        opts["num_objects"] = int(n) if isinstance(n, int) else (tuple(n) if len(n) > 1 else int(n[0]))
    return opts


@hydra_command("synthetic", prog="chrono.data.synthetic", positional="what")
def main(cfg) -> int:
    """Make the training shards and/or the benchmark named by ``what``."""
    from hydra.utils import to_absolute_path

    if cfg.what not in ("all", "train", "benchmark"):
        raise ConfigError(f"what={cfg.what}: expected all, train or benchmark")
    say = Progress("synthetic", enabled=cfg.progress).say
    given = cfg.what != "all"  # `all` makes the default sets, exactly as `make data` and training expect them
    if cfg.what == "all":  # the default set exactly as conf/dataset/synthetic.yaml has training make it
        start = time.time()
        from omegaconf import OmegaConf

        generate = OmegaConf.to_container(compose("train", ["dataset=synthetic"]).dataset.generate, resolve=True)
        out = ensure_generated(generate, workers=cfg.workers, progress=cfg.progress)
        say(f"training shards ready in {out} ({time.time() - start:.0f} s)")
    if cfg.what == "train":
        if not cfg.out:
            raise ConfigError("what=train: give out=<folder> (what=all makes the default set)")
        out = Path(to_absolute_path(cfg.out))
        kw = dict(num_clips=cfg.num_clips, seed=cfg.seed, clips_per_shard=cfg.clips_per_shard,
                  compression=None if cfg.compression in (None, "none") else cfg.compression,
                  workers=cfg.workers, **clip_overrides(cfg))
        if cfg.force and out.exists():
            shutil.rmtree(out)
        start = time.time()
        write_train_shards(out, exist_ok=True, progress=cfg.progress, **kw)
        say(f"training shards ready in {out} ({time.time() - start:.0f} s)")
    if cfg.what in ("all", "benchmark"):
        out = Path(to_absolute_path(cfg.out)) if given and cfg.out else default_benchmark_path()
        kw = {}
        if given:
            kw = dict(num_videos=cfg.num_videos, seed=cfg.seed, workers=cfg.workers, **clip_overrides(cfg))
            if cfg.force:
                out.unlink(missing_ok=True)
        start = time.time()
        ensure_benchmark(out, progress=cfg.progress, **kw)
        say(f"benchmark ready: {out} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    main()
