"""Numerical precision of a run: the one place where ``precision`` settings become autocast.

``auto`` is bf16 autocast on CUDA (the reference trains under bf16 and evaluates with Lightning's
``precision=bf16-mixed``, so it is what reproduces the paper's table) and fp32 elsewhere (on CPU bf16 is several
times slower than fp32, and fp32 is the more exact); ``fp32`` and ``bf16`` force one; ``fp16`` (training only)
is autocast with a gradient scaler.
"""

from __future__ import annotations

import contextlib

import torch

from chrono.errors import ConfigError

TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
EVAL_PRECISIONS = ("auto", "fp32", "bf16")


def autocast_dtype(precision: str, device: torch.device | str, allowed=TRAIN_PRECISIONS,
                   setting: str = "precision") -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: plain fp32); ``setting`` names it in the error."""
    if precision not in allowed:
        raise ConfigError(f"{setting}={precision}: expected one of {', '.join(allowed)}")
    if precision == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """``torch.autocast`` on ``device`` with ``dtype``, or nothing for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
