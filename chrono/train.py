"""Train Chrono: ``python -m chrono.train`` (plain PyTorch, Hydra-composed, DDP through torchrun).

    python -m chrono.train backbone=vitb backbone.pretrained=checkpoints/dinov2_vitb14_pretrain.pth \\
        dataset=kubric dataset.root=/data/movi_e_shards              # the paper's recipe: experiment=chrono_vitb
    python -m chrono.train experiment=cpu_synthetic                   # what `make train` runs
    torchrun --nproc_per_node=8 -m chrono.train experiment=chrono_vitb   # DDP (gloo on CPU, NCCL on GPU)
    python -m chrono.train -m adapter=chrono,none experiment=smoke    # a sweep: one MLflow parent run

The loop reads top to bottom: build the tracker, the optimizer and the data; resume if asked; then for
every step accumulate gradients over micro-batches, clip, skip the step if the gradient is not finite,
step the optimizer and the one-cycle schedule; log, validate and checkpoint on their intervals. Only rank 0
writes (checkpoints, MLflow, result files); every rank takes part in validation (videos are split).
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from chrono import dist
from chrono.checkpoint import tracker_from_config
from chrono.losses import tracking_loss
from chrono.optim import build_optimizer
from chrono.progress import ProgressMeter
from chrono.train_state import Progress, load_training_checkpoint, save_training_checkpoint

VAL_METRIC_NAMES = {"average_jaccard": "AJ", "average_pts_within_thresh": "delta_avg", "occlusion_accuracy": "OA"}


def log(text: str) -> None:
    if dist.is_main_process():
        print(text, file=sys.stderr, flush=True)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device(f"cuda:{dist.info().local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA only: on CPU bf16 is ~8x slower than fp32, so ``auto`` means fp32 there."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def find_resume_checkpoint(resume: str | None, run_root: Path) -> Path | None:
    """``resume``: null (start fresh), ``auto`` (the newest ``last.ckpt`` of this run name, if any), or a path."""
    if not resume:
        return None
    if resume != "auto":
        path = Path(hydra.utils.to_absolute_path(resume))
        if not path.is_file():
            raise FileNotFoundError(f"resume={resume}: no such checkpoint")
        return path
    found = sorted(run_root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def validation_benchmark(cfg: DictConfig) -> DictConfig:
    """``val.benchmark``, or DAVIS strided when ``paths.davis`` is set and ``val.davis_when_available`` (the
    reference validates on DAVIS)."""
    if cfg.val.davis_when_available and cfg.paths.get("davis"):
        davis = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "benchmark" / "davis.yaml")
        davis.path, davis.query_mode = cfg.paths.davis, "strided"
        return davis
    return cfg.val.benchmark


def evaluate_on(tracker, bench: DictConfig, path: Path, query_mode: str, max_videos: int | None):
    """``tracker`` on the benchmark config ``bench`` (stored at ``path``) in ``query_mode``, quietly; every
    rank takes its share of the videos and gets the whole result (chrono.evaluate.evaluate_benchmark)."""
    from chrono.evaluate import evaluate_benchmark

    return evaluate_benchmark(tracker, bench.name, bench.format, path, query_mode,
                              resolution=tuple(bench.resolution), max_videos=max_videos, progress=None)


def validate(model, cfg: DictConfig, bench: DictConfig, benchmark_path: Path) -> dict[str, float]:
    """Benchmark means of the current model on the validation benchmark (all ranks share the videos)."""
    was_training = model.training
    model.eval()
    result = evaluate_on(model, bench, benchmark_path, bench.query_mode, cfg.val.max_videos)
    model.train(was_training)
    return result.means


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """The body of ``python -m chrono.train`` writing into ``run_dir``; returns the run's results (every rank)."""
    from chrono import tracking
    from chrono.data.loader import build_train_loader
    from chrono.evaluate import benchmark_path

    if cfg.backbone.get("require_pretrained") and not cfg.backbone.pretrained:
        raise ValueError(f"experiment {cfg.name}: backbone.pretrained is required (the DINOv2 *_pretrain.pth of "
                         f"backbone {cfg.backbone.name}, e.g. backbone.pretrained=checkpoints/dinov2_{cfg.backbone.name}14_pretrain.pth)")
    where = dist.info()
    device = resolve_device(cfg.device)
    amp_dtype = autocast_dtype(cfg.precision, device)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    seed_everything(cfg.seed + where.rank)

    # ---- model, optimizer
    model = tracker_from_config(cfg.backbone, cfg.adapter).to(device)
    model.freeze_backbone(cfg.backbone.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = build_optimizer(params, cfg.optim, cfg.steps)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    progress = Progress()
    resume_from = find_resume_checkpoint(cfg.resume, run_dir.parent)
    if resume_from is not None:
        progress = load_training_checkpoint(resume_from, model, optimizer, scheduler, scaler)
        log(f"resumed from {resume_from} at step {progress.step}")
    elif cfg.resume == "auto":
        log("resume=auto: no earlier checkpoint of this run name, starting fresh")
    ddp_model = model
    if where.world_size > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    # ---- data: the loader is positioned at the first micro-batch this run has not yet consumed
    accum = int(cfg.grad_accum)
    loader = build_train_loader(
        cfg.dataset, rank=where.rank, world_size=where.world_size, seed=cfg.seed, start_batch=progress.step * accum
    )
    batches = iter(loader)
    clips_per_step = cfg.dataset.batch_size * accum * where.world_size
    val_bench = validation_benchmark(cfg)
    val_path = benchmark_path(val_bench, hydra.utils.to_absolute_path) if cfg.val.every or cfg.final_eval else None

    # ---- MLflow (rank 0)
    run = None
    if where.is_main and cfg.mlflow.enabled:
        run = tracking.start_run(
            cfg.mlflow.experiment, run_name=cfg.name,
            tags={"run_dir": str(run_dir), "world_size": where.world_size},
            parent_run_id=tracking.parent_run_id(tracking.hydra_sweep_dir()),
        )
        run.log_params(tracking.flatten_config(cfg))
        config_file = run_dir / ".hydra" / "config.yaml"
        if config_file.is_file():
            run.log_artifact(config_file, "hydra")

    ckpt_dir = run_dir / "checkpoints"

    def save(name: str) -> None:
        if where.is_main:
            save_training_checkpoint(ckpt_dir / name, model, optimizer, scheduler, scaler, progress, resolved)

    # stop_after: end this invocation early (time-sliced cluster jobs); the schedule still spans cfg.steps
    end_step = cfg.steps if cfg.stop_after is None else min(cfg.steps, progress.step + int(cfg.stop_after))
    meter = ProgressMeter(cfg.steps, progress.step)
    log(f"training {cfg.name}: {sum(p.numel() for p in params):,} trainable parameters, {cfg.steps} steps of "
        f"{clips_per_step} clips, device {device}, precision {amp_dtype or torch.float32}, world {where.world_size}")
    model.train()
    window: dict[str, float] = {}
    last_val: dict[str, float] = {}
    while progress.step < end_step:
        optimizer.zero_grad(set_to_none=True)
        terms_sum: dict[str, float] = {}
        for micro in range(accum):
            batch = to_device(next(batches), device)
            sync = micro == accum - 1 or where.world_size == 1
            with (contextlib.nullcontext() if sync else ddp_model.no_sync()):
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    output = ddp_model(batch["video"], batch["query_points"])
                loss, terms = tracking_loss({k: v.float() for k, v in output.items()}, batch, **cfg.loss)
                scaler.scale(loss / accum).backward()
            for k, v in {"loss": loss, **terms}.items():
                terms_sum[k] = terms_sum.get(k, 0.0) + v.item() / accum
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        if torch.isfinite(grad_norm):
            scaler.step(optimizer)
        else:  # the reference zeroes non-finite gradients; we skip the whole update and count it
            progress.skipped += 1
            log(f"step {progress.step}: non-finite gradient norm, update skipped ({progress.skipped} so far)")
        scaler.update()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        progress.step += 1
        step = progress.step

        for k, v in terms_sum.items():
            window[k] = window.get(k, 0.0) + v
        window["n"] = window.get("n", 0) + 1
        if step % cfg.log_every == 0 or step == end_step:
            n = window.pop("n")
            means = dist.mean_over_ranks({k: v / n for k, v in window.items()})
            rate = meter.interval_rate(step) * clips_per_step
            if where.is_main:
                meter.line(step, f"loss {means['loss']:.4f} (pos {means['position']:.4f} occ {means['occlusion']:.4f} "
                                 f"expd {means['expected_dist']:.4f}) lr {lr:.2e} |g| {grad_norm.item():.3f} "
                                 f"{rate:.2f} clips/s")
            if run is not None:
                run.log_metrics({**{f"train/{k}": v for k, v in means.items()}, "train/lr": lr,
                                 "train/grad_norm": float(grad_norm), "train/skipped_steps": progress.skipped,
                                 "train/clips_per_s": rate}, step=step)
            window = {}

        if cfg.val.every and (step % cfg.val.every == 0 or step == cfg.steps):
            last_val = validate(model, cfg, val_bench, val_path)
            score = last_val[cfg.val.monitor]
            improved = progress.best is None or score > progress.best
            progress.best = score if improved else progress.best
            log(f"step {step}: validation {val_bench.name}/{val_bench.query_mode} "
                + " ".join(f"{label} {100 * last_val[k]:.1f}" for k, label in VAL_METRIC_NAMES.items())
                + (" (best)" if improved else ""))
            if run is not None:
                run.log_metrics({f"val/{k}": last_val[k] for k in VAL_METRIC_NAMES}, step=step)
                log_track_picture(run, model, val_bench, val_path, step, run_dir)
            if improved:
                save("best.ckpt")
        if step % cfg.checkpoint_every == 0 or step == end_step:
            save("last.ckpt")

    result = {"steps": progress.step, "skipped_steps": progress.skipped, **{f"val/{k}": v for k, v in last_val.items()}}
    if cfg.final_eval and progress.step == cfg.steps:
        result.update(final_evaluation(model, cfg, val_bench, val_path, run, run_dir))
    if where.is_main:
        from chrono.results import write_json_atomic

        write_json_atomic(run_dir / "results.json", result)
        log(f"checkpoints: {ckpt_dir}")
    if run is not None:
        run.end()
    del ddp_model, model, optimizer, batches, loader
    gc.collect()
    return result


def initial_model(cfg: DictConfig, device: torch.device):
    """The model exactly as this run's training began (rank 0's seed, same construction), in eval mode:
    random weights for a backbone trained from scratch, plain DINOv2 plus identity adapters otherwise."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = tracker_from_config(cfg.backbone, cfg.adapter)
    return model.to(device).eval()


def final_evaluation(model, cfg: DictConfig, bench: DictConfig, path: Path, run, run_dir: Path) -> dict[str, float]:
    """The trained tracker beside the same model untrained (``final_eval_untrained``) and the zero-motion
    floor on the validation benchmark, both query modes (its first ``final_eval_videos`` videos; all when null).

    Prints the table (percent), writes ``final_eval.md`` / ``.csv`` in the run folder and logs it to MLflow;
    returns its figures as ``final/<benchmark>/<query mode>/<tracker>/<AJ|delta_avg|OA>`` (percent), the
    names of both MLflow and results.json.
    """
    from chrono.baselines import ZeroMotionTracker
    from chrono.evaluate import summary_row
    from chrono.results import table_csv, table_markdown, write_text_atomic

    model.eval()
    trackers = [(cfg.name, model)]
    if cfg.final_eval_untrained:
        trackers.append(("untrained", initial_model(cfg, next(model.parameters()).device)))
    trackers.append(("zero_motion", ZeroMotionTracker()))
    rows = []
    for query_mode in ("strided", "first"):
        for label, tracker in trackers:
            rows.append(summary_row(evaluate_on(tracker, bench, path, query_mode, cfg.final_eval_videos), label))
    if dist.is_main_process():
        markdown = table_markdown(rows)
        log(f"final evaluation on {bench.name} ({path}):\n{markdown}")
        write_text_atomic(run_dir / "final_eval.md", markdown)
        write_text_atomic(run_dir / "final_eval.csv", table_csv(rows))
        if run is not None:
            run.log_table(rows, "final_eval.json")
            run.log_artifact(run_dir / "final_eval.md")
    figures = {f"final/{r['benchmark']}/{r['tracker']}/{name}": r[k]
               for r in rows for k, name in (("AJ", "AJ"), ("<δ^x_avg", "delta_avg"), ("OA", "OA"))}
    if run is not None:
        run.log_metrics(figures)
    return figures


def log_track_picture(run, model, bench: DictConfig, path: Path, step: int, run_dir: Path) -> None:
    """Tracks of the first validation video drawn on its first frame, logged as an MLflow image artifact."""
    from chrono.data.tapvid import decode_entry, iter_entries, sample_queries
    from chrono.visualize import draw_summary

    entry = next(iter(iter_entries(bench.format, path)))
    video = decode_entry(entry, tuple(bench.resolution))
    queries = sample_queries(video, bench.query_mode)
    was_training = model.training
    model.eval()
    out = model.predict(video.video[None], queries.query_points[None][:, :64], resolution=video.video.shape[1:3])
    model.train(was_training)
    path = run_dir / "pictures" / f"tracks_step{step:07d}.png"
    draw_summary(video.video, out["tracks"][0].cpu().numpy(), out["occluded"][0].cpu().numpy(), path)
    run.log_artifact(path, "pictures")


dist.register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    from hydra.core.hydra_config import HydraConfig

    with dist.distributed():
        return train(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
