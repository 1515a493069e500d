"""Smooth and fractal Gaussian random fields (by FFT) and the seed keys of the simulator's random streams."""
from __future__ import annotations

import functools
import zlib

import numpy as np


@functools.lru_cache(maxsize=16)
def _freq2(shape: tuple[int, int]) -> np.ndarray:
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    return (ky**2 + kx**2).astype(np.float64)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float, slope: float | None = None) -> np.ndarray:
    """Periodic Gaussian random field with zero mean and unit variance (float32), made by FFT.

    ``slope=None``: white noise filtered by a Gaussian of ``scale`` pixels (only the
    frequencies that survive the filter are drawn). Otherwise a power-law (fractal)
    spectrum ``k^-slope`` flattened below the frequency ``1/scale``.
    """
    k2 = _freq2(tuple(shape))
    if slope is None:
        amp = np.exp(-2 * (np.pi * scale) ** 2 * k2)
        amp[amp < 1e-4] = 0.0
    else:
        amp = (k2 + (1.0 / scale) ** 2) ** (-slope / 4)
    amp[0, 0] = 0.0
    keep = np.nonzero(amp)
    noise = rng.standard_normal((2, len(keep[0])))
    spectrum = np.zeros(k2.shape, np.complex128)
    spectrum[keep] = (noise[0] + 1j * noise[1]) * amp[keep]
    f = np.fft.irfft2(spectrum, s=shape)
    f -= f.mean()
    return (f / (f.std() + 1e-12)).astype(np.float32)


def name_key(text: str) -> int:
    """A stable integer for a name (region), part of the seed of its random streams."""
    return zlib.crc32(text.encode())
