"""Reference augmentations: crop window sampling, exact track transform, TensorFlow colour ops."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.data import augment


def test_crop_boxes_follow_the_reference_ranges():
    rng = np.random.default_rng(0)
    boxes = np.array([augment.sample_crop_box(rng, 256, 256) for _ in range(400)])
    y0, x0, h, w = boxes.T
    area = h * w / 256**2
    assert (y0 >= 0).all() and (x0 >= 0).all() and (y0 + h <= 256).all() and (x0 + w <= 256).all()
    assert area.min() >= 0.3 - 1e-6 and area.max() <= 1.0
    aspect = w / h
    assert aspect.min() >= 0.5 - 0.02 and aspect.max() <= 2.0 + 0.02
    assert area.min() < 0.35 and area.max() > 0.9  # the whole range is used (heights are uniform, not areas)
    assert ((aspect < 0.8).mean() > 0.1) and ((aspect > 1.25).mean() > 0.1)
    # Impossible constraints fall back to the whole frame, like the reference.
    assert augment.sample_crop_box(rng, 10, 100, area=(0.9, 1.0), aspect=(0.5, 0.6)) == (0, 0, 10, 100)


def test_crop_tracks_is_exact_and_marks_points_outside_occluded():
    box = (10, 20, 100, 50)  # y0, x0, h, w
    tracks = np.array([[[20.0, 10.0], [70.0, 110.0], [45.0, 60.0], [19.9, 60.0], [45.0, 110.1]]], np.float32)
    occluded = np.array([[False, False, False, False, True]])
    out, occ = augment.crop_tracks(tracks, occluded, box, (200, 100))
    np.testing.assert_allclose(out[0], [[0, 0], [100, 200], [50, 100], [-0.2, 100], [50, 200.2]], atol=1e-4)
    assert occ.tolist() == [[False, False, False, True, True]]


def test_video_and_tracks_stay_consistent_through_crop_and_resize():
    """Frames whose pixel (i, j) has value i (red) and j (green): after the crop-and-resize the image
    sampled at a transformed point gives back the original point's coordinates."""
    h, w = 200, 240
    yy, xx = np.mgrid[0:h, 0:w]
    video = np.stack([xx % 256, yy % 256, np.zeros_like(xx)], -1).astype(np.uint8)[None].repeat(2, 0)
    rng = np.random.default_rng(1)
    for _ in range(5):
        box = augment.sample_crop_box(rng, h, w)
        frames = augment.crop_resize_video(video, box, (64, 96))  # planar [T, 3, 64, 96] in [0, 1]
        y0, x0, bh, bw = box
        # Points away from the crop border (where bilinear clamps) and inside the ramps (< 256).
        pts = np.stack([rng.uniform(x0 + 2, min(x0 + bw - 2, 250), 50), rng.uniform(y0 + 2, y0 + bh - 2, 50)], -1)
        out, occ = augment.crop_tracks(pts[:, None].astype(np.float32), np.zeros((50, 1), bool), box, (64, 96))
        assert not occ.any()
        ox, oy = out[:, 0, 0], out[:, 0, 1]
        # Nearest output pixel centre, then undo the resize analytically (pure ratio, no half-pixel shift).
        i, j = np.floor(oy).astype(int), np.floor(ox).astype(int)
        red, green = frames[0, 0, i, j] * 255, frames[0, 1, i, j] * 255
        x_back = x0 + (j + 0.5) * bw / 96 - 0.5
        y_back = y0 + (i + 0.5) * bh / 64 - 0.5
        np.testing.assert_allclose(red, x_back, atol=0.51)
        np.testing.assert_allclose(green, y_back, atol=0.51)
        # ... and that pixel centre is within half an output pixel of the transformed track.
        assert np.abs(ox - (j + 0.5)).max() <= 0.5 and np.abs(oy - (i + 0.5)).max() <= 0.5


# TensorFlow's kernels (adjust_saturation_op.cc, adjust_hue_op.cc), ported literally with HSV round trips.


