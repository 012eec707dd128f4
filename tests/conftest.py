"""Shared test helpers: where the reference fixtures live; the tiny panning MOVi-E build, kubric's reference
tracks of it, and its conversion (used by tests/kubric and tests/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_fixtures() -> Path | None:
    # CI clones the project with shared/ beside it; helpers' worktrees fall back to the workplace copy.
    for candidate in (REPO.parent / "shared" / "fixtures", Path("/work/shared/fixtures")):
        if candidate.is_dir():
            return candidate
    return None


FIXTURES = _find_fixtures()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The folder ../shared/fixtures (reference files in the real formats)."""
    if FIXTURES is None:
        pytest.skip("../shared/fixtures is not beside this checkout")
    return FIXTURES


@pytest.fixture(scope="session")
def kubric_build(fixtures_dir) -> Path:
    """The TFDS build folder panning_movi_e/32x32/1.0.0 (train: scene51, scene50; validation: 1 scene)."""
    build = fixtures_dir / "panning_movi_e_tiny" / "panning_movi_e" / "32x32" / "1.0.0"
    if not build.is_dir():
        pytest.skip(f"{build} is missing")
    return build


@pytest.fixture(scope="session")
def reference_tracks(kubric_build) -> dict:
    """kubric's own tracks of every pixel query: {scene: (queries_tyx [M,3], tracks [M,T,2], occluded [M,T])}."""
    z = np.load(kubric_build.parents[2] / "reference_tracks.npz")
    out = {}
    for name in ("scene50", "scene51"):
        occ = np.unpackbits(z[f"{name}/occluded_packbits"], axis=-1)[:, :24].astype(bool)
        out[name] = (z[f"{name}/queries_tyx"], z[f"{name}/tracks_xy_f16"].astype(np.float64), occ,
                     z[f"{name}/first_frame"])
    return out


@pytest.fixture(scope="session")
def train_file(kubric_build) -> Path:
    from chrono.kubric import tfds as tfds_features

    return next(f.path for f in tfds_features.build_files(kubric_build) if f.split == "train")


@pytest.fixture(scope="session")
def train_examples(kubric_build, train_file) -> dict:
    """Every decoded train example of the fixture, by video name."""
    from chrono.kubric import tfds as tfds_features
    from chrono.kubric.tfrecord import iter_records, parse_example

    spec = tfds_features.load_features(kubric_build)
    examples = {}
    for record in iter_records(train_file):
        example = tfds_features.decode_example(spec, parse_example(record.data))
        examples[example["metadata"]["video_name"]] = example
    return examples


@pytest.fixture(scope="session")
def kubric_converted(kubric_build, tmp_path_factory):
    """The fixture build converted (chrono.kubric.convert, default options): (out folder, summary)."""
    from chrono.kubric.convert import convert

    out = tmp_path_factory.mktemp("kubric_out")
    return out, convert(kubric_build, out, workers=1, progress=False)
