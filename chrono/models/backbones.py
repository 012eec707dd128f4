"""The backbones a tracker can have, by name: DINOv2 ViTs (with temporal adapters) and CNNs trained from scratch.

| name | network | features at the default input |
|---|---|---|
| ``tiny``, ``vits``, ``vitb``, ``vitl``, ``vitg`` | DINOv2 ViT (chrono/models/vit.py), patch 14 | 64 x 64 x dim at 896 x 896 |
| ``resnet18`` | TAPIR's ResNet-18 (chrono/models/resnet.py) | 64 x 64 x 256 at 256 x 256 |
| ``tsm_resnet18`` | TAP-Net's TSM-ResNet-18 (chrono/models/tsm_resnet.py) | 64 x 64 x 256 at 256 x 256 |

What the tracker asks of a CNN backbone: ``module(frames [B, T, 3, S, S] in [-1, 1]) -> [B, T, S/s, S/s, C]``
with ``s = cfg.stride``; it resizes the frames and L2-normalises the features itself. ViTs are driven block by
block by the tracker (the temporal adapters sit between the blocks), so they do not follow this interface;
temporal adapters exist for ViTs only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Union

from torch import nn

from chrono.models.resnet import ResNet, ResNetConfig
from chrono.models.tsm_resnet import TSMResNet, TSMResNetConfig
from chrono.models.vit import BACKBONES as VIT_BACKBONES
from chrono.models.vit import ViTConfig

CNNConfig = Union[ResNetConfig, TSMResNetConfig]
BackboneConfig = Union[ViTConfig, ResNetConfig, TSMResNetConfig]

CNN_BACKBONES: dict[str, CNNConfig] = {"resnet18": ResNetConfig(), "tsm_resnet18": TSMResNetConfig()}
_CNN_NETWORKS = {ResNetConfig: ResNet, TSMResNetConfig: TSMResNet}


def backbone_names() -> list[str]:
    return sorted(VIT_BACKBONES) + sorted(CNN_BACKBONES)


def backbone_config(name: str, **overrides) -> BackboneConfig:
    """The preset ``name`` (a ViT: tiny, vits, vitb, vitl, vitg; a CNN: resnet18, tsm_resnet18) with field
    overrides (None values ignored); an unknown field raises TypeError."""
    presets = {**VIT_BACKBONES, **CNN_BACKBONES}
    if name not in presets:
        raise ValueError(f"unknown backbone {name!r}; choose one of {backbone_names()}")
    return replace(presets[name], **{k: v for k, v in overrides.items() if v is not None})


def backbone_from_dict(d: Mapping) -> BackboneConfig:
    """A stored backbone config (``TrackerConfig.to_dict()['backbone']``): a CNN's names its ``arch``; a ViT's
    has none (checkpoints written before the CNN baselines existed hold ViT configs only)."""
    d = dict(d)
    arch = d.get("arch")
    if arch is None:
        return ViTConfig(**d)
    if arch not in CNN_BACKBONES:
        raise ValueError(f"unknown CNN backbone arch {arch!r}; known: {sorted(CNN_BACKBONES)}")
    return type(CNN_BACKBONES[arch])(**d)


def is_vit(cfg: BackboneConfig) -> bool:
    return isinstance(cfg, ViTConfig)


def build_cnn(cfg: CNNConfig) -> nn.Module:
    """The CNN network of ``cfg`` with fresh weights (see the module docstring for its interface)."""
    return _CNN_NETWORKS[type(cfg)](cfg)
