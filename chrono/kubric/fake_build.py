"""Fake panning MOVi-E builds in the real TFDS format: synthetic Kubric scenes for tests and benchmarks.

:func:`synthetic_scene` ray-casts a scene (checkered ground plane, boxes that move and turn, a panning
camera; the fixture's kind of scene at any size) with its exact tracks; :func:`encode_scene` turns it into
a TFDS record exactly like a panning MOVi-E build, and :func:`write_build` writes a whole build folder. The
tests make their own builds with them (an object leaving the frame, missing fields, corrupt records), and
``python -m chrono.bench suite=kubric`` times the conversion of one such scene (chrono.perf.kubric_speed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from chrono.kubric import tfds as tfds_features, tfrecord
from chrono.kubric.tracks import _BOX_CORNERS, quaternion_to_matrix

FOCAL_LENGTH, SENSOR_WIDTH = 35.0, 32.0
_TFDS = "tensorflow_datasets.core.features."


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix [3, 3] (the inverse of ``quaternion_to_matrix``)."""
    m = np.asarray(r, np.float64)
    tr = np.trace(m)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4]
    return np.array(q)


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world rotation [3, 3] of a Blender camera (looking along its -z, y up) aimed at ``target``."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)


@dataclass
class SceneTruth:
    """What a synthetic scene was made of (world units, per frame): the ground truth for tests.

    camera_rotations [T, 3, 3] (camera to world), camera_positions [T, 3], box_centres [K, T, 3],
    box_rotations [K, T, 3, 3], box_sizes [K, 3]; fx, fy: intrinsics in image units.
    """

    camera_rotations: np.ndarray
    camera_positions: np.ndarray
    box_centres: np.ndarray
    box_rotations: np.ndarray
    box_sizes: np.ndarray
    fx: float
    fy: float

    def project(self, world: np.ndarray, frame: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Pinhole projection of world points [N, 3] at ``frame``: pixels (x, y) [N, 2] and depth along -z [N]."""
        cam = (world - self.camera_positions[frame]) @ self.camera_rotations[frame]
        z = -cam[:, 2]
        u = 0.5 + self.fx * cam[:, 0] / z
        v = 0.5 - self.fy * cam[:, 1] / z
        return np.stack([u * size[1], v * size[0]], axis=1), z

    def box_point(self, box: int, local: np.ndarray, frame: int) -> np.ndarray:
        """World position at ``frame`` of box-local points [N, 3] (box corners at +-0.5)."""
        return self.box_centres[box, frame] + (local * self.box_sizes[box]) @ self.box_rotations[box, frame].T


def synthetic_scene(height: int = 256, width: int = 256, num_frames: int = 24, seed: int = 0, num_boxes: int = 3,
                    leave_frame: bool = True, name: str = "synthetic") -> tuple[dict, SceneTruth]:
    """Ray-cast a panning MOVi-E-like scene; returns (decoded example, ground truth).

    The example is what ``tfds.as_numpy`` gives for a panning MOVi-E record (video, depth + depth_range,
    segmentations, object_coordinates, normal, instances with bboxes_3d and quaternions, camera, metadata),
    with kubric's conventions. With ``leave_frame`` box 0 slides out of the picture during the clip.
    """
    rng = np.random.default_rng(seed)
    fx = FOCAL_LENGTH / SENSOR_WIDTH
    fy = fx * height / width
    frames = np.arange(num_frames)
    cam_pos = np.stack([0.9 + 0.12 * frames, -6.5 + 0.03 * frames, np.full(num_frames, 4.0)], 1)
    target = np.stack([0.4 * np.sin(frames / 10.0), 0.3 * frames / num_frames, np.zeros(num_frames)], 1)
    cam_rot = np.stack([look_at(p, q) for p, q in zip(cam_pos, target)])
    sizes = rng.uniform(0.8, 1.8, (num_boxes, 3))
    start = np.stack([rng.uniform(-2, 2, num_boxes), rng.uniform(-1.5, 1.5, num_boxes), sizes[:, 2] / 2 + 0.05], 1)
    velocity = np.concatenate([rng.uniform(-0.05, 0.05, (num_boxes, 2)), np.zeros((num_boxes, 1))], 1)
    if leave_frame:
        start[0, :2] = (0.0, -1.0)
        velocity[0] = (0.45 * 24 / num_frames, 0.0, 0.0)
    centres = start[:, None, :] + velocity[:, None, :] * frames[None, :, None]
    yaw = rng.uniform(0, np.pi, num_boxes)[:, None] + rng.uniform(-0.08, 0.08, num_boxes)[:, None] * frames
    box_quat = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], -1)
    box_rot = quaternion_to_matrix(box_quat)
    truth = SceneTruth(cam_rot, cam_pos, centres, box_rot, sizes, fx, fy)

    jj, ii = np.meshgrid(np.arange(width), np.arange(height))
    d_cam = np.stack([((jj + 0.5) / width - 0.5) / fx, -((ii + 0.5) / height - 0.5) / fy, -np.ones_like(jj, float)], -1)
    d_cam = d_cam.reshape(-1, 3) / np.linalg.norm(d_cam.reshape(-1, 3), axis=1, keepdims=True)
    colours = rng.uniform(60, 230, (num_boxes, 3))
    out = {k: [] for k in ("video", "depth", "segmentations", "normal", "object_coordinates")}
    for f in frames:
        origin, dirs = cam_pos[f], d_cam @ cam_rot[f].T
        dist = np.where(dirs[:, 2] < -1e-9, -origin[2] / np.minimum(dirs[:, 2], -1e-9), 1e3)
        hit = origin + dist[:, None] * dirs
        seg = np.zeros(len(dirs), np.int64)
        normal = np.tile([0.0, 0.0, 1.0], (len(dirs), 1))
        objc = np.zeros((len(dirs), 3))
        checker = (np.floor(hit[:, 0]) + np.floor(hit[:, 1])) % 2
        rgb = np.stack([90 + 100 * checker, 110 + 80 * checker, 70 + 90 * checker], 1)
        for k in range(num_boxes):
            rot, half = box_rot[k, f], sizes[k] / 2
            o_l, d_l = (origin - centres[k, f]) @ rot, dirs @ rot
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (-half - o_l) / d_l, (half - o_l) / d_l
            t_near, t_far = np.minimum(t1, t2), np.maximum(t1, t2)
            enter = np.nanmax(t_near, axis=1)
            closer = (enter <= np.nanmin(t_far, axis=1)) & (enter > 0) & (enter < dist)
            face = np.nanargmax(t_near, axis=1)
            local = o_l + enter[:, None] * d_l
            n_local = np.zeros_like(local)
            n_local[np.arange(len(face)), face] = -np.sign(d_l[np.arange(len(face)), face])
            dist = np.where(closer, enter, dist)
            seg[closer] = k + 1
            normal[closer] = (n_local @ rot.T)[closer]
            objc[closer] = np.clip(local[closer] / sizes[k] + 0.5, 0, 1)
            shade = 0.55 + 0.45 * np.abs(n_local @ np.array([0.3, 0.5, 0.8]))
            rgb[closer] = (colours[k] * shade[:, None])[closer]
        out["video"].append(rgb.reshape(height, width, 3).astype(np.uint8))
        out["depth"].append(dist.reshape(height, width))
        out["segmentations"].append(seg.reshape(height, width, 1).astype(np.uint8))
        out["normal"].append(np.round((normal + 1) / 2 * 65535).reshape(height, width, 3).astype(np.uint16))
        out["object_coordinates"].append(np.round(objc * 65535).reshape(height, width, 3).astype(np.uint16))
    depth = np.stack(out.pop("depth"))
    lo, hi = float(depth.min()), float(depth.max())
    example = {k: np.stack(v) for k, v in out.items()}
    example["depth"] = np.round((depth - lo) / (hi - lo) * 65535).astype(np.uint16)[..., None]
    example["instances"] = {
        "bboxes_3d": np.stack([[truth.box_point(k, _BOX_CORNERS, f) for f in frames] for k in range(num_boxes)]).astype(
            np.float32),
        "quaternions": box_quat.astype(np.float32),
        "positions": centres.astype(np.float32),
        "asset_id": [f"box{k}" for k in range(num_boxes)],
    }
    example["camera"] = {
        "focal_length": np.float32(FOCAL_LENGTH), "sensor_width": np.float32(SENSOR_WIDTH),
        "field_of_view": np.float32(2 * np.arctan(0.5 / fx)), "positions": cam_pos.astype(np.float32),
        "quaternions": np.stack([matrix_to_quaternion(r) for r in cam_rot]).astype(np.float32),
    }
    example["metadata"] = {
        "video_name": name, "depth_range": np.array([lo, hi], np.float32), "num_frames": np.int32(num_frames),
        "height": np.int32(height), "width": np.int32(width), "num_instances": np.uint16(num_boxes),
    }
    return example, truth


def features_json(num_frames: int, height: int, width: int, flows: bool = False) -> dict:
    """A ``features.json`` with the panning MOVi-E fields that the conversion reads (the real build's layout);
    ``flows`` adds forward_flow and backward_flow (uint16 tensors, as in the real build)."""

    def tensor(dtype, *shape):
        return {"pythonClassName": _TFDS + "tensor_feature.Tensor",
                "tensor": {"dtype": dtype, "encoding": "none", "shape": {"dimensions": [str(d) for d in shape]}}}

    def sequence(feature, length):
        return {"pythonClassName": _TFDS + "sequence_feature.Sequence",
                "sequence": {"feature": feature, "length": str(length)}}

    def images(dtype, channels):
        return sequence({"pythonClassName": _TFDS + "image_feature.Image",
                         "image": {"dtype": dtype, "shape": {"dimensions": [str(height), str(width), str(channels)]}}},
                        num_frames)

    def video(dtype):
        return {"pythonClassName": _TFDS + "video_feature.Video",
                "video": {"dtype": dtype, "encodingFormat": "png",
                          "shape": {"dimensions": [str(num_frames), str(height), str(width), "3"]}}}

    def fdict(**members):
        return {"pythonClassName": _TFDS + "features_dict.FeaturesDict", "featuresDict": {"features": members}}

    text = {"pythonClassName": _TFDS + "text_feature.Text", "text": {}}
    extra = {k: sequence(tensor("uint16", height, width, 2), num_frames) for k in ("forward_flow", "backward_flow")}
    return fdict(**(extra if flows else {}),
        video=video("uint8"), depth=images("uint16", 1), segmentations=images("uint8", 1),
        normal=video("uint16"), object_coordinates=video("uint16"),
        camera=fdict(focal_length=tensor("float32"), sensor_width=tensor("float32"),
                     field_of_view=tensor("float32"), positions=tensor("float32", num_frames, 3),
                     quaternions=tensor("float32", num_frames, 4)),
        instances=sequence(fdict(bboxes_3d=tensor("float32", num_frames, 8, 3),
                                 quaternions=tensor("float32", num_frames, 4),
                                 positions=tensor("float32", num_frames, 3), asset_id=text), -1),
        metadata=fdict(video_name=text, depth_range=tensor("float32", 2), num_frames=tensor("int32"),
                       height=tensor("int32"), width=tensor("int32"), num_instances=tensor("uint16")),
    )


def encode_scene(example: Mapping, spec: tfds_features.FeatureSpec) -> bytes:
    """A decoded example serialized as a TFDS record payload (a ``tf.train.Example``)."""
    return tfrecord.encode_example(tfds_features.encode_example(spec, example))


def write_build(folder: str | Path, splits: Mapping[str, Iterable[Iterable[bytes]]], num_frames: int, height: int,
                width: int, name: str = "panning_movi_e") -> Path:
    """Write a TFDS build folder: ``features.json``, ``dataset_info.json`` and one TFRecord file per shard.

    ``splits`` maps a split name to its shards, each an iterable of record payloads (see :func:`encode_scene`).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "features.json").write_text(json.dumps(features_json(num_frames, height, width), indent=1))
    info = {"name": name, "version": "1.0.0", "fileFormat": "tfrecord", "splits": []}
    for split, shards in splits.items():
        shards = [list(s) for s in shards]
        for i, payloads in enumerate(shards):
            tfrecord.write_records(folder / f"{name}-{split}.tfrecord-{i:05d}-of-{len(shards):05d}", payloads)
        info["splits"].append({"name": split, "shardLengths": [str(len(s)) for s in shards],
                               "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"})
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=1))
    return folder


def make_realistic(example: dict, rng: np.random.Generator) -> dict:
    """Add what makes real records ~27 MB (panning MOVi-E 256 x 256 is 273 GB for ~10,000 scenes): pixel
    noise in the rendered images (real textures compress poorly) and the forward/backward flow fields."""
    out = dict(example)
    t, h, w, _ = example["video"].shape
    out["video"] = np.clip(example["video"] + rng.integers(-6, 7, example["video"].shape), 0, 255).astype(np.uint8)
    for key in ("normal", "object_coordinates", "depth"):
        noisy = example[key].astype(np.int64) + rng.integers(-300, 301, example[key].shape)
        out[key] = np.where(example[key] > 0, np.clip(noisy, 0, 65535), example[key]).astype(np.uint16)
    for key in ("forward_flow", "backward_flow"):
        out[key] = rng.integers(20000, 45000, (t, h, w, 2)).astype(np.uint16)
    return out
