"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A training checkpoint is a suite checkpoint (``chrono.checkpoint.tracker_checkpoint``: format, tracker
config, model) plus ``optimizer``, ``scheduler``, ``scaler``, ``progress`` (the :class:`TrainState`: step,
skipped steps, best validation value), ``rng`` (python, numpy, torch CPU and CUDA states) and ``config`` (the resolved Hydra
config). ``chrono.load_tracker`` reads it like any other checkpoint.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chrono.checkpoint import CheckpointError, SUITE_FORMAT, read_checkpoint, tracker_checkpoint
from chrono.files import torch_save_atomic
from chrono.models.tracker import TrackerConfig


@dataclass
class TrainState:
    """Where a run is: stored in every training checkpoint under ``progress``."""

    step: int = 0  # optimizer steps taken (skipped ones included)
    skipped: int = 0  # steps skipped because their gradients were not finite (optim.nonfinite: skip)
    zeroed: int = 0  # steps in which NaN gradients were zeroed before the update (optim.nonfinite: zero_nan)
    best: float | None = None  # best validation value so far (higher is better)


def rng_state() -> dict[str, Any]:
    """Every global RNG's state, as tensors and plain values (so the safe ``weights_only`` loader reads it)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                   "has_gauss": has_gauss, "cached": cached}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: Path, model, optimizer, scheduler, scaler, progress: TrainState, config: dict) -> Path:
    state = tracker_checkpoint(model)
    state.update(
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        scaler=scaler.state_dict(),
        progress=asdict(progress),
        rng=rng_state(),
        config=config,
    )
    return torch_save_atomic(state, path)


# Settings that shape the optimisation schedule and the data stream: a resumed run must have the same.
SCHEDULE_KEYS = ("steps", "grad_accum", "seed", "optim", "loss", "dataset.batch_size", "dataset.num_frames",
                 "dataset.num_tracks", "dataset.size", "dataset.track_sampling", "dataset.color_scope")


# What checkpoints written before a setting existed did (issue #14), so that they compare correctly.
BEFORE_SETTING = {"optim.nonfinite": "skip", "dataset.track_sampling": "uniform", "dataset.color_scope": "clip"}


def schedule_differences(stored: dict, current: dict) -> list[str]:
    """``key: old -> new`` for every schedule-defining setting (:data:`SCHEDULE_KEYS`) that differs."""
    from chrono.mlflow_runs import flatten_config

    old, new = {**BEFORE_SETTING, **flatten_config(stored)}, flatten_config(current)
    keys = [k for k in sorted(set(old) | set(new)) if any(k == s or k.startswith(s + ".") for s in SCHEDULE_KEYS)]
    return [f"{k}: {old.get(k, 'unset')} -> {new.get(k, 'unset')}" for k in keys if old.get(k) != new.get(k)]


def load_training_checkpoint(path: Path, model, optimizer, scheduler, scaler, config: dict | None = None,
                             trusted: bool = False) -> TrainState:
    """Restore model, optimizer, scheduler, scaler and RNG states in place; the run's state.

    ``config``: the current run's resolved config; resuming stops with a CheckpointError naming every
    schedule-defining setting that differs from the checkpoint's (a different ``steps=`` would silently
    keep the old one-cycle schedule otherwise).
    """
    state = read_checkpoint(path, trusted)
    if not isinstance(state, dict) or state.get("format") != SUITE_FORMAT or "optimizer" not in state:
        raise CheckpointError(f"{path}: not a chrono.train checkpoint (cannot resume from it)")
    if TrackerConfig.from_dict(state["tracker_config"]) != model.cfg:  # older files lack newer fields' defaults
        raise CheckpointError(f"{path}: was written for another architecture ({state['tracker_config']['backbone']})")
    if config is not None and state.get("config") is not None:
        differ = schedule_differences(state["config"], config)
        if differ:
            raise CheckpointError(f"{path}: cannot resume with other schedule settings ({'; '.join(differ)}); use "
                                  f"the checkpoint's settings, or start a new run (resume=null, or another name=)")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return TrainState(**state["progress"])
