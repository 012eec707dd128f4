"""Convert a panning MOVi-E TFDS build into training shards: ``python -m chrono.data.kubric src=... out=...``.

    python -m chrono.data.kubric src=/data/panning_movi_e/256x256/1.0.0 out=data/kubric workers=8
    python -m chrono.data.kubric -m hydra/launcher=slurm src=... out=... part=0,1,2,3 parts=4   # 4 machines

Options: conf/kubric.yaml (``--help`` lists them). The conversion itself is :func:`chrono.kubric.convert.convert`
(docs/kubric.md). A rerun skips finished input files; corrupt records are reported and skipped.
"""

from __future__ import annotations

import sys
from dataclasses import fields

from chrono.cli import hydra_command
from chrono.config import register
from chrono.errors import ConfigError
from chrono.kubric.convert import ConvertOptions, convert

register()


@hydra_command("kubric", prog="chrono.data.kubric")
def main(cfg) -> None:
    """Convert ``src`` into ``out`` with the options of conf/kubric.yaml; exit 1 if a file failed."""
    from omegaconf import OmegaConf

    missing = [k for k in ("src", "out") if OmegaConf.is_missing(cfg, k)]
    if missing:
        raise ConfigError(f"give {' and '.join(f'{k}=<dir>' for k in missing)} (see --help)")
    if cfg.sampling_stride < 1:
        raise ConfigError(f"sampling_stride={cfg.sampling_stride}: expected an integer >= 1")
    options = ConvertOptions(**{f.name: cfg[f.name] for f in fields(ConvertOptions)})
    splits = list(cfg.splits) if cfg.splits is not None else None
    summary = convert(cfg.src, cfg.out, cfg.workers, splits, options, cfg.compression, cfg.progress,
                      part=cfg.part, parts=cfg.parts)
    print("\n".join(summary.lines()))
    if summary.failed_files:
        sys.exit(1)


if __name__ == "__main__":
    main()
