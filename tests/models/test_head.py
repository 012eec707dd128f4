"""The tracking head's pieces on hand-made inputs."""

import torch

from chrono.models import head


def test_local_soft_argmax_ignores_far_mass():
    heat = torch.zeros(1, 1, 1, 16, 16)
    heat[..., 3, 4] = 0.5  # argmax at cell (x=4, y=3)
    heat[..., 3, 5] = 0.25  # neighbour at distance 1: counted
    heat[..., 12, 12] = 0.25  # far away (distance > 5): ignored
    xy = head.local_soft_argmax_reference(heat, radius=5)
    torch.testing.assert_close(xy[0, 0, 0], torch.tensor([(4.5 * 0.5 + 5.5 * 0.25) / 0.75, 3.5]))


def test_radius_is_strict():
    heat = torch.zeros(1, 1, 1, 16, 16)
    heat[..., 0, 0] = 0.6
    heat[..., 0, 5] = 0.4  # exactly 5 cells away: excluded (distance^2 < radius^2 only)
    xy = head.local_soft_argmax_reference(heat, radius=5)
    torch.testing.assert_close(xy[0, 0, 0], torch.tensor([0.5, 0.5]))


def test_tracks_from_cost_scales_cells_to_head_resolution():
    cost = torch.full((1, 1, 2, 8, 8), -1.0)
    cost[0, 0, 0, 2, 6] = 1.0
    cost[0, 0, 1, 7, 0] = 1.0
    tracks = head.tracks_from_cost(cost, softmax_temperature=1000.0, radius=5)
    torch.testing.assert_close(tracks[0, 0], torch.tensor([[6.5 * 32, 2.5 * 32], [0.5 * 32, 7.5 * 32]]))


def test_query_feature_sample_is_exact_at_cell_centres_and_frames():
    feats = torch.randn(1, 3, 4, 5, 7)
    q = torch.tensor([[[2.0, 1.5, 3.5], [0.0, 0.5, 0.5]]])  # (t, y, x) in cells
    out = head.sample_query_features(feats, q)
    torch.testing.assert_close(out[0, 0], feats[0, 2, 1, 3])
    torch.testing.assert_close(out[0, 1], feats[0, 0, 0, 0])
    mid = head.sample_query_features(feats, torch.tensor([[[1.0, 1.0, 3.5]]]))  # between rows 0 and 1
    torch.testing.assert_close(mid[0, 0], (feats[0, 1, 0, 3] + feats[0, 1, 1, 3]) / 2)


def test_pin_query_frames_rounds_t():
    tracks = torch.zeros(1, 2, 4, 2)
    q = torch.tensor([[[1.4, 10.0, 20.0], [2.6, 30.0, 40.0]]])
    pinned = head.pin_query_frames(tracks, q)
    assert pinned[0, 0, 1].tolist() == [20.0, 10.0] and pinned[0, 1, 3].tolist() == [40.0, 30.0]
    assert pinned[0, 0, [0, 2, 3]].abs().sum() == 0


def test_occlusion_inputs_are_detached_mean_max_min():
    cost = torch.randn(1, 2, 3, 4, 4, requires_grad=True)
    feats = head.occlusion_inputs(cost)
    assert not feats.requires_grad
    torch.testing.assert_close(feats[0, 1, 2], torch.stack([cost[0, 1, 2].mean(), cost[0, 1, 2].max(), cost[0, 1, 2].min()]).detach())
