"""Training with DINOv2 frozen (the reference recipe) backpropagates through the adapters on CPU."""

import torch

import chrono
from chrono.cli import compose
from chrono.losses import tracking_loss


def test_backward_with_frozen_backbone_reaches_every_adapter():
    # Regression: the first adapter's GroupNorm sees a channels-last view that needs no gradient, and
    # PyTorch's CPU channels-last GroupNorm backward crashed the process on it.
    torch.manual_seed(0)
    tracker = chrono.load_tracker(None, backbone="tiny", input_size=112).train()
    tracker.freeze_backbone()
    video = torch.rand(1, 3, 64, 64, 3) * 2 - 1
    queries = torch.tensor([[[0, 10.0, 20.0], [2, 40.0, 30.0]]])
    batch = {"video": video, "target_points": torch.rand(1, 2, 3, 2) * 64, "occluded": torch.zeros(1, 2, 3, dtype=torch.bool)}
    loss, _ = tracking_loss(tracker(video, queries), batch, **compose("train").loss)
    loss.backward()
    assert all(a.conv2.weight.grad is not None and a.norm.weight.grad is not None for a in tracker.adapter)
    assert all(p.grad is None for p in tracker.dino.parameters())
