"""The benchmark cases of ``chrono.bench``; each runs in a fresh process (see :func:`run_case`).

A case is a plain dict (JSON-able) with a ``kind``:
- ``yardstick``: square matmul GFLOP/s (fp32 on CPU, bf16 on CUDA);
- ``backbone``: the DINOv2 ViT alone on ``frames`` images of ``input_size``^2;
- ``tracker``: the whole tracker forward (features + head) on one clip, inference;
- ``head``: one head formulation on precomputed features ([1, T, grid, grid, channels]), called per
  ``query_chunk`` queries like the tracker does (None: the head's default chunk);
- ``train``: one optimisation step of the reference recipe (forward, loss, backward, grad-norm clip 1.0,
  AdamW + OneCycleLR; bf16 autocast on CUDA) with DINOv2 frozen, on random clips;
- ``runtime``: the whole tracker forward like ``tracker``, in one ``runtime``: ``torch`` (PyTorch eager, the
  fast head), ``onnx`` (its ONNX export's whole-forward graph in ONNX Runtime) or ``onnx-int8`` (the same with
  int8 linear layers, :mod:`chrono.deploy.quantize`). The model is exported once per run into the run's
  ``model_dir`` (not timed; ``export_s``), and every case reports its answer's deviation from PyTorch's.
Every case reports ``time_s`` (best of ``repeats`` after a warm-up) and ``peak_mb`` (the peak tensor
memory of its first run above what was held before it; ``rss_peak_mb`` the same for the process's
resident set on Linux CPUs).
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

import chrono
from chrono.cli import compose
from chrono.perf.measure import PeakMemory, clip_flops, matmul_yardstick, time_runs, vit_flops_per_frame
from chrono.losses import tracking_loss
from chrono.models import head as heads
from chrono.models.accelerate import accelerate
from chrono.models.tracker import ChronoTracker
from chrono.models.backbones import backbone_config
from chrono.models.vit import DinoVisionTransformer
from chrono.training.optim import build_optimizer

VIDEO_SIZE = 256  # clips are 256 x 256 like the benchmarks and the training data (the tracker resizes them)


def _measure(fn, device: torch.device, repeats: int) -> dict:
    """Peak memory of a first (cold) run, then the timed runs."""
    with PeakMemory(device) as mem:
        fn()
    out = time_runs(fn, device, repeats)
    out["peak_mb"] = mem.peak_bytes / 2**20
    out["memory_method"] = mem.method
    if mem.rss_peak_bytes is not None:
        out["rss_peak_mb"] = mem.rss_peak_bytes / 2**20
    return out


def _queries(frames: int, count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """[1, count, 3] (t, y, x) query points uniformly spread over a clip of ``size`` x ``size`` pixels."""
    t = torch.randint(0, frames, (1, count, 1), generator=generator).float()
    yx = torch.rand(1, count, 2, generator=generator) * size
    return torch.cat((t, yx), dim=-1)


def _tracker(case: dict, device: torch.device) -> ChronoTracker:
    tracker = chrono.load_tracker(
        None,
        device=device,
        backbone=case["backbone"],
        input_size=case["input_size"],
        head=case.get("head", "fast"),
        query_chunk_size=case.get("query_chunk"),
    )
    for adapter in tracker.adapter:  # fresh adapters are the identity; give them real work to do
        torch.nn.init.normal_(adapter.conv2.weight, std=1e-3)
    if case.get("accelerate"):
        accelerate(tracker, compile=case.get("compile", False))
    return tracker


def run_yardstick(case: dict, device: torch.device) -> dict:
    return matmul_yardstick(device, case["size"], case.get("repeats", 5))


@torch.no_grad()
def run_backbone(case: dict, device: torch.device) -> dict:
    cfg = backbone_config(case["backbone"])
    vit = DinoVisionTransformer(cfg).to(device).eval()
    size, frames = case["input_size"], case["frames"]
    images = torch.randn(frames, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(case.get("bf16")))

    def run():
        with autocast:
            return vit(images)

    out = _measure(run, device, case["repeats"])
    flops = frames * vit_flops_per_frame(cfg, size)
    out.update(flops=flops, gflops=flops / out["time_s"] / 1e9, frames_per_s=frames / out["time_s"])
    return out


def _tracker_and_clip(case: dict, device: torch.device) -> tuple[ChronoTracker, torch.Tensor, torch.Tensor]:
    """The case's tracker, a random clip [1, frames, 256, 256, 3] in [-1, 1] and [1, queries, 3] query points."""
    tracker = _tracker(case, device)
    g = torch.Generator().manual_seed(0)
    video = (torch.rand(1, case["frames"], VIDEO_SIZE, VIDEO_SIZE, 3, generator=g) * 2 - 1).to(device)
    return tracker, video, _queries(case["frames"], case["queries"], VIDEO_SIZE, g).to(device)


@torch.no_grad()
def run_tracker(case: dict, device: torch.device) -> dict:
    tracker, video, queries = _tracker_and_clip(case, device)
    frames, count = case["frames"], case["queries"]
    out = _measure(lambda: tracker(video, queries), device, case["repeats"])
    flops = clip_flops(tracker.cfg, frames, count)
    out.update(
        frames_per_s=frames / out["time_s"],
        points_per_s=count / out["time_s"],
        gflops=(flops.features + flops.cost_volume) / out["time_s"] / 1e9,
    )
    return out


