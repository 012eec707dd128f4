"""The attention dispatch against a plain softmax reference (SDPA path), and xFormers where CUDA exists."""

import math

import pytest
import torch

from chrono.layers import attention as attn_mod
from chrono.layers.attention import attention, band_mask


def softmax_reference(q, k, v, band=None):
    """Plain attention on [B, L, H, D]: softmax(q k^T / sqrt(D)) v with an optional |i-j| <= band mask."""
    scores = torch.einsum("blhd,bmhd->bhlm", q, k) / math.sqrt(q.shape[-1])
    if band is not None:
        i = torch.arange(q.shape[1])
        scores = scores.masked_fill((i[:, None] - i[None, :]).abs() > band, float("-inf"))
    return torch.einsum("bhlm,bmhd->blhd", scores.softmax(-1), v)


@pytest.mark.parametrize("band", [None, 0, 2, 6])
def test_sdpa_path_matches_softmax_reference(band):
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 24, 4, 32, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(attention(q, k, v, band=band), softmax_reference(q, k, v, band), rtol=1e-10, atol=1e-10)


def test_band_mask_is_symmetric_window():
    m = band_mask(24, 6, torch.device("cpu"))
    assert m.shape == (24, 24) and m.sum(1)[0] == 7 and m.sum(1)[12] == 13 and torch.equal(m, m.T)
    # the uncached mask made while tracing (ONNX export: a symbolic number of frames cannot key the cache)
    assert torch.equal(attn_mod.make_band_mask(24, 6), m) and not attn_mod.tracing()


def test_band_limits_temporal_reach():
    """Changing frame 0 changes outputs only at frames within the band."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 24, 2, 16) for _ in range(3))
    k2, v2 = k.clone(), v.clone()
    k2[:, 0] += 1.0
    v2[:, 0] += 1.0
    changed = (attention(q, k, v, band=6) - attention(q, k2, v2, band=6)).abs().amax(dim=(0, 2, 3)) > 0
    assert changed[:7].all() and not changed[7:].any()


@pytest.mark.cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and attn_mod.XFORMERS_AVAILABLE), reason="needs CUDA and xformers")
def test_xformers_path_matches_sdpa():  # pragma: no cover - GPU only
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 24, 4, 32, device="cuda") for _ in range(3))
    for band in (None, 6):
        expected = softmax_reference(q.double().cpu(), k.double().cpu(), v.double().cpu(), band).float()
        torch.testing.assert_close(attention(q, k, v, band=band).cpu(), expected, rtol=2e-3, atol=2e-3)
