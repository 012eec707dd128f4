"""Loading trackers from every checkpoint kind users have, and the suite's own checkpoint layout.

Kinds recognised (by their tensors; nothing about the architecture needs to be stored):
- official Chrono Lightning ``.ckpt``: weights under ``["state_dict"]`` with keys ``model.dino.*``,
  ``model.adapter.{i}.*``, ``model.occ_linear.*`` (adapter type and placement are read off the tensors too);
- DINOv2 hub ``*_pretrain.pth``: a bare state dict of the ViT (adapters start at identity);
- a checkpoint written by ``chrono.train``: ``{"format": SUITE_FORMAT, "tracker_config": ..., "model": ...}``
  (any backbone: a ViT with its adapters, or a CNN baseline trained from scratch, keys ``cnn.*``).
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import pickle
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import torch

from chrono.errors import ChronoError, ConfigError
from chrono.models.backbones import BackboneConfig, backbone_config, is_vit
from chrono.models.tracker import PLACEMENTS, AdapterConfig, ChronoTracker, TrackerConfig, adapter_blocks
from chrono.models.vit import dinov2_state_dict_config

SUITE_FORMAT = "chrono-suite/1"

# Tracker settings a caller may override at load time (they do not change parameter shapes).
HEAD_OVERRIDES = ("input_size", "softmax_temperature", "argmax_radius", "query_chunk_size", "head")
ADAPTER_OVERRIDES = ("num_heads", "window")


class CheckpointError(ChronoError):
    """A checkpoint that cannot be read or does not fit; the message names the file."""


# What official Lightning checkpoints and DINOv2 files legitimately hold besides tensors and plain containers:
# Lightning's hyper-parameter dicts (read as plain ordered dicts, the class itself need not be installed), the
# argparse namespaces and paths that end up in hyper-parameters and callback states. Nothing here runs code.
_LIGHTNING_ATTRIBUTE_DICTS = (
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
)
SAFE_GLOBALS = [*((collections.OrderedDict, name) for name in _LIGHTNING_ATTRIBUTE_DICTS),
                argparse.Namespace, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath]
TRUST_HINT = ("if you trust whoever made the file, load it with trust_checkpoint=true "
              "(Python: chrono.load_tracker(path, trusted=True))")


def read_checkpoint(path: str | os.PathLike, trusted: bool = False) -> Any:
    """The object stored in a checkpoint file, read on the CPU without running code from it.

    The safe loader (``torch.load(weights_only=True)``) reads tensors, plain containers and the few
    objects of :data:`SAFE_GLOBALS`; anything else (a pickled object whose class would be imported and
    called) is refused with a :class:`CheckpointError` saying how to opt in. ``trusted=True`` is that
    opt-in: full unpickling, which runs whatever the file holds.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes; an interrupted download or copy?)")
    try:
        if trusted:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:GLOBAL|global) ([\w.]+)", str(err))
        what = f"the object {found.group(1)}" if found else "objects other than tensors and plain values"
        raise CheckpointError(f"{path}: holds {what}, which loading would have to import and run; "
                              f"refused: {TRUST_HINT}") from None
    except Exception as err:  # noqa: BLE001 - whatever torch.load trips on, the file is not a usable checkpoint
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated, corrupt or another kind "
                              f"of file?): {reason}") from None


def _strip(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def classify(obj: Any, path: Path) -> tuple[str, dict[str, torch.Tensor], dict | None]:
    """(kind, tracker state dict with keys ``dino.*``, ``adapter.*``, ``occ_linear.*``, stored config or None)."""
    if isinstance(obj, Mapping) and obj.get("format") == SUITE_FORMAT:
        return "suite", dict(obj["model"]), obj["tracker_config"]
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        state = obj["state_dict"]
        if any(k.startswith("model.dino.") for k in state):
            return "official", _strip(state, "model."), None
        raise CheckpointError(
            f"{path}: a Lightning checkpoint, but not of Chrono (no 'model.dino.*' keys; first keys: {list(state)[:5]})"
        )
    if isinstance(obj, Mapping) and "cls_token" in obj and "patch_embed.proj.weight" in obj:
        return "dinov2", {f"dino.{k}": v for k, v in obj.items()}, None
    keys = list(obj)[:5] if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"{path}: not a Chrono checkpoint, a DINOv2 *_pretrain.pth or a chrono.train checkpoint (found {keys})"
    )


def infer_tracker_config(state: Mapping[str, torch.Tensor], path: Path) -> TrackerConfig:
    """Architecture from the tensors: the ViT from ``dino.*``, the adapters from ``adapter.{block}.*``."""
    try:
        vit = dinov2_state_dict_config(_strip(state, "dino."))
    except (KeyError, ValueError, IndexError) as err:
        raise CheckpointError(f"{path}: cannot infer the ViT architecture from its tensors (missing {err})") from err
    return TrackerConfig(backbone=vit, adapter=infer_adapter_config(state, vit.depth, path))


