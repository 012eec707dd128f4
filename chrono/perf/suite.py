"""The model speed suite of ``python -m chrono.bench``: its cases, running them, and the tables and targets.

Measures the machine's own matmul yardstick (fp32 GFLOP/s on CPU, bf16 on CUDA), the DINOv2 backbone's
achieved share of it (FLOPs counted analytically), tracker inference (frames/s, points/s), the tracking
head's two formulations side by side at the same query chunk (point-frames/s, peak memory), the
training step time, and the whole tracker in PyTorch eager beside ONNX Runtime, float32 and int8 (on the CPU,
when onnxruntime and onnxscript are installed: the export extra). Each case of the full mode runs in a fresh Python process (:mod:`chrono.perf.worker`)
so that its peak memory and allocator state are its own; figures are the best of the repeated runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chrono.files import write_json_atomic
from chrono.progress import Progress

RESULT_PREFIX = "BENCH_RESULT "

# The targets (CPU, T = 24, 64 x 64 grid).
HEAD_SPEEDUP_MIN = 4.0  # fast head point-frames/s over the reference's, at N >= 1024
HEAD_MEMORY_MAX = 0.25  # fast head peak memory over the reference's, same query chunk
HEAD_SHARE_MAX = 0.10  # fast head time over the backbone's, N = 256
BACKBONE_SHARE_MIN = 0.70  # ViT GFLOP/s over the matmul yardstick at 224 x 224, CPU fp32

# The head runs: each formulation at the reference's query chunk (64; like for like), and the fast head
# at its own default chunk (None: head.DEFAULT_QUERY_CHUNK, how the tracker runs it).
HEAD_VARIANTS = (("reference", 64), ("fast", 64), ("fast", None))


def onnx_missing() -> str | None:
    """Why the ONNX Runtime cases cannot run here (a missing package), or None when they can."""
    import importlib.util

    missing = [m for m in ("onnxruntime", "onnxscript", "onnx") if importlib.util.find_spec(m) is None]
    return f"{', '.join(missing)} not installed (pip install -e '.[export]')" if missing else None


def plan(mode: str, device: str, onnx: bool | None = None) -> list[dict]:
    """The cases of a run. ``ci``: tiny sizes (seconds); ``full``: the sizes the issue's targets name.
    ``onnx``: include the ONNX Runtime cases (None: when their packages are installed and the device is the CPU)."""
    cases: list[dict] = []
    onnx = (onnx_missing() is None and device == "cpu") if onnx is None else onnx

    def add(kind, **fields):
        cases.append({"kind": kind, "device": device, **fields})

    def add_runtimes(**fields):  # PyTorch eager, ONNX Runtime float32 and int8 on the same model and clip
        for runtime in ("torch", "onnx", "onnx-int8") if onnx else ():
            add("runtime", runtime=runtime, **fields)

    if mode == "ci":
        add("yardstick", size=1024, repeats=3)
        for size in (112, 224):
            add("backbone", backbone="tiny", input_size=size, frames=2, repeats=2)
        add("tracker", backbone="tiny", input_size=112, frames=4, queries=16, repeats=1)
        for name, chunk in HEAD_VARIANTS:
            add("head", head=name, frames=4, grid=16, channels=32, queries=64, query_chunk=chunk and 16, repeats=1)
        add("train", backbone="tiny", input_size=112, frames=4, queries=16, repeats=1)
        add_runtimes(backbone="tiny", input_size=112, frames=4, queries=16, repeats=2)
        return cases

    cuda = device == "cuda"
    add("yardstick", size=8192 if cuda else 2048, repeats=5)
    for name in ("vits", "vitb"):
        add("backbone", backbone=name, input_size=224, frames=32 if cuda else 8, repeats=3)
        add("backbone", backbone=name, input_size=896, frames=8 if cuda else 1, repeats=3 if cuda else 2)
        if cuda:
            add("backbone", backbone=name, input_size=896, frames=8, repeats=3, bf16=True)
    for name, chunk in HEAD_VARIANTS:
        for count in (256, 1024, 4096):
            add("head", head=name, frames=24, grid=64, channels=384, queries=count, query_chunk=chunk,
                repeats=5 if name == "fast" else 3)
    fast = {"accelerate": True} if cuda else {}
    for count in (256, 1024, 4096):
        add("tracker", backbone="vits", input_size=224, frames=24, queries=count, repeats=2, **fast)
    add("tracker", backbone="vits", input_size=224, frames=250, queries=1024, repeats=1, **fast)
    add("tracker", backbone="vitb", input_size=224, frames=24, queries=1024, repeats=2, **fast)
    add("tracker", backbone="vits", input_size=896, frames=24, queries=1024, repeats=1, **fast)
    if cuda:  # the H100 figures: ViT-S and ViT-B at 24 and 250 frames, reference input size
        for name in ("vits", "vitb"):
            add("tracker", backbone=name, input_size=896, frames=250, queries=1024, repeats=1, **fast)
        add("tracker", backbone="vitb", input_size=896, frames=24, queries=1024, repeats=1, **fast)
        add("train", backbone="vits", input_size=896, frames=24, queries=256, repeats=3)  # the paper's recipe
    else:  # the recipe's 896 input takes minutes a step on a CPU: 224 here
        add("train", backbone="vits", input_size=224, frames=24, queries=256, repeats=2)
    add_runtimes(backbone="vits", input_size=224, frames=24, queries=1024, repeats=3)
    add("yardstick", size=8192 if cuda else 2048, repeats=5)  # again at the end: the machine may be shared
    return cases


def busy_fraction(interval_s: float = 1.0) -> float | None:
    """Fraction of all cores busy over ``interval_s`` (from /proc/stat; None where it does not exist)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(interval_s)
        idle1, total1 = sample()
    except OSError:
        return None
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_quiet(max_wait_s: float, threshold: float = 0.15) -> tuple[float, float | None]:
    """Wait (at most ``max_wait_s``) until other processes use less than ``threshold`` of the cores.

    Returns (seconds waited, busy fraction last seen). On a shared machine this keeps the cases from
    being timed while something else runs; the figures stay the best of several runs either way.
    """
    start, busy = time.time(), busy_fraction()
    while busy is not None and busy > threshold and time.time() - start < max_wait_s:
        time.sleep(4.0)
        busy = busy_fraction()
    return time.time() - start, busy


