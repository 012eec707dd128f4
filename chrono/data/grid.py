"""The query grid of a clip: every point of a stride-s (t, y, x) grid with its track and segment id.

Kubric's ``add_tracks`` puts its queries on a stride-4 grid whose start is offset by a random 0-3 and draws
them per segment after each read's crop (:mod:`chrono.data.sampling`). To redo that per read, a clip stores
its whole grid over the full frame, for one random offset (``start``, the grid's residue in full-frame pixels),
kept in HDF5 shards (:mod:`chrono.data.shards`) as:

====================  =========================================  ==================================================
``grid/segments``     uint8 [Tg, Hg, Wg]                         segment id at grid pixel (t, y, x) (0 = background)
``grid/tracks``       int16 [Tg, Hg, Wg, T, 2]                   (x, y) full-frame pixels x ``TRACK_SCALE`` (64)
``grid/occluded``     uint8 [Tg, Hg, Wg, ceil(T / 8)]            ``np.packbits`` of occluded [T] (window = frame)
attrs                 ``grid_start`` (rt, ry, rx), ``grid_stride``, ``track_scale``
====================  =========================================  ==================================================

Grid point (a, b, c) is the pixel (t, y, x) = start + stride * (a, b, c); its query point is the pixel centre
(t, y + 0.5, x + 0.5) and its track passes exactly through it. The axes are kept, so a crop is a slice and
C-order flattening is kubric's flat order (t-major, then y, then x).

Precision: positions are rounded to 1/64 px (error <= 1/128 px; decoding ``v / 64`` is exact in float32).
A position beyond the int16 range (|v| > 511.98 px) is clamped and a non-finite one stored as -32768 (-512 px);
both are allowed only where the point is occluded (outside the frame), so no visible position changes. Frames
must therefore be at most 511 px on each side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRACK_SCALE = 64  # stored positions are int16 in 1/64 px
MAX_FRAME_SIDE = 511  # visible positions must fit int16 at TRACK_SCALE
_NONFINITE = np.iinfo(np.int16).min  # -32768: a non-finite position (occluded by construction)
_LIMIT = np.iinfo(np.int16).max


def grid_shape(num_frames: int, height: int, width: int, start, stride: int) -> tuple[int, int, int]:
    """(Tg, Hg, Wg): how many grid points fit on each axis for the residue ``start`` (rt, ry, rx)."""
    return tuple(-(-(n - int(r)) // stride) for n, r in zip((num_frames, height, width), start))


def grid_pixels(start, stride: int, shape) -> np.ndarray:
    """Integer pixels (t, y, x) of every grid point: int64 [Tg, Hg, Wg, 3]."""
    axes = [int(r) + stride * np.arange(n) for r, n in zip(start, shape)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1)


@dataclass
class QueryGrid:
    """A clip's query grid as stored (see the module docstring for the layout and the precision).

    ``start`` (rt, ry, rx) and ``stride``: grid point (a, b, c) is pixel start + stride * (a, b, c).
    ``segments`` uint8 [Tg, Hg, Wg]; ``tracks`` int16 [Tg, Hg, Wg, T, 2]; ``occluded`` uint8 packed bits
    [Tg, Hg, Wg, ceil(T / 8)]; ``num_frames`` T.
    """

    start: tuple[int, int, int]
    stride: int
    segments: np.ndarray
    tracks: np.ndarray
    occluded: np.ndarray
    num_frames: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.segments.shape)

    @property
    def size(self) -> int:
        """The number of grid points (tracks)."""
        return int(self.segments.size)

    def pixels(self, index) -> np.ndarray:
        """Integer pixels (t, y, x) [..., 3] of grid indices ``index`` [..., 3] (a, b, c)."""
        return np.asarray(self.start, np.int64) + self.stride * np.asarray(index, np.int64)

    def decode_tracks(self, index=...) -> np.ndarray:
        """float32 (x, y) [..., T, 2] full-frame pixels of the grid points ``index`` (default: all)."""
        out = self.tracks[index].astype(np.float32)
        out *= np.float32(1.0 / TRACK_SCALE)  # exact: a power of two
        return out

    def unpack_occluded(self, index=...) -> np.ndarray:
        """bool [..., T] occlusion flags (window = the full frame) of the grid points ``index``."""
        return np.unpackbits(self.occluded[index], axis=-1, count=self.num_frames).astype(bool)

    def flat(self) -> dict[str, np.ndarray]:
        """Every grid point as a flat track list in kubric's flat order: ``query_points`` float32 [G, 3]
        (t, y, x) at pixel centres, ``tracks`` float32 [G, T, 2], ``occluded`` bool [G, T], ``segment_ids`` [G]."""
        g, t = self.size, self.num_frames
        pix = grid_pixels(self.start, self.stride, self.shape).reshape(g, 3)
        return {"query_points": (pix + np.array([0.0, 0.5, 0.5])).astype(np.float32),
                "tracks": self.decode_tracks().reshape(g, t, 2),
                "occluded": self.unpack_occluded().reshape(g, t),
                "segment_ids": self.segments.reshape(g).astype(np.int64)}


def encode_grid(start, stride: int, segments: np.ndarray, tracks: np.ndarray, occluded: np.ndarray) -> QueryGrid:
    """Store a computed grid: ``segments`` [Tg, Hg, Wg] ints, ``tracks`` [Tg, Hg, Wg, T, 2] float (x, y) full-frame
    pixels, ``occluded`` bool [Tg, Hg, Wg, T] (window = the full frame).

    Each track is set to its query point (the pixel centre) on its own frame, so it passes exactly through it.
    Raises ValueError where a visible position does not fit (see the module docstring) or ids exceed 255.
    """
    segments = np.asarray(segments)
    shape = segments.shape
    num_frames = tracks.shape[-2]
    if tracks.shape != shape + (num_frames, 2) or occluded.shape != shape + (num_frames,):
        raise ValueError(f"grid arrays disagree: segments {shape}, tracks {tracks.shape}, occluded {occluded.shape}")
    if segments.size and (segments.min() < 0 or segments.max() > 255):
        raise ValueError(f"segment ids must lie in [0, 255], found [{segments.min()}, {segments.max()}]")
    tracks = np.array(tracks, np.float64)
    pix = grid_pixels(start, stride, shape)
    a, b, c = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    tracks[a, b, c, pix[..., 0]] = pix[..., [2, 1]] + 0.5
    scaled = tracks * TRACK_SCALE
    finite = np.isfinite(scaled)
    rounded = np.rint(np.where(finite, scaled, 0.0))
    out_of_range = np.abs(rounded) > _LIMIT
    bad = (~finite | out_of_range).any(-1) & ~occluded
    if bad.any():
        raise ValueError(f"{int(bad.sum())} visible track positions are non-finite or beyond +-{_LIMIT / TRACK_SCALE} px "
                         f"(frames must be at most {MAX_FRAME_SIDE} px on each side)")
    stored = np.clip(rounded, -_LIMIT, _LIMIT).astype(np.int16)
    stored[~finite] = _NONFINITE
    return QueryGrid(tuple(int(r) for r in start), int(stride), segments.astype(np.uint8), stored,
                     np.packbits(occluded, axis=-1), int(num_frames))
