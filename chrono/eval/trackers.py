"""The trackers an evaluation can run, by name: ``chrono`` (from a checkpoint), ``zero_motion`` and
``predictions`` (a folder of another tracker's outputs, :mod:`chrono.eval.predictions`)."""

from __future__ import annotations

from typing import Any, Mapping

from chrono.errors import ConfigError


def make_tracker(tracker_cfg: Mapping[str, Any], checkpoint: str | None, device: str,
                 predictions: str | None = None, trusted: bool = False,
                 runtime: Mapping[str, Any] | None = None) -> Any:
    """The tracker named by ``tracker_cfg.name`` (conf/tracker/): ``zero_motion``, ``predictions`` (the
    ``<video>.npz`` files in the folder ``predictions``), or ``chrono`` from ``checkpoint`` (the other non-null
    entries of ``tracker_cfg`` go to :func:`chrono.load_tracker` as overrides; ``trusted``: see
    :func:`chrono.checkpoint.read_checkpoint`). ``runtime``: for ``chrono``, the settings ``runtime``,
    ``onnx_model``, ``precision`` and ``device`` (unresolved) of :func:`chrono.deploy.runtime.open_tracker`
    (``runtime=onnx``: the exported model in ONNX Runtime); the other trackers ignore them. Every tracker follows
    :class:`chrono.interfaces.PointTracker`."""
    name = tracker_cfg["name"]
    if name == "zero_motion":
        from chrono.eval.baselines import ZeroMotionTracker

        return ZeroMotionTracker()
    if name == "predictions":
        from chrono.eval.predictions import PredictionsTracker

        if not predictions:
            raise ConfigError("tracker=predictions needs a folder: give predictions=DIR (one <video>.npz per video "
                              "with tracks [N, T, 2] and occluded [N, T]; docs/evaluation.md)")
        return PredictionsTracker(predictions)
    if name == "chrono":
        import chrono
        from chrono.deploy.runtime import open_tracker

        overrides = {k: v for k, v in tracker_cfg.items() if k not in ("name", "checkpoint") and v is not None}

        def load_torch():
            if not checkpoint:
                raise ConfigError(
                    "tracker=chrono needs a checkpoint: give checkpoint=/path/to/model.ckpt (an official Chrono "
                    ".ckpt, a DINOv2 *_pretrain.pth or a chrono.train checkpoint; runtime=onnx reads onnx_model=)"
                )
            return chrono.load_tracker(checkpoint, device=device, trusted=trusted, **overrides)

        settings = {"runtime": "torch", "onnx_model": None, "precision": "fp32", "device": device, **(runtime or {})}
        return open_tracker(settings["runtime"], settings["onnx_model"], settings["precision"], settings["device"],
                            overrides, load_torch)
    raise ConfigError(f"tracker={name}: unknown tracker; expected chrono, zero_motion or predictions")