@torch.no_grad()
def run_head(case: dict, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    frames, grid, channels, count = case["frames"], case["grid"], case["channels"], case["queries"]
    features = F.normalize(torch.randn(1, frames, grid, grid, channels, generator=g), dim=-1).to(device)
    # Queries that resemble real ones: features of random cells, slightly perturbed.
    t, y, x = (torch.randint(0, n, (count,), generator=g) for n in (frames, grid, grid))
    noise = 0.05 * torch.randn(count, channels, generator=g).to(device)
    query_features = F.normalize(features[0, t.to(device), y.to(device), x.to(device)] + noise, dim=-1)[None]
    head_fn = heads.get_head(case["head"])
    chunk = heads.query_chunk(case["head"], case.get("query_chunk"))

    def run():
        for s in range(0, count, chunk):
            head_fn(query_features[:, s : s + chunk], features, 20.0, 5.0)

    out = _measure(run, device, case["repeats"])
    out.update(
        query_chunk=case.get("query_chunk") or "default",
        resolved_chunk=chunk,
        point_frames_per_s=count * frames / out["time_s"],
        cost_volume_gflops=2.0 * count * frames * grid * grid * channels / out["time_s"] / 1e9,
    )
    return out


def run_train(case: dict, device: torch.device) -> dict:
    tracker = _tracker(case, device).train()
    tracker.freeze_backbone()  # DINOv2 is frozen in the reference recipe
    params = [p for p in tracker.parameters() if p.requires_grad]
    # The paper recipe's optimisation and loss (AdamW under OneCycleLR over 100k steps), from its config.
    recipe = compose("train", ["experiment=chrono_paper", "backbone.require_pretrained=false"])
    optimizer, scheduler = build_optimizer(params, recipe.optim, recipe.steps)
    g = torch.Generator().manual_seed(0)
    frames, count = case["frames"], case["queries"]
    batch = {
        "video": (torch.rand(1, frames, VIDEO_SIZE, VIDEO_SIZE, 3, generator=g) * 2 - 1).to(device),
        "target_points": (torch.rand(1, count, frames, 2, generator=g) * VIDEO_SIZE).to(device),
        "occluded": (torch.rand(1, count, frames, generator=g) < 0.2).to(device),
    }
    queries = _queries(frames, count, VIDEO_SIZE, g).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            output = tracker(batch["video"], queries)
        loss, _ = tracking_loss({k: v.float() for k, v in output.items()}, batch, **recipe.loss)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.optim.grad_clip)
        optimizer.step()
        scheduler.step()

    out = _measure(step, device, case["repeats"])
    out.update(frames_per_s=frames / out["time_s"], trainable_params=sum(p.numel() for p in params))
    return out


RUNTIMES = ("torch", "onnx", "onnx-int8")


def _runtime_model(case: dict, tracker: ChronoTracker) -> tuple[str, dict]:
    """The whole-forward ONNX file of the case's model (float32, or int8 for ``onnx-int8``) in ``model_dir``,
    exported (and quantized) by the first case that needs it; the seconds that took."""
    from pathlib import Path

    from chrono.deploy.bundle import int8_path
    from chrono.deploy.export import export_one, exportable
    from chrono.deploy.quantize import quantize_graph

    path = Path(case["model_dir"]) / f"{case['backbone']}-{case['input_size']}.onnx"
    spent = {}
    if not path.is_file():
        start = time.perf_counter()
        export_one(exportable(tracker), "full", path, (VIDEO_SIZE, VIDEO_SIZE), source="random weights")
        spent["export_s"] = time.perf_counter() - start
    if case["runtime"] == "onnx-int8":
        path8 = int8_path(path)
        if not path8.is_file():
            start = time.perf_counter()
            quantize_graph(path, path8)
            spent["quantize_s"] = time.perf_counter() - start
        path = path8
    return str(path), spent


@torch.no_grad()
def run_runtime(case: dict, device: torch.device) -> dict:
    from chrono.deploy.bundle import OUTPUTS
    from chrono.deploy.compare import deviation

    tracker, video, queries = _tracker_and_clip(case, device)
    frames, count = case["frames"], case["queries"]
    if case["runtime"] not in RUNTIMES:
        raise ValueError(f"unknown runtime {case['runtime']!r}; known: {RUNTIMES}")
    extra: dict = {}
    if case["runtime"] == "torch":
        run = lambda: tracker(video, queries)  # noqa: E731
    else:
        import onnxruntime as ort

        path, extra = _runtime_model(case, tracker)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the same threads as PyTorch's
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feeds = {"video": video.cpu().numpy(), "query_points": queries.cpu().numpy()}
        run = lambda: dict(zip(OUTPUTS, session.run(None, feeds)))  # noqa: E731
    out = _measure(run, device, case["repeats"])
    answer = run()
    if case["runtime"] != "torch":  # how far from PyTorch's answer (measured after the timed runs)
        out["deviation"] = deviation(tracker(video, queries), answer).as_dict()
    out.update(extra, frames_per_s=frames / out["time_s"], points_per_s=count / out["time_s"])
    return out


RUNNERS = {
    "yardstick": run_yardstick,
    "backbone": run_backbone,
    "tracker": run_tracker,
    "head": run_head,
    "train": run_train,
    "runtime": run_runtime,
}


def run_case(case: dict) -> dict:
    """Run one case in this process and return its measurements (the case's fields included)."""
    device = torch.device(case.get("device", "cpu"))
    if case["kind"] not in RUNNERS:
        raise ValueError(f"unknown benchmark case kind {case['kind']!r}; known: {sorted(RUNNERS)}")
    if case.get("threads"):
        torch.set_num_threads(int(case["threads"]))
    torch.manual_seed(0)
    load = os.getloadavg()[0]
    result = RUNNERS[case["kind"]](case, device)
    return {**case, **result, "threads": torch.get_num_threads(), "load_average_1min": load}
