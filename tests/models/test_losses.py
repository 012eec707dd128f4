"""The reference loss on hand-computed cases."""

import math

import torch
import torch.nn.functional as F

from chrono.cli import compose
from chrono.losses import tracking_loss

# The loss weights as training uses them: the `loss` node of conf/train.yaml (their only home).
REFERENCE = dict(compose("train").loss)


def _batch(H=128, W=64):
    target = torch.tensor([[[[10.0, 20.0], [10.0, 20.0]]]])  # [1, 1, 2, 2] (x, y) in a W x H clip
    return {"video": torch.zeros(1, 2, H, W, 3), "target_points": target, "occluded": torch.tensor([[[False, True]]])}


def test_terms_in_256_pixel_units_and_reference_weighting():
    batch = _batch()
    tracks = batch["target_points"].clone()
    tracks[0, 0, 0] += torch.tensor([1.0, 0.0])  # 1 px in x at W=64 -> 4 px at 256: Huber linear part
    out = {"tracks": tracks, "occlusion": torch.tensor([[[0.0, 2.0]]]), "expected_dist": torch.tensor([[[1.0, -3.0]]])}
    assert REFERENCE == dict(position_weight=0.05, huber_delta=4.0, expected_dist_thresh=6.0, overall_weight=2.0)
    loss, terms = tracking_loss(out, batch, **REFERENCE)
    dist = math.sqrt(16 + 1e-6)
    huber = 4.0 * (dist - 2.0)  # dist >= delta = 4
    assert math.isclose(terms["position"].item(), 0.05 * huber / 2, rel_tol=1e-6)  # mean over 2 points, 1 visible
    occ = (F.binary_cross_entropy_with_logits(torch.tensor(0.0), torch.tensor(0.0))
           + F.binary_cross_entropy_with_logits(torch.tensor(2.0), torch.tensor(1.0))) / 2
    assert math.isclose(terms["occlusion"].item(), occ.item(), rel_tol=1e-6)
    expd = F.binary_cross_entropy_with_logits(torch.tensor(1.0), torch.tensor(0.0)) / 2  # 4 px < 6 px: "near"
    assert math.isclose(terms["expected_dist"].item(), expd.item(), rel_tol=1e-6)
    assert math.isclose(loss.item(), 2 * sum(t.item() for t in terms.values()), rel_tol=1e-6)


def test_expected_distance_target_uses_six_pixels_and_no_position_gradient():
    batch = _batch(256, 256)
    tracks = (batch["target_points"] + torch.tensor([7.0, 0.0])).requires_grad_()
    out = {"tracks": tracks, "occlusion": torch.zeros(1, 1, 2), "expected_dist": torch.zeros(1, 1, 2, requires_grad=True)}
    _, terms = tracking_loss(out, batch, **{**REFERENCE, "position_weight": 0.0})
    assert math.isclose(terms["expected_dist"].item(), F.softplus(torch.tensor(0.0)).item() / 2, rel_tol=1e-6)
    terms["expected_dist"].backward()
    assert tracks.grad is None or tracks.grad.abs().sum() == 0
