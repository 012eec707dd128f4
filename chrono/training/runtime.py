"""Runtime set-up of a training run: device, precision, seeds, the checkpoint to resume from, batches on device."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from chrono import dist
from chrono.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(device: str) -> torch.device:
    """``auto`` -> this rank's CUDA device when there is one, else ``cpu``."""
    return torch.device(dist.resolve_device(device))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA only: on CPU bf16 is ~8x slower than fp32, so ``auto`` means fp32 there."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


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
