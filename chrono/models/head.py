"""Chrono's tracking head: cosine cost volume -> local soft-argmax -> tracks, plus occlusion logits.

Three formulations with the same outputs, selected by name through :data:`HEADS` (``TrackerConfig.head``):

- ``reference``: materialises the [B, N, T, h, w, 2] soft-argmax tensor exactly as the reference code
  does; slow and memory-hungry, kept as the readable oracle.
- ``fast``: the cost volume is built in small blocks of queries x frames, the argmax is provably the
  reference's softmax argmax (ties included; rows where rounding could tie cells go through the softmax
  itself), and the soft-argmax reads only the cells within the radius of it. Tracks agree with the
  reference to float32 rounding (~1e-5 px at 256 x 256), occlusion inputs are bitwise equal, and
  gradients flow only through the window (outside it the reference's gradient is zero in exact
  arithmetic too, because the softmax normaliser cancels).
- ``export``: the fast head's answer (bitwise) as one graph without data-dependent control flow: the whole
  cost volume of the queries at once and the reference's own softmax argmax, then the same window
  soft-argmax. For ``torch.export`` / ONNX export (chrono/deploy/), where the numbers of frames and
  queries are symbolic; memory grows with queries x frames like the reference's.

Coordinates: feature-grid cells are unit squares with centres at i + 0.5 (raster convention); the head
answers in a fixed 256 x 256 frame (the reference's ``initial_resolution``) before the caller rescales
to the video.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from chrono.coords import rescale_xy
from chrono.layers.attention import cached_unless_tracing

# The reference expresses head outputs at this resolution before rescaling them to the video.
HEAD_RESOLUTION = (256, 256)


def sample_query_features(features: torch.Tensor, query_points_grid: torch.Tensor) -> torch.Tensor:
    """Trilinear feature sample at query points.

    Args:
      features: [B, T, h, w, C] feature grid.
      query_points_grid: [B, N, 3] (t, y, x) with y, x in grid cells (cell centres at i + 0.5) and t a
        frame index (integer t samples that frame exactly).

    Returns:
      [B, N, C] features, bilinear in (y, x), border padding.
    """
    B, T, h, w, C = features.shape
    grid = query_points_grid[:, :, None, None, :].float().clone()
    grid[..., 0] = grid[..., 0] + 0.5  # frame t's centre
    grid = 2 * grid / torch.tensor((T, h, w), device=grid.device, dtype=grid.dtype) - 1
    grid = grid.flip(-1)  # grid_sample wants (x, y, t)
    out = F.grid_sample(features.permute(0, 4, 1, 2, 3), grid, mode="bilinear", align_corners=False, padding_mode="border")
    return out[:, :, :, 0, 0].permute(0, 2, 1)


def cost_volume(query_features: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Cosine similarities [B, N, T, h, w] of query features [B, N, C] with grid features [B, T, h, w, C]."""
    return torch.einsum("bnc,bthwc->bnthw", query_features, features)


def occlusion_inputs(cost: torch.Tensor, cost_max: torch.Tensor | None = None) -> torch.Tensor:
    """[mean, max, min] over space of a cost volume [B, N, T, h, w] -> [B, N, T, 3], detached.

    ``cost_max`` [B, N, T]: the max when the caller already has it (bitwise equal to ``cost.amax``).
    """
    high = cost.amax(dim=(-1, -2)) if cost_max is None else cost_max
    return torch.stack((cost.mean(dim=(-1, -2)), high, cost.amin(dim=(-1, -2))), dim=-1).detach()


def occluded_from_logits(occlusion: torch.Tensor, expected_dist: torch.Tensor) -> torch.Tensor:
    """The reference's visibility rule: occluded where 1 - (1 - sigmoid(occ)) (1 - sigmoid(expd)) > 0.5.

    occlusion, expected_dist: logits of any shape [...]; returns bool [...] (True = occluded).
    """
    visible = (1 - torch.sigmoid(occlusion)) * (1 - torch.sigmoid(expected_dist))
    return (1 - visible) > 0.5