def infer_adapter_config(state: Mapping[str, torch.Tensor], depth: int, path: Path) -> AdapterConfig:
    """Adapters from their tensors: placement from the set of blocks that have one, width from the first one's
    ``conv1``, type from its mixer (``attn_temp.*``: attention; ``conv_temp.weight`` of 3 / 5 dimensions: conv1d /
    conv3d, whose temporal kernel gives ``window``). Heads and the attention window are not in the tensors:
    they keep the reference's values (override them at load)."""
    blocks = tuple(sorted({int(m.group(1)) for k in state if (m := re.match(r"adapter\.(\d+)\.", k))}))
    if not blocks:
        return AdapterConfig(enabled=False)
    placement = next((p for p in PLACEMENTS if adapter_blocks(p, depth) == blocks), None)
    if placement is None:
        raise CheckpointError(f"{path}: adapters after blocks {list(blocks)} of a {depth}-block ViT match no "
                              f"placement ({', '.join(f'{p}: {list(adapter_blocks(p, depth))}' for p in PLACEMENTS)})")
    first = f"adapter.{blocks[0]}."
    if first + "conv1.weight" not in state:
        raise CheckpointError(f"{path}: adapter {blocks[0]} has no conv1.weight (keys: {[k for k in state if k.startswith(first)][:5]})")
    settings = {"width": state[first + "conv1.weight"].shape[0], "placement": placement}
    conv = state.get(first + "conv_temp.weight")
    if first + "attn_temp.qkv.weight" in state:
        settings["type"] = "attention"
    elif conv is not None and conv.dim() in (3, 5):
        settings.update(type="conv1d" if conv.dim() == 3 else "conv3d", window=conv.shape[2])
    else:
        raise CheckpointError(f"{path}: adapter {blocks[0]} has neither attn_temp.* nor a conv_temp.weight of 3 or 5 "
                              "dimensions: cannot tell its temporal mixer")
    return AdapterConfig(enabled=True, **settings)


def _as_adapter(adapter: AdapterConfig | Mapping | None) -> AdapterConfig:
    if adapter is None:
        return AdapterConfig()
    return adapter if isinstance(adapter, AdapterConfig) else AdapterConfig(**adapter)


def _apply_overrides(cfg: TrackerConfig, overrides: Mapping[str, Any]) -> TrackerConfig:
    """Head and adapter settings that do not change parameter shapes."""
    unknown = set(overrides) - set(HEAD_OVERRIDES) - set(ADAPTER_OVERRIDES)
    if unknown:
        raise TypeError(f"unknown tracker overrides {sorted(unknown)}; allowed: {HEAD_OVERRIDES + ADAPTER_OVERRIDES}")
    for key in ("input_size", "softmax_temperature", "argmax_radius", "query_chunk_size", "num_heads", "window"):
        value = overrides.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"tracker setting {key}={value!r}: expected a number"
                              + (" (one side: frames are resized to a square)" if key == "input_size" else ""))
    adapter = replace(cfg.adapter, **{k: overrides[k] for k in ADAPTER_OVERRIDES if k in overrides})
    return replace(cfg, adapter=adapter, **{k: overrides[k] for k in HEAD_OVERRIDES if k in overrides})


def load_state_strict(tracker: ChronoTracker, state: Mapping[str, torch.Tensor], path: Path, allow_missing=()) -> None:
    """load_state_dict(strict) with one clear error listing the first offending keys."""
    own = tracker.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(tuple(allow_missing))]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if items:
                parts.append(f"{label} ({len(items)}): {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}")
        raise CheckpointError(f"{path}: does not fit the tracker: " + "; ".join(parts))
    tracker.load_state_dict(state, strict=not allow_missing)


def build_tracker(
    backbone: str | BackboneConfig = "vits", adapter: AdapterConfig | Mapping | None = None, **settings: Any
) -> ChronoTracker:
    """A freshly initialised tracker: backbone preset name (or config), adapter, head/adapter settings.

    A CNN backbone (``resnet18``, ``tsm_resnet18``) has no adapters: its default adapter is ``enabled=False``."""
    cfg = backbone_config(backbone) if isinstance(backbone, str) else backbone
    if adapter is None and not is_vit(cfg):
        adapter = AdapterConfig(enabled=False)
    return ChronoTracker(_apply_overrides(TrackerConfig(backbone=cfg, adapter=_as_adapter(adapter)), settings))


