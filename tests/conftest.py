"""Shared test helpers: where the reference fixtures live, a tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

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
