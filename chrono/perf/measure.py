"""Measuring instruments of ``chrono.bench``: wall time, peak memory, the machine's matmul yardstick, FLOPs.

FLOPs are counted analytically, a multiply-add as 2, for the matrix products and convolutions only
(normalisations, activations and softmax are left out, as usual).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from chrono.layers.temporal_adapter import ADAPTER_POOL
from chrono.models.tracker import TrackerConfig, adapter_blocks
from chrono.models.vit import ViTConfig


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 0) -> dict:
    """Wall time of ``fn`` over ``repeats`` runs after ``warmup`` runs: best (the figure used), median, all.

    ``cpu_s`` is the process CPU time (all threads) of the fastest run: when it is well below
    wall time x threads, other processes were competing for the cores.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times, cpu = [], []
    for _ in range(max(1, repeats)):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    best = min(range(len(times)), key=times.__getitem__)
    return {"time_s": times[best], "cpu_s": cpu[best], "median_s": statistics.median(times), "times_s": times}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes() -> int | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


class PeakMemory:
    """Peak memory of one call above what was held before it.

    ``peak_bytes``: tensors only. CUDA: ``torch.cuda.max_memory_allocated``; CPU: the torch profiler's
    allocation events (every allocation and free of torch's CPU allocator, summed in time order),
    since tracemalloc cannot see torch's allocations.
    ``rss_peak_bytes`` (Linux CPU): the resident-set high-water mark above the resident set before the
    call (reset through ``/proc/self/clear_refs``), which also counts MKL/oneDNN buffers and the
    allocator's slack; None where it cannot be reset.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.method = "cuda.max_memory_allocated" if device.type == "cuda" else "torch.profiler"
        self.rss_peak_bytes: int | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        self._rss_base = _rss_bytes() if os.path.exists("/proc/self/statm") else None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current resident set
        except OSError:
            self._rss_base = None
        self._profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
        self._profiler.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = max(0, torch.cuda.max_memory_allocated(self.device) - self.base)
            return
        self._profiler.__exit__(*exc)
        events = self._profiler.profiler.kineto_results.events()
        changes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
        live = peak = 0
        for _, nbytes in changes:
            live += nbytes
            peak = max(peak, live)
        self.peak_bytes = peak
        if self._rss_base is not None:
            self.rss_peak_bytes = max(0, (_hwm_bytes() or 0) - self._rss_base)


def matmul_yardstick(device: torch.device, size: int, repeats: int = 5) -> dict:
    """The machine's own matmul speed: fp32 on CPU, bf16 on CUDA, square ``size`` matrices, best of runs."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device, dtype)
    b = torch.randn(size, size, generator=g).to(device, dtype)
    timing = time_runs(lambda: a @ b, device, repeats, warmup=2)
    return {"dtype": str(dtype).replace("torch.", ""), "size": size, "gflops": 2 * size**3 / timing["time_s"] / 1e9, **timing}


@dataclass(frozen=True)
class Flops:
    """Analytic FLOP counts of one clip (multiply-add = 2)."""

    vit: float
    adapters: float
    cost_volume: float

    @property
    def features(self) -> float:
        return self.vit + self.adapters


def vit_flops_per_frame(cfg: ViTConfig, input_size: int) -> float:
    """ViT FLOPs of one input_size x input_size frame: patch embedding, then per block qkv, attention, proj, MLP."""
    c, p = cfg.embed_dim, cfg.patch_size
    patches = (input_size // p) ** 2
    tokens = patches + 1 + cfg.num_register_tokens
    hidden = int(c * cfg.mlp_ratio)
    if cfg.ffn == "swiglu":
        sw = (int(hidden * 2 / 3) + 7) // 8 * 8
        mlp = 2 * tokens * (c * 2 * sw + sw * c)
    else:
        mlp = 2 * tokens * (c * hidden + hidden * c)
    attention = 2 * tokens * c * 3 * c + 2 * 2 * tokens * tokens * c + 2 * tokens * c * c
    return 2 * patches * 3 * p * p * c + cfg.depth * (attention + mlp)


def adapter_flops(dim: int, width: int, grid: int, frames: int) -> float:
    """One temporal adapter on a clip of ``frames`` frames with a grid x grid token map."""
    cells, pooled = grid * grid, (grid // ADAPTER_POOL) ** 2
    convs = 2 * 9 * dim * width * cells * 2  # conv1 and conv2 (3 x 3)
    pool = 2 * ADAPTER_POOL**2 * width * width * pooled * 2  # conv_pool and conv_upsample (4 x 4, stride 4)
    sequences = pooled  # one temporal sequence of `frames` steps per pooled cell
    attention = sequences * (2 * frames * width * 3 * width + 2 * 2 * frames * frames * width + 2 * frames * width * width)
    return frames * (convs + pool) + attention


def clip_flops(cfg: TrackerConfig, frames: int, queries: int) -> Flops:
    """FLOPs of tracking ``queries`` points through a clip of ``frames`` frames (batch 1)."""
    grid = cfg.input_size // cfg.backbone.patch_size
    vit = frames * vit_flops_per_frame(cfg.backbone, cfg.input_size)
    adapters = 0.0
    if cfg.adapter.enabled:
        count = len(adapter_blocks(cfg.adapter.placement, cfg.backbone.depth))  # FLOPs of the attention mixer
        adapters = count * adapter_flops(cfg.backbone.embed_dim, cfg.adapter.width, grid, frames)
    cost = 2.0 * queries * frames * grid * grid * cfg.backbone.embed_dim
    return Flops(vit=vit, adapters=adapters, cost_volume=cost)