def run_isolated(case: dict) -> dict:
    """Run one case in a fresh interpreter (``python -m chrono.perf.worker``) and parse its result."""
    proc = subprocess.run(
        [sys.executable, "-m", "chrono.perf.worker", json.dumps(case)],
        capture_output=True, text=True, check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {**case, "error": f"exit {proc.returncode}: " + " | ".join(tail)}


def run_in_process(case: dict) -> dict:
    from chrono.perf.cases import run_case

    try:
        return run_case(case)
    except (RuntimeError, MemoryError) as err:  # e.g. out of memory: report it, go on with the others
        return {**case, "error": f"{type(err).__name__}: {err}"}


def derive(results: list[dict], mode: str) -> dict:
    """Shares of the yardstick, head ratios and the issue's targets from the raw case results."""
    ok = [r for r in results if "error" not in r]
    yard = max((r["gflops"] for r in ok if r["kind"] == "yardstick"), default=float("nan"))
    for r in ok:
        if r["kind"] in ("backbone", "tracker"):
            r["yardstick_share"] = r["gflops"] / yard
        if "cpu_s" in r:
            r["cpu_per_wall"] = r["cpu_s"] / r["time_s"]  # ~ threads on an idle machine
    heads = {(r["head"], r["queries"], r["query_chunk"]): r for r in ok if r["kind"] == "head"}
    comparisons = []
    for (name, count, chunk), ref in sorted(heads.items(), key=lambda kv: kv[0][1]):
        same, fast = heads.get(("fast", count, chunk)), heads.get(("fast", count, "default"))
        if name != "reference" or same is None or fast is None:
            continue
        comparisons.append({
            "queries": count,
            "chunk": chunk,
            "speedup": fast["point_frames_per_s"] / ref["point_frames_per_s"],
            "speedup_same_chunk": same["point_frames_per_s"] / ref["point_frames_per_s"],
            "memory_ratio": fast["peak_mb"] / max(ref["peak_mb"], 1e-9),
            "memory_ratio_same_chunk": same["peak_mb"] / max(ref["peak_mb"], 1e-9),
        })
    runtimes = []
    eager = {(r["backbone"], r["input_size"], r["frames"], r["queries"]): r
             for r in ok if r["kind"] == "runtime" and r["runtime"] == "torch"}
    for r in ok:
        if r["kind"] == "runtime":
            base = eager.get((r["backbone"], r["input_size"], r["frames"], r["queries"]))
            dev = r.get("deviation", {})
            runtimes.append({**{k: r[k] for k in ("runtime", "backbone", "input_size", "frames", "queries",
                                                  "frames_per_s", "time_s")},
                             "vs_eager": r["frames_per_s"] / base["frames_per_s"] if base else None,
                             "cpu_per_wall": r.get("cpu_per_wall"), "rss_peak_mb": r.get("rss_peak_mb"),
                             "track_median_px": dev.get("track_median_px"), "track_p99_px": dev.get("track_p99_px"),
                             "track_max_px": dev.get("track_max_px"), "logit_max": dev.get("logit_max")})
    targets = []

    def target(name, value, threshold, higher_is_better):
        met = value >= threshold if higher_is_better else value <= threshold
        targets.append({"target": name, "value": value, "threshold": threshold, "met": bool(met)})

    floor = 1024 if mode == "full" else 64
    large = [c for c in comparisons if c["queries"] >= floor]
    if large:
        target(f"head point-frames/s ratio fast/reference, N >= {floor}", min(c["speedup"] for c in large),
               HEAD_SPEEDUP_MIN, True)
        target(f"head peak-memory ratio fast/reference at the same chunk, N >= {floor}",
               max(c["memory_ratio_same_chunk"] for c in large), HEAD_MEMORY_MAX, False)
    small = min(comparisons, key=lambda c: c["queries"], default=None)
    grid_backbone = [r for r in ok if r["kind"] == "backbone" and r["backbone"] == ("vits" if mode == "full" else "tiny")
                     and not r.get("bf16")]
    if small and grid_backbone:
        head_case = heads[("fast", small["queries"], "default")]
        # the backbone run whose token grid matches the head's (896 -> 64 x 64), scaled to the clip length
        match = [r for r in grid_backbone if r["input_size"] // 14 == head_case["grid"]] or grid_backbone
        backbone_clip_s = head_case["frames"] / match[-1]["frames_per_s"]
        target(f"fast head time / backbone time, N = {small['queries']}", head_case["time_s"] / backbone_clip_s,
               HEAD_SHARE_MAX, False)
    if not any(r["device"] == "cuda" for r in ok):
        for r in ok:
            if r["kind"] == "backbone" and r["input_size"] == 224 and r["backbone"] != "tiny":
                target(f"{r['backbone']} backbone share of matmul GFLOP/s at 224", r["yardstick_share"],
                       BACKBONE_SHARE_MIN, True)
    return {"mode": mode, "yardstick_gflops": yard, "head_comparisons": comparisons, "runtime_comparisons": runtimes,
            "targets": targets}


def _table(title: str, columns: list[tuple[str, str]], rows: list[dict]) -> str:
    """A plain-text table; ``columns`` are (header, format) with format a str.format spec of the row dict."""
    cells = [[_cell(row, fmt) for _, fmt in columns] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (h, _) in enumerate(columns)]
    lines = [title, "  ".join(h.rjust(w) for (h, _), w in zip(columns, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _cell(row: dict, fmt: str) -> str:
    """``fmt`` filled from ``row``, or "-" where the row lacks the field (or holds None)."""
    try:
        return fmt.format(**row)
    except (KeyError, ValueError, TypeError):
        return "-"


def report(results: list[dict], derived: dict) -> str:
    ok = [r for r in results if "error" not in r]
    by = lambda kind: [r for r in ok if r["kind"] == kind]  # noqa: E731
    runs = ", ".join("{dtype} {size}^2: {gflops:.1f}".format(**r) for r in by("yardstick"))
    parts = [f"matmul yardstick: {derived['yardstick_gflops']:.1f} GFLOP/s (best of: {runs})"]
    parts.append(_table("\nbackbone (DINOv2 ViT alone, inference)", [
        ("backbone", "{backbone}"), ("input", "{input_size}"), ("frames", "{frames}"), ("bf16", "{bf16}"),
        ("time s", "{time_s:.3f}"), ("frames/s", "{frames_per_s:.2f}"), ("GFLOP/s", "{gflops:.1f}"),
        ("share", "{yardstick_share:.0%}"), ("peak MB", "{peak_mb:.0f}"), ("cpu/wall", "{cpu_per_wall:.2f}"),
    ], by("backbone")))
    parts.append(_table("\ntracker inference (features + fast head)", [
        ("backbone", "{backbone}"), ("input", "{input_size}"), ("T", "{frames}"), ("N", "{queries}"),
        ("time s", "{time_s:.2f}"), ("frames/s", "{frames_per_s:.2f}"), ("points/s", "{points_per_s:.1f}"),
        ("share", "{yardstick_share:.0%}"), ("peak MB", "{peak_mb:.0f}"), ("cpu/wall", "{cpu_per_wall:.2f}"),
    ], by("tracker")))
    parts.append(_table("\ntracking head on precomputed features", [
        ("head", "{head}"), ("T", "{frames}"), ("grid", "{grid}"), ("C", "{channels}"), ("N", "{queries}"),
        ("chunk", "{query_chunk}"), ("time s", "{time_s:.3f}"), ("point-frames/s", "{point_frames_per_s:.0f}"),
        ("cost GFLOP/s", "{cost_volume_gflops:.1f}"), ("peak MB", "{peak_mb:.1f}"), ("cpu/wall", "{cpu_per_wall:.2f}"),
    ], by("head")))
    parts.append(_table("\nfast / reference head (reference at its chunk; fast at its default chunk, and at the same chunk)", [
        ("N", "{queries}"), ("ref chunk", "{chunk}"), ("speed-up", "{speedup:.1f}x"),
        ("same chunk", "{speedup_same_chunk:.1f}x"), ("memory", "{memory_ratio:.3f}"),
        ("same chunk", "{memory_ratio_same_chunk:.3f}"),
    ], derived["head_comparisons"]))
    parts.append(_table("\ntraining step (forward, loss, backward, clip, AdamW + OneCycleLR; DINOv2 frozen)", [
        ("backbone", "{backbone}"), ("input", "{input_size}"), ("T", "{frames}"), ("N", "{queries}"),
        ("step s", "{time_s:.2f}"), ("peak MB", "{peak_mb:.0f}"), ("cpu/wall", "{cpu_per_wall:.2f}"),
    ], by("train")))
    if derived.get("runtime_comparisons"):
        parts.append(_table(f"\nPyTorch eager vs ONNX Runtime, whole tracker forward (yardstick "
                            f"{derived['yardstick_gflops']:.1f} GFLOP/s; deviation from eager, px at 256 x 256)", [
            ("runtime", "{runtime}"), ("backbone", "{backbone}"), ("input", "{input_size}"), ("T", "{frames}"),
            ("N", "{queries}"), ("time s", "{time_s:.2f}"), ("frames/s", "{frames_per_s:.2f}"),
            ("vs eager", "{vs_eager:.2f}x"), ("rss MB", "{rss_peak_mb:.0f}"), ("cpu/wall", "{cpu_per_wall:.2f}"),
            ("median px", "{track_median_px:.2g}"), ("p99 px", "{track_p99_px:.2g}"), ("max px", "{track_max_px:.2g}"),
            ("logits", "{logit_max:.2g}"),
        ], derived["runtime_comparisons"]))
    elif derived.get("runtime_note"):
        parts.append(f"\nPyTorch eager vs ONNX Runtime: skipped, {derived['runtime_note']}")
    title = "\ntargets" + (" (CI sizes: the issue states them for the full mode)" if derived["mode"] == "ci" else "")
    parts.append(_table(title, [
        ("target", "{target}"), ("value", "{value:.3f}"), ("threshold", "{threshold}"), ("met", "{met}"),
    ], derived["targets"]))
    errors = [r for r in results if "error" in r]
    if errors:
        parts.append("\nfailed cases:\n" + "\n".join(f"  {r['kind']} {r}" for r in errors))
    return "\n".join(parts)


def machine() -> dict:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_suite(mode: str, device: str | None, out: Path | None, isolate: bool | None, only: str | None,
              threads: int | None, quiet_wait: float | None, command: str) -> dict:
    """Plan, run and report the model suite; writes the JSON (default outputs/bench/<mode>-<device>-<time>.json)
    and returns its content."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    isolate = isolate if isolate is not None else mode == "full"
    cases = plan(mode, device)
    model_dir = tempfile.TemporaryDirectory(prefix="chrono-bench-onnx-")  # the runtime cases' exported models
    cases = [{**c, "model_dir": model_dir.name} if c["kind"] == "runtime" else c for c in cases]
    if threads:
        cases = [{**c, "threads": threads} for c in cases]
    if only:
        kinds = set(only.split(","))
        cases = [c for c in cases if c["kind"] in kinds or c["kind"] == "yardstick"]
    started, load_before, results = time.time(), os.getloadavg(), []
    quiet_wait = quiet_wait if quiet_wait is not None else (120.0 if mode == "full" else 0.0)
    meter = Progress("bench", total=len(cases), unit="case")
    for i, case in enumerate(cases, 1):
        waited, busy = wait_for_quiet(quiet_wait) if quiet_wait > 0 else (0.0, None)
        t0 = time.time()
        result = run_isolated(case) if isolate else run_in_process(case)
        result.update(waited_for_quiet_s=waited, cores_busy_before=busy)
        result.pop("model_dir", None)  # a temporary folder, gone after the run
        results.append(result)
        brief = {k: v for k, v in case.items() if k not in ("kind", "device", "repeats", "model_dir")}
        status = result.get("error") or f"{result['time_s']:.3f} s"
        meter.update(i, f"{case['kind']} {brief}: {status} ({time.time() - t0:.0f} s)")
    model_dir.cleanup()
    derived = derive(results, mode)
    if device == "cpu" and onnx_missing() and (not only or "runtime" in only.split(",")):
        derived["runtime_note"] = onnx_missing()
    load = {"before": load_before, "after": os.getloadavg()}
    print(report(results, derived))
    print(f"\nload average (1, 5, 15 min) before: {load['before']}, after: {load['after']} on {os.cpu_count()} cores"
          f" (cpu/wall well below the thread count ({torch.get_num_threads()}) means other work shared the cores)")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = out or Path("outputs") / "bench" / f"{mode}-{device}-{stamp}.json"
    data = {
        "command": command,
        "device": device, "isolated": isolate, "machine": machine(),
        "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "duration_s": time.time() - started, "load_average": load, **derived, "cases": results,
    }
    write_json_atomic(out, data)
    print(f"\nwrote {out}")
    return data
