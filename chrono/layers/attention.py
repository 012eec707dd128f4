"""The one attention function of the suite, and the multi-head self-attention module built on it.

Dispatch: xFormers' ``memory_efficient_attention`` when the tensors are on CUDA and xFormers imports,
otherwise ``torch.nn.functional.scaled_dot_product_attention``. xFormers has no CPU kernels, so the
choice is made per call on ``tensor.is_cuda``. Both paths compute softmax(q k^T / sqrt(d)) v with the
same optional band mask, so they give the same numbers up to kernel rounding.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from torch import nn

try:  # optional CUDA extra
    if os.environ.get("CHRONO_DISABLE_XFORMERS"):
        raise ImportError
    from xformers import ops as xops
    from xformers.ops import fmha

    XFORMERS_AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the machine
    xops = fmha = None
    XFORMERS_AVAILABLE = False


def tracing() -> bool:
    """True while ``torch.jit.trace``, ``torch.compile`` or ``torch.export`` (ONNX export) records the model.

    Python-side caches of tensors must then be bypassed: a symbolic size (the number of frames of an
    exported graph) cannot key a cache, and a cached tensor would be baked into the graph, or a tensor made
    while tracing would be stored in a process-wide cache.
    """
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def cached_unless_tracing(maxsize: int):
    """``functools.lru_cache(maxsize)`` for functions that build tensors, bypassed while :func:`tracing` (every
    caller gets the rule, not only those that remember it)."""

    def decorate(build):
        cached = functools.lru_cache(maxsize=maxsize)(build)

        @functools.wraps(build)
        def call(*args):
            return build(*args) if tracing() else cached(*args)

        call.cache_clear = cached.cache_clear
        return call

    return decorate


def make_band_mask(length: int, half_width: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean [length, length] mask, True where |i - j| <= half_width (True = may attend); uncached."""
    idx = torch.arange(length, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= half_width


@cached_unless_tracing(maxsize=32)
def band_mask(length: int, half_width: int, device: torch.device) -> torch.Tensor:
    """:func:`make_band_mask`, cached (eager mode; made afresh while tracing)."""
    return make_band_mask(length, half_width, device)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, band: int | None = None) -> torch.Tensor:
    """Scaled dot-product attention on [B, L, heads, head_dim] tensors (xFormers' BMHK layout).

    Args:
      q, k, v: [B, L, H, D] queries, keys and values (same L: self-attention).
      band: if given, position i attends only to positions j with |i - j| <= band (a local window of
        2 * band + 1 frames, the temporal adapter's mask); None attends everywhere.

    Returns:
      [B, L, H, D], the attention output, scale 1 / sqrt(D).
    """
    if q.is_cuda and XFORMERS_AVAILABLE:
        bias = None
        if band is not None:
            bias = fmha.attn_bias.LocalAttentionFromBottomRightMask(window_left=band, window_right=band)
        return xops.memory_efficient_attention(q, k, v, attn_bias=bias)
    mask = None if band is None else band_mask(q.shape[1], band, q.device)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with DINOv2's parameter names (``qkv``, ``proj``).

    Input and output [B, L, dim]. ``band`` restricts attention to |i - j| <= band (see :func:`attention`).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True, band: int | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.band = band
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.num_heads, C // self.num_heads).unbind(2)
        return self.proj(attention(q, k, v, band=self.band).reshape(B, L, C))
