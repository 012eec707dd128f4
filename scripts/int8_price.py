"""What int8 costs and buys: ONNX Runtime int8 (chrono/deploy/quantize.py) against float32, for one checkpoint.

Exports the checkpoint (float32 and int8, ``chrono.deploy.export.export_bundle``; or reads an earlier export with
``--onnx``), then measures, with PyTorch eager float32 as the reference:

- track deviation per point-frame (px, at the clip's 256 x 256) and occlusion flags changed, of ONNX Runtime
  float32 and int8, on the official-layout fixture's clip (``--clip fixture``: 16 frames, its 24 queries) or on
  the synthetic benchmark's videos (``--clip synthetic``: strided queries, every video);
- with ``--clip synthetic`` also the benchmark means (AJ, <delta^x_avg, OA, percent) of the three runtimes, as
  ``python -m chrono.evaluate benchmark=synthetic`` computes them;
- speed: the whole forward on a ``--speed-frames`` (24) frame 256 x 256 clip with 256 queries, best of
  ``--repeats`` runs per runtime after a warm-up (frames/s), ``--threads`` threads each.

    python scripts/int8_price.py --checkpoint ../shared/fixtures/chrono_official_tiny/model.ckpt --clip fixture
    python scripts/int8_price.py --checkpoint outputs/train/cpu_synthetic/<time>/checkpoints/last.ckpt --clip synthetic

Prints one markdown row per runtime and writes everything to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import chrono
from chrono.deploy.compare import deviation
from chrono.deploy.export import export_bundle
from chrono.deploy.runtime import OnnxTracker

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "chrono_official_tiny"  # ../shared beside the repo


def fixture_clip(folder: Path):
    io = dict(np.load(folder / "io.npz"))
    return [("fixture", io["video_uint8"][0], io["query_points_tyx"][0], None, None)]


def synthetic_clips(max_videos: int | None):
    from chrono.data.synthetic.store import ensure_benchmark
    from chrono.eval.tapvid import decode_entry, iter_entries, sample_queries

    for entry in iter_entries("davis", ensure_benchmark()):
        if max_videos is not None and entry.index >= max_videos:
            break
        video = decode_entry(entry, (256, 256))
        q = sample_queries(video, "strided")
        if len(q.query_points):
            yield video.name, video.video, q.query_points.astype(np.float32), q, video


def speed(tracker, threads: int, repeats: int, frames: int = 24, queries: int = 256) -> float:
    """Frames/s of the whole forward on a random 256 x 256 clip (the runtime's own call), best of ``repeats``."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, frames, 256, 256, 3, generator=g) * 2 - 1
    q = torch.cat([torch.randint(0, frames, (1, queries, 1), generator=g).float(),
                   torch.rand(1, queries, 2, generator=g) * 256], -1)
    with torch.no_grad():
        tracker(video, q)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            tracker(video, q)
            best = min(best, time.perf_counter() - start)
    return frames / best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--onnx", default=None, help="an earlier export (X.onnx with X.int8.onnx beside it)")
    p.add_argument("--clip", choices=("fixture", "synthetic"), default="synthetic")
    p.add_argument("--fixture-dir", default=str(FIXTURE), help="--clip fixture: the chrono_official_tiny folder")
    p.add_argument("--videos", type=int, default=None, help="synthetic: the first N videos only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--speed-frames", type=int, default=24, help="frames of the speed clip (256 queries)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoint = Path(args.checkpoint)
    eager = chrono.load_tracker(checkpoint)
    work = tempfile.TemporaryDirectory(prefix="int8-price-")
    onnx = Path(args.onnx) if args.onnx else Path(work.name) / "model.onnx"
    if not args.onnx:
        start = time.perf_counter()
        report = export_bundle(eager, onnx, int8=True, source=checkpoint.name, threads=args.threads,
                               say=lambda m: print(m, file=sys.stderr))
        print(f"exported in {time.perf_counter() - start:.0f} s: " + "; ".join(
            f"{k}: {v.brief()}" for k, v in report.checks.items()), file=sys.stderr)
    runtimes = {"eager fp32": eager, "ORT fp32": OnnxTracker(onnx, "cpu", "fp32", args.threads),
                "ORT int8": OnnxTracker(onnx, "cpu", "int8", args.threads)}

    answers = {name: [] for name in runtimes}
    rows = {name: [] for name in runtimes}
    clips = fixture_clip(Path(args.fixture_dir)) if args.clip == "fixture" else synthetic_clips(args.videos)
    for name, video, queries, q, tapvid in clips:
        print(f"{name}: {video.shape[0]} frames, {len(queries)} queries", file=sys.stderr)
        for runtime, tracker in runtimes.items():
            if args.clip == "fixture":  # the reference forward: logits to compare
                clip = torch.from_numpy(video[None]).float() / 255 * 2 - 1
                with torch.no_grad():
                    out = tracker(clip, torch.from_numpy(queries[None]))
                answers[runtime].append({k: v[0].numpy() for k, v in out.items()})
                continue
            from chrono.eval.benchmark import predict_video
            from chrono.metrics import compute_tapvid_metrics

            tracks, occluded = predict_video(tracker, tapvid, q)
            answers[runtime].append({"tracks": tracks, "occluded": occluded})
            metrics = compute_tapvid_metrics(q.query_points[None], q.occluded[None], q.target_points[None],
                                             occluded[None], tracks[None], "strided")
            rows[runtime].append({k: float(v[0]) for k, v in metrics.items()})

    def joined(runtime):
        return {k: np.concatenate([a[k].reshape(-1, *a[k].shape[-1:]) if k == "tracks" else a[k].reshape(-1)
                                   for a in answers[runtime]]) for k in answers[runtime][0]}

    result = {"checkpoint": str(checkpoint), "clip": args.clip, "threads": args.threads, "runtimes": {}}
    reference = joined("eager fp32")
    official = None
    if args.clip == "fixture":  # the official code's own outputs on that clip
        io = dict(np.load(Path(args.fixture_dir) / "io.npz"))
        official = {"tracks": io["tracks"][0].reshape(-1, 2), "occlusion": io["occlusion_logits"][0].reshape(-1),
                    "expected_dist": io["expected_dist_logits"][0].reshape(-1)}  # flattened like joined()
    for runtime, tracker in runtimes.items():
        entry = {"frames_per_s": speed(tracker, args.threads, args.repeats, args.speed_frames)}
        if runtime != "eager fp32":
            entry["deviation"] = deviation(reference, joined(runtime)).as_dict()
        if official is not None:
            entry["vs_official"] = deviation(official, joined(runtime)).as_dict()
            print(f"{runtime} vs the official outputs: {deviation(official, joined(runtime)).brief()}")
        if rows[runtime]:
            from chrono.metrics import benchmark_means

            entry["means"] = benchmark_means(rows[runtime])
            entry["videos"] = len(rows[runtime])
        result["runtimes"][runtime] = entry
    base = result["runtimes"]["eager fp32"]
    print("| runtime | frames/s | vs eager | track median px | p99 px | max px | > 1 px | occlusion flags changed "
          "| logits max | AJ | <δ^x_avg | OA |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for runtime, e in result["runtimes"].items():
        d = e.get("deviation")
        m = e.get("means")
        dev = (f"{d['track_median_px']:.2g} | {d['track_p99_px']:.2g} | {d['track_max_px']:.2g} | {d['over_1px']:.2%} | "
               f"{d['occluded_flips']:.2%} | {d['logit_max']:.2g}") if d else "- | - | - | - | - | -"
        means = (f"{100 * m['average_jaccard']:.2f} | {100 * m['average_pts_within_thresh']:.2f} | "
                 f"{100 * m['occlusion_accuracy']:.2f}") if m else "- | - | -"
        print(f"| {runtime} | {e['frames_per_s']:.2f} | {e['frames_per_s'] / base['frames_per_s']:.2f}x | {dev} | {means} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
