"""Point tracks from Kubric scenes: a numpy port of kubric's ``add_tracks`` track computation.

Ported from google-research/kubric ``challenges/point_tracking/dataset.py`` (``track_points`` and the functions
it calls), with the same conventions and the same decisions:

- Camera (Blender): looks along its local -z; intrinsics ``[[fx, 0, -0.5], [0, -fy, -0.5], [0, 0, -1]]`` with
  ``fx = focal_length / sensor_width`` and ``fy = fx * H / W``, mapping camera coordinates to the image in
  [0, 1]; ``matrix_world = [[R(q), position], [0, 0, 0, 1]]``; quaternions are (w, x, y, z).
- Query pixels (t, y, x) are integer pixel indices; the query point is their centre (t, y + 0.5, x + 0.5).
- Background points (segment 0) are unprojected from the depth map of their query frame (depth = distance
  to the camera centre) and stay put in the world; object points are mapped from their object coordinates
  (uint16 / 65535 - 0.5, box-local) through each frame's 3-D box (least squares fit of the 8 corners).
- A point is occluded in a frame when it is behind the camera, when the largest depth of the 4 pixels
  around it is less than 0.99 x its own distance, when none of those 4 pixels has its segment id, when it
  lies outside the window (strictly), or, for objects, when its surface normal (taken at the query frame,
  rotated with the object) faces away from the camera; the normal test is skipped for points whose normal
  is rough (more than 2 of the 4 diagonal neighbours differ by > 0.05) or faces away on the query frame.
- Queries lie on a grid of stride ``sampling_stride`` (4) in t, y and x with a random offset; :func:`track_grid`
  tracks every point of it (the conversion stores them all), and the training loader draws from them per
  read by kubric's rule (``get_num_to_sample`` per segment after the crop: :mod:`chrono.data.sampling`).

Tracks are (x, y) in pixels of the full frame, raster convention (pixel i covers [i, i + 1)). Computation is
in float64 (kubric: float32); this changes positions by ~1e-5 px.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from chrono.data.grid import QueryGrid, encode_grid, grid_pixels, grid_shape

_BOX_CORNERS = np.array(list(itertools.product([-0.5, 0.5], repeat=3)), np.float64)  # kubric's corner order


class SceneError(ValueError):
    """A Kubric scene whose fields are inconsistent (shapes, segment ids without an instance, ...)."""


@dataclass
class KubricScene:
    """The fields of one panning MOVi-E scene that the tracks need (as ``tfds.as_numpy`` decodes them).

    object_coordinates uint16 [T, H, W, 3]; depth uint16 [T, H, W] (scaled over ``depth_range``);
    segmentations uint8 [T, H, W] (0 = background, i = instance i - 1); normal uint16 [T, H, W, 3]
    ((n + 1) / 2 * 65535); bboxes_3d float [K, T, 8, 3]; quaternions float [K, T, 4] (objects, w x y z);
    camera: focal_length, sensor_width (scalars), positions [T, 3], quaternions [T, 4].
    """

    object_coordinates: np.ndarray
    depth: np.ndarray
    depth_range: np.ndarray
    segmentations: np.ndarray
    normal: np.ndarray
    bboxes_3d: np.ndarray
    quaternions: np.ndarray
    focal_length: float
    sensor_width: float
    camera_positions: np.ndarray
    camera_quaternions: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.depth.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.depth.shape[1], self.depth.shape[2]

    @classmethod
    def from_example(cls, example: Mapping) -> "KubricScene":
        """Build from a decoded panning MOVi-E example (:func:`chrono.kubric.tfds.decode_example`)."""
        try:
            inst, cam = example["instances"], example["camera"]
            scene = cls(
                object_coordinates=example["object_coordinates"],
                depth=_squeeze_channel(example["depth"], "depth"),
                depth_range=np.asarray(example["metadata"]["depth_range"], np.float64),
                segmentations=_squeeze_channel(example["segmentations"], "segmentations"),
                normal=example["normal"],
                bboxes_3d=np.asarray(inst["bboxes_3d"]),
                quaternions=np.asarray(inst["quaternions"]),
                focal_length=float(cam["focal_length"]),
                sensor_width=float(cam["sensor_width"]),
                camera_positions=np.asarray(cam["positions"]),
                camera_quaternions=np.asarray(cam["quaternions"]),
            )
        except KeyError as e:
            raise SceneError(f"missing field {e}") from None
        scene.validate()
        return scene

    def validate(self) -> None:
        """Raise :class:`SceneError` unless all shapes agree."""
        t, h, w = self.depth.shape
        k = self.bboxes_3d.shape[0]
        expected = {
            "object_coordinates": (self.object_coordinates.shape, (t, h, w, 3)),
            "segmentations": (self.segmentations.shape, (t, h, w)),
            "normal": (self.normal.shape, (t, h, w, 3)),
            "bboxes_3d": (self.bboxes_3d.shape, (k, t, 8, 3)),
            "quaternions": (self.quaternions.shape, (k, t, 4)),
            "camera positions": (self.camera_positions.shape, (t, 3)),
            "camera quaternions": (self.camera_quaternions.shape, (t, 4)),
            "depth_range": (self.depth_range.shape, (2,)),
        }
        for name, (got, want) in expected.items():
            if tuple(got) != want:
                raise SceneError(f"{name} has shape {tuple(got)}, expected {want}")


def _squeeze_channel(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        return arr[..., 0]
    if arr.ndim != 3:
        raise SceneError(f"{name} has shape {arr.shape}, expected [T, H, W, 1]")
    return arr


# ----------------------------------------------------------------------------------------------------------
# Geometry


def quaternion_to_matrix(q_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] of quaternions [..., 4] in (w, x, y, z) order.

    The formula of tensorflow_graphics ``rotation_matrix_3d.from_quaternion`` (no normalisation).
    """
    q = np.asarray(q_wxyz, np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    tx, ty, tz = 2 * x, 2 * y, 2 * z
    twx, twy, twz = tx * w, ty * w, tz * w
    txx, txy, txz = tx * x, ty * x, tz * x
    tyy, tyz, tzz = ty * y, tz * y, tz * z
    rows = [1 - (tyy + tzz), txy - twz, txz + twy,
            txy + twz, 1 - (txx + tzz), tyz - twx,
            txz - twy, tyz + twx, 1 - (txx + tyy)]
    return np.stack(rows, axis=-1).reshape(q.shape[:-1] + (3, 3))


def camera_matrices(focal_length: float, sensor_width: float, positions: np.ndarray, quaternions: np.ndarray,
                    input_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Kubric's ``get_camera_matrices``: intrinsics [T, 3, 3] and camera-to-world ``matrix_world`` [T, 4, 4].

    ``input_size`` = (H, W). The intrinsics map camera coordinates to image coordinates in [0, 1].
    """
    positions = np.asarray(positions, np.float64)
    num_frames = positions.shape[0]
    f_x = focal_length / sensor_width
    f_y = focal_length / sensor_width * input_size[0] / input_size[1]
    intrinsics = np.zeros((num_frames, 3, 3))
    intrinsics[:] = [[f_x, 0.0, -0.5], [0.0, -f_y, -0.5], [0.0, 0.0, -1.0]]
    matrix_world = np.zeros((num_frames, 4, 4))
    matrix_world[:, :3, :3] = quaternion_to_matrix(quaternions)
    matrix_world[:, :3, 3] = positions
    matrix_world[:, 3, 3] = 1.0
    return intrinsics, matrix_world


def project_points(intrinsics: np.ndarray, matrix_world: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Kubric's ``project_point``: world points [T, N, 3] -> [T, N, 3] = (u, v, sign of depth), u, v in [0, 1]."""
    world_to_cam = np.linalg.inv(matrix_world)
    homo = np.concatenate([points, np.ones_like(points[..., :1])], axis=-1)
    cam = homo @ world_to_cam.transpose(0, 2, 1)
    projected = cam[..., :3] @ intrinsics.transpose(0, 2, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = projected[..., :2] / projected[..., 2:3]
    return np.concatenate([uv, np.sign(projected[..., 2:3])], axis=-1)


def unproject(coords_yx: np.ndarray, intrinsics: np.ndarray, matrix_world: np.ndarray,
              depth: np.ndarray) -> np.ndarray:
    """Kubric's ``unproject``: integer pixels (y, x) [N, 2] of one frame -> world points [N, 3].

    ``depth`` [H, W] is the distance to the camera centre of each pixel; the ray goes through the pixel centre.
    """
    h, w = depth.shape
    coords_yx = np.asarray(coords_yx, np.int64)
    uv = (coords_yx[:, ::-1].astype(np.float64) + 0.5) / np.array([w, h], np.float64)
    plane = np.concatenate([uv, np.ones_like(uv[:, :1])], axis=1) @ np.linalg.inv(intrinsics.T)
    ball = plane / np.linalg.norm(plane, axis=1, keepdims=True)
    ball = ball * depth[coords_yx[:, 0], coords_yx[:, 1]][:, None]
    world = np.concatenate([ball, np.ones_like(ball[:, :1])], axis=1) @ matrix_world.T
    return world[:, :3] / world[:, 3:]


def box_to_world(bboxes_3d: np.ndarray) -> np.ndarray:
    """Per-frame affine maps [T, 4, 4] from box-local coordinates (corners at +-0.5) to the world.

    The least-squares fit (kubric: ``tf.linalg.lstsq``) of the homogeneous corners [8, 4] to the box's world
    corners [T, 8, 3]; used as ``local_homogeneous @ map``.
    """
    corners = np.concatenate([_BOX_CORNERS, np.ones((8, 1))], axis=1)
    target = np.concatenate([bboxes_3d, np.ones(bboxes_3d.shape[:-1] + (1,))], axis=-1)
    return np.linalg.pinv(corners) @ target


def reproject(coords: np.ndarray, intrinsics: np.ndarray, matrix_world: np.ndarray, camera_positions: np.ndarray,
              bbox_3d: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kubric's ``reproject``: points [N, 3] to every frame.

    ``coords`` are world points, or box-local points (in [-0.5, 0.5]) when ``bbox_3d`` [T, 8, 3] is given.
    Returns projections [N, T, 3] (u, v in [0, 1], sign of depth), distances to the camera [N, T] and world
    positions [N, T, 3].
    """
    num_frames = camera_positions.shape[0]
    if bbox_3d is not None:
        homo = np.concatenate([coords, np.ones_like(coords[:, :1])], axis=1)
        world = homo[None] @ box_to_world(bbox_3d)
        world = world[..., :3] / world[..., 3:]
    else:
        world = np.broadcast_to(coords[None], (num_frames,) + coords.shape)
    depths = np.linalg.norm(world - camera_positions[:, None, :], axis=-1)
    projections = project_points(intrinsics, matrix_world, world)
    return projections.transpose(1, 0, 2), depths.T, world.transpose(1, 0, 2)


def _neighbour_indices(coord: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """floor(coord - 0.5) and the next pixel, clipped to [0, size - 1], like kubric's int32 casts and clips.

    A value that int32 cannot hold (|v| >= 2**31, inf, nan) becomes INT_MIN in TensorFlow's cast on x86 and
    so pixel 0 after the clip; this is reproduced.
    """
    base = np.floor(coord - 0.5)
    base = np.where(np.abs(base) < 2.0 ** 31, base, -(2.0 ** 31))
    return np.clip(base, 0, size - 1).astype(np.int64), np.clip(base + 1, 0, size - 1).astype(np.int64)


def occluded_by_depth_and_segment(depth: np.ndarray, segments: np.ndarray, x: np.ndarray, y: np.ndarray,
                                  thresh: np.ndarray, seg_id: int) -> np.ndarray:
    """Kubric's ``estimate_occlusion_by_depth_and_segment``.

    depth, segments [T, H, W]; x, y [T, N] in pixels (raster); thresh [N, T]. A point is occluded when the
    largest depth of its 4 surrounding pixel centres is below ``thresh``, or when none of them has ``seg_id``.
    Returns [N, T] bool.
    """
    num_frames, h, w = depth.shape
    x0, x1 = _neighbour_indices(x, w)
    y0, y1 = _neighbour_indices(y, h)
    frame = np.arange(num_frames)[:, None]
    nearest = np.zeros(x.shape)
    other_segment = np.ones(x.shape, bool)
    for yy, xx in ((y0, x0), (y1, x0), (y0, x1), (y1, x1)):
        nearest = np.maximum(nearest, depth[frame, yy, xx])
        other_segment &= segments[frame, yy, xx].astype(np.int64) != seg_id
    return (nearest.T < thresh) | other_segment.T


def faces_away(world_normals: np.ndarray, points: np.ndarray, camera_positions: np.ndarray,
               object_rotations: np.ndarray, query_frames: np.ndarray) -> np.ndarray:
    """Kubric's ``rotate_surface_normals``: True where a point's surface faces away from the camera.

    world_normals [N, 3] (at the query frame); points [N, T, 3] world; camera_positions [T, 3];
    object_rotations [T, 3, 3]; query_frames [N] int. Points facing away on their own query frame are
    never flagged (probably a mesh bug, kubric says). Returns [N, T] bool.
    """
    local = np.einsum("noi,ni->no", np.linalg.inv(object_rotations[query_frames]), world_normals)
    normals_t = np.einsum("foi,ni->nfo", object_rotations, local)
    away = np.sum(normals_t * (points - camera_positions[None]), axis=-1) > 0
    return away & ~away[np.arange(len(query_frames)), query_frames][:, None]


def decode_normals(values: np.ndarray) -> np.ndarray:
    """Normal-map values as stored (uint16, ``(n + 1) / 2 * 65535``) -> float64 normals in [-1, 1]."""
    return values.astype(np.float64) / 65535 * 2 - 1


def rough_normals(normal_map: np.ndarray, pix_tyx: np.ndarray, decode=None,
                  centre: np.ndarray | None = None) -> np.ndarray:
    """Kubric's untrusted-normal test at query pixels: True where > 2 of the 4 diagonal neighbours differ.

    normal_map [T, H, W, 3] float in [-1, 1], or stored values that ``decode`` maps to that (then only the
    pixels the test reads are decoded); centre [N, 3]: the decoded normals at the query pixels, if already
    known. Neighbours outside the frame count as (0, 0, 0) (zero padding). Returns [N] bool.
    """
    t, y, x = pix_tyx.T
    _, h, w, _ = normal_map.shape
    decode = decode or (lambda values: values)
    centre = decode(normal_map[t, y, x]) if centre is None else centre
    differing = np.zeros(len(t), np.int64)
    for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        yy, xx = y + dy, x + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        other = np.where(inside[:, None], decode(normal_map[t, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]), 0.0)
        differing += np.sum((other - centre) ** 2, axis=-1) > 0.05 * 0.05
    return differing > 2


# ----------------------------------------------------------------------------------------------------------
# Tracks


def _window(window: Sequence[int] | None, size: tuple[int, int]) -> np.ndarray:
    """(y_min, x_min, y_max, x_max); the full frame by default."""
    return np.asarray((0, 0, size[0], size[1]) if window is None else window, np.int64)


def depth_metres(scene: KubricScene) -> np.ndarray:
    """The depth map [T, H, W] in world units: ``min + d / 65535 * (max - min)``."""
    lo, hi = scene.depth_range
    return lo + scene.depth.astype(np.float64) * (hi - lo) / 65535


def track_pixels(scene: KubricScene, pix_tyx: np.ndarray,
                 window: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tracks of query pixels through the whole scene (kubric's per-segment ``single_object_reproject``).

    pix_tyx [N, 3] int: query frame and pixel indices; the query point is the pixel centre.
    window: (y_min, x_min, y_max, x_max) in pixels; points outside it are occluded (default: the frame).
    Returns tracks [N, T, 2] float64 (x, y) in pixels of the full frame and occluded [N, T] bool.
    Raises :class:`SceneError` for a query on a segment id that has no instance.
    """
    pix_tyx = np.asarray(pix_tyx, np.int64).reshape(-1, 3)
    num_frames, (h, w) = scene.num_frames, scene.size
    if len(pix_tyx) and ((pix_tyx.min(0) < 0).any() or (pix_tyx.max(0) >= (num_frames, h, w)).any()):
        raise SceneError("query pixels outside the video")
    window = _window(window, (h, w))
    depth = depth_metres(scene)
    intrinsics, matrix_world = camera_matrices(scene.focal_length, scene.sensor_width, scene.camera_positions,
                                               scene.camera_quaternions, (h, w))
    cam_pos = np.asarray(scene.camera_positions, np.float64)
    t, y, x = pix_tyx.T
    seg = scene.segmentations[t, y, x].astype(np.int64)
    tracks = np.zeros((len(pix_tyx), num_frames, 2))
    occluded = np.zeros((len(pix_tyx), num_frames), bool)
    for seg_id in np.unique(seg):
        rows = np.flatnonzero(seg == seg_id)
        if seg_id == 0:  # background: static, unprojected from its query frame's depth
            points = np.zeros((len(rows), 3))
            for fr in np.unique(t[rows]):
                sel = t[rows] == fr
                points[sel] = unproject(pix_tyx[rows[sel], 1:], intrinsics[fr], matrix_world[fr], depth[fr])
            bbox = None
        else:
            obj = seg_id - 1
            if obj >= scene.bboxes_3d.shape[0]:
                raise SceneError(f"segment id {seg_id} but only {scene.bboxes_3d.shape[0]} instances")
            points = scene.object_coordinates[t[rows], y[rows], x[rows]].astype(np.float64) / 65535 - 0.5
            bbox = np.asarray(scene.bboxes_3d[obj], np.float64)
        proj, dist, world = reproject(points, intrinsics, matrix_world, cam_pos, bbox)
        xy = proj[..., :2] * np.array([w, h], np.float64)
        occ = proj[..., 2] < 0
        occ |= occluded_by_depth_and_segment(depth, scene.segmentations, xy[..., 0].T, xy[..., 1].T,
                                             dist * 0.99, int(seg_id))
        occ |= (xy[..., 1] < window[0]) | (xy[..., 0] < window[1]) | (xy[..., 1] > window[2]) | (
            xy[..., 0] > window[3])
        if bbox is not None:
            normals_q = decode_normals(scene.normal[t[rows], y[rows], x[rows]])
            trusted = ~rough_normals(scene.normal, pix_tyx[rows], decode_normals, normals_q)
            rotations = quaternion_to_matrix(scene.quaternions[obj])
            occ |= faces_away(normals_q, world, cam_pos, rotations, t[rows]) & trusted[:, None]
        tracks[rows], occluded[rows] = xy, occ
    return tracks, occluded


def track_grid(scene: KubricScene, start: Sequence[int], stride: int) -> QueryGrid:
    """Kubric's tracks of every point of the stride-``stride`` query grid with residue ``start`` (rt, ry, rx)
    over the full frame (window = the frame), with each point's segment id, stored as a
    :class:`~chrono.data.grid.QueryGrid` (what the loader's per-read reference sampling draws from)."""
    shape = grid_shape(scene.num_frames, *scene.size, start, stride)
    pix = grid_pixels(start, stride, shape)
    tracks, occluded = track_pixels(scene, pix.reshape(-1, 3))
    segments = scene.segmentations[pix[..., 0], pix[..., 1], pix[..., 2]]
    return encode_grid(start, stride, segments, tracks.reshape(shape + tracks.shape[1:]),
                       occluded.reshape(shape + occluded.shape[1:]))
