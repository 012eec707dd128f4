"""Train Chrono: ``python -m chrono.train`` (plain PyTorch, Hydra-composed, DDP through torchrun).

    python -m chrono.train backbone=vitb backbone.pretrained=checkpoints/dinov2_vitb14_pretrain.pth \\
        dataset=kubric dataset.root=/data/movi_e_shards              # the paper's recipe: experiment=chrono_vitb
    python -m chrono.train experiment=cpu_synthetic                   # what `make train` runs
    torchrun --nproc_per_node=8 -m chrono.train experiment=chrono_vitb   # DDP (gloo on CPU, NCCL on GPU)
    python -m chrono.train -m adapter=chrono,none experiment=smoke    # a sweep: one MLflow parent run

The loop reads top to bottom: build the tracker, the optimizer and the data; resume if asked; then for
every step accumulate gradients over micro-batches, clip, skip the step if the gradient is not finite
(``optim.nonfinite: skip``; ``zero_nan``: zero NaN gradients and step, as the reference), step the optimizer and the one-cycle schedule; log, validate and checkpoint on their intervals. Only rank 0
writes (checkpoints, MLflow, result files); every rank takes part in validation (videos are split).
"""

from __future__ import annotations

import contextlib
import gc
import signal
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from chrono import dist, mlflow_runs
from chrono.checkpoint import dinov2_file, tracker_from_config
from chrono.cli import hydra_command
from chrono.config import register
from chrono.data.loader import build_train_loader
from chrono.errors import ConfigError
from chrono.eval.benchmark import benchmark_path
from chrono.files import remove_stale_temps, write_json_atomic
from chrono.losses import tracking_loss
from chrono.metrics import TABLE_LABELS
from chrono.models.backbones import backbone_config, is_vit
from chrono.progress import Progress
from chrono.training.optim import build_optimizer
from chrono.precision import EVAL_PRECISIONS, autocast, autocast_dtype
from chrono.training.runtime import (check_settings, find_resume_checkpoint, resolve_device, seed_everything,
                                     to_device, zero_nan_gradients)
from chrono.training.state import TrainState, load_training_checkpoint, save_training_checkpoint
from chrono.training.stopping import GracefulStop, Stopped
from chrono.training.validation import (final_evaluation, log_track_picture, validate, validation_benchmark,
                                        validation_line)

register()