def load_tracker(path: str | os.PathLike | None = None, device: str | torch.device = "cpu", trusted: bool = False,
                 **overrides: Any) -> ChronoTracker:
    """A Chrono tracker in eval mode.

    Args:
      path: official Chrono ``.ckpt``, DINOv2 ``*_pretrain.pth`` (fresh identity adapters), a
        ``chrono.train`` checkpoint, or None for random weights.
      device: where to put it.
      trusted: allow full unpickling for a file you trust (see :func:`read_checkpoint`); by default only
        tensors, plain values and the objects official checkpoints hold are read, and nothing runs.
      **overrides: head settings (``input_size``, ``softmax_temperature``, ``argmax_radius``,
        ``query_chunk_size``) and adapter ``num_heads`` / ``window`` (``window`` fixes a conv adapter's kernel
        shape, so it must match the file's); with ``path=None`` also ``backbone`` (preset name, e.g. ``vits`` or
        ``resnet18``, or a config) and ``adapter`` (mapping or AdapterConfig, e.g. ``{"type": "conv1d",
        "placement": "late"}``), the latter also for a DINOv2 file (``adapter={"enabled": False}`` gives the
        plain DINOv2 tracker).
        ``head="reference"`` selects the reference head formulation (default "fast"; same outputs).
    """
    if path is None:
        return build_tracker(**overrides).to(device).eval()
    path = Path(path)
    kind, state, stored = classify(read_checkpoint(path, trusted), path)
    cfg = TrackerConfig.from_dict(stored) if kind == "suite" else infer_tracker_config(state, path)
    if kind == "dinov2":
        cfg = replace(cfg, adapter=_as_adapter(overrides.pop("adapter", None)))
    tracker = ChronoTracker(_apply_overrides(cfg, overrides))
    # A DINOv2 file holds only the backbone: adapters keep their identity init, occ_linear its default.
    load_state_strict(tracker, state, path, allow_missing=("adapter.", "occ_linear.") if kind == "dinov2" else ())
    return tracker.to(device).eval()


def tracker_checkpoint(tracker: ChronoTracker) -> dict:
    """The model part of a suite checkpoint (``chrono.train`` adds optimizer, step, RNG, config)."""
    return {"format": SUITE_FORMAT, "tracker_config": tracker.cfg.to_dict(), "model": tracker.state_dict()}


# Keys of the Hydra ``backbone`` group that are the run's business, not the network's.
BACKBONE_RUN_KEYS = ("name", "pretrained", "freeze", "require_pretrained")


def dinov2_file(name: str) -> str:
    """The DINOv2 hub file name of backbone preset ``name`` (``vitb`` -> ``dinov2_vitb14_pretrain.pth``)."""
    return f"dinov2_{name}14_pretrain.pth"


def tracker_from_config(backbone: Mapping[str, Any], adapter: Mapping[str, Any],
                        model: Mapping[str, Any] | None = None, trusted: bool = False) -> ChronoTracker:
    """A tracker from the Hydra ``backbone``, ``adapter`` and ``model`` groups (conf/backbone, conf/adapter,
    conf/model).

    ``backbone.name`` picks the preset (chrono/models/backbones.py), other fields of its config override it,
    ``backbone.pretrained`` (a DINOv2 ``*_pretrain.pth``, or a folder holding ``dinov2_<name>14_pretrain.pth``)
    fills a ViT; the CNN baselines train from scratch and take none. ``backbone.freeze`` is the trainer's
    business. ``adapter`` holds AdapterConfig's fields, ``model`` the head settings of TrackerConfig.
    """
    fields = {k: v for k, v in backbone.items() if k not in BACKBONE_RUN_KEYS}
    try:
        net = backbone_config(backbone["name"], **fields)
    except TypeError as err:
        preset = backbone_config(backbone["name"])
        raise ConfigError(f"backbone config: {err} (allowed: {list(type(preset).__dataclass_fields__)})") from err
    adapter_fields = set(AdapterConfig.__dataclass_fields__)
    unknown = sorted(set(adapter) - adapter_fields)
    if unknown:
        raise ConfigError(f"adapter config: unknown setting(s) {unknown} (allowed: {sorted(adapter_fields)})")
    pretrained = backbone.get("pretrained")
    if pretrained and not is_vit(net):
        raise ConfigError(f"backbone {backbone['name']} is trained from scratch: backbone.pretrained must be null "
                          f"(got {pretrained})")
    tracker = build_tracker(net, AdapterConfig(**adapter), **dict(model or {}))
    if pretrained:
        path = Path(pretrained)
        if path.is_dir():
            path = path / dinov2_file(backbone["name"])
        kind, state, _ = classify(read_checkpoint(path, trusted), path)
        if kind != "dinov2":
            raise CheckpointError(f"{path}: backbone.pretrained must be a DINOv2 *_pretrain.pth, this is a {kind} checkpoint")
        load_state_strict(tracker, state, path, allow_missing=("adapter.", "occ_linear."))
    return tracker
