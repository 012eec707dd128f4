"""The numpy port of kubric's track computation: against kubric's own tracks, and on ray-cast scenes."""

from __future__ import annotations

import numpy as np
import pytest

from chrono.kubric.fake_build import synthetic_scene
from chrono.data.grid import TRACK_SCALE, grid_pixels
from chrono.kubric.tracks import (KubricScene, SceneError, camera_matrices, depth_metres, project_points,
                                  quaternion_to_matrix, track_grid, track_pixels, unproject)


@pytest.mark.parametrize("name", ["scene50", "scene51"])
def test_matches_kubric_reference_tracks(name, train_examples, reference_tracks):
    """Every pixel of every frame as a query, compared with the tracks kubric's own code computed."""
    queries, ref_tracks, ref_occluded, _ = reference_tracks[name]
    scene = KubricScene.from_example(train_examples[name])
    tracks, occluded = track_pixels(scene, np.floor(queries).astype(np.int64))
    visible = ~ref_occluded
    err = np.linalg.norm(tracks - ref_tracks, axis=-1)
    p99 = np.percentile(err[visible], 99)
    agreement = np.mean(occluded == ref_occluded)
    print(f"{name}: visible error p99 {p99:.4f} px, max {err[visible].max():.4f} px; occlusion agreement "
          f"{agreement:.6f} ({np.sum(occluded != ref_occluded)} of {occluded.size} flags differ)")
    assert p99 < 0.05  # the reference is stored as float16: ~0.01 px
    assert agreement >= 0.9999


def test_quaternions_are_w_x_y_z():
    theta = 0.7
    rz = quaternion_to_matrix(np.array([np.cos(theta / 2), 0, 0, np.sin(theta / 2)]))
    np.testing.assert_allclose(rz, [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                                    [0, 0, 1]], atol=1e-12)


def test_unproject_then_project_returns_the_pixel_centre(train_examples):
    scene = KubricScene.from_example(train_examples["scene50"])
    intrinsics, matrix_world = camera_matrices(scene.focal_length, scene.sensor_width, scene.camera_positions,
                                               scene.camera_quaternions, scene.size)
    yx = np.stack(np.meshgrid(np.arange(32), np.arange(32), indexing="ij"), -1).reshape(-1, 2)
    world = unproject(yx, intrinsics[7], matrix_world[7], depth_metres(scene)[7])
    uvs = project_points(intrinsics[7:8], matrix_world[7:8], world[None])[0]
    np.testing.assert_allclose(uvs[:, :2] * 32, yx[:, ::-1] + 0.5, atol=1e-6)
    assert (uvs[:, 2] > 0).all()  # in front of the camera


@pytest.fixture(scope="module")
def synthetic():
    example, truth = synthetic_scene(64, 64, 24, seed=1, leave_frame=True)
    return example, truth, KubricScene.from_example(example)


def test_track_grid_stores_every_grid_point(synthetic):
    """The conversion's grid: every stride-4 point with its segment id, kubric's track at 1/64 px, its flags."""
    _, _, scene = synthetic
    grid = track_grid(scene, (1, 2, 3), 4)
    assert grid.shape == (6, 16, 16) and grid.start == (1, 2, 3) and grid.num_frames == 24
    pix = grid_pixels((1, 2, 3), 4, grid.shape)
    assert pix[0, 0, 0].tolist() == [1, 2, 3] and pix[-1, -1, -1].tolist() == [21, 62, 63]
    np.testing.assert_array_equal(grid.segments, scene.segmentations[pix[..., 0], pix[..., 1], pix[..., 2]])
    assert len(np.unique(grid.segments)) > 2
    tracks, occluded = track_pixels(scene, pix.reshape(-1, 3))
    flat = grid.flat()
    np.testing.assert_array_equal(flat["occluded"], occluded)
    visible = ~occluded
    assert np.abs(flat["tracks"] - tracks)[visible].max() <= 0.5 / TRACK_SCALE + 1e-3  # + the query-frame pin
    n, t = np.arange(grid.size), pix.reshape(-1, 3)[:, 0]
    np.testing.assert_array_equal(flat["tracks"][n, t], flat["query_points"][:, [2, 1]])  # exactly the query
    np.testing.assert_array_equal(flat["query_points"], pix.reshape(-1, 3) + np.float32([0, 0.5, 0.5]))


def test_object_leaving_the_frame(synthetic):
    """Box 0 slides out of the picture: its points keep moving past the border and are occluded there."""
    example, truth, scene = synthetic
    h, w = scene.size
    seg = scene.segmentations
    assert (seg[0] == 1).sum() > 100 and (seg[-1] == 1).sum() == 0
    ys, xs = np.nonzero(seg[0] == 1)
    pix = np.stack([np.zeros_like(ys), ys, xs], 1)
    tracks, occluded = track_pixels(scene, pix)
    local = example["object_coordinates"][0, ys, xs] / 65535 - 0.5
    outside = np.zeros_like(occluded)
    for f in range(scene.num_frames):
        expected, _ = truth.project(truth.box_point(0, local, f), f, (h, w))
        np.testing.assert_allclose(tracks[:, f], expected, atol=1e-3)
        outside[:, f] = (expected[:, 0] < 0) | (expected[:, 0] > w) | (expected[:, 1] < 0) | (expected[:, 1] > h)
    assert outside[:, -1].all() and tracks[:, -1, 0].min() > w  # beyond the right border, not clipped
    assert occluded[outside].all()
    visible_inside = ~occluded & ~outside
    assert visible_inside[:, 0].all() and visible_inside.sum() > len(pix) * 3


def test_window_occludes_points_outside_it(synthetic):
    _, _, scene = synthetic
    pix = np.array([[0, 20, 20], [3, 40, 10], [5, 60, 60]])
    full, occ_full = track_pixels(scene, pix)
    window = (16, 8, 48, 40)
    cropped, occ_window = track_pixels(scene, pix, window=window)
    np.testing.assert_array_equal(cropped, full)
    outside = (full[..., 1] < 16) | (full[..., 0] < 8) | (full[..., 1] > 48) | (full[..., 0] > 40)
    np.testing.assert_array_equal(occ_window, occ_full | outside)


def test_inconsistent_scenes_raise(synthetic):
    example, _, scene = synthetic
    broken = KubricScene(**{**scene.__dict__, "segmentations": np.where(scene.segmentations == 1, 9,
                                                                        scene.segmentations).astype(np.uint8)})
    ys, xs = np.nonzero(broken.segmentations[0] == 9)
    with pytest.raises(SceneError, match="segment id 9 but only 3 instances"):
        track_pixels(broken, np.array([[0, ys[0], xs[0]]]))
    with pytest.raises(SceneError, match="missing field 'normal'"):
        KubricScene.from_example({k: v for k, v in example.items() if k != "normal"})
    short = {**example, "camera": {**example["camera"], "positions": example["camera"]["positions"][:-1]}}
    with pytest.raises(SceneError, match="camera positions has shape"):
        KubricScene.from_example(short)