def build_model(cfg: DictConfig):
    """The tracker of a training config: ``backbone``, ``adapter`` and ``model`` (head) groups."""
    return tracker_from_config(cfg.backbone, cfg.adapter, cfg.model, trusted=cfg.trust_checkpoint)


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """The body of ``python -m chrono.train`` writing into ``run_dir``; returns the run's results (every rank).

    Raises :class:`~chrono.training.stopping.Stopped` after writing ``last.ckpt`` when a stop signal
    (SIGTERM, SIGUSR1/2, Ctrl-C) arrived during training.
    """
    check_settings(cfg)
    # require_pretrained concerns the DINOv2 backbones: the CNN baselines of a paper table train from scratch
    if cfg.backbone.get("require_pretrained") and not cfg.backbone.pretrained and is_vit(backbone_config(cfg.backbone.name)):
        raise ConfigError(f"experiment {cfg.name}: backbone.pretrained is required (the DINOv2 *_pretrain.pth of "
                          f"backbone {cfg.backbone.name}, e.g. backbone.pretrained=checkpoints/{dinov2_file(cfg.backbone.name)}, "
                          f"or the folder holding it)")
    where = dist.info()
    say = Progress("train", enabled=where.is_main).say
    device = resolve_device(cfg.device)
    amp_dtype = autocast_dtype(cfg.precision, device)
    val_dtype = autocast_dtype(cfg.val.precision, device, EVAL_PRECISIONS, "val.precision")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    seed_everything(cfg.seed + where.rank)
    ckpt_dir = run_dir / "checkpoints"

    # ---- model, optimizer
    model = build_model(cfg).to(device)
    model.freeze_backbone(cfg.backbone.freeze)
    if where.world_size > 1 and device.type == "cuda":
        # TSM-ResNet's BatchNorm over every GPU's clips, as TAP-Net syncs it (in place; a no-op without
        # BatchNorm). SyncBatchNorm has no CPU kernels, so gloo runs keep per-process statistics.
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = build_optimizer(params, cfg.optim, cfg.steps)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    progress = TrainState()
    resume_from = find_resume_checkpoint(cfg.resume, run_dir.parent, hydra.utils.to_absolute_path)
    if where.is_main:  # what a hard kill (SIGKILL) left half-written: the run's own temporary files
        for folder in {ckpt_dir, *([resume_from.parent] if resume_from else [])}:
            for leftover in remove_stale_temps(folder):
                say(f"removed {leftover} (a checkpoint write interrupted by a hard kill)")
    if resume_from is not None:
        progress = load_training_checkpoint(resume_from, model, optimizer, scheduler, scaler, resolved,
                                            cfg.trust_checkpoint)
        say(f"resumed from {resume_from} at step {progress.step}")
    elif cfg.resume == "auto":
        say("resume=auto: no earlier checkpoint of this run name, starting fresh")
    ddp_model = model
    if where.world_size > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    # ---- data (every shard checked before step 1): positioned at the first micro-batch not yet consumed
    accum = int(cfg.grad_accum)
    loader = build_train_loader(cfg.dataset, rank=where.rank, world_size=where.world_size, seed=cfg.seed,
                                start_batch=progress.step * accum, check=True, batches_per_step=accum)
    batches = iter(loader)
    clips_per_step = cfg.dataset.batch_size * accum * where.world_size
    val_bench = validation_benchmark(cfg)
    val_path = benchmark_path(val_bench, hydra.utils.to_absolute_path) if cfg.val.every or cfg.final_eval else None

    # ---- MLflow (rank 0): the run ends FINISHED, KILLED (stop signal, Ctrl-C) or FAILED (any error)
    run = None
    if where.is_main and cfg.mlflow.enabled:
        run = mlflow_runs.start_run(
            cfg.mlflow.experiment, run_name=cfg.name,
            tags={"run_dir": str(run_dir), "world_size": where.world_size},
            parent_run_id=mlflow_runs.parent_run_id(mlflow_runs.hydra_sweep_dir()),
        )
    with run if run is not None else contextlib.nullcontext(), GracefulStop() as stop:
        if run is not None:
            run.log_params(mlflow_runs.flatten_config(cfg))
            config_file = run_dir / ".hydra" / "config.yaml"
            if config_file.is_file():
                run.log_artifact(config_file, "hydra")

        def save(name: str) -> None:
            if where.is_main:
                save_training_checkpoint(ckpt_dir / name, model, optimizer, scheduler, scaler, progress, resolved)

        # stop_after: end this invocation early (time-sliced cluster jobs); the schedule still spans cfg.steps
        end_step = cfg.steps if cfg.stop_after is None else min(cfg.steps, progress.step + int(cfg.stop_after))
        meter = Progress("train", total=cfg.steps, unit="step", start=progress.step, enabled=where.is_main)
        say(f"training {cfg.name}: {sum(p.numel() for p in params):,} trainable parameters, {cfg.steps} steps of "
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
                    with autocast(device, amp_dtype):
                        output = ddp_model(batch["video"], batch["query_points"])
                    loss, terms = tracking_loss({k: v.float() for k, v in output.items()}, batch, **cfg.loss)
                    scaler.scale(loss / accum).backward()
                for k, v in {"loss": loss, **terms}.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + v.item() / accum
            scaler.unscale_(optimizer)
            zero_nan = cfg.optim.nonfinite == "zero_nan"
            if zero_nan and zero_nan_gradients(params):  # the reference: NaN gradients zeroed, the step happens
                progress.zeroed += 1
                say(f"step {progress.step}: NaN gradients zeroed before the update ({progress.zeroed} steps so far)")
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            if zero_nan or torch.isfinite(grad_norm):
                scaler.step(optimizer)
            else:  # optim.nonfinite: skip (the default): no update, counted
                progress.skipped += 1
                say(f"step {progress.step}: non-finite gradient norm, update skipped ({progress.skipped} so far)")
            scaler.update()
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            progress.step += 1
            step = progress.step

            for k, v in terms_sum.items():
                window[k] = window.get(k, 0.0) + v
            window["n"] = window.get("n", 0) + 1
            stopping = dist.any_rank(stop.requested)
            if step % cfg.log_every == 0 or step == end_step or stopping:
                n = window.pop("n")
                means = dist.mean_over_ranks({k: v / n for k, v in window.items()})
                rate = meter.update(step, f"loss {means['loss']:.4f} (pos {means['position']:.4f} "
                                          f"occ {means['occlusion']:.4f} expd {means['expected_dist']:.4f}) "
                                          f"lr {lr:.2e} |g| {grad_norm.item():.3f}") * clips_per_step
                if run is not None:
                    run.log_metrics({**{f"train/{k}": v for k, v in means.items()}, "train/lr": lr,
                                     "train/grad_norm": float(grad_norm), "train/skipped_steps": progress.skipped,
                                     "train/nan_zeroed_steps": progress.zeroed,
                                     "train/clips_per_s": rate}, step=step)
                window = {}
            if stopping:
                save("last.ckpt")
                dist.barrier()
                stop.hand_over()  # under submitit: its requeue, now that the checkpoint is written
                raise Stopped(stop.signum or signal.SIGTERM, step, ckpt_dir / "last.ckpt")

            if cfg.val.every and (step % cfg.val.every == 0 or step == cfg.steps):
                last_val = validate(model, val_bench, val_path, cfg.val.max_videos, val_dtype)
                score = last_val[cfg.val.monitor]
                improved = progress.best is None or score > progress.best
                progress.best = score if improved else progress.best
                meter.say(validation_line(step, val_bench, last_val, improved))
                if run is not None:
                    run.log_metrics({f"val/{k}": last_val[k] for k in TABLE_LABELS}, step=step)
                    log_track_picture(run, model, val_bench, val_path, step, run_dir)
                if improved:
                    save("best.ckpt")
            if step % cfg.checkpoint_every == 0 or step == end_step:
                save("last.ckpt")

        result = {"steps": progress.step, "skipped_steps": progress.skipped, "nan_zeroed_steps": progress.zeroed,
                  **{f"val/{k}": v for k, v in last_val.items()}}
        if cfg.final_eval and progress.step == cfg.steps:
            untrained = initial_model(cfg, device) if cfg.final_eval_untrained else None
            result.update(final_evaluation(model, cfg, val_bench, val_path, run, run_dir, untrained, meter.say,
                                           val_dtype))
        if where.is_main:
            write_json_atomic(run_dir / "results.json", result)
            say(f"checkpoints: {ckpt_dir}")
    del ddp_model, model, optimizer, batches, loader
    gc.collect()
    return result


def initial_model(cfg: DictConfig, device: torch.device):
    """The model exactly as this run's training began (rank 0's seed, same construction), in eval mode:
    random weights for a backbone trained from scratch, plain DINOv2 plus identity adapters otherwise."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg)
    return model.to(device).eval()


def resume_command() -> str:
    """This run's command line with ``resume=auto`` (what continues it after a stop)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("resume=")]
    launcher = "torchrun ... -m chrono.train" if dist.launched_by_torchrun() else "python -m chrono.train"
    return " ".join([launcher, *overrides, "resume=auto"])


@hydra_command("train", prog="chrono.train")
def main(cfg: DictConfig) -> Any:
    """One training run (or one job of a sweep) into Hydra's run folder."""
    from hydra.core.hydra_config import HydraConfig

    with dist.distributed():
        try:
            return train(cfg, Path(HydraConfig.get().runtime.output_dir))
        except Stopped as stopped:
            if dist.is_main_process():
                print(f"chrono.train: {stopped}; {stopped.checkpoint} written; continue with: {resume_command()}",
                      file=sys.stderr, flush=True)
            code = stopped.exit_code
    raise SystemExit(code)


if __name__ == "__main__":
    main()
