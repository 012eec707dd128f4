"""The training data pipeline: HDF5 clip shards -> augmented batches of query tracks.

Per clip (reference: kubric ``challenges/point_tracking/dataset.py`` with Chrono's colour augmentation):
1. a window of ``num_frames`` consecutive frames (random start when the clip is longer);
2. a random crop (area 0.3-1, aspect 0.5-2; :func:`chrono.data.augment.sample_crop_box`) resized back to
   ``size``; tracks transformed exactly, points outside the crop window marked occluded;
3. ``num_tracks`` tracks, by ``track_sampling``:
   - ``reference`` (kubric's rule, redone on every read; needs clips stored with their query grid):
     the stored grid points inside the window and crop, split across segments by kubric's
     ``get_num_to_sample`` (balanced, each at most ``max_sampled_frac`` of its points, ids below
     ``max_seg_id``), drawn uniformly with replacement per segment, queried at their grid pixel centre,
     padded by repeating row N-2 when the caps fall short (:mod:`chrono.data.sampling`);
   - ``uniform`` (the rule before issue 14): among the stored tracks visible on at least one frame of the
     window inside the crop, without replacement (a clip with fewer such tracks repeats some, drawn with
     replacement), with one query per track at a random visible frame (``query_frame: random``) or at the
     stored query when it is inside the window and crop (``query_frame: stored``; others fall back to a
     random visible frame);
4. colour jitter (p 0.8) and grayscale (p 0.2), then the video in [-1, 1]; drawn per clip
   (``color_scope: clip``) or once per global step and shared by every clip of that step on every rank
   (``color_scope: step``, the reference: it augments the batch of all GPUs' clips), from (seed, step).

A batch: ``video`` float32 [B, T, S, S, 3] in [-1, 1]; ``query_points`` float32 [B, N, 3] (t, y, x) and
``target_points`` float32 [B, N, T, 2] (x, y), both in pixels of the S x S clip (raster convention);
``occluded`` bool [B, N, T]. With ``with_meta``: ``segment_ids`` int64 [B, N] (kubric's ids, background 0;
-1 where the shard stores none) and ``crop_box`` int64 [B, 4] (y0, x0, y1, x1 in the clip's stored pixels).

Splitting: each epoch is a permutation of all clips (from seed and epoch), padded with its own first
clips to a multiple of world_size x num_workers x batch_size so every rank gets the same number of full
batches; global worker g = rank * num_workers + worker takes positions g, g + G, ... Every clip is seen
once per epoch (plus the padding repeats, none when the clip count is a multiple of that product). The
randomness of a sample depends only on (seed, epoch, position) (and the colour of ``step`` scope on
(seed, step)), not on how work is split.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from chrono.coords import crop_tyx
from chrono.data.augment import augment_video_colour, crop_resize_video, crop_tracks, sample_crop_box
from chrono.data.sampling import sample_reference
from chrono.data.shards import NO_GRID, ShardError, ShardReader, check_shards, list_clips
from chrono.data.synthetic.store import ensure_generated
from chrono.errors import ConfigError
from chrono.files import resolve_path


@dataclasses.dataclass(frozen=True)
class LoaderOptions:
    """The ``dataset`` config node, validated. Its values live in conf/dataset/*.yaml only (this class has
    no defaults): compose them with Hydra (``chrono.cli.compose("train", ["dataset=kubric"]).dataset``)."""

    name: str
    root: str | None  # shard folder; None = the synthetic set described by ``generate`` (made on first use)
    generate: Mapping[str, Any] | None  # for root None: dir, num_clips, seed, options of the synthetic set
    num_frames: int  # T
    size: int | Sequence[int]  # S, or [H, W]
    num_tracks: int  # N
    batch_size: int
    num_workers: int
    random_crop: bool
    crop_area: Sequence[float]
    crop_aspect: Sequence[float]
    crop_attempts: int
    color_jitter_prob: float
    grayscale_prob: float
    query_frame: str  # random | stored (track_sampling uniform)
    track_sampling: str  # reference (kubric's per-read rule on the stored grid) | uniform
    max_seg_id: int  # reference: segment ids must lie below this (kubric's max_seg_id)
    max_sampled_frac: float  # reference: at most this share of a segment's grid points in the crop
    with_meta: bool  # batches also carry segment_ids [B, N] and crop_box [B, 4]
    color_scope: str  # step (one draw per global step, every rank) | clip
    shuffle: bool
    epochs: int | None  # None = endless stream
    pin_memory: bool
    prefetch_factor: int

    def __post_init__(self):
        for key, allowed in (("query_frame", ("random", "stored")), ("track_sampling", ("reference", "uniform")),
                             ("color_scope", ("step", "clip"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"dataset.{key}={getattr(self, key)}: expected {' or '.join(allowed)}")
        if not isinstance(self.with_meta, bool):
            raise ConfigError(f"dataset.with_meta={self.with_meta}: expected true or false")
        if isinstance(self.max_seg_id, bool) or not isinstance(self.max_seg_id, int) or not 1 <= self.max_seg_id <= 256:
            raise ConfigError(f"dataset.max_seg_id={self.max_seg_id}: expected an integer in [1, 256]")
        if isinstance(self.max_sampled_frac, bool) or not isinstance(self.max_sampled_frac, (int, float)) \
                or not 0 < self.max_sampled_frac <= 1:
            raise ConfigError(f"dataset.max_sampled_frac={self.max_sampled_frac}: expected a number in (0, 1]")
        for k in ("num_frames", "num_tracks", "batch_size"):
            if int(getattr(self, k)) < 1:
                raise ConfigError(f"dataset.{k} must be >= 1, got {getattr(self, k)}")
        if self.num_workers < 0:
            raise ConfigError(f"dataset.num_workers must be >= 0, got {self.num_workers}")

    @property
    def out_hw(self) -> tuple[int, int]:
        if isinstance(self.size, (int, np.integer)):
            return int(self.size), int(self.size)
        h, w = self.size
        return int(h), int(w)

    @classmethod
    def from_config(cls, cfg: Any) -> "LoaderOptions":
        """From an OmegaConf node or a mapping; an unknown or missing key raises a ConfigError naming it."""
        try:
            from omegaconf import DictConfig, OmegaConf

            if isinstance(cfg, DictConfig):
                cfg = OmegaConf.to_container(cfg, resolve=True)
        except ImportError:  # pragma: no cover - omegaconf is a dependency
            pass
        cfg = {k: v for k, v in dict(cfg).items() if not str(k).startswith("_")}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"unknown dataset option(s) {unknown}; known: {sorted(known)}")
        missing = sorted(known - set(cfg))
        if missing:
            raise ConfigError(f"dataset config lacks {missing} (conf/dataset/*.yaml holds every dataset option)")
        for k in ("size", "crop_area", "crop_aspect"):
            if isinstance(cfg.get(k), list):
                cfg[k] = tuple(cfg[k])
        return cls(**cfg)


def resolve_shard_root(opts: LoaderOptions) -> Path:
    """The shard folder of a dataset config: ``root`` if given, else the default synthetic set (made if missing)."""
    if opts.root is not None:
        root = resolve_path(opts.root)
        if not (root / "index.json").exists():
            raise ShardError(f"{root}: no index.json: dataset {opts.name!r} expects HDF5 clip shards there "
                             f"(synthetic: python -m chrono.data.synthetic train --out {root})")
        return root
    return ensure_generated(opts.generate or {})


# --------------------------------------------------------------------------------------------------
# One training example


def sample_query_tracks(tracks: np.ndarray, occluded: np.ndarray, num_tracks: int, rng: np.random.Generator,
                        stored_queries: np.ndarray | None = None, where: str = "clip"):
    """Choose ``num_tracks`` tracks visible somewhere and a query on each.

    tracks (x, y) [M, T, 2] and occluded [M, T] are already windowed and cropped. ``stored_queries``
    [M, 3] (t, y, x), in the same frame of reference, are used where their frame is in [0, T) and visible.
    Returns (index [N] into the M tracks, query_points float32 [N, 3] (t, y, x)).
    """
    m, t = occluded.shape
    usable = np.flatnonzero(~occluded.all(axis=1))
    if len(usable) == 0:
        raise ShardError(f"{where}: no track is visible in the sampled window and crop")
    if len(usable) >= num_tracks:
        idx = rng.choice(usable, size=num_tracks, replace=False)
    else:
        idx = np.concatenate([rng.permutation(usable), rng.choice(usable, size=num_tracks - len(usable))])
    visible = ~occluded[idx]
    score = rng.random(visible.shape)
    score[~visible] = -1.0
    tq = score.argmax(axis=1)  # a uniformly random visible frame of each track
    rows = np.arange(num_tracks)
    queries = np.stack([tq.astype(np.float32), tracks[idx, tq, 1], tracks[idx, tq, 0]], -1)
    if stored_queries is not None:
        sq = stored_queries[idx]
        ts = np.rint(sq[:, 0]).astype(np.int64)
        ok = (ts >= 0) & (ts < t)
        ok[ok] &= visible[rows[ok], ts[ok]]
        queries[ok] = sq[ok]
    return idx, queries.astype(np.float32)


def _uniform_tracks(clip: Mapping[str, Any], opts: LoaderOptions, box, out_hw, rng: np.random.Generator,
                    where: str) -> dict[str, np.ndarray]:
    """``track_sampling: uniform``: tracks of the window and crop, drawn among the stored ones (a grid counts as
    its flat list of tracks)."""
    f0, f1 = clip.get("frames", (0, clip["video"].shape[0]))
    if "grid" in clip:
        flat = clip["grid"].flat()
        tracks, occluded, segment_ids = flat["tracks"][:, f0:f1], flat["occluded"][:, f0:f1], flat["segment_ids"]
        stored_queries = flat["query_points"] - np.array([f0, 0, 0], np.float32)
    else:
        tracks, occluded, stored_queries = clip["tracks"], clip["occluded"], clip.get("query_points")
        segment_ids = np.full(len(tracks), -1, np.int64)
    tracks, occluded = crop_tracks(tracks, occluded, box, out_hw)
    stored = None
    if opts.query_frame == "stored" and stored_queries is not None:
        stored = crop_tyx(stored_queries.astype(np.float32), box, out_hw)
    idx, queries = sample_query_tracks(tracks, occluded, opts.num_tracks, rng, stored, where)
    return {"query_points": queries, "target_points": np.ascontiguousarray(tracks[idx]),
            "occluded": np.ascontiguousarray(occluded[idx]), "segment_ids": segment_ids[idx]}


def make_example(clip: Mapping[str, Any], opts: LoaderOptions, rng: np.random.Generator, where: str = "clip",
                 colour_rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
    """One augmented training example from a windowed clip: video uint8 [T, H, W, 3] of the window and either
    tracks, occluded (and query_points, t relative to the window) of the window, or the clip's ``grid`` with
    ``frames`` = (f0, f1), the window in clip frames. ``colour_rng``: the colour draws' generator (``step``
    scope), else ``rng``. Shapes: see the module docstring (no batch axis)."""
    video = clip["video"]
    _, h, w, _ = video.shape
    out_hw = opts.out_hw
    if opts.random_crop:
        box = sample_crop_box(rng, h, w, opts.crop_area, opts.crop_aspect, opts.crop_attempts)
    else:
        box = (0, 0, h, w)
    if opts.track_sampling == "reference":
        if "grid" not in clip:
            raise ShardError(f"{where}: {NO_GRID}")
        sampled = sample_reference(clip["grid"], clip.get("frames", (0, video.shape[0])), box, out_hw, opts.num_tracks,
                                   opts.max_seg_id, opts.max_sampled_frac, rng, where)
    else:
        sampled = _uniform_tracks(clip, opts, box, out_hw, rng, where)
    frames = crop_resize_video(video, box, out_hw)  # planar [T, 3, S, S] in [0, 1]
    video = augment_video_colour(frames, colour_rng if colour_rng is not None else rng, opts.color_jitter_prob,
                                 opts.grayscale_prob)  # [T, S, S, 3]
    out = {"video": torch.from_numpy(video),
           **{k: torch.from_numpy(sampled[k]) for k in ("query_points", "target_points", "occluded")}}
    if opts.with_meta:
        y0, x0, bh, bw = box
        out["segment_ids"] = torch.from_numpy(sampled["segment_ids"].astype(np.int64))
        out["crop_box"] = torch.tensor([y0, x0, y0 + bh, x0 + bw], dtype=torch.int64)
    return out


# --------------------------------------------------------------------------------------------------
# The stream of examples


def epoch_order(num_clips: int, seed: int, epoch: int, multiple: int, shuffle: bool = True) -> np.ndarray:
    """Clip indices of one epoch: a permutation (identity without shuffle), padded with its own first
    entries (cyclically) to a multiple of ``multiple``."""
    order = np.arange(num_clips)
    if shuffle:
        order = np.random.default_rng([int(seed), int(epoch), 0x5EED]).permutation(num_clips)
    total = -(-num_clips // multiple) * multiple
    return np.resize(order, total)


class ClipStream(IterableDataset):
    """Augmented training examples from HDF5 shards, split across DDP ranks and DataLoader workers.

    Shard files are opened lazily in each worker (h5py handles cannot be pickled). With ``epochs`` None
    the stream never ends; otherwise it ends after that many epochs.

    A rank's batches come from its workers in turn (the DataLoader's order): rank batch k is batch
    k // W of stream k % W (W workers). ``start_batch`` = s resumes the rank after s batches: worker w
    then plays stream (s + w) % W from its batch (s + w) // W, so a resumed run sees exactly the
    examples an uninterrupted one would have. Rank batch k belongs to global step k // ``batches_per_step``
    (the trainer's ``grad_accum``) on every rank: the step of ``color_scope: step``.
    """

    def __init__(self, clips: Sequence[tuple[Path, str]], opts: LoaderOptions, rank: int = 0,
                 world_size: int = 1, seed: int = 0, start_batch: int = 0, batches_per_step: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if start_batch < 0 or batches_per_step < 1:
            raise ValueError(f"start_batch must be >= 0 and batches_per_step >= 1, got {start_batch}, {batches_per_step}")
        self.clips = list(clips)
        self.opts = opts
        self.rank, self.world_size, self.seed, self.start_batch = rank, world_size, seed, int(start_batch)
        self.batches_per_step = int(batches_per_step)
        self._readers: dict[Path, ShardReader] = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_readers"] = {}
        return state

    @property
    def num_workers(self) -> int:
        return max(1, self.opts.num_workers)

    @property
    def split(self) -> int:
        """The number of example streams: world_size x workers per rank."""
        return self.world_size * self.num_workers

    def _epoch_length(self) -> int:
        return len(epoch_order(len(self.clips), 0, 0, self.split * self.opts.batch_size, False))

    def batches_per_epoch(self) -> int:
        """Batches one rank yields per epoch."""
        return self._epoch_length() // self.world_size // self.opts.batch_size

    def positions(self, epoch: int, stream: int) -> np.ndarray:
        """Positions (into :func:`epoch_order`) that ``stream`` of this rank handles in ``epoch``."""
        g = self.rank * self.num_workers + stream
        return np.arange(g, self._epoch_length(), self.split)

    def _reader(self, path: Path) -> ShardReader:
        r = self._readers.get(path)
        if r is None:
            if len(self._readers) >= 8:  # keep a few files open per worker
                self._readers.pop(next(iter(self._readers))).close()
            r = self._readers[path] = ShardReader(path)
        return r

    def load(self, clip_index: int, rng: np.random.Generator,
             colour_rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        """Read clip ``clip_index`` (a random window of it) and make one augmented example."""
        path, name = self.clips[clip_index]
        reader = self._reader(path)
        length = reader.info(name)["num_frames"]
        t = self.opts.num_frames
        if length < t:
            raise ShardError(f"{path} clip {name!r}: {length} frames, fewer than dataset.num_frames={t}")
        start = int(rng.integers(0, length - t + 1))
        clip = reader.read(name, frames=slice(start, start + t))
        clip["frames"] = (start, start + t)
        if "query_points" in clip:
            clip["query_points"] = clip["query_points"] - np.array([start, 0, 0], np.float32)
        return make_example(clip, self.opts, rng, where=f"{path} clip {name!r}", colour_rng=colour_rng)

    def step_of(self, stream: int, example: int) -> int:
        """The global step of this rank's ``example``-th example (counted over epochs) of ``stream``."""
        rank_batch = example // self.opts.batch_size * self.num_workers + stream
        return rank_batch // self.batches_per_step

    def colour_rng(self, stream: int, example: int) -> np.random.Generator | None:
        """``color_scope: step``: the colour draws' generator, from (seed, global step) alone, so every clip of a
        step, on every rank and worker, gets the same colour augmentation; ``clip``: None (the example's own)."""
        if self.opts.color_scope == "clip":
            return None
        return np.random.default_rng([int(self.seed), self.step_of(stream, example), 0xC0105])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        if info is not None and info.num_workers != self.num_workers:
            raise RuntimeError(f"ClipStream built for {self.num_workers} workers runs in {info.num_workers}")
        stream = (self.start_batch + worker) % self.num_workers
        skip = (self.start_batch + worker) // self.num_workers * self.opts.batch_size  # examples already used
        per_epoch = self._epoch_length() // self.split  # examples per stream and epoch
        epoch, skip = divmod(skip, per_epoch)
        while self.opts.epochs is None or epoch < self.opts.epochs:
            order = epoch_order(len(self.clips), self.seed, epoch, self.split * self.opts.batch_size, self.opts.shuffle)
            for i, pos in enumerate(self.positions(epoch, stream)[skip:], start=skip):
                rng = np.random.default_rng([int(self.seed), int(epoch), int(pos)])
                yield self.load(int(order[pos]), rng, self.colour_rng(stream, epoch * per_epoch + i))
            epoch, skip = epoch + 1, 0


def build_train_loader(cfg: Any, rank: int = 0, world_size: int = 1, seed: int = 0, start_batch: int = 0,
                       check: bool = False, batches_per_step: int = 1) -> DataLoader:
    """The training DataLoader for the ``dataset`` config node (see :class:`LoaderOptions`).

    ``check``: open every shard of the index and check every clip's schema first (training does, so that a
    missing or truncated shard, or one without the query grid ``track_sampling: reference`` needs, fails before
    step 1: :func:`chrono.data.shards.check_shards`). ``batches_per_step``: this rank's batches per optimizer
    step (``grad_accum``), for ``color_scope: step``.

    Yields dicts of batched tensors (shapes in the module docstring); endless unless ``dataset.epochs``
    is set. ``start_batch`` skips the batches this rank already consumed (resume), so the stream
    continues exactly where it stopped. ``loader.dataset.batches_per_epoch()`` gives the batches per
    epoch of this rank.
    """
    opts = cfg if isinstance(cfg, LoaderOptions) else LoaderOptions.from_config(cfg)
    root = resolve_shard_root(opts)
    if check:
        check_shards(root, need_grid=opts.track_sampling == "reference")
    dataset = ClipStream(list_clips(root), opts, rank=rank, world_size=world_size, seed=seed, start_batch=start_batch,
                         batches_per_step=batches_per_step)
    kwargs: dict[str, Any] = {}
    if opts.num_workers > 0:
        kwargs.update(persistent_workers=opts.epochs is None, prefetch_factor=opts.prefetch_factor)
    return DataLoader(dataset, batch_size=opts.batch_size, num_workers=opts.num_workers,
                      pin_memory=opts.pin_memory, **kwargs)