def local_soft_argmax_reference(heatmaps: torch.Tensor, radius: float) -> torch.Tensor:
    """Soft-argmax restricted to cells strictly within ``radius`` cells of the argmax.

    Args:
      heatmaps: [B, N, T, h, w] non-negative weights (a softmax over the h * w cells).
      radius: in cells; a cell counts when its squared centre distance to the argmax cell is < radius^2.

    Returns:
      [B, N, T, 2] (x, y) in grid cells, centres at i + 0.5.
    """
    B, N, T, h, w = heatmaps.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=heatmaps.device), torch.arange(w, device=heatmaps.device), indexing="ij"
    )
    coords = torch.stack([xs + 0.5, ys + 0.5], dim=-1).to(heatmaps.dtype)  # [h, w, 2]
    argmax = heatmaps.reshape(B, N, T, h * w).argmax(dim=-1)
    peak = coords.reshape(-1, 2)[argmax]  # [B, N, T, 2]
    near = ((coords - peak[:, :, :, None, None, :]) ** 2).sum(-1, keepdim=True) < radius**2
    weights = near * heatmaps[..., None]  # [B, N, T, h, w, 1]
    total = (coords * weights).sum(dim=(3, 4))
    norm = torch.clamp(weights.sum(dim=(3, 4)), min=1e-12)
    return total / norm


def tracks_from_cost(
    cost: torch.Tensor, softmax_temperature: float, radius: float
) -> torch.Tensor:
    """Tracks [B, N, T, 2] (x, y) in HEAD_RESOLUTION pixels from a cost volume [B, N, T, h, w]."""
    B, N, T, h, w = cost.shape
    heat = F.softmax(cost.reshape(B, N, T, h * w) * softmax_temperature, dim=-1).reshape(B, N, T, h, w)
    return rescale_xy(local_soft_argmax_reference(heat, radius), (h, w), HEAD_RESOLUTION)


def pin_query_frames(tracks: torch.Tensor, query_points: torch.Tensor) -> torch.Tensor:
    """On each query's own frame (round(t)), replace the track by the query's (x, y).

    Args:
      tracks: [B, N, T, 2] (x, y).
      query_points: [B, N, 3] (t, y, x) in the same pixel frame as ``tracks``.
    """
    T = tracks.shape[2]
    frames = torch.arange(T, device=tracks.device)
    on_query = (torch.round(query_points[..., 0:1].detach()) == frames)[..., None]  # [B, N, T, 1]
    query_xy = query_points[:, :, None, 1:].flip(-1)  # [B, N, 1, 2]
    return tracks * ~on_query + query_xy * on_query


