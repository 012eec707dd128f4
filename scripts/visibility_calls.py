"""Why a tracker's visibility calls cost it AJ: its accuracy, its two logits, and AJ under other rules.

On the first ``--videos`` videos of the synthetic benchmark (strided queries, 256 x 256 as the evaluation
scores them), for the visible target points: the share within 6 px and within 24 px of the truth, the mean
sigmoid of the occlusion and expected-distance logits; then AJ under the reference rule (occluded where
1 - (1 - p_occ)(1 - p_far) > 0.5), under the occlusion logit alone (p_occ > 0.5), and with every point called
visible, beside the zero-motion baseline. This is how docs/training.md's 6 px trial of `cpu_synthetic` was read:

    python -m chrono.train experiment=cpu_synthetic name=thresh6 loss.expected_dist_thresh=6 steps=6000 \\
        stop_after=1000
    python scripts/visibility_calls.py outputs/train/thresh6/<time>/checkpoints/last.ckpt --videos 10
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import chrono
from chrono.eval.baselines import ZeroMotionTracker
from chrono.data.synthetic.store import ensure_benchmark
from chrono.eval.tapvid import decode_entry, iter_entries, sample_queries
from chrono.metrics import compute_tapvid_metrics
from chrono.models.head import occluded_from_logits


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--videos", type=int, default=10)
    args = p.parse_args(argv)
    tracker = chrono.load_tracker(args.checkpoint)
    rows = []
    for entry in iter_entries("davis", ensure_benchmark()):
        if entry.index >= args.videos:
            break
        video = decode_entry(entry)  # 256 x 256, as the evaluation scores it
        q = sample_queries(video, "strided")
        frames = torch.from_numpy(video.video[None]).float() / 255 * 2 - 1
        queries = torch.from_numpy(q.query_points[None]).float()
        with torch.inference_mode():
            out = {k: v[0] for k, v in tracker(frames, queries).items()}
            still = ZeroMotionTracker().predict(frames, queries)
        tracks = out["tracks"].numpy()
        p_occ, p_far = torch.sigmoid(out["occlusion"]).numpy(), torch.sigmoid(out["expected_dist"]).numpy()
        visible = ~q.occluded
        error = np.linalg.norm(tracks - q.target_points, axis=-1)[visible]

        def metrics(occluded, predicted=tracks):
            m = compute_tapvid_metrics(q.query_points[None], q.occluded[None], q.target_points[None],
                                       np.asarray(occluded)[None], np.asarray(predicted)[None], "strided")
            return m["average_jaccard"][0], m["average_pts_within_thresh"][0]

        reference = metrics(occluded_from_logits(out["occlusion"], out["expected_dist"]).numpy())
        rows.append([np.mean(error < 6), np.mean(error < 24), p_occ[visible].mean(), p_far[visible].mean(),
                     *reference, metrics(p_occ > 0.5)[0], metrics(np.zeros_like(p_occ, bool))[0],
                     *metrics(still["occluded"][0].numpy(), still["tracks"][0].numpy())])
    names = ["within 6 px", "within 24 px", "mean p_occ", "mean p_far", "AJ", "<δ^x_avg", "AJ, occlusion logit alone",
             "AJ, all visible", "zero motion AJ", "zero motion <δ^x_avg"]
    print(f"{len(rows)} videos of the synthetic benchmark, strided; shares (percent) and mean probabilities over visible points, metrics in percent")
    for name, value in zip(names, np.mean(rows, axis=0)):
        print(f"{name:>28}: {value:.3f}" if name.startswith("mean") else f"{name:>28}: {100 * value:5.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
