"""The Chrono tracker: DINOv2 ViT + temporal adapters -> L2-normalised features -> tracking head.

The same head also runs on a CNN backbone trained from scratch (the paper's ResNet-18 and TSM-ResNet-18
baselines, chrono/models/backbones.py); temporal adapters exist for ViTs only.

Coordinates: queries (t, y, x) and tracks (x, y) in pixels of the video given (raster convention,
pixel i covers [i, i + 1)); t is a frame index.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chrono.coords import rescale_tyx, rescale_xy
from chrono.errors import ConfigError
from chrono.layers.temporal_adapter import ADAPTER_POOL, MIXERS, TemporalAdapter
from chrono.models import head
from chrono.models.backbones import BackboneConfig, backbone_from_dict, build_cnn, is_vit
from chrono.models.vit import DinoVisionTransformer
from chrono.pixels import check_float_range

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Feature cells per side that the reference's head works on (896 / 14); input_size=None means this many.
REFERENCE_GRID = 64

# Which blocks get an adapter (adapter.placement); see adapter_blocks.
PLACEMENTS = ("all", "early", "late", "alternate")


@dataclass(frozen=True)
class AdapterConfig:
    """Temporal adapters between ViT blocks; ``enabled=False`` is the plain DINOv2 baseline.

    ``type``: the temporal mixer (``attention``: the reference's banded attention; ``conv1d``, ``conv3d``: the
    paper's ablations, chrono/layers/temporal_adapter.py). ``placement``: which blocks an adapter follows
    (:func:`adapter_blocks`; ``all`` is the reference's every block but the last). ``window``: the frames
    |i - j| <= window // 2 each adapter mixes (the attention band, or a kernel of 2 (window // 2) + 1 frames).
    """

    enabled: bool = True
    width: int = 128
    num_heads: int = 4
    window: int = 13
    type: str = "attention"
    placement: str = "all"

    def __post_init__(self):
        if self.type not in MIXERS:
            raise ConfigError(f"adapter.type={self.type}: expected one of {', '.join(MIXERS)}")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"adapter.placement={self.placement}: expected one of {', '.join(PLACEMENTS)}")


def adapter_blocks(placement: str, depth: int) -> tuple[int, ...]:
    """The blocks (0-based) an adapter follows in a ViT of ``depth`` blocks; its output feeds the next block.

    With n = depth - 1 slots (never after the last block) and k = ceil(n / 2): ``all`` 0 .. n-1 (the reference),
    ``early`` the first k, ``late`` the last k, ``alternate`` every other slot from 0. For ViT-S/B (n = 11, k = 6):
    all 0-10; early 0-5; late 5-10; alternate 0, 2, 4, 6, 8, 10: six adapters each for the three partial ones.
    """
    n = depth - 1
    k = math.ceil(n / 2)
    slots = {"all": range(n), "early": range(k), "late": range(n - k, n), "alternate": range(0, n, 2)}
    if placement not in slots:
        raise ConfigError(f"adapter.placement={placement}: expected one of {', '.join(PLACEMENTS)}")
    return tuple(slots[placement])


class AdapterStack(nn.ModuleDict):
    """The tracker's adapters keyed by the block they follow, so parameters are ``adapter.{block}.*`` whatever the
    placement (``all`` gives exactly the official checkpoints' names). Used like the list it replaces: iterating
    yields the adapters in block order, ``len`` counts them, ``stack[i]`` and ``i in stack`` take block numbers."""

    def __iter__(self):
        return iter(self.values())

    def __getitem__(self, block) -> nn.Module:
        return super().__getitem__(str(block))

    def __contains__(self, block) -> bool:
        return super().__contains__(str(block))

    @property
    def blocks(self) -> tuple[int, ...]:
        return tuple(int(k) for k in self.keys())


def model_input(video, device, resolution: tuple[int, int]) -> torch.Tensor:
    """Video [B, T, H, W, 3] (uint8 0..255, or float in [-1, 1]; numpy or torch) -> float32 [B, T, *resolution, 3]
    in [-1, 1] on ``device``, resized with bilinear interpolation (align_corners=False) as the reference does.
    Float input outside [-1, 1] is refused (:mod:`chrono.pixels`)."""
    video = torch.as_tensor(np.asarray(video) if not torch.is_tensor(video) else video).to(device)
    if video.dtype != torch.uint8:
        check_float_range(float(video.min()), float(video.max()), "video")
    video = video.float() / 255.0 * 2 - 1 if video.dtype == torch.uint8 else video.float()
    B, T, H, W, _ = video.shape
    if (H, W) == tuple(resolution):
        return video
    frames = F.interpolate(video.permute(0, 1, 4, 2, 3).reshape(B * T, 3, H, W), size=tuple(resolution),
                           mode="bilinear", align_corners=False)
    return frames.reshape(B, T, 3, *resolution).permute(0, 1, 3, 4, 2)


@dataclass(frozen=True)
class TrackerConfig:
    """Everything that defines a Chrono tracker; the defaults are the reference's."""

    backbone: BackboneConfig
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    # Frames are resized to input_size x input_size. None: REFERENCE_GRID (64) cells per side, i.e. 64 x the
    # backbone's stride: 896 for the patch-14 ViTs (the reference), 256 for the stride-4 ResNets.
    input_size: int | None = None
    softmax_temperature: float = 20.0
    argmax_radius: float = 5.0  # cells
    # Queries per head call (memory and speed only; results do not depend on it). None: the head's own
    # default (head.DEFAULT_QUERY_CHUNK: 64 for the reference, whose memory grows with it; 1024 for the fast head).
    query_chunk_size: int | None = None
    # "fast", "reference" (the readable oracle) or "export" (one traceable graph, for ONNX export); same outputs,
    # see chrono/models/head.py.
    head: str = "fast"

    def __post_init__(self):
        if self.input_size is None:
            object.__setattr__(self, "input_size", REFERENCE_GRID * self.backbone.stride)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrackerConfig":
        d = dict(d)
        # Checkpoints written before adapter.type / adapter.placement existed lack them: the defaults are theirs.
        return cls(backbone=backbone_from_dict(d.pop("backbone")), adapter=AdapterConfig(**d.pop("adapter")), **d)


class ChronoTracker(nn.Module):
    """Chrono point tracker (Kim et al., CVPR 2025).

    Parameters: ``dino.*``, ``adapter.{block}.*``, ``occ_linear`` with a ViT backbone (the official names);
    ``cnn.*``, ``occ_linear`` with a CNN backbone (no adapters: ``adapter`` is empty).
    """

    def __init__(self, cfg: TrackerConfig):
        super().__init__()
        self.cfg = cfg
        self._head_fn = head.get_head(cfg.head)  # fails early on an unknown head name
        if cfg.adapter.enabled and not self.is_vit:
            raise ConfigError(f"backbone {cfg.backbone.arch}: temporal adapters apply to ViT backbones only; "
                              f"use adapter=none (adapter.enabled=false) with a CNN backbone")
        multiple = cfg.backbone.stride * (ADAPTER_POOL if cfg.adapter.enabled else 1)
        if cfg.input_size % multiple:
            what = "patch x adapter pooling" if cfg.adapter.enabled else "the backbone's stride"
            raise ValueError(f"input_size {cfg.input_size} must be a multiple of {multiple} ({what})")
        if self.is_vit:
            self.dino = DinoVisionTransformer(cfg.backbone)
            blocks = adapter_blocks(cfg.adapter.placement, cfg.backbone.depth) if cfg.adapter.enabled else ()
            a = cfg.adapter
            self.adapter = AdapterStack(
                {str(i): TemporalAdapter(cfg.backbone.embed_dim, a.width, a.num_heads, a.window, a.type) for i in blocks}
            )
        else:
            self.cnn = build_cnn(cfg.backbone)
            self.adapter = AdapterStack()
        self.occ_linear = nn.Linear(3, 2)
        self.register_buffer("_mean", torch.tensor(IMAGENET_MEAN), persistent=False)
        self.register_buffer("_std", torch.tensor(IMAGENET_STD), persistent=False)
        # Mixed precision of the feature extractor (None = float32); chrono.models.accelerate sets it on CUDA.
        self.autocast_dtype: torch.dtype | None = None

    @property
    def is_vit(self) -> bool:
        """A DINOv2 ViT backbone (``dino``, with adapters), else a CNN trained from scratch (``cnn``)."""
        return is_vit(self.cfg.backbone)

    @property
    def backbone(self) -> nn.Module:
        """The feature network: the ViT (``dino``) or the CNN (``cnn``); adapters are not part of it."""
        return self.dino if self.is_vit else self.cnn

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Freeze (the reference's recipe) or unfreeze the backbone; a ViT's unused mask token always stays frozen."""
        self.backbone.requires_grad_(not frozen)
        if self.is_vit:
            self.dino.mask_token.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        """Where the weights (and so the inputs of every call) live."""
        return self._mean.device

    @property
    def grid_size(self) -> int:
        """Feature cells per side (64 at the default input size: 896 for a ViT, 256 for a CNN)."""
        return self.cfg.input_size // self.cfg.backbone.stride

    @property
    def feature_channels(self) -> int:
        """C of :meth:`extract_features`: the ViT's embed_dim, or the CNN's output width (256)."""
        return self.cfg.backbone.embed_dim if self.is_vit else self.cfg.backbone.out_channels

    def extract_features(self, video: torch.Tensor) -> torch.Tensor:
        """Temporally-aware features of a clip.

        Args:
          video: [B, T, H, W, 3] float in [-1, 1], any H, W.

        Returns:
          [B, T, g, g, C] features, L2-normalised over C, g = :attr:`grid_size`: a ViT's last block + final
          norm (C = embed_dim), or a CNN's output (C = 256). Float32 also when ``autocast_dtype`` runs the
          backbone and adapters in lower precision.
        """
        if self.autocast_dtype is None:
            return self._features(video)
        with torch.autocast(device_type=video.device.type, dtype=self.autocast_dtype):
            return self._features(video).float()

    def _features(self, video: torch.Tensor) -> torch.Tensor:
        B, T = video.shape[:2]
        # DINOv2 takes ImageNet-normalised images; tapnet's CNNs take [-1, 1] as it is.
        x = ((video + 1) / 2 - self._mean) / self._std if self.is_vit else video
        x = x.permute(0, 1, 4, 2, 3).reshape(B * T, 3, *video.shape[2:4])
        size = self.cfg.input_size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        feats = self._vit_features(x, B, T) if self.is_vit else self.cnn(x.reshape(B, T, 3, size, size))
        return feats / torch.sqrt(torch.clamp((feats * feats).sum(-1, keepdim=True), min=1e-6))

    def _vit_features(self, images: torch.Tensor, B: int, T: int) -> torch.Tensor:
        """[B * T, 3, S, S] normalised frames -> [B, T, g, g, dim] ViT features, adapters after their blocks."""
        g = self.grid_size
        tokens = self.dino.prepare_tokens(images)
        prefix = self.dino.num_prefix_tokens
        for i, block in enumerate(self.dino.blocks):
            tokens = block(tokens)
            if i in self.adapter:
                patches = tokens[:, prefix:].reshape(B, T, g, g, -1).permute(0, 4, 1, 2, 3)
                update = self.adapter[i](patches).permute(0, 2, 3, 4, 1).reshape(B * T, g * g, -1)
                tokens = torch.cat((tokens[:, :prefix], tokens[:, prefix:] + update), dim=1)
        return self.dino.norm(tokens)[:, prefix:].reshape(B, T, g, g, -1)

    def sample_query_features(
        self, features: torch.Tensor, query_points: torch.Tensor, video_hw: tuple[int, int]
    ) -> torch.Tensor:
        """Features [B, N, C] of query points [B, N, 3] (t, y, x) in pixels of a video of size ``video_hw``, t a
        frame index into ``features`` [B, T, g, g, C]: trilinear (t exact, bilinear in y, x, border padding)."""
        return head.sample_query_features(features, rescale_tyx(query_points, video_hw, features.shape[2:4]))

    def track_features(
        self, features: torch.Tensor, query_points: torch.Tensor, video_hw: tuple[int, int], query_features=None
    ) -> dict:
        """Tracking head on precomputed features.

        Args:
          features: [B, T, g, g, C] from :meth:`extract_features`.
          query_points: [B, N, 3] (t, y, x) in pixels of a video of size ``video_hw`` = (H, W).
          query_features: optional [B, N, C] features of the queries, sampled elsewhere (windowed
            tracking, chrono/inference/windowed.py); by default they are sampled from ``features`` at ``query_points``.

        Returns:
          dict of ``tracks`` [B, N, T, 2] (x, y) video pixels, ``occlusion`` and ``expected_dist``
          [B, N, T] logits (higher = more likely occluded / farther than 6 px at 256 x 256).
        """
        queries_head = rescale_tyx(query_points, video_hw, head.HEAD_RESOLUTION)
        if query_features is None:
            query_features = self.sample_query_features(features, query_points, video_hw)
        query_feats = query_features
        tracks, occ, expd = [], [], []
        chunk = head.query_chunk(self.cfg.head, self.cfg.query_chunk_size)
        n = query_feats.shape[1]
        # One call when one chunk holds every query (the same iterations in eager mode): a Python range over a
        # symbolic n would make torch.export specialise the exported graph's number of queries to its example.
        for s in (0,) if 0 < n <= chunk else range(0, n, chunk):
            points, occ_inputs = self._head_fn(
                query_feats[:, s : s + chunk], features, self.cfg.softmax_temperature, self.cfg.argmax_radius
            )
            points = head.pin_query_frames(points, queries_head[:, s : s + chunk])
            tracks.append(rescale_xy(points, head.HEAD_RESOLUTION, video_hw))
            logits = self.occ_linear(occ_inputs)
            occ.append(logits[..., 0])
            expd.append(logits[..., 1])
        return {"tracks": torch.cat(tracks, 1), "occlusion": torch.cat(occ, 1), "expected_dist": torch.cat(expd, 1)}

    def forward(self, video: torch.Tensor, query_points: torch.Tensor) -> dict:
        """The reference forward.

        Args:
          video: [B, T, H, W, 3] float in [-1, 1].
          query_points: [B, N, 3] (t, y, x) in pixels of ``video``.

        Returns:
          dict with ``tracks`` [B, N, T, 2] (x, y) in pixels of ``video``, ``occlusion`` and
          ``expected_dist`` [B, N, T] logits.
        """
        return self.track_features(self.extract_features(video), query_points, tuple(video.shape[2:4]))

    @torch.no_grad()
    def predict(self, video, query_points, resolution: tuple[int, int] = (256, 256)) -> dict:
        """The reference inference: resize to ``resolution``, track, answer in the input's pixels.

        Args:
          video: [B, T, H, W, 3] uint8 (0..255) or float in [-1, 1]; numpy or torch.
          query_points: [B, N, 3] (t, y, x) in pixels of ``video``.
          resolution: (H, W) the video is resized to (bilinear, align_corners=False) before tracking.

        Returns:
          dict with ``tracks`` [B, N, T, 2] (x, y) in pixels of the input and ``occluded`` bool [B, N, T]
          (1 - (1 - sigmoid(occ)) * (1 - sigmoid(expd)) > 0.5).
        """
        device = self.device
        H, W = video.shape[2:4]
        query_points = rescale_tyx(torch.as_tensor(query_points, dtype=torch.float32).to(device), (H, W), resolution)
        out = self.forward(model_input(video, device, resolution), query_points)
        tracks = rescale_xy(out["tracks"], resolution, (H, W))
        return {"tracks": tracks, "occluded": head.occluded_from_logits(out["occlusion"], out["expected_dist"])}
