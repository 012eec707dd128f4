"""Models: the DINOv2-compatible ViT and the Chrono tracker."""
