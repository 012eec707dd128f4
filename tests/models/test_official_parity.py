"""The official checkpoint fixture reproduces the official Chrono outputs (CPU, float32)."""

import numpy as np
import pytest
import torch

import chrono

pytestmark = pytest.mark.slow  # three forward passes of a 896 x 896, 16-frame clip (~20 s on 2 cores)


@pytest.fixture(scope="module")
def official(fixtures_dir):
    folder = fixtures_dir / "chrono_official_tiny"
    tracker = chrono.load_tracker(folder / "model.ckpt")
    io = dict(np.load(folder / "io.npz"))
    video = torch.from_numpy(io["video_uint8"]).float() / 255 * 2 - 1
    queries = torch.from_numpy(io["query_points_tyx"])
    with torch.no_grad():
        out = tracker(video, queries)
        out["features"] = tracker.extract_features(video)
    return tracker, io, out


def test_architecture_inferred_from_tensors(official):
    tracker, _, _ = official
    cfg = tracker.cfg
    assert (cfg.backbone.embed_dim, cfg.backbone.depth, cfg.backbone.num_heads) == (192, 3, 3)
    assert cfg.backbone.img_size == 518 and cfg.backbone.num_register_tokens == 0
    assert len(tracker.adapter) == 2 and cfg.adapter.width == 64 and cfg.input_size == 896


def test_features_match(official):
    _, io, out = official
    feats = out["features"]
    np.testing.assert_allclose(feats[:, :, ::8, ::8].numpy(), io["features_sub8"], atol=1e-5)


def test_forward_matches(official):
    _, io, out = official
    err = np.abs(out["tracks"].numpy() - io["tracks"])
    assert np.percentile(err, 99) < 0.01, err.max()
    np.testing.assert_allclose(out["occlusion"].numpy(), io["occlusion_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["expected_dist"].numpy(), io["expected_dist_logits"], atol=1e-4, rtol=0)


def test_query_frames_are_pinned(official):
    _, io, out = official
    q = io["query_points_tyx"][0]
    t = np.round(q[:, 0]).astype(int)
    np.testing.assert_allclose(out["tracks"][0].numpy()[np.arange(len(q)), t], q[:, [2, 1]], atol=1e-4)


def test_predict_matches_reference_inference(official):
    tracker, io, _ = official
    pred = tracker.predict(io["video_uint8"], io["query_points_tyx"], resolution=(256, 256))
    err = np.abs(pred["tracks"].numpy() - io["inference_tracks"])
    assert np.percentile(err, 99) < 0.01, err.max()
    flipped = pred["occluded"].numpy() != io["inference_occluded"]
    assert flipped.sum() <= 1
    if flipped.any():  # only a logit sitting on the threshold may flip
        occ = torch.sigmoid(torch.from_numpy(io["occlusion_logits"]))
        expd = torch.sigmoid(torch.from_numpy(io["expected_dist_logits"]))
        p_occ = (1 - (1 - occ) * (1 - expd)).numpy()
        assert np.all(np.abs(p_occ[flipped] - 0.5) < 1e-4)
