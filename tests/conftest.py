"""Shared test helpers: where the reference fixtures live; a tiny checkpoint and its ONNX export; the tiny
panning MOVi-E build, kubric's reference tracks of it, and its conversion (used by tests/kubric and tests/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Tests import decord directly (pytest.importorskip): load pyspng first, as chrono.video_io.import_decord does
# (decord's RTLD_GLOBAL zlib breaks a pyspng loaded after it: "zlib init error" in the Kubric tests).
try:
    import pyspng  # noqa: F401
except ImportError:
    pass

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
def tiny_checkpoint(tmp_path_factory):
    """A chrono.train-format checkpoint of a random tiny tracker (input 112 x 112: an 8 x 8 feature grid)
    whose adapters are non-trivial (conv2 not zero), so windowing changes its features."""
    import torch

    from chrono.checkpoint import build_tracker, tracker_checkpoint

    torch.manual_seed(0)
    tracker = build_tracker("tiny", input_size=112)
    for adapter in tracker.adapter:
        torch.nn.init.normal_(adapter.conv2.weight, std=0.05)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    torch.save(tracker_checkpoint(tracker), path)
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint, tmp_path_factory):
    """``python -m chrono.export`` of :func:`tiny_checkpoint` (input 112, 256 x 256 videos) with its int8 version:
    (the whole-forward file, the checkpoint, the command's report, its printed lines). Skipped without the
    export extra (``pip install -e '.[export]'``; the test extra brings it, so CI runs these)."""
    import contextlib
    import io

    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)
    from chrono import export

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        report = export.main([f"checkpoint={tiny_checkpoint}", f"out={path}", "precision=int8", "progress=false"])
    return path, tiny_checkpoint, report, printed.getvalue()


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
