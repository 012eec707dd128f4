"""The Hydra side of the suite: resolvers and the structured configs registered in Hydra's ConfigStore.

One home per setting:
- the model's settings (ViT presets, adapter, tracking head) are the fields of the model's own
  dataclasses (:class:`~chrono.models.vit.ViTConfig`, :class:`~chrono.models.tracker.AdapterConfig`,
  :class:`~chrono.models.tracker.TrackerConfig`), which checkpoints store and ``chrono.load_tracker`` uses
  without Hydra. They are registered here as the base nodes of the ``adapter`` and ``model`` groups
  (``adapter/base``, ``model/base``), so the YAML files in ``conf/adapter`` and ``conf/model`` set only what
  differs from the reference and a composed config still shows (and type-checks) every value;
- everything else (data, loss, optimisation, evaluation, commands) has its values in ``conf/*.yaml`` only;
  the Python code that reads them has no defaults of its own and refuses unknown or missing keys.

Commands call :func:`register` at import, before Hydra composes.
"""

from __future__ import annotations

import dataclasses
import typing

_REGISTERED = False


def _settings_node(cls, leave_out: tuple[str, ...] = ()) -> type:
    """A dataclass with ``cls``'s fields (resolved types, same defaults) minus ``leave_out``, for the ConfigStore."""
    hints = typing.get_type_hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        if f.name in leave_out:
            continue
        default = f.default if f.default is not dataclasses.MISSING else dataclasses.field(default_factory=f.default_factory)
        fields.append((f.name, hints[f.name], default))
    return dataclasses.make_dataclass(f"{cls.__name__}Node", fields)


def model_settings_node() -> type:
    """The ``model`` group's node: the tracking-head fields of TrackerConfig (input size, softmax
    temperature, argmax radius, query chunk, head formulation)."""
    from chrono.models.tracker import TrackerConfig

    return _settings_node(TrackerConfig, leave_out=("backbone", "adapter"))


def kubric_node(options_cls) -> type:
    """The schema of ``python -m chrono.data.kubric``: its command options (values in conf/kubric.yaml) and the
    fields of ConvertOptions (grid stride, seed) with their defaults."""
    import typing as t

    from omegaconf import MISSING

    command = [("src", str, MISSING), ("out", str, MISSING), ("workers", int, MISSING),
               ("splits", t.Optional[t.List[str]], MISSING), ("compression", t.Optional[str], MISSING),
               ("progress", bool, MISSING), ("part", int, MISSING), ("parts", int, MISSING)]
    base = _settings_node(options_cls)
    return dataclasses.make_dataclass("KubricCommandNode", command, bases=(base,))


def register() -> None:
    """Register the OmegaConf resolvers and the ConfigStore nodes (idempotent)."""
    global _REGISTERED
    from chrono import dist

    dist.register_resolvers()
    if _REGISTERED:
        return
    from hydra.core.config_store import ConfigStore

    from chrono.kubric.convert import ConvertOptions
    from chrono.models.tracker import AdapterConfig

    store = ConfigStore.instance()
    store.store(group="adapter", name="base", node=_settings_node(AdapterConfig))
    store.store(group="model", name="base", node=model_settings_node())
    store.store(name="kubric_base", node=kubric_node(ConvertOptions))
    _REGISTERED = True
