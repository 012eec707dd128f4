"""The Chrono tracker: DINOv2 ViT + temporal adapters -> L2-normalised features -> tracking head.

Coordinates: queries (t, y, x) and tracks (x, y) in pixels of the video given (raster convention,
pixel i covers [i, i + 1)); t is a frame index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chrono.coords import rescale_tyx, rescale_xy
from chrono.layers.temporal_adapter import ADAPTER_POOL, TemporalAdapter
from chrono.models import head
from chrono.models.vit import DinoVisionTransformer, ViTConfig
from chrono.pixels import check_float_range

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AdapterConfig:
    """Temporal adapters after every block but the last; ``enabled=False`` is the plain DINOv2 baseline."""

    enabled: bool = True
    width: int = 128
    num_heads: int = 4
    window: int = 13


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

    backbone: ViTConfig
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    input_size: int = 896  # frames are resized to input_size x input_size (64 x 64 tokens at patch 14)
    softmax_temperature: float = 20.0
    argmax_radius: float = 5.0  # cells
    # Queries per head call (memory and speed only; results do not depend on it). None: the head's own
    # default (head.DEFAULT_QUERY_CHUNK: 64 for the reference, whose memory grows with it; 1024 for the fast head).
    query_chunk_size: int | None = None
    # "fast", "reference" (the readable oracle) or "export" (one traceable graph, for ONNX export); same outputs,
    # see chrono/models/head.py.
    head: str = "fast"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "TrackerConfig":
        d = dict(d)
        return cls(backbone=ViTConfig(**d.pop("backbone")), adapter=AdapterConfig(**d.pop("adapter")), **d)


class ChronoTracker(nn.Module):
    """Chrono point tracker (Kim et al., CVPR 2025). Parameters: ``dino.*``, ``adapter.{i}.*``, ``occ_linear``."""

    def __init__(self, cfg: TrackerConfig):
        super().__init__()
        self.cfg = cfg
        self._head_fn = head.get_head(cfg.head)  # fails early on an unknown head name
        multiple = cfg.backbone.patch_size * (ADAPTER_POOL if cfg.adapter.enabled else 1)
        if cfg.input_size % multiple:
            raise ValueError(f"input_size {cfg.input_size} must be a multiple of {multiple} (patch x adapter pooling)")
        self.dino = DinoVisionTransformer(cfg.backbone)
        num_adapters = cfg.backbone.depth - 1 if cfg.adapter.enabled else 0
        self.adapter = nn.ModuleList(
            TemporalAdapter(cfg.backbone.embed_dim, cfg.adapter.width, cfg.adapter.num_heads, cfg.adapter.window)
            for _ in range(num_adapters)
        )
        self.occ_linear = nn.Linear(3, 2)
        self.register_buffer("_mean", torch.tensor(IMAGENET_MEAN), persistent=False)
        self.register_buffer("_std", torch.tensor(IMAGENET_STD), persistent=False)
        # Mixed precision of the feature extractor (None = float32); chrono.models.accelerate sets it on CUDA.
        self.autocast_dtype: torch.dtype | None = None

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Freeze (the reference's recipe) or unfreeze the ViT; its unused mask token always stays frozen."""
        self.dino.requires_grad_(not frozen)
        self.dino.mask_token.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        """Where the weights (and so the inputs of every call) live."""
        return self._mean.device

    @property
    def grid_size(self) -> int:
        """Feature cells per side (64 at the reference's 896 input)."""
        return self.cfg.input_size // self.cfg.backbone.patch_size

    def extract_features(self, video: torch.Tensor) -> torch.Tensor:
        """Temporally-aware features of a clip.

        Args:
          video: [B, T, H, W, 3] float in [-1, 1], any H, W.

        Returns:
          [B, T, g, g, C] features of the last block + final norm, L2-normalised over C, g = input_size / 14.
          Float32 also when ``autocast_dtype`` runs the ViT and adapters in lower precision.
        """
        if self.autocast_dtype is None:
            return self._features(video)
        with torch.autocast(device_type=video.device.type, dtype=self.autocast_dtype):
            return self._features(video).float()

    def _features(self, video: torch.Tensor) -> torch.Tensor:
        B, T = video.shape[:2]
        x = ((video + 1) / 2 - self._mean) / self._std
        x = x.permute(0, 1, 4, 2, 3).reshape(B * T, 3, *video.shape[2:4])
        size = self.cfg.input_size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        g = self.grid_size
        tokens = self.dino.prepare_tokens(x)
        prefix = self.dino.num_prefix_tokens
        for i, block in enumerate(self.dino.blocks):
            tokens = block(tokens)
            if i < len(self.adapter):
                patches = tokens[:, prefix:].reshape(B, T, g, g, -1).permute(0, 4, 1, 2, 3)
                update = self.adapter[i](patches).permute(0, 2, 3, 4, 1).reshape(B * T, g * g, -1)
                tokens = torch.cat((tokens[:, :prefix], tokens[:, prefix:] + update), dim=1)
        feats = self.dino.norm(tokens)[:, prefix:].reshape(B, T, g, g, -1)
        return feats / torch.sqrt(torch.clamp((feats * feats).sum(-1, keepdim=True), min=1e-6))

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
