"""chrono.metrics against the TAP-Vid reference values of the fixture, and its protocol details."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.metrics import METRIC_NAMES, benchmark_means, compute_tapvid_metrics, evaluation_mask

ARGS = ("query_points", "gt_occluded", "gt_tracks", "pred_occluded", "pred_tracks")


def test_metric_cases_match_reference_exactly(expected):
    cases = expected["metric_cases"]
    assert {c["query_mode"] for c in cases} == {"first", "strided"}
    for case in cases:
        got = compute_tapvid_metrics(*(np.asarray(case[a]) for a in ARGS), case["query_mode"])
        assert set(got) == set(METRIC_NAMES) == set(case["expected"])
        for name, value in case["expected"].items():
            assert got[name].shape == (1,)
            assert got[name][0] == pytest.approx(value, abs=1e-9), name


def test_evaluation_mask_first_and_strided():
    mask_first = evaluation_mask(np.array([0, 2]), 4, "first")
    mask_strided = evaluation_mask(np.array([0, 2]), 4, "strided")
    np.testing.assert_array_equal(mask_first, [[0, 1, 1, 1], [0, 0, 0, 1]])
    np.testing.assert_array_equal(mask_strided, [[0, 1, 1, 1], [1, 1, 0, 1]])
    with pytest.raises(ValueError, match="query mode"):
        evaluation_mask(np.array([0]), 4, "middle")


def _one_track(pred_xy, gt_occluded, pred_occluded, query_t=0):
    t = len(gt_occluded)
    gt = np.zeros((1, 1, t, 2))
    return dict(
        query_points=np.array([[[query_t, 0.0, 0.0]]]),
        gt_occluded=np.array([[gt_occluded]], bool),
        gt_tracks=gt,
        pred_occluded=np.array([[pred_occluded]], bool),
        pred_tracks=np.broadcast_to(np.asarray(pred_xy, float), (1, 1, t, 2)).copy(),
    )


def test_thresholds_are_strict_and_jaccard_counts_false_positives():
    # error exactly 2 px: within 4, 8, 16 but not within 1 or 2 (strictly closer than the threshold)
    m = compute_tapvid_metrics(**_one_track([2.0, 0.0], [0, 0, 0], [0, 0, 0]), query_mode="strided")
    assert [m[f"pts_within_{d}"][0] for d in (1, 2, 4, 8, 16)] == [0, 0, 1, 1, 1]
    assert m["average_pts_within_thresh"][0] == pytest.approx(0.6)
    # frame 2 occluded in truth but predicted visible: a false positive at every threshold
    m = compute_tapvid_metrics(**_one_track([0.0, 0.0], [0, 0, 1], [0, 0, 0]), query_mode="strided")
    assert m["occlusion_accuracy"][0] == pytest.approx(0.5)
    assert m["pts_within_1"][0] == 1.0
    assert m["jaccard_1"][0] == pytest.approx(1 / 2)  # TP 1 / (gt visible 1 + FP 1)


def test_perfect_prediction_scores_one_and_trackwise_shape():
    rng = np.random.default_rng(0)
    occ = rng.random((2, 5, 8)) < 0.3
    occ[..., 0] = False
    tracks = rng.random((2, 5, 8, 2)) * 256
    queries = np.concatenate([np.zeros((2, 5, 1)), tracks[:, :, 0, ::-1]], axis=-1)
    m = compute_tapvid_metrics(queries, occ, tracks, occ, tracks, "first")
    for name in METRIC_NAMES:
        np.testing.assert_allclose(m[name], 1.0)
    m = compute_tapvid_metrics(queries, occ, tracks, occ, tracks, "first", get_trackwise_metrics=True)
    assert m["average_jaccard"].shape == (2, 5)


def test_query_frame_out_of_range_is_an_error():
    case = _one_track([0.0, 0.0], [0, 0, 0], [0, 0, 0], query_t=3)
    with pytest.raises(ValueError, match="query frames"):
        compute_tapvid_metrics(**case, query_mode="first")


def test_benchmark_means_is_plain_mean_over_videos():
    rows = [{n: 0.0 for n in METRIC_NAMES}, {n: 1.0 for n in METRIC_NAMES}]
    assert benchmark_means(rows) == {n: 0.5 for n in METRIC_NAMES}
    with pytest.raises(ValueError, match="no videos"):
        benchmark_means([])
