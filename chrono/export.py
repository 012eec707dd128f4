"""Export the tracker to ONNX: ``python -m chrono.export checkpoint=... out=chrono.onnx resolution=[256,256]``.

Writes the whole reference forward (inputs ``video`` float32 [B, T, H, W, 3] in [-1, 1] and ``query_points``
float32 [B, N, 3] (t, y, x) in its pixels; outputs ``tracks`` [B, N, T, 2] (x, y), ``occlusion`` and
``expected_dist`` [B, N, T] logits, exactly ``tracker(video, query_points)``) and its streaming parts beside it
(``<stem>.features.onnx``: a window of frames -> features; ``<stem>.queries.onnx``: features + query points ->
query features; ``<stem>.head.onnx``: features + query points + query features -> the outputs). B, T and N are
dynamic; H, W are fixed (``resolution=``), the ViT's input size is the checkpoint's (``tracker.input_size=`` to
change it). Before anything is written the graphs run in ONNX Runtime on a random clip and must reproduce
PyTorch (chrono/deploy/export.py); ``precision=int8`` adds the int8 model and prints what it costs there.

Use: ``python -m chrono.track ... runtime=onnx onnx_model=chrono.onnx``, ``python -m chrono.evaluate ...
runtime=onnx onnx_model=chrono.onnx``, or ONNX Runtime directly (docs/deploy.md). Options: conf/export.yaml.
"""

from __future__ import annotations

import time

from chrono.cli import hydra_command
from chrono.config import register
from chrono.errors import ConfigError
from chrono.progress import Progress

register()


@hydra_command("export", prog="chrono.export")
def main(cfg):
    """Export, check and write the model; the :class:`chrono.deploy.export.ExportReport`."""
    from pathlib import Path

    from hydra.utils import to_absolute_path

    import chrono
    from chrono.deploy.bundle import PRECISIONS
    from chrono.deploy.export import export_bundle

    if not cfg.checkpoint:
        raise ConfigError("checkpoint= is required: an official Chrono .ckpt, a DINOv2 *_pretrain.pth or a "
                          "chrono.train checkpoint")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision={cfg.precision}: expected one of {', '.join(PRECISIONS)}")
    if len(cfg.resolution) != 2:
        raise ConfigError(f"resolution={list(cfg.resolution)}: expected [H, W]")
    say = Progress("chrono.export", enabled=cfg.progress).say
    checkpoint = Path(to_absolute_path(cfg.checkpoint))
    overrides = {k: v for k, v in cfg.tracker.items() if k not in ("name", "query_chunk_size") and v is not None}
    tracker = chrono.load_tracker(checkpoint, device="cpu", trusted=cfg.trust_checkpoint, **overrides)
    say(f"{checkpoint}: backbone {type(tracker.cfg.backbone).__name__}, {len(tracker.adapter)} adapters, input "
        f"{tracker.cfg.input_size}; exporting for {cfg.resolution[0]} x {cfg.resolution[1]} videos")
    start = time.perf_counter()
    report = export_bundle(tracker, Path(to_absolute_path(cfg.out)), tuple(cfg.resolution), int(cfg.opset),
                           str(cfg.attention), cfg.precision == "int8", checkpoint.name, int(cfg.seed), cfg.threads,
                           say)
    for name, dev in report.checks.items():
        print(f"check {name}: {dev.brief()}")
    for paths in (report.paths, report.int8_paths or {}):
        for path in paths.values():
            print(f"wrote {path} ({report.sizes[path.name] / 1e6:.1f} MB)")
    print(f"exported in {time.perf_counter() - start:.0f} s (opset {report.info.opset}, attention "
          f"{report.info.attention}, video {report.info.resolution[0]} x {report.info.resolution[1]}, T and N dynamic)")
    return report


if __name__ == "__main__":
    main()
