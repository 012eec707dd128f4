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
EVAL_PRECISIONS = ("auto", "fp32", "bf16")  # validation; chrono.evaluate also takes int8 (ONNX Runtime)
EVALUATE_PRECISIONS = (*EVAL_PRECISIONS, "int8")


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


def eval_precision(precision: str, runtime: str, device: torch.device | str) -> tuple[torch.dtype | None, str]:
    """``precision`` of ``chrono.evaluate`` for ``runtime`` (torch | onnx): (autocast dtype or None, the ONNX
    model's precision fp32 | int8).

    PyTorch runs ``auto`` / ``fp32`` / ``bf16`` (autocast); ONNX Runtime runs the exported float32 model
    (``auto``, ``fp32``) or its int8 version (``int8``, chrono.export precision=int8).
    """
    if precision not in EVALUATE_PRECISIONS:
        raise ConfigError(f"precision={precision}: expected one of {', '.join(EVALUATE_PRECISIONS)}")
    if runtime == "onnx":
        if precision == "bf16":
            raise ConfigError("precision=bf16 is PyTorch autocast: runtime=onnx runs the exported model in fp32 "
                              "(precision=auto|fp32) or int8 (precision=int8)")
        return None, "int8" if precision == "int8" else "fp32"
    if precision == "int8":
        return None, "int8"  # refused by chrono.deploy.runtime.open_tracker with the command to use
    return autocast_dtype(precision, device, EVAL_PRECISIONS), "fp32"
