"""Procedural textures for the synthetic clips: numpy only, periodic, deterministic from a generator.

Every texture is a float32 array [h, w, 3] with values in [0, 255]. All of them tile seamlessly
(noise is made in the Fourier domain, stripes and checkers use whole periods), so a sampler may wrap
coordinates around the texture without a visible seam.

A texture mixes several ingredients so that every neighbourhood is distinctive enough to track:
multi-scale (1/f) noise through a random colour palette, oriented stripes (optionally warped by noise,
marble-like), checkerboards, scattered discs, and fine grain. Flat colours teach a tracker nothing.
"""

from __future__ import annotations

import numpy as np


def noise_field(rng: np.random.Generator, h: int, w: int, beta: float = 2.0, min_period: float = 2.0) -> np.ndarray:
    """Periodic Gaussian noise [h, w] with power spectrum ~ 1 / f**beta, zero mean and unit std.

    ``beta`` around 1 gives grainy detail, around 3 smooth blobs; frequencies whose period is shorter
    than ``min_period`` pixels are removed.
    """
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    amp[f > 1.0 / min_period] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    field = np.fft.irfft2(spec, s=(h, w))
    std = field.std()
    return (field / std if std > 0 else field).astype(np.float32)


def random_colours(rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` random RGB colours [k, 3] in [0, 255], spread in brightness so a palette has contrast."""
    base = rng.uniform(0, 255, size=(k, 3))
    lum = np.linspace(20, 235, k)[rng.permutation(k)]
    mix = rng.uniform(0.3, 0.8)
    return (mix * base + (1 - mix) * lum[:, None]).astype(np.float32)


def palette_map(field: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Map a zero-mean unit-std field [h, w] through a piecewise-linear palette [k, 3] -> [h, w, 3]."""
    k = len(colours)
    # The normal CDF spreads the field evenly over the palette.
    pos = 0.5 * (1.0 + _erf(field / np.sqrt(2.0))) * (k - 1)
    i0 = np.clip(np.floor(pos).astype(np.int32), 0, k - 2)
    frac = (pos - i0)[..., None]
    return colours[i0] * (1 - frac) + colours[i0 + 1] * frac


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(x).astype(np.float32)


def _square(phase: np.ndarray, sharpness: float) -> np.ndarray:
    """A periodic wave in [0, 1]: sinusoid at sharpness 1, nearly a square wave at high sharpness."""
    return 0.5 + 0.5 * np.tanh(sharpness * np.sin(phase)) / np.tanh(sharpness)


def _wave_phase(rng: np.random.Generator, h: int, w: int, period: float) -> np.ndarray:
    """Phase 2 pi (kx x / w + ky y / h) of a plane wave with whole periods across the texture."""
    angle = rng.uniform(0, np.pi)
    kx = int(round(np.cos(angle) * w / period))
    ky = int(round(np.sin(angle) * h / period))
    if kx == 0 and ky == 0:
        kx = 1
    y = np.arange(h, dtype=np.float32)[:, None] + 0.5
    x = np.arange(w, dtype=np.float32)[None, :] + 0.5
    return 2 * np.pi * (kx * x / w + ky * y / h) + rng.uniform(0, 2 * np.pi)


def stripes(rng: np.random.Generator, h: int, w: int, warp: float = 0.0) -> np.ndarray:
    """Oriented stripes [h, w] in [0, 1] with a random period (4-40 px); ``warp`` bends them with noise."""
    phase = _wave_phase(rng, h, w, rng.uniform(4, 40))
    if warp > 0:
        phase = phase + warp * noise_field(rng, h, w, beta=3.0)
    return _square(phase, rng.uniform(1, 6))


def checker(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (possibly skewed) checkerboard [h, w] in [0, 1] from two crossed waves."""
    period = rng.uniform(6, 48)
    a = _square(_wave_phase(rng, h, w, period), 8.0)
    b = _square(_wave_phase(rng, h, w, period * rng.uniform(0.7, 1.4)), 8.0)
    return a * b + (1 - a) * (1 - b)


def discs(rng: np.random.Generator, h: int, w: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` scattered discs (wrapping around the borders): coverage [h, w] in [0, 1] and colour [h, w, 3]."""
    cover = np.zeros((h, w), np.float32)
    colour = np.zeros((h, w, 3), np.float32)
    for _ in range(count):
        r = rng.uniform(2, max(3.0, min(h, w) / 10))
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        y0, y1 = int(np.floor(cy - r - 1)), int(np.ceil(cy + r + 1))
        x0, x1 = int(np.floor(cx - r - 1)), int(np.ceil(cx + r + 1))
        ys = np.arange(y0, y1)
        xs = np.arange(x0, x1)
        d = np.sqrt((ys[:, None] + 0.5 - cy) ** 2 + (xs[None, :] + 0.5 - cx) ** 2)
        a = np.clip(r - d + 0.5, 0, 1).astype(np.float32)
        iy, ix = np.ix_(ys % h, xs % w)
        c = random_colours(rng, 1)[0]
        cover[iy, ix] = np.maximum(cover[iy, ix], a)
        colour[iy, ix] = colour[iy, ix] * (1 - a[..., None]) + c * a[..., None]
    return cover, colour


def make_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A rich random texture [h, w, 3] float32 in [0, 255], seamless when tiled."""
    base_beta = rng.uniform(1.2, 3.2)
    tex = palette_map(noise_field(rng, h, w, beta=base_beta), random_colours(rng, int(rng.integers(3, 7))))
    # One or two patterned layers, each visible where a smooth random mask says so.
    for _ in range(int(rng.integers(1, 3))):
        kind = rng.choice(["stripes", "marble", "checker", "discs"])
        colours = random_colours(rng, 2)
        if kind == "discs":
            cover, colour = discs(rng, h, w, count=int(rng.integers(5, 40) * h * w / 256**2) + 3)
            layer, alpha = colour, cover
        else:
            pattern = {
                "stripes": lambda: stripes(rng, h, w),
                "marble": lambda: stripes(rng, h, w, warp=rng.uniform(1.0, 4.0)),
                "checker": lambda: checker(rng, h, w),
            }[kind]()
            layer = colours[0] * pattern[..., None] + colours[1] * (1 - pattern[..., None])
            alpha = np.full((h, w), rng.uniform(0.5, 1.0), np.float32)
        region = np.clip(noise_field(rng, h, w, beta=3.5) * rng.uniform(1, 4) + rng.uniform(-1, 1), 0, 1)
        a = (alpha * region)[..., None]
        tex = tex * (1 - a) + layer * a
    # Fine grain: makes every small patch distinctive.
    grain = noise_field(rng, h, w, beta=rng.uniform(0.0, 1.0), min_period=2.0)
    tex = tex + grain[..., None] * rng.uniform(4, 18)
    return np.clip(tex, 0, 255).astype(np.float32)
