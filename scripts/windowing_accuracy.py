"""How far windowed tracking (chrono/inference/windowed.py) is from whole-clip tracking, on synthetic videos.

For each video the tracker runs once on the whole clip and once per (window, overlap) setting; the
script prints, per setting: the feature difference (1 - cosine of windowed vs whole-clip features,
mean and max over cells), the track difference at 256 x 256 (mean, 99th percentile, max, in pixels),
the share of occlusion flags that differ, and the TAP-Vid average Jaccard of both answers (strided
queries, metrics at 256 x 256) with its difference.

    python scripts/windowing_accuracy.py --checkpoint PATH [--input-size 448] [--frames 24] \\
        [--videos 20] [--settings 8:4,12:6,16:8] [--json out.json]

``--frames 24`` uses the suite's synthetic benchmark (chrono.data.synthetic.store.ensure_benchmark; 24 frames
per video); another number generates benchmark-seeded clips of that length. No checkpoint: a random
tiny tracker (say so when you quote the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

import chrono
from chrono.coords import rescale_tyx, rescale_xy
from chrono.inference.windowed import track_video, windowed_features

EVAL_HW = (256, 256)


def videos(frames: int, count: int):
    """(name, video uint8 [T, H, W, 3], points [N, T, 2] pixels, occluded [N, T]) of synthetic videos."""
    from chrono.data import synthetic
    from chrono.data.synthetic import store
    from chrono.eval.tapvid import read_benchmark

    if frames == synthetic.BENCHMARK_DEFAULTS["num_frames"]:
        # frames as stored (192 x 192, not resized); points float32 as the file holds them
        bench = sorted(read_benchmark("davis", store.ensure_benchmark(), resolution=None), key=lambda v: v.name)
        for v in bench[:count]:
            yield v.name, v.video, v.points.astype(np.float32), v.occluded
        return
    opts = {k: v for k, v in synthetic.BENCHMARK_DEFAULTS.items() if k != "num_videos"}
    opts["num_frames"] = frames
    for i in range(count):
        c = synthetic.generate_clip(synthetic.benchmark_seed(0, i), **opts)
        yield f"synthetic_{frames}f_{i:03d}", c["video"], c["tracks"], c["occluded"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--input-size", type=int, default=None, help="override the tracker's input size")
    p.add_argument("--backbone", default="tiny", help="with no checkpoint: the random tracker's backbone")
    p.add_argument("--adapter-std", type=float, default=0.02, help="with no checkpoint: std of the adapters' conv2")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--settings", default="8:4,12:6,16:8", help="window:overlap,...")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from chrono.eval.tapvid import sample_queries_strided
    from chrono.metrics import compute_tapvid_metrics

    overrides = {"input_size": args.input_size} if args.input_size else {}
    if args.checkpoint:
        tracker = chrono.load_tracker(args.checkpoint, **overrides)
    else:
        torch.manual_seed(0)
        tracker = chrono.load_tracker(None, backbone=args.backbone, **overrides)
        for a in tracker.adapter:
            torch.nn.init.normal_(a.conv2.weight, std=args.adapter_std)
    settings = [tuple(int(v) for v in s.split(":")) for s in args.settings.split(",")]
    rows = {s: {"feat_mean": [], "feat_max": [], "px": [], "occ_flip": [], "aj": []} for s in [None] + settings}
    t0 = time.time()
    for name, video, points, occluded in videos(args.frames, args.videos):
        hw = video.shape[1:3]
        queries = sample_queries_strided(occluded, points)
        q, target, gt_occ = queries.query_points.astype(np.float32), queries.target_points, queries.occluded
        target256 = rescale_xy(target, hw, EVAL_HW)
        q256 = rescale_tyx(q, hw, EVAL_HW)
        whole_feats = windowed_features(tracker, video, None)
        answers = {}
        for s in [None] + settings:
            window, overlap = s if s else (None, 0)
            out = track_video(tracker, video, q, window=window, overlap=overlap)
            answers[s] = out
            m = compute_tapvid_metrics(q256[None], gt_occ[None], target256[None], out["occluded"][None],
                                       rescale_xy(out["tracks"], hw, EVAL_HW)[None], "strided")
            r = rows[s]
            r["aj"].append(float(m["average_jaccard"][0]))
            if s:
                cos = (windowed_features(tracker, video, window, overlap) * whole_feats).sum(-1)
                r["feat_mean"].append(float((1 - cos).mean()))
                r["feat_max"].append(float((1 - cos).max()))
                d = np.linalg.norm(rescale_xy(out["tracks"] - answers[None]["tracks"], hw, EVAL_HW), axis=-1)
                r["px"].append(d.ravel())
                r["occ_flip"].append(float((out["occluded"] != answers[None]["occluded"]).mean()))
        print(f"[{time.time() - t0:6.0f}s] {name}: AJ whole {rows[None]['aj'][-1]:.4f}, "
              + ", ".join(f"w{s[0]}/o{s[1]} {rows[s]['aj'][-1]:.4f}" for s in settings), file=sys.stderr, flush=True)
    aj_whole = np.mean(rows[None]["aj"])
    summary = {"tracker": args.checkpoint or f"random {args.backbone}", "input_size": tracker.cfg.input_size,
               "frames": args.frames, "videos": len(rows[None]["aj"]), "aj_whole": aj_whole, "settings": []}
    print(f"\n{summary['videos']} videos of {args.frames} frames, tracker {summary['tracker']} "
          f"(input {tracker.cfg.input_size}), strided queries, AJ whole clip {100 * aj_whole:.2f}")
    print("| window / overlap | 1-cos feat. mean | max | track diff mean px | p99 | max | occ. flags differ | AJ | AJ diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in settings:
        r = rows[s]
        px = np.concatenate(r["px"])
        aj = np.mean(r["aj"])
        entry = {"window": s[0], "overlap": s[1], "feat_mean": np.mean(r["feat_mean"]), "feat_max": np.max(r["feat_max"]),
                 "px_mean": px.mean(), "px_p99": np.percentile(px, 99), "px_max": px.max(),
                 "occ_flip": np.mean(r["occ_flip"]), "aj": aj, "aj_diff": aj - aj_whole}
        summary["settings"].append({k: float(v) if k not in ("window", "overlap") else v for k, v in entry.items()})
        print(f"| {s[0]} / {s[1]} | {entry['feat_mean']:.2e} | {entry['feat_max']:.2e} | {entry['px_mean']:.3f} | "
              f"{entry['px_p99']:.3f} | {entry['px_max']:.2f} | {100 * entry['occ_flip']:.2f}% | {100 * aj:.2f} | "
              f"{100 * (aj - aj_whole):+.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
