"""TFDS feature decoding of the real fixture build: shapes and dtypes like tfds.as_numpy, bit-exact PNGs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from chrono.kubric import tfds as tfds_features
from chrono.kubric.tfds import (FeatureError, decode_example, decode_png, decode_png_numpy, encode_png,
                                       load_features, selector)
from chrono.kubric.tfrecord import iter_records, parse_example


def test_decodes_every_field_like_tfds(train_examples, reference_tracks):
    ex = train_examples["scene51"]
    expected = {
        "video": (np.uint8, (24, 32, 32, 3)), "depth": (np.uint16, (24, 32, 32, 1)),
        "segmentations": (np.uint8, (24, 32, 32, 1)), "normal": (np.uint16, (24, 32, 32, 3)),
        "object_coordinates": (np.uint16, (24, 32, 32, 3)), "forward_flow": (np.uint16, (24, 32, 32, 2)),
        "backward_flow": (np.uint16, (24, 32, 32, 2)),
    }
    for key, (dtype, shape) in expected.items():
        assert ex[key].dtype == dtype and ex[key].shape == shape, key
    inst = ex["instances"]
    assert inst["bboxes_3d"].shape == (3, 24, 8, 3) and inst["quaternions"].shape == (3, 24, 4)
    assert inst["visibility"].dtype == np.uint16 and inst["visibility"].shape == (3, 24)
    assert inst["is_dynamic"].dtype == np.bool_ and inst["category"].dtype == np.int64
    assert inst["asset_id"] == ["box0", "box1", "box2"]
    # Ragged sequences: the frames where each instance is visible, and one 2-D box per such frame.
    for frames, boxes, visibility in zip(inst["bbox_frames"], inst["bboxes"], inst["visibility"]):
        np.testing.assert_array_equal(frames, np.flatnonzero(visibility > 0))
        assert boxes.shape == (len(frames), 4) and boxes.dtype == np.float32
    assert ex["camera"]["focal_length"].shape == () and ex["camera"]["positions"].shape == (24, 3)
    assert ex["metadata"]["video_name"] == "scene51" and ex["metadata"]["depth_range"].shape == (2,)
    assert ex["background"] == "checker_ground"
    assert ex["events"]["collisions"]["contact_normal"].shape == (0, 3)
    for name, example in train_examples.items():
        np.testing.assert_array_equal(example["video"][0], reference_tracks[name][3])


def test_16_bit_pngs_are_bit_exact(train_file):
    sixteen_bit_rgb = 0
    for record in iter_records(train_file):
        example = parse_example(record.data)
        for key in ("video", "depth", "segmentations", "normal", "object_coordinates"):
            for png in example[key]:
                fast, reference = decode_png(png), decode_png_numpy(png)
                assert fast.dtype == reference.dtype and np.array_equal(fast, reference), key
                if fast.dtype == np.uint16 and fast.shape[-1] == 3:
                    # PIL reads 16-bit RGB as 8 bits (the high bytes): our high bytes agree, and the low
                    # bytes carry information that an 8-bit decoder would have lost.
                    pil = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
                    np.testing.assert_array_equal(fast >> 8, pil)
                    sixteen_bit_rgb += int(np.any(fast & 0xFF))
    assert sixteen_bit_rgb > 40


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 1), (np.uint8, 3), (np.uint16, 1), (np.uint16, 3),
                                            (np.uint16, 4), (np.uint8, 2), (np.uint16, 2), (np.uint8, 4)])
def test_png_roundtrip(dtype, channels):
    rng = np.random.default_rng(channels)
    image = rng.integers(0, np.iinfo(dtype).max + 1, (7, 9, channels)).astype(dtype)
    png = encode_png(image)
    for decoder in (decode_png, decode_png_numpy):
        decoded = decoder(png)
        assert decoded.dtype == dtype and np.array_equal(decoded, image)


def test_undecodable_png_names_feature_and_frame(kubric_build, train_file):
    spec = load_features(kubric_build)
    flat = parse_example(next(iter_records(train_file)).data)
    flat["normal"] = list(flat["normal"])
    flat["normal"][5] = flat["normal"][5][:100]
    with pytest.raises(FeatureError, match="feature normal, frame 5"):
        decode_example(spec, flat, ["normal"])


def test_missing_and_wrong_sized_fields_are_named(kubric_build, train_file):
    spec = load_features(kubric_build)
    flat = parse_example(next(iter_records(train_file)).data)
    del flat["object_coordinates"]
    with pytest.raises(FeatureError, match="missing feature 'object_coordinates'"):
        decode_example(spec, flat)
    flat = parse_example(next(iter_records(train_file)).data)
    flat["camera/positions"] = flat["camera/positions"][:-1]
    with pytest.raises(FeatureError, match=r"camera/positions: 71 values, expected 72"):
        decode_example(spec, flat, ["camera"])
    flat = parse_example(next(iter_records(train_file)).data)
    flat["instances/bboxes_3d"] = flat["instances/bboxes_3d"][:-3]
    with pytest.raises(FeatureError, match="instances/bboxes_3d"):
        decode_example(spec, flat, ["instances/bboxes_3d"])
    flat = parse_example(next(iter_records(train_file)).data)
    flat["video"] = flat["video"][:23]
    with pytest.raises(FeatureError, match="feature video: 23 frames"):
        decode_example(spec, flat, ["video"])


def test_selection_decodes_only_what_is_asked(kubric_build, train_file):
    spec = load_features(kubric_build)
    fields = ["depth", "instances/bboxes_3d", "camera"]
    flat = parse_example(next(iter_records(train_file)).data, selector(fields))
    assert not any(k.startswith(("video", "forward_flow", "instances/positions")) for k in flat)
    example = decode_example(spec, flat, fields)
    assert sorted(example) == ["camera", "depth", "instances"] and list(example["instances"]) == ["bboxes_3d"]


def test_build_layout(kubric_build):
    files = tfds_features.build_files(kubric_build)
    assert [(f.split, f.shard, f.num_shards, f.num_records) for f in files] == [("train", 0, 1, 2),
                                                                               ("validation", 0, 1, 1)]
    assert tfds_features.find_builds(kubric_build.parents[2]) == [kubric_build]
    with pytest.raises(FeatureError, match="features.json"):
        load_features(kubric_build.parent)
