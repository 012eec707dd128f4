"""``python -m chrono.bench`` (``make bench``): speed and memory of Chrono on this machine.

Measures the machine's own matmul yardstick (fp32 GFLOP/s on CPU, bf16 on CUDA), the DINOv2 backbone's
achieved share of it (FLOPs counted analytically), tracker inference (frames/s, points/s), the tracking
head's two formulations side by side at the same query chunk (point-frames/s, peak memory), and the
training step time; prints tables and the issue's targets, and writes everything to a JSON file.

  python -m chrono.bench                 # full size, by hand (about 11 minutes on a quiet 2-core CPU)
  python -m chrono.bench mode=ci         # tiny backbone, seconds (run by the test suite)
  python -m chrono.bench device=cuda     # on a GPU (bf16 autocast, flash attention, see models/accelerate.py)
  python -m chrono.bench suite=data      # the training data: synthetic generation and loader throughput
  python -m chrono.bench suite=kubric    # Kubric: conversion stage by stage, storage per scene, loader clips/s

Options: conf/bench.yaml. The argparse flags of earlier versions still work (``--mode ci``).
The suites: chrono.perf.suite (model), chrono.perf.data_speed, chrono.perf.kubric_speed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chrono.cli import hydra_command
from chrono.config import register
from chrono.errors import ConfigError

register()
SUITES = ("model", "data", "kubric")


@hydra_command("bench", prog="chrono.bench")
def main(cfg) -> dict:
    """Run the suite ``cfg.suite`` with its options; the model suite returns the JSON it wrote."""
    from hydra.utils import to_absolute_path

    if cfg.suite == "model":
        from chrono.perf.suite import run_suite

        if cfg.mode not in ("full", "ci"):
            raise ConfigError(f"mode={cfg.mode}: expected full or ci")
        return run_suite(cfg.mode, cfg.device, Path(to_absolute_path(cfg.out)) if cfg.out else None, cfg.isolate,
                         cfg.only, cfg.threads, cfg.quiet_wait, "python -m chrono.bench " + " ".join(sys.argv[1:]))
    if cfg.suite == "data":
        from chrono.perf.data_speed import run

        run(cfg.data.gen_clips, cfg.data.gen_workers, cfg.data.seconds, list(cfg.data.workers), cfg.data.dir,
            cfg.data.keep)
        return {}
    if cfg.suite == "kubric":
        from chrono.perf.kubric_speed import run

        return run(cfg.kubric.size, cfg.kubric.frames, cfg.kubric.repeats, cfg.kubric.scenes, cfg.kubric.seconds)
    raise ConfigError(f"suite={cfg.suite}: expected one of {', '.join(SUITES)}")


if __name__ == "__main__":
    main()