def reference_head(
    query_features: torch.Tensor, features: torch.Tensor, softmax_temperature: float, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference head on one chunk of queries.

    Args:
      query_features: [B, n, C] (from :func:`sample_query_features`).
      features: [B, T, h, w, C] L2-normalised feature grid.

    Returns:
      tracks [B, n, T, 2] (x, y) in HEAD_RESOLUTION pixels (query frames not yet pinned) and the
      occlusion inputs [B, n, T, 3] (detached [mean, max, min] of the cost volume).
    """
    cost = cost_volume(query_features, features)
    return tracks_from_cost(cost, softmax_temperature, radius), occlusion_inputs(cost)


# numpy's float of each torch dtype the window tables are made in (the head computes in >= float32).
_NUMPY_FLOATS = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _disk_offsets_numpy(radius: float, h: int, w: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """:func:`disk_offsets` as int64 numpy arrays [K] (no torch op: nothing for a tracer to record)."""
    reach = min(math.ceil(abs(radius)), max(h, w) - 1)  # the reference squares radius: its sign is moot
    steps = np.arange(-reach, reach + 1, dtype=np.int64)
    dy, dx = (a.reshape(-1) for a in np.meshgrid(steps, steps, indexing="ij"))
    # Compared in ``dtype`` like torch compares a tensor with a Python float (the float is cast to the tensor's dtype).
    real = _NUMPY_FLOATS[dtype]
    inside = (dy.astype(real) ** 2 + dx.astype(real) ** 2) < real(radius**2)
    return dy[inside], dx[inside]


def disk_offsets(radius: float, h: int, w: int, dtype: torch.dtype, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer cell offsets (dy, dx), each [K] int64, with dy^2 + dx^2 < radius^2 (compared in ``dtype``).

    The comparison is made exactly like :func:`local_soft_argmax_reference` makes it (squared distance
    of cell centres in ``dtype`` against the Python float ``radius**2``), so the two select the same
    cells. Offsets that can never land inside an h x w grid are left out. Computed with numpy, so that no
    data-dependent torch op runs under ``torch.export`` (the tables become constants of an exported graph).
    """
    dy, dx = _disk_offsets_numpy(radius, h, w, dtype)
    return torch.as_tensor(dy, device=device), torch.as_tensor(dx, device=device)


@dataclass(frozen=True)
class WindowTables:
    """Per-peak lookup tables of the soft-argmax window on an h x w grid (K = cells in the disk).

    index: [h * w, K] int64 flat cell of each window position (clamped into the grid);
    valid: [h * w, K] 1.0 where that position lies inside the grid, else 0.0;
    centre: [h * w, 2] (x, y) centre of each peak cell (i + 0.5);
    basis: [K, 3] columns (1, dx, dy) that turn window weights into (norm, sum w dx, sum w dy);
    peak_column: the position of offset (0, 0) in the window.
    """

    index: torch.Tensor
    valid: torch.Tensor
    centre: torch.Tensor
    basis: torch.Tensor
    peak_column: int


def build_window_tables(h: int, w: int, radius: float, dtype: torch.dtype, device) -> WindowTables | None:
    """The :class:`WindowTables` of a grid and radius (None when the window is empty, radius 0); uncached.

    Built with numpy and converted once (``torch.as_tensor``), so that ``torch.export`` records them as
    constants instead of tracing data-dependent ops (``nonzero``, boolean indexing) on symbolic tensors.
    """
    dy, dx = _disk_offsets_numpy(radius, h, w, dtype)
    if dy.size == 0:
        return None
    cells = np.arange(h * w, dtype=np.int64)
    py, px = cells // w, cells % w
    ys, xs = py[:, None] + dy, px[:, None] + dx
    valid = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    index = ys.clip(0, h - 1) * w + xs.clip(0, w - 1)
    real = _NUMPY_FLOATS[dtype]
    centre = np.stack((px, py), axis=-1).astype(real) + real(0.5)
    basis = np.stack((np.ones_like(dx), dx, dy), axis=-1).astype(real)
    peak_column = int(np.flatnonzero((dy == 0) & (dx == 0))[0])
    as_tensor = functools.partial(torch.as_tensor, device=device)
    return WindowTables(as_tensor(index), as_tensor(valid.astype(real)), as_tensor(centre), as_tensor(basis),
                        peak_column)


@cached_unless_tracing(maxsize=32)
@torch.inference_mode(False)  # cached tables made under inference mode could not serve a later training step
def window_tables(h: int, w: int, radius: float, dtype: torch.dtype, device: torch.device) -> WindowTables | None:
    """:func:`build_window_tables`, cached (eager mode; made afresh while tracing: graph constants, never a cache
    entry made of a tracer's tensors)."""
    return build_window_tables(h, w, radius, dtype, device)


def local_soft_argmax_window(
    cost: torch.Tensor, softmax_temperature: float, peak: torch.Tensor, grid_hw: tuple[int, int], radius: float
) -> torch.Tensor:
    """Soft-argmax of softmax(cost * temperature) over the cells within ``radius`` of ``peak``, reading only those.

    Equals ``local_soft_argmax_reference(softmax(cost * temperature))`` when ``peak`` is the argmax of that
    softmax: its normaliser is common to numerator and denominator, so the weights are computed as
    exp(logit - logit[peak]) (<= 1 near the peak: stable) over the window only.

    Args:
      cost: [..., h * w] cost volume rows, raster order.
      softmax_temperature: the logits are ``cost * softmax_temperature`` (computed like the reference).
      peak: [...] int64 flat index of the argmax cell.
      grid_hw: (h, w).
      radius: in cells, strict (squared centre distance < radius^2).

    Returns:
      [..., 2] (x, y) in grid cells, centres at i + 0.5, dtype at least float32 (the reference's
      softmax is float32 under autocast).
    """
    h, w = grid_hw
    dtype = torch.promote_types(cost.dtype, torch.float32)
    tables = window_tables(int(h), int(w), float(radius), dtype, cost.device)
    if tables is None:  # radius 0: the reference's empty window gives 0 / clamp(0, 1e-12) = 0
        return cost.new_zeros(peak.shape + (2,), dtype=dtype)
    window = (cost.gather(-1, tables.index[peak]) * softmax_temperature).to(dtype)  # [..., K] logits
    centre = window[..., tables.peak_column : tables.peak_column + 1]
    weights = torch.exp(window - centre) * tables.valid[peak]  # the peak's own weight is 1: the norm is >= 1
    sums = weights @ tables.basis  # [..., 3]: norm and the weighted offsets from the peak
    # Offsets relative to the peak keep the weighted sums small (less rounding than absolute coords).
    return tables.centre[peak] + sums[..., 1:] / sums[..., :1]


def softmax_argmax(cost: torch.Tensor, softmax_temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(cost * temperature).argmax(-1)`` (the reference's peak, ties included) without the softmax.

    The softmax is monotone, so its first maximum is the cost's first maximum unless another cell's
    cost lies so close to the maximum that the rounding of the logits, of exp or of the normalisation
    ties them. Rows where any other cell lies within ``delta`` (a bound on that rounding, with a wide
    margin) of the maximum are recomputed with the reference's softmax; for the others the peak is found
    with a max over each grid row (a vectorised reduction) and an argmax over h + w values, instead of
    an argmax over all h * w cells.

    Args:
      cost: [R, h, w] cost volume rows.

    Returns:
      [R] int64 flat (raster) index of the peak cell, and [R] the maximum cost (a by-product, bitwise
      equal to ``cost.amax((-1, -2))``).
    """
    R, h, w = cost.shape
    row_max = cost.amax(-1)  # [R, h]
    cost_max = row_max.amax(-1)
    gy = row_max.argmax(-1)
    row = cost.gather(1, gy[:, None, None].expand(R, 1, w))[:, 0]  # [R, w], the grid row holding the max
    peak = gy * w + row.argmax(-1)
    # Logits round by at most eps/2 relative and exp/normalisation add a few ulps of 1, so a cell c below
    # the maximum M by more than (4 eps / t + |M| eps) (using |c| <= |M| + (M - c)) ends strictly below it
    # after the softmax; delta is 8x that bound.
    eps = torch.finfo(cost.dtype).eps
    if softmax_temperature > 0 and math.isfinite(softmax_temperature):
        delta = eps * (32.0 / softmax_temperature + 8.0 * cost_max.abs())
        near = (cost_max - delta)[:, None]
        ambiguous = ((row_max >= near).sum(-1) > 1) | ((row >= near).sum(-1) > 1) | ~torch.isfinite(delta)
    else:
        ambiguous = torch.ones(R, dtype=torch.bool, device=cost.device)
    rows = ambiguous.nonzero()[:, 0]
    if rows.numel():
        logits = cost.reshape(R, h * w)[rows] * softmax_temperature
        peak[rows] = F.softmax(logits, dim=-1).argmax(-1)
    return peak, cost_max


# Cost-volume elements (queries x frames x cells) handled at once by the fast head: 16 MiB in float32,
# e.g. 1024 queries x 1 frame of a 64 x 64 grid, a matmul with enough rows to run at ~90 % of the
# machine's matmul speed (measured on 2 Zen 3 cores: 256 rows ~75 %, 64 rows ~55 %); few blocks also
# mean few parallel regions, which keeps the head fast when other processes share the cores.
FAST_BLOCK_ELEMENTS = 1 << 22

# Queries per head call when TrackerConfig.query_chunk_size is None. The reference head's memory grows
# with the chunk (~140 MB at 64 queries, 24 frames, 64 x 64 cells); the fast head bounds its memory
# by its blocks, so it takes many queries per call and forms its matmul blocks from them. The export head
# takes every query in one call: an exported graph must not loop over a symbolic number of queries.
DEFAULT_QUERY_CHUNK = {"reference": 64, "fast": 1024, "export": sys.maxsize}


def query_chunk(head_name: str, chunk: int | None) -> int:
    """Queries per head call: ``chunk``, or the head's default (DEFAULT_QUERY_CHUNK) when None."""
    return chunk or DEFAULT_QUERY_CHUNK[head_name]


def _fast_head_block(
    query_features: torch.Tensor, features: torch.Tensor, softmax_temperature: float, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tracks [B, n, f, 2] in grid cells (float32) and occlusion inputs [B, n, f, 3] of one block."""
    h, w = features.shape[2:4]
    cost = cost_volume(query_features, features)  # [B, n, f, h, w]
    with torch.no_grad():
        peak, high = softmax_argmax(cost.detach().reshape(-1, h, w), softmax_temperature)
        stats = occlusion_inputs(cost, high.reshape(cost.shape[:3]))
    rows = cost.reshape(*cost.shape[:3], h * w)
    return local_soft_argmax_window(rows, softmax_temperature, peak.reshape(rows.shape[:3]), (h, w), radius), stats


def _query_blocks(n: int, size: int, align: int) -> list[tuple[int, int]]:
    """(start, stop) of query blocks of ``size`` (a multiple of ``align``), the ragged end cut like
    the reference's chunks of ``align`` (so it is multiplied with the same number of rows)."""
    blocks, start = [], 0
    while start < n:
        step = size if n - start >= size else min(n - start, align)
        blocks.append((start, start + step))
        start += step
    return blocks


def fast_head(
    query_features: torch.Tensor,
    features: torch.Tensor,
    softmax_temperature: float,
    radius: float,
    block_elements: int = FAST_BLOCK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract and outputs as :func:`reference_head`, never holding more than a block of the cost volume.

    The cost volume is computed in blocks of q queries x f frames, q * f * B * h * w <= block_elements
    with q as large as possible (a multiple of the reference's chunk of 64, unless the call has fewer
    queries), then f (at least 1). Splitting the frames leaves every cost value bitwise equal to the
    reference's einsum; so does splitting the queries into blocks of 64 or more rows on the machines we
    know (BLAS kernels may round differently for very few rows, hence the ragged end is cut like the
    reference's chunks). The peak is the reference's softmax argmax (:func:`softmax_argmax`), and the
    occlusion inputs are the same reductions.
    """
    B, T, h, w, _ = features.shape
    n = query_features.shape[1]
    per_query_frame = max(1, B * h * w)
    align = min(n, DEFAULT_QUERY_CHUNK["reference"])
    queries = max(align, min(n, block_elements // per_query_frame) // align * align)
    frames = max(1, min(T, block_elements // (per_query_frame * queries)))
    tracks, stats = [], []
    for start, stop in _query_blocks(n, queries, align):
        parts = [_fast_head_block(query_features[:, start:stop], features[:, t : t + frames], softmax_temperature, radius)
                 for t in range(0, T, frames)]
        tracks.append(torch.cat([p[0] for p in parts], dim=2))
        stats.append(torch.cat([p[1] for p in parts], dim=2))
    # The reference's tracks have its softmax's dtype: float32 under CUDA autocast, but bf16 under CPU
    # autocast (which keeps softmax in the input's dtype). Computed in float32 here, returned alike.
    softmax_dtype = F.softmax(stats[0][..., :1], dim=-1).dtype
    return rescale_xy(torch.cat(tracks, dim=1), (h, w), HEAD_RESOLUTION).to(softmax_dtype), torch.cat(stats, dim=1)


def export_head(
    query_features: torch.Tensor, features: torch.Tensor, softmax_temperature: float, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract and outputs as :func:`fast_head` (bitwise), as one graph without data-dependent control flow.

    For ``torch.export`` / ONNX export (chrono/deploy/), where the numbers of queries n and frames T are
    symbolic: the whole [B, n, T, h * w] cost volume at once (no blocks, no Python loop sized by n or T),
    the peak from the reference's own ``softmax(cost * temperature).argmax`` (no ambiguity test), then
    :func:`local_soft_argmax_window`. Memory grows with n * T like the reference's (a 64 x 64 grid in
    float32: 16 KB per point-frame and tensor); callers that need less give fewer queries per call.

    Args:
      query_features: [B, n, C]; features: [B, T, h, w, C] L2-normalised feature grid.

    Returns:
      tracks [B, n, T, 2] (x, y) in HEAD_RESOLUTION pixels (query frames not yet pinned) and the
      occlusion inputs [B, n, T, 3] (detached [mean, max, min] of the cost volume).
    """
    h, w = features.shape[2:4]
    cost = cost_volume(query_features, features)  # [B, n, T, h, w]
    rows = cost.flatten(-2)
    with torch.no_grad():
        peak = F.softmax(rows.detach() * softmax_temperature, dim=-1).argmax(-1)
        stats = occlusion_inputs(cost)
    tracks = local_soft_argmax_window(rows, softmax_temperature, peak, (h, w), radius)
    softmax_dtype = F.softmax(stats[..., :1], dim=-1).dtype  # as fast_head: the reference's softmax dtype
    return rescale_xy(tracks, (h, w), HEAD_RESOLUTION).to(softmax_dtype), stats


HeadFn = Callable[[torch.Tensor, torch.Tensor, float, float], tuple[torch.Tensor, torch.Tensor]]

# Formulations selectable by name (TrackerConfig.head, conf/model/*.yaml ``head``).
HEADS: dict[str, HeadFn] = {"reference": reference_head, "fast": fast_head, "export": export_head}


def get_head(name: str) -> HeadFn:
    """The head formulation called ``name`` (``fast``, ``reference`` or ``export``)."""
    if name not in HEADS:
        raise ValueError(f"unknown tracking head {name!r}; choose one of {sorted(HEADS)}")
    return HEADS[name]