def _tf_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    r, g, b = np.moveaxis(img, -1, 0)
    vv = np.maximum(np.maximum(r, g), b)
    rng = vv - np.minimum(np.minimum(r, g), b)
    s = np.where(vv > 0, rng / np.where(vv > 0, vv, 1), 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = 1.0 / (6.0 * rng)
        h = np.where(r == vv, norm * (g - b), np.where(g == vv, norm * (b - r) + 2 / 6, norm * (r - g) + 4 / 6))
    h = np.where(rng <= 0, 0, h)
    h = np.where(h < 0, h + 1, h)
    s = np.clip(s * factor, 0, 1)
    c = s * vv
    m = vv - c
    dh = h * 6
    cat = dh.astype(int)
    fmodu = np.mod(np.where(dh <= 0, dh + 2, dh), 2.0)
    x = c * (1 - np.abs(fmodu - 1))
    z = np.zeros_like(c)
    conds = [cat == k for k in range(6)]
    rr = np.select(conds, [c, x, z, z, x, c], z)
    gg = np.select(conds, [x, c, c, x, z, z], z)
    bb = np.select(conds, [z, z, x, c, c, x], z)
    return np.stack([rr + m, gg + m, bb + m], -1)


def _tf_hue(img: np.ndarray, delta: float) -> np.ndarray:
    r, g, b = np.moveaxis(img, -1, 0)
    vmax = np.maximum(np.maximum(r, g), b)
    vmin = np.minimum(np.minimum(r, g), b)
    rng = vmax - vmin
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(r == vmax, (g - b) / rng, np.where(g == vmax, 2 + (b - r) / rng, 4 + (r - g) / rng))
    h = np.where(rng > 0, h, 0)
    h = np.where(h < 0, h + 6, h)
    h = h + delta * 6
    h = np.where(h < 0, h + 6, h)
    h = np.where(h >= 6, h - 6, h)
    cat = h.astype(int)
    ratio = np.where(cat % 2 == 0, h - cat, 1 - (h - cat))
    vmid = vmin + ratio * rng
    conds = [cat == k for k in range(5)]
    rr = np.select(conds, [vmax, vmid, vmin, vmin, vmid], vmax)
    gg = np.select(conds, [vmid, vmax, vmax, vmid, vmin], vmin)
    bb = np.select(conds, [vmin, vmin, vmid, vmax, vmax], vmid)
    return np.stack([rr, gg, bb], -1)


@pytest.fixture
def pixels():
    """Colours after a brightness shift (so some are negative or above 1), with grey and tie cases."""
    img = np.random.default_rng(0).uniform(-0.15, 1.15, (2, 30, 30, 3)).astype(np.float32)
    img[0, 0, :4] = [[0.5, 0.5, 0.5], [0.3, 0.3, 0.1], [-0.1, -0.05, -0.2], [0.2, 0.7, 0.7]]
    return img


def _planar(img):
    return np.ascontiguousarray(img.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("factor", [0.6, 1.0, 1.37])
def test_saturation_matches_tensorflow(pixels, factor):
    got = augment.adjust_saturation(_planar(pixels), factor).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, _tf_saturation(pixels.astype(np.float64), factor), atol=1e-6)


@pytest.mark.parametrize("delta", [-0.2, -0.04, 0.0, 0.13, 0.2])
def test_hue_matches_tensorflow(pixels, delta):
    got = augment.adjust_hue(_planar(pixels), delta).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, _tf_hue(pixels.astype(np.float64), delta), atol=2e-6)


def test_contrast_grayscale_and_full_colour_augmentation(pixels):
    v = _planar(pixels)
    mean = v.mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(augment.adjust_contrast(v.copy(), 1.3), (v - mean) * 1.3 + mean, atol=1e-6)
    weights = np.array(augment.GRAY_WEIGHTS, np.float32)
    np.testing.assert_allclose(augment.grayscale_plane(v), pixels @ weights, atol=1e-6)
    # Grayscale alone acts on the [-1, 1] video, like the reference.
    base01 = np.random.default_rng(3).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    grey_out = augment.augment_video_colour(_planar(base01), np.random.default_rng(0), 0.0, 1.0)
    np.testing.assert_allclose(grey_out, np.repeat((base01 * 2 - 1) @ weights, 3).reshape(2, 8, 8, 3), atol=1e-6)
    # Probabilities: jitter 0.8, grayscale 0.2 (per clip); output [T, H, W, 3] in [-1, 1].
    changed, grey = 0, 0
    for seed in range(500):
        out = augment.augment_video_colour(_planar(base01), np.random.default_rng(seed))
        assert out.shape == (2, 8, 8, 3) and out.min() >= -1 and out.max() <= 1
        grey += bool(np.allclose(out[..., 0], out[..., 1]) and np.allclose(out[..., 1], out[..., 2]))
        changed += not np.allclose(out, base01 * 2 - 1, atol=1e-6)
    assert 0.12 < grey / 500 < 0.28 and 0.75 < changed / 500 < 0.9
