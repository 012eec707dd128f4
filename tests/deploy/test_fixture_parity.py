"""The official-layout fixture exported at its input size (896) reproduces the official outputs through ONNX Runtime
(T = 16, the only clip with official outputs): the whole-forward graph for its 24 queries, the streaming graphs
through windowed tracking for 7 of them; and, against PyTorch (itself within 6e-5 px of the official code), the
whole-forward graph at another number of frames and queries (T = 5, N = 70)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chrono
from chrono.deploy.compare import deviation
from chrono.inference.windowed import track_video

pytestmark = pytest.mark.slow  # one export at 896 (~1.5 min on 2 cores) and five ORT runs of 896 x 896 frames

TRACKS_PX, LOGITS = 1e-3, 1e-4  # the margins


@pytest.fixture(scope="module")
def exported(fixtures_dir, tmp_path_factory):
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)
    from chrono.deploy.export import export_bundle
    from chrono.deploy.runtime import OnnxTracker

    folder = fixtures_dir / "chrono_official_tiny"
    tracker = chrono.load_tracker(folder / "model.ckpt")
    assert tracker.cfg.input_size == 896  # the fixture's own input size, read off the checkpoint
    path = tmp_path_factory.mktemp("fixture_onnx") / "chrono.onnx"
    report = export_bundle(tracker, path, resolution=(256, 256), source="model.ckpt")
    io = dict(np.load(folder / "io.npz"))
    official = {"tracks": io["tracks"], "occlusion": io["occlusion_logits"], "expected_dist": io["expected_dist_logits"]}
    video = torch.from_numpy(io["video_uint8"]).float() / 255 * 2 - 1
    return tracker, OnnxTracker(path, device="cpu"), report, io, official, video, torch.from_numpy(io["query_points_tyx"])


SUBSET = np.array([3, 0, 17, 9, 22, 5, 11])  # N = 7 of the fixture's queries, in another order


def test_whole_forward_reproduces_the_official_outputs(exported):
    _, runtime, report, _, official, video, queries = exported
    assert report.info.input_size == 896 and report.info.grid == 64
    dev = deviation(official, runtime(video, queries))  # T = 16, N = 24
    assert dev.track_max_px <= TRACKS_PX and dev.logit_max <= LOGITS, dev.brief()


def test_other_frames_and_queries_answer_like_pytorch(exported):
    tracker, runtime, _, _, _, video, queries = exported
    clip = video[:, 2:7]  # T = 5
    q = torch.cat([queries[:, :, :1] % 5, queries[:, :, 1:]], -1).repeat(1, 3, 1)[:, :70]  # N = 70 on its frames
    q = q + torch.linspace(0, 1, 70)[None, :, None] * torch.tensor([0.0, 1.0, -1.0])
    with torch.no_grad():
        want = tracker(clip, q)
    dev = deviation(want, runtime(clip, q))
    assert want["tracks"].shape == (1, 70, 5, 2) and dev.track_max_px <= TRACKS_PX and dev.logit_max <= LOGITS, dev.brief()


def test_streaming_graphs_reproduce_the_official_outputs_through_windowed_tracking(exported):
    _, runtime, _, io, official, _, _ = exported
    out = track_video(runtime, io["video_uint8"][0], io["query_points_tyx"][0][SUBSET], window=None)  # whole clip
    dev = deviation({k: v[0, SUBSET] for k, v in official.items()}, out)
    assert out["tracks"].shape == (7, 16, 2) and dev.track_max_px <= TRACKS_PX and dev.logit_max <= LOGITS, dev.brief()
    flips = (out["occluded"] != io["inference_occluded"][0][SUBSET]).sum()
    assert flips <= 1  # the reference inference's flags (PyTorch's own parity test allows one borderline flag)
