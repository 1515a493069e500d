"""The simulator's whole cloud model: climate, cloud fraction per date, the sky over a scene and what it does to S2.

* Climate: each region's monthly mean cloud fraction (:func:`monthly_climate`, the ``cloud_monthly``
  column of the region table), scaled by ``simulate.cloudiness``.
* Cloud fraction of a date (:func:`cloud_fraction`): a Beta distribution around that mean, drawn through
  the daily latent cloudiness of the scene's weather (:class:`lai.simulate.land.Weather`, which also
  drives the rain), so cloudy spells last a few days.
* The sky (:func:`draw_sky`): a thresholded fractal random field makes cloud cores (SCL 9) and their
  edges (8); thin cirrus (10) on some dates; shadows are the clouds displaced north to north-west
  (3 in the umbra, 2 at its edge), of which Sen2Cor misses about 30 % of the area; an unclassified
  fringe (7) around the clouds.
* Its effect (:meth:`Sky.flag` on the SCL, :meth:`Sky.lai_under` on the LAI): under clouds and cirrus
  the LAI blends towards the garbage the SNAP network yields there, by the cloud's opacity; in cloud
  shadows (flagged or not) it is too low, by a factor drawn per date in :data:`SHADOW_LAI_GAIN`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lai.simulate.random_fields import smooth_field

# Cloud shadows: only diffuse skylight reaches the ground, L2A reflectances (corrected as if sunlit) drop,
# NIR most in absolute terms, and the SNAP network returns too low an LAI: a factor drawn per date in
# this range in the umbra, half as far from 1 in the penumbra, whether Sen2Cor flags the shadow or not.
SHADOW_LAI_GAIN = (0.3, 0.9)


def monthly_climate(winter: float, summer: float) -> tuple[float, ...]:
    """Monthly mean cloud fraction: ``winter`` in January down to ``summer`` in July."""
    return tuple(round(summer + (winter - summer) * (1 + math.cos(2 * math.pi * m / 12)) / 2, 3) for m in range(12))


def cloud_fraction(mean: float, latent: float, rng: np.random.Generator) -> float:
    """Scene cloud fraction of a date: the climate's ``mean`` (monthly mean times cloudiness), via the latent weather."""
    m = min(0.97, mean)
    if m <= 0:
        return 0.0
    z = 0.95 * latent + 0.312 * rng.standard_normal()
    k = 0.5  # Beta concentration < 2: U-shaped, many clear and many overcast dates
    return float(stats.beta.ppf(stats.norm.cdf(z), m * k, (1 - m) * k))


@dataclass
class Sky:
    """The clouds, cirrus and shadows over one scene on one date (boolean masks unless said otherwise)."""

    high: np.ndarray
    medium: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray  # detected (SCL 3)
    penumbra: np.ndarray  # detected edge (SCL 2)
    shade: np.ndarray  # 0..1: share of direct sunlight blocked, detected or not
    fringe: np.ndarray
    opacity: np.ndarray  # 0..1 over clouds and cirrus
    fraction: float

    def flag(self, scl: np.ndarray, water: np.ndarray, rng: np.random.Generator) -> None:
        """Write Sen2Cor's shadow (3, 2 off water), cirrus (10), cloud (8, 9) and fringe (7, some pixels) classes into ``scl``."""
        scl[self.shadow] = 3
        scl[self.penumbra & ~water] = 2
        scl[self.cirrus] = 10
        scl[self.medium] = 8
        scl[self.high] = 9
        scl[self.fringe & (rng.random(scl.shape, dtype=np.float32) < 0.3)] = 7

    def lai_under(self, rng: np.random.Generator, clear_lai: np.ndarray, garbage: np.ndarray) -> np.ndarray:
        """The retrieved LAI under this sky: too low in cloud shadows (flagged by Sen2Cor or not), blended
        towards ``garbage`` (what SNAP yields on a cloud) by the opacity of clouds and cirrus."""
        darkest = np.float32(rng.uniform(*SHADOW_LAI_GAIN)) * (1 + 0.1 * smooth_field(rng, clear_lai.shape, 20))
        shaded = clear_lai * (1 - self.shade * (1 - darkest))
        return (1 - self.opacity) * shaded + self.opacity * garbage


def draw_sky(rng: np.random.Generator, shape: tuple[int, int], mean: float, latent: float) -> Sky:
    """Cloud cores/edges from one fractal field, shadows displaced from them, cirrus.

    ``mean``: the climate's mean cloud fraction for the date; ``latent``: the weather's latent cloudiness.
    """
    fraction = cloud_fraction(mean, latent, rng)
    z = smooth_field(rng, shape, scale=math.exp(rng.uniform(math.log(20), math.log(400))), slope=3.2)
    sample = z[::2, ::2].ravel()
    thr = np.quantile(sample, 1 - fraction) if fraction > 0 else np.inf
    core = np.quantile(sample, 1 - fraction * rng.uniform(0.4, 0.8)) if fraction > 0 else np.inf
    cloud = z > thr
    high = z > core
    medium = cloud & ~high
    length = rng.uniform(15, 120)
    angle = math.radians(rng.uniform(-40, 10))  # shadows fall north to north-west of clouds
    dy, dx = -int(length * math.cos(angle)), int(length * math.sin(angle))
    z_shadow = np.roll(z, (dy, dx), axis=(0, 1))
    detected = smooth_field(rng, shape, 40) > -0.52  # Sen2Cor misses about 30% of the shadowed area
    umbra = (z_shadow > thr) & ~cloud
    edge = (z_shadow > thr - 0.15) & ~umbra & ~cloud
    shadow, penumbra = umbra & detected, edge & detected
    shade = np.where(umbra, 1.0, np.where(edge, 0.5, 0.0)).astype(np.float32)
    fringe = (z > thr - 0.05) & ~cloud
    cirrus = np.zeros(shape, bool)
    opacity = np.zeros(shape, np.float32)
    if rng.random() < 0.3:
        zc = smooth_field(rng, shape, rng.uniform(20, 80))
        cthr = np.quantile(zc[::2, ::2], 1 - rng.uniform(0.05, 0.6))
        cirrus = (zc > cthr) & ~cloud
        opacity = np.where(cirrus, np.clip(0.15 + 0.3 * (zc - cthr), 0, 0.6), opacity)
    if np.isfinite(thr):
        span = max(float(core - thr), 1e-6)
        opacity = np.where(medium, 0.5 + 0.5 * np.clip((z - thr) / span, 0, 1), opacity)
    opacity = np.where(high, 1.0, opacity).astype(np.float32)
    return Sky(high, medium, cirrus, shadow, penumbra, shade, fringe, opacity, fraction)
