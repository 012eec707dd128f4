"""Runtime set-up of a training run: device, precision, seeds, the checkpoint to resume from, batches on device."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from chrono import dist
from chrono.errors import ConfigError
from chrono.precision import EVAL_PRECISIONS, TRAIN_PRECISIONS, autocast_dtype


def resolve_device(device: str) -> torch.device:
    """``auto`` -> this rank's CUDA device when there is one, else ``cpu``."""
    return torch.device(dist.resolve_device(device))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def find_resume_checkpoint(resume: str | None, run_root: Path, absolute=str) -> Path | None:
    """``resume``: null (start fresh), ``auto`` (the newest ``last.ckpt`` of this run name, if any), or a path."""
    from chrono.checkpoint import CheckpointError

    if not resume:
        return None
    if resume != "auto":
        path = Path(absolute(resume))
        if not path.is_file():
            raise CheckpointError(f"resume={resume}: no such checkpoint")
        return path
    found = sorted(run_root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


NONFINITE = ("skip", "zero_nan")  # optim.nonfinite: what a step with a non-finite gradient does


def zero_nan_gradients(params) -> int:
    """``optim.nonfinite: zero_nan`` (the reference): zero the gradient of every parameter whose gradient holds a
    NaN; Inf is not checked. Returns how many parameters were zeroed."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0
    flags = torch.stack([g.isnan().any() for g in grads]).tolist()  # one device sync for all of them
    for grad, has_nan in zip(grads, flags):
        if has_nan:
            grad.zero_()
    return sum(flags)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# (setting, smallest value, whether null is allowed): every count of chrono.train, checked before any work.
COUNTS = (("steps", 1, False), ("grad_accum", 1, False), ("log_every", 1, False), ("checkpoint_every", 1, False),
          ("stop_after", 1, True), ("seed", 0, False), ("val.every", 0, False), ("val.max_videos", 1, True),
          ("final_eval_videos", 1, True), ("dataset.batch_size", 1, False), ("dataset.num_frames", 1, False),
          ("dataset.num_tracks", 1, False), ("dataset.num_workers", 0, False))


def check_settings(cfg) -> None:
    """Refuse a training config whose counts or choices are out of range, naming the setting (ConfigError),
    before anything is built or read: ``steps=abc``, ``steps=2.7``, ``checkpoint_every=0``, ``precision=fp64``,
    ``val.precision=fp16``, ``optim.nonfinite=ignore``, ``dataset.track_sampling=x`` (the dataset node is
    checked whole by :class:`chrono.data.loader.LoaderOptions`)."""
    from omegaconf import OmegaConf

    for key, lowest, nullable in COUNTS:
        value = OmegaConf.select(cfg, key)
        if value is None and nullable:
            continue
        if not _is_int(value) or value < lowest:
            allowed = f"an integer >= {lowest}" + (" or null" if nullable else "")
            raise ConfigError(f"{key}={value}: expected {allowed}")
    autocast_dtype(cfg.precision, "cpu", TRAIN_PRECISIONS)
    autocast_dtype(cfg.val.precision, "cpu", EVAL_PRECISIONS, "val.precision")
    if cfg.optim.nonfinite not in NONFINITE:
        raise ConfigError(f"optim.nonfinite={cfg.optim.nonfinite}: expected {' or '.join(NONFINITE)}")
    for key in ("optim.lr", "optim.weight_decay", "optim.grad_clip"):
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{key}={value}: expected a number >= 0")
    from chrono.data.loader import LoaderOptions

    LoaderOptions.from_config(cfg.dataset)
    if cfg.val.monitor not in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"):
        raise ConfigError(f"val.monitor={cfg.val.monitor}: expected average_jaccard, average_pts_within_thresh "
                          f"or occlusion_accuracy")
