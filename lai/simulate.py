"""Synthetic Sentinel-1 / Sentinel-2 LAI triplets in the paper's folder layout, with the true LAI.

Physics, briefly:

* Landscape: per scene, Voronoi fields of 1-20 ha (100-2000 pixels of 10 m), seeded
  with a spatially varying density; each field gets a class from the region's crop mix
  (winter cereal, maize, sunflower, grassland, deciduous and conifer forest, bare/urban,
  water), with forests, water and built-up land clustered by smooth "zone" fields.
  Arable fields rotate crops between years. Smooth within-field heterogeneity.
* Phenology: LAI per field is a double logistic in day of year with per-field random
  amplitude and dates (winter cereal with an autumn/winter cover, grassland with
  mowing cuts), shifted per region and per year.
* Weather: a daily latent "cloudiness" series (AR(1)) drives both the cloud fraction of
  each Sentinel-2 date (Beta distribution around the region's monthly climate, times
  ``cloudiness``) and rain events, which wet the soil (exponential drying).
* Sentinel-2: clouds are thresholded fractal random fields (SCL 9 in cores, 8 around,
  10 thin cirrus, 3 shadows displaced from the clouds, 2 at shadow fringes and dark
  conifers, 11 snow in northern winters, 6 water, 4/5 vegetated or not, rare 0/1/7).
  LAI = truth + retrieval noise on clear pixels; corrupted (mostly low garbage, as the
  SNAP network yields on clouds) under clouds, too low in cloud shadows (flagged by Sen2Cor
  or, for about 30% of their area, not), ~0 on snow; NaN only where SCL is 0 (no data).
* Sentinel-1: the water cloud model per polarisation; its vegetation descriptor is the green
  LAI plus the senesced canopy still standing until harvest and the stubble until ploughing
  (radar sees stems and their water, not green leaves),
  ``sigma0 = A*LAI*cos(theta)*(1 - tau2) + tau2*sigma0_soil``,
  ``tau2 = exp(-2*B*LAI/cos(theta))``, soil backscatter in dB linear in soil moisture
  (plus roughness, tillage and incidence-angle terms: ploughing leaves rough bright clods,
  seedbeds are smooth, rain smooths both over months), class-specific structure terms (forest
  branch volume, urban double bounce, specular water), a thermal noise floor,
  multiplicative Gamma speckle (ENL 4.4, independent per date and polarisation), dB
  clipped to [-30, 0]. Incidence angle: each scene is seen from 2-3 relative orbits whose
  angles lie in 30-45 degrees and grow across the scene's columns.

Entry points: :data:`REGIONS`, :func:`simulate`, and :class:`Scene` (one scene's
physics, used by the tests and for exploration).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage, special, stats

from lai.config import ConfigError, SimConfig
from lai.io import atomic_path, output_lock
from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, SERIES_CSV, TRUTH_DIR, TileName

SIM_VERSION = 2
START, END = dt.date(2017, 1, 1), dt.date(2020, 12, 31)
REVISIT = 5  # days between Sentinel-2 acquisitions of a scene
PIXEL = 10.0  # metres
ENL = 4.4  # equivalent number of looks of S1 GRD IW

# --------------------------------------------------------------------------- classes

CLASSES = ("winter_cereal", "maize", "sunflower", "grassland", "deciduous", "conifer", "bare_urban", "water")
CEREAL, MAIZE, SUNFLOWER, GRASS, DECIDUOUS, CONIFER, BARE, WATER = range(8)
ARABLE = (CEREAL, MAIZE, SUNFLOWER)
CROPS = (CEREAL, MAIZE, SUNFLOWER, GRASS)  # herbaceous fields whose LAI the radar sees through the WCM


# --------------------------------------------------------------------------- regions


def _climate(winter: float, summer: float) -> tuple[float, ...]:
    """Monthly mean cloud fraction: ``winter`` in January down to ``summer`` in July."""
    return tuple(round(summer + (winter - summer) * (1 + math.cos(2 * math.pi * m / 12)) / 2, 3) for m in range(12))


@dataclass(frozen=True)
class Region:
    """A European agricultural region: landscape, phenology and climate presets."""

    country: str
    area: str
    latitude: float
    longitude: float
    epsg: int  # UTM zone (WGS 84) of the region
    crop_mix: dict  # class name (see CLASSES) -> share of fields
    phenology_shift: float = 0.0  # days added to green-up and senescence dates
    cloud_monthly: tuple = _climate(0.75, 0.45)  # mean cloud fraction, January..December
    snow_risk: float = 0.0  # probability of snow on a mid-winter date
    soil_moisture: tuple = (10.0, 30.0)  # vol. % of the dry (summer) and wet (winter) seasons
    field_ha: float = 8.0  # typical field size
    irrigation: float = 0.0  # share of maize fields irrigated in summer

    @property
    def name(self) -> str:
        return f"{self.country}_{self.area}"

    def mix(self) -> np.ndarray:
        """Class probabilities in CLASSES order."""
        unknown = set(self.crop_mix) - set(CLASSES)
        if unknown:
            raise ValueError(f"region {self.name}: unknown classes {sorted(unknown)}")
        p = np.array([float(self.crop_mix.get(c, 0.0)) for c in CLASSES])
        return p / p.sum()

    def origin(self) -> tuple[float, float]:
        """Approximate UTM easting/northing of the region's upper-left corner (10 m aligned)."""
        zone = self.epsg % 100
        central = -183 + 6 * zone
        east = 500_000 + (self.longitude - central) * 111_320 * math.cos(math.radians(self.latitude))
        north = self.latitude * 110_950
        return round(east, -1), round(north, -1)


def _mix(cereal, maize, sunflower, grass, deciduous, conifer, bare, water) -> dict:
    return dict(zip(CLASSES, (cereal, maize, sunflower, grass, deciduous, conifer, bare, water)))


_REGION_LIST = [
    Region("SPAIN", "BADAJOZ", 38.88, -6.97, 32629, _mix(.30, .10, .12, .18, .08, .02, .16, .04), -18, _climate(0.39, 0.05), 0.0, (6, 28), 10, .8),
    Region("PORTUGAL", "ALENTEJO", 38.57, -7.91, 32629, _mix(.28, .08, .10, .24, .09, .03, .14, .04), -15, _climate(0.37, 0.05), 0.0, (6, 27), 12, .6),
    Region("FRANCE", "BEAUCE", 48.30, 1.60, 32631, _mix(.52, .10, .04, .06, .08, .02, .14, .04), 0, _climate(0.57, 0.30), .08, (10, 32), 15, .3),
    Region("BELGIUM", "HAINAUT", 50.45, 3.95, 32631, _mix(.35, .15, .00, .20, .10, .02, .15, .03), 3, _climate(0.61, 0.36), .12, (14, 34), 6, 0),
    Region("NETHERLANDS", "FLEVOLAND", 52.53, 5.60, 32631, _mix(.30, .10, .00, .22, .08, .03, .20, .07), 5, _climate(0.61, 0.36), .10, (15, 36), 8, 0),
    Region("GERMANY", "BRANDENBURG", 52.40, 13.60, 32633, _mix(.36, .14, .01, .12, .07, .18, .07, .05), 6, _climate(0.57, 0.32), .30, (7, 26), 18, .05),
    Region("POLAND", "MAZOWSZE", 52.20, 21.00, 32634, _mix(.34, .12, .01, .20, .08, .13, .08, .04), 10, _climate(0.59, 0.32), .45, (9, 30), 3, 0),
    Region("CZECHIA", "VYSOCINA", 49.40, 15.60, 32633, _mix(.36, .10, .01, .18, .07, .20, .05, .03), 12, _climate(0.59, 0.34), .50, (12, 33), 10, 0),
    Region("ITALY", "PIEMONTE", 44.90, 8.00, 32632, _mix(.20, .30, .03, .14, .13, .03, .13, .04), -8, _climate(0.42, 0.21), .12, (12, 32), 5, .7),
    Region("AUSTRIA", "WEINVIERTEL", 48.60, 16.50, 32633, _mix(.42, .12, .08, .08, .10, .05, .12, .03), 0, _climate(0.54, 0.29), .30, (9, 29), 6, .1),
    Region("HUNGARY", "BEKES", 46.70, 21.10, 32634, _mix(.30, .28, .18, .08, .05, .01, .07, .03), -5, _climate(0.52, 0.22), .25, (9, 30), 18, .1),
    Region("ROMANIA", "TIMIS", 45.75, 21.20, 32634, _mix(.32, .26, .14, .10, .07, .01, .07, .03), -6, _climate(0.50, 0.22), .25, (9, 30), 10, .05),
    Region("DENMARK", "MIDTJYLLAND", 56.20, 9.50, 32632, _mix(.40, .12, .00, .18, .06, .10, .10, .04), 15, _climate(0.63, 0.36), .30, (10, 32), 12, .1),
    Region("SWEDEN", "SKANE", 55.80, 13.50, 32633, _mix(.45, .03, .00, .16, .10, .08, .14, .04), 16, _climate(0.63, 0.34), .35, (12, 33), 14, 0),
    Region("LITHUANIA", "KAUNAS", 54.90, 23.90, 32634, _mix(.38, .06, .00, .20, .10, .12, .10, .04), 18, _climate(0.64, 0.32), .60, (12, 33), 8, 0),
    Region("IRELAND", "MEATH", 53.60, -6.70, 32629, _mix(.15, .02, .00, .60, .07, .05, .07, .04), 8, _climate(0.68, 0.44), .05, (18, 38), 4, 0),
]
REGIONS: dict[str, Region] = {r.name: r for r in _REGION_LIST}


# --------------------------------------------------------------------------- class tables

# Phenology (lo, hi) per class: base, amp, sos, r_up, eos, r_down, winter (autumn cover), sow.
_PHENOLOGY = {
    "base": [(.1, .3), (.05, .2), (.05, .2), (.6, 1.0), (.3, .6), (2.6, 3.2), (0, .15), (0, 0)],
    "amp": [(4, 6), (3.5, 5.5), (2.5, 3.4), (1.2, 2.0), (3.8, 5.4), (.4, .8), (0, .15), (0, 0)],
    "sos": [(85, 105), (160, 178), (145, 160), (80, 110), (110, 130), (100, 130), (90, 130), (100, 100)],
    "r_up": [(8, 12), (7, 10), (6, 9), (12, 18), (4, 7), (10, 20), (10, 20), (10, 10)],
    "eos": [(178, 195), (250, 268), (215, 235), (270, 310), (280, 310), (260, 300), (250, 290), (300, 300)],
    "r_down": [(5, 7), (6, 9), (6, 9), (15, 25), (6, 10), (15, 25), (10, 20), (10, 10)],
    "winter": [(.5, 1.2)] + [(0, 0)] * 7,
    "sow": [(295, 320)] + [(300, 300)] * 7,
    "harvest_lag": [(12, 25), (25, 55), (20, 40)] + [(0, 0)] * 5,  # days from half senescence to harvest
}
_SHIFTED = ("sos", "eos")

# Radar per class: water-cloud A and B for VV and VH, and structure (branch volume) terms.
_A_VV = np.array([.015, .015, .020, .020, .012, .012, .020, 0], np.float32)
_B_VV = np.array([.16, .10, .12, .15, .10, .10, .15, 0], np.float32)
_A_VH = np.array([.008, .010, .010, .007, .004, .004, .006, 0], np.float32)
_B_VH = np.array([.09, .07, .09, .10, .08, .08, .10, 0], np.float32)
_STRUCT_VV = np.array([0, 0, 0, 0, .10, .09, 0, 0], np.float32)
_STRUCT_VH = np.array([0, 0, 0, 0, .030, .032, 0, 0], np.float32)
_SOIL_DB = {"vv": (-17.5, 0.28, -0.25), "vh": (-25.0, 0.25, -0.15)}  # dB = a + b*mv + k*(theta - 37.5)
DRY_CANOPY = 0.7  # senesced standing leaf area counted in the radar's vegetation descriptor (drier: weaker)
# Tillage roughness around the soil model's average field (dB, C band): fresh clods after ploughing,
# a fine seedbed before sowing; both fade back to the average as rain reworks the surface.
STUBBLE = 0.15  # stubble and straw left by the harvest, as a share of the crop's peak leaf area
TILLAGE_PLOUGH_DB = (2.0, 4.5)
TILLAGE_SEEDBED_DB = (-2.5, -1.0)
TILLAGE_GAIN = {"vv": 1.0, "vh": 1.3}  # cross-polarised soil return grows faster with roughness (Oh et al. 1992)
TILLAGE_SMOOTHING_DAYS = 120.0
_NOISE_FLOOR = {"vv": 10 ** -3.1, "vh": 10 ** -2.8}  # residual thermal noise (linear)

# Cloud shadows: only diffuse skylight reaches the ground, L2A reflectances (corrected as if sunlit) drop,
# NIR most in absolute terms, and the SNAP network returns too low an LAI: a factor drawn per date in
# this range in the umbra, half as far from 1 in the penumbra, whether Sen2Cor flags the shadow or not.
SHADOW_LAI_GAIN = (0.3, 0.9)

# S2 LAI retrieval on clear pixels (frozen: every model is compared against observations made with it):
# truth * (1 + RETRIEVAL_BIAS * smooth field of 50 px) + N(0, RETRIEVAL_NOISE[0] + RETRIEVAL_NOISE[1] * truth)
RETRIEVAL_BIAS = 0.06
RETRIEVAL_NOISE = (0.05, 0.08)  # absolute LAI, relative to the true LAI


# --------------------------------------------------------------------------- random fields


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


def _sig(x, mid, rate):
    return special.expit((x - mid) / rate)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


# --------------------------------------------------------------------------- landscape


@dataclass
class Landscape:
    """Static description of one scene: fields, their classes per year and parameters."""

    labels: np.ndarray  # (H, W) int32 field id
    classes: np.ndarray  # (years, F) int8, years 2017..2021
    params: dict  # name -> (years, F) float phenology parameters
    heterogeneity: np.ndarray  # (H, W) float32 multiplicative LAI factor
    building: np.ndarray  # (H, W) bool: bright built-up pixels (inside urban fields)
    urban: np.ndarray  # (F,) bool
    irrigated: np.ndarray  # (F,) bool
    roughness: np.ndarray  # (years, F) soil roughness offset, dB
    tillage_day: np.ndarray  # (F, events) days since START of ploughing / seedbed preparation, sorted
    tillage_db: np.ndarray  # (F, events) roughness right after each event, dB (decays as rain smooths clods)
    field_moisture: np.ndarray  # (F,) vol. % offset (drainage)
    texture: np.ndarray  # (H, W) vol. % offset (soil texture)
    brightness: np.ndarray  # (F,) urban double-bounce strength (linear VV)
    volume_gain: np.ndarray  # (F,) forest structure-term gain
    canopy_gain: np.ndarray  # (years, F, 2) crop structure/variety gain of the WCM A term (VV, VH)

    @property
    def fields(self) -> int:
        return len(self.urban)

    def class_map(self, year: int) -> np.ndarray:
        """Class of every pixel in ``year`` (calendar year)."""
        return self.classes[year - START.year][self.labels]

    def tillage(self, date: dt.date) -> np.ndarray:
        """Roughness of every field (F,) in dB from its last tillage: rain smooths fresh clods over months."""
        day = (date - START).days
        count = np.sum(self.tillage_day <= day, axis=1)
        rows, last = np.flatnonzero(count), count[count > 0] - 1
        level = np.zeros(self.fields)
        since = day - self.tillage_day[rows, last]
        level[rows] = self.tillage_db[rows, last] * np.exp(-since / TILLAGE_SMOOTHING_DAYS)
        return level


def _voronoi_fields(rng, shape, field_ha):
    """Voronoi cells of a Poisson seed process whose density varies smoothly (1-20 ha)."""
    mean_px = field_ha * 10_000 / PIXEL**2
    local = np.clip(mean_px * np.exp(0.6 * smooth_field(rng, shape, max(shape) / 5)), 100, 2000)
    seeds = rng.random(shape) < 1.0 / local
    if not seeds.any():
        seeds[shape[0] // 2, shape[1] // 2] = True
    sy, sx = np.nonzero(seeds)
    ids = np.zeros(shape, np.int32)
    ids[sy, sx] = np.arange(len(sy), dtype=np.int32)
    iy, ix = ndimage.distance_transform_edt(~seeds, return_distances=False, return_indices=True)
    return ids[iy, ix], sy, sx


def _draw_classes(rng, region, shape, sy, sx, years):
    """Class per field and year: clustered forest/water/urban zones, crop rotation on arable land."""
    logits = np.log(region.mix() + 1e-9)[None, :].repeat(len(sy), 0)
    zone_px = 12 * math.sqrt(region.field_ha * 100)
    for members, gain in (((DECIDUOUS, CONIFER), 1.5), ((WATER,), 2.0), ((BARE,), 1.0)):
        z = smooth_field(rng, shape, zone_px)[sy, sx]
        logits[:, list(members)] += gain * z[:, None] - gain**2 / 2
    first = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    classes = np.empty((years, len(sy)), np.int8)
    classes[0] = first
    arable = np.isin(first, ARABLE)
    p_arable = region.mix()[list(ARABLE)]
    p_arable = p_arable / p_arable.sum()
    for y in range(1, years):
        rotated = rng.choice(np.array(ARABLE), size=len(sy), p=p_arable)
        keep = rng.random(len(sy)) < 0.25
        classes[y] = np.where(arable & ~keep, rotated, classes[y - 1])
    return classes


def _draw_phenology(rng, region, classes):
    """Per field and year phenology parameters (uniform within each class's range)."""
    years, n = classes.shape
    year_shift = rng.normal(0, 5, size=(years, 1))
    params = {}
    for name, ranges in _PHENOLOGY.items():
        lo, hi = np.array(ranges).T
        value = lo[classes] + (hi - lo)[classes] * rng.random((years, n))
        if name in _SHIFTED:
            value = value + region.phenology_shift + year_shift
        params[name] = value
    params["cuts"] = rng.integers(1, 4, size=(years, n)).astype(float)
    for k, (lo, hi) in enumerate(((140, 165), (190, 220), (245, 270))):
        params[f"mow{k}"] = rng.uniform(lo, hi, (years, n)) + region.phenology_shift + year_shift
    params["cut_level"] = rng.uniform(0.2, 0.4, (years, n))
    params["regrow"] = rng.uniform(25, 40, (years, n))
    return params


def _draw_tillage(rng, classes, params):
    """Ploughing after each arable harvest, seedbed preparation before each sowing (day, dB) per field.

    Also sets ``params["stubble_days"]``: how long the stubble stands between harvest and ploughing.

    Autumn ploughing leaves coarse clods that raise C-band backscatter by several dB over bare
    soil until the seedbed is prepared (smooth); winter cereal is sown soon after ploughing,
    spring crops leave the field rough through the winter.
    """
    years, n = classes.shape
    day0 = [(dt.date(START.year + y, 1, 1) - START).days for y in range(years)]
    days, levels = [], []
    params["stubble_days"] = np.zeros((years, n))
    for y in range(years - 1):
        arable, nxt = np.isin(classes[y], ARABLE), classes[y + 1]
        spring = np.isin(classes[y], (MAIZE, SUNFLOWER))
        seedbed = day0[y] + params["sos"][y] - rng.uniform(10, 35, n)
        harvest = day0[y] + params["eos"][y] + params["harvest_lag"][y]
        autumn_sowing = day0[y] + params["sow"][y + 1] - rng.uniform(2, 10, n)
        plough = harvest + np.where(nxt == CEREAL, rng.uniform(5, 30, n), rng.uniform(20, 110, n))
        plough = np.maximum(np.where(nxt == CEREAL, np.minimum(plough, autumn_sowing - 3), plough), harvest + 1)
        params["stubble_days"][y] = plough - harvest
        never = np.inf
        days += [np.where(spring, seedbed, never), np.where(arable, plough, never),
                 np.where(arable & (nxt == CEREAL), autumn_sowing, never)]
        levels += [rng.uniform(*TILLAGE_SEEDBED_DB, n), rng.uniform(*TILLAGE_PLOUGH_DB, n), rng.uniform(*TILLAGE_SEEDBED_DB, n)]
    days, levels = np.stack(days, 1), np.stack(levels, 1)
    order = np.argsort(days, axis=1)
    return np.take_along_axis(days, order, 1), np.take_along_axis(levels, order, 1)


def make_landscape(rng: np.random.Generator, region: Region, shape: tuple[int, int]) -> Landscape:
    """Fields, classes, phenology and static soil/structure properties of one scene."""
    labels, sy, sx = _voronoi_fields(rng, shape, region.field_ha)
    years = END.year - START.year + 2  # one extra year: autumn sowing of the next crop
    classes = _draw_classes(rng, region, shape, sy, sx, years)
    params = _draw_phenology(rng, region, classes)
    n = len(sy)
    het = 1 + 0.15 * smooth_field(rng, shape, 5) + 0.05 * smooth_field(rng, shape, 1.5)
    urban = (classes[0] == BARE) & (rng.random(n) < 0.45)
    building = urban[labels] & (smooth_field(rng, shape, 1.2) > 0.5)
    tillage_day, tillage_db = _draw_tillage(rng, classes, params)
    return Landscape(
        labels=labels,
        classes=classes,
        params=params,
        heterogeneity=np.clip(het, 0.3, 1.7).astype(np.float32),
        building=building,
        urban=urban,
        irrigated=rng.random(n) < region.irrigation,
        roughness=rng.normal(0, 1.5, (years, n)),
        tillage_day=tillage_day,
        tillage_db=tillage_db,
        field_moisture=rng.normal(0, 2.0, n),
        texture=(3.0 * smooth_field(rng, shape, 60)).astype(np.float32),
        brightness=np.exp(rng.normal(math.log(0.1), 1.0, n)),
        volume_gain=np.exp(rng.normal(0, 0.3, n)),
        canopy_gain=np.exp(rng.normal(0, 0.3, (years, n, 2))),
    )


def _phenology(land: Landscape, date: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Green LAI and the senesced (dry, still standing) leaf area of every field (F,) at ``date``.

    The dry part grows as the crop senesces, drops to the stubble at harvest and to 0 at ploughing.
    """
    y = date.year - START.year
    doy = date.timetuple().tm_yday
    p = {k: v[y] for k, v in land.params.items()}
    cls, nxt = land.classes[y], land.classes[y + 1]
    up = _sig(doy, p["sos"], p["r_up"])
    down = _sig(doy, p["eos"], p["r_down"])
    lai = p["base"] + p["amp"] * up * (1 - down)
    harvest = p["eos"] + p["harvest_lag"]
    arable = np.isin(cls, ARABLE)
    dry = np.where(arable & (doy < harvest), p["amp"] * up * down, 0.0)
    dry = np.where(arable & (doy >= harvest) & (doy < harvest + p["stubble_days"]), STUBBLE * p["amp"], dry)
    if doy < 200:  # cereal sown last autumn, still covering the ground until green-up
        prev_sow = land.params["sow"][max(y - 1, 0)]
        lai = lai + np.where(cls == CEREAL, p["winter"] * _sig(doy + 365, prev_sow, 12) * (1 - up), 0)
    else:  # next year's cereal emerging this autumn
        nxt_winter = land.params["winter"][y + 1]
        lai = lai + np.where(nxt == CEREAL, nxt_winter * _sig(doy, land.params["sow"][y + 1], 12), 0)
    factor = np.ones_like(lai)
    for k in range(3):
        after = doy - p[f"mow{k}"]
        cut = (after >= 0) & (after < p["regrow"]) & (k < p["cuts"])
        level = p["cut_level"] + (1 - p["cut_level"]) * np.clip(after, 0, None) / p["regrow"]
        factor = np.where(cut, np.minimum(factor, level), factor)
    lai = np.where(cls == GRASS, lai * factor, lai)
    lai = np.where(cls == WATER, 0.0, lai)
    return np.clip(lai, 0, None), dry


def field_lai(land: Landscape, date: dt.date) -> np.ndarray:
    """True (green) LAI of every field (F,) at ``date``: double logistic plus winter cover and mowing."""
    return _phenology(land, date)[0]


# --------------------------------------------------------------------------- weather


@dataclass
class Weather:
    """Daily scene-mean weather from ``day0``: latent cloudiness, soil moisture, recent rain."""

    day0: dt.date
    latent: np.ndarray  # standard normal, AR(1) in days
    moisture: np.ndarray  # vol. %
    wetness: np.ndarray  # rain-driven part of the moisture (vol. %)

    def index(self, date: dt.date) -> int:
        return (date - self.day0).days


def make_weather(rng: np.random.Generator, region: Region) -> Weather:
    """AR(1) cloudiness, rain events on cloudy days, soil moisture with exponential drying."""
    day0 = START - dt.timedelta(days=90)
    days = (END - day0).days + 10
    phi = math.exp(-1 / 7.0)  # weather persists a few days
    shocks = rng.standard_normal(days) * math.sqrt(1 - phi**2)
    latent = np.empty(days)
    latent[0] = rng.standard_normal()
    for i in range(1, days):
        latent[i] = phi * latent[i - 1] + shocks[i]
    dates = [day0 + dt.timedelta(days=i) for i in range(days)]
    month = np.array([d.month - 1 for d in dates])
    doy = np.array([d.timetuple().tm_yday for d in dates])
    clouds = np.array(region.cloud_monthly)[month]
    rain = rng.random(days) < 0.35 * clouds * 2 * stats.norm.cdf(latent)
    amount = np.where(rain, rng.uniform(3, 12, days), 0.0)
    season = np.cos(2 * np.pi * (doy - 20) / 365)  # +1 mid-winter, -1 mid-summer
    tau = 5.5 + 2.5 * season  # drying time, days
    wet = np.empty(days)
    state = 0.0
    for i in range(days):
        state = state * math.exp(-1 / tau[i]) + amount[i]
        wet[i] = state
    dry, moist = region.soil_moisture
    base = (dry + moist) / 2 + (moist - dry) / 2 * season
    return Weather(day0, latent, np.clip(base + wet, 3, 45), wet)


# --------------------------------------------------------------------------- one scene


@dataclass
class Observation:
    """Everything simulated for one acquisition date of one scene."""

    date: dt.date  # Sentinel-2 date
    s1_date: dt.date
    truth: np.ndarray  # (H, W) float32 true LAI
    lai: np.ndarray  # (H, W) float32 S2 LAI (NaN where SCL 0)
    scl: np.ndarray  # (H, W) uint8
    vv: np.ndarray  # (H, W) float32 dB
    vh: np.ndarray  # (H, W) float32 dB
    classes: np.ndarray  # (H, W) int8 land class
    cloud_fraction: float  # scene cloud fraction drawn for the date


@dataclass
class _Sky:
    high: np.ndarray
    medium: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray  # detected (SCL 3)
    penumbra: np.ndarray  # detected edge (SCL 2)
    shade: np.ndarray  # 0..1: share of direct sunlight blocked, detected or not
    fringe: np.ndarray
    opacity: np.ndarray  # 0..1 over clouds and cirrus
    fraction: float


class Scene:
    """One simulated scene: landscape and weather fixed at construction, dates on demand.

    Every date draws from its own random stream, so an observation does not depend on
    which other dates were simulated before it.
    """

    def __init__(self, region: Region, size: int, seed: int = 0, index: int = 0, cloudiness: float = 1.0):
        self.region, self.shape, self.cloudiness = region, (size, size), cloudiness
        self._key = [int(seed), _crc(region.name), int(index)]
        rng = np.random.default_rng(np.random.SeedSequence(self._key))
        self.land = make_landscape(rng, region, self.shape)
        self.weather = make_weather(rng, region)
        span = float(np.clip(size * PIXEL / 1000 * 0.06, 0.5, 15))  # ~15 degrees over the 250 km IW swath
        self.orbits = rng.uniform(30, 45 - span, size=int(rng.integers(2, 4)))
        self.theta_span = span

    # ---------------------------------------------------------------- public

    def true_lai(self, date: dt.date) -> np.ndarray:
        return self._canopy(date)[0]

    def _canopy(self, date: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """True green LAI per pixel, and the radar's vegetation descriptor: green plus standing dry canopy.

        Radar sees stems, ears and their water, not green leaves: ripening crops keep scattering
        after their green LAI has gone, until harvest.
        """
        green, dry = _phenology(self.land, date)
        labels, het = self.land.labels, self.land.heterogeneity
        lai = green[labels] * het
        urban = self.land.urban[labels]
        lai = np.where(urban, np.where(self.land.building, 0, 2 * lai), lai).astype(np.float32)
        return lai, (lai + DRY_CANOPY * dry[labels] * het).astype(np.float32)

    def cloud_fraction(self, date: dt.date, rng: np.random.Generator) -> float:
        """Scene cloud fraction: the region's monthly climate times cloudiness, via the latent weather."""
        m = min(0.97, self.region.cloud_monthly[date.month - 1] * self.cloudiness)
        if m <= 0:
            return 0.0
        z = 0.95 * self.weather.latent[self.weather.index(date)] + 0.312 * rng.standard_normal()
        k = 0.5  # Beta concentration < 2: U-shaped, many clear and many overcast dates
        return float(stats.beta.ppf(stats.norm.cdf(z), m * k, (1 - m) * k))

    def observe(self, date: dt.date) -> Observation:
        """Simulate truth, S2 LAI, SCL and S1 backscatter for one date."""
        rng = np.random.default_rng(np.random.SeedSequence(self._key + [date.toordinal()]))
        truth, canopy = self._canopy(date)
        classes = self.land.class_map(date.year)
        sky = self._sky(rng, date)
        snow = self._snow(rng, date, classes)
        clear_lai = self._retrieval(rng, truth)
        scl = self._scl(rng, date, clear_lai, classes, sky, snow)
        lai = self._s2_lai(rng, truth, clear_lai, scl, sky)
        s1_date = date + dt.timedelta(days=int(rng.integers(-1, 2)))
        vv, vh = self._s1(rng, s1_date, canopy, classes, snow)
        return Observation(date, s1_date, truth, lai, scl, vv, vh, classes, sky.fraction)

    # ---------------------------------------------------------------- Sentinel-2

    def _sky(self, rng, date) -> _Sky:
        """Cloud cores/edges from one fractal field, shadows displaced from them, cirrus."""
        fraction = self.cloud_fraction(date, rng)
        z = smooth_field(rng, self.shape, scale=math.exp(rng.uniform(math.log(20), math.log(400))), slope=3.2)
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
        detected = smooth_field(rng, self.shape, 40) > -0.52  # Sen2Cor misses about 30% of the shadowed area
        umbra = (z_shadow > thr) & ~cloud
        edge = (z_shadow > thr - 0.15) & ~umbra & ~cloud
        shadow, penumbra = umbra & detected, edge & detected
        shade = np.where(umbra, 1.0, np.where(edge, 0.5, 0.0)).astype(np.float32)
        fringe = (z > thr - 0.05) & ~cloud
        cirrus = np.zeros(self.shape, bool)
        opacity = np.zeros(self.shape, np.float32)
        if rng.random() < 0.3:
            zc = smooth_field(rng, self.shape, rng.uniform(20, 80))
            cthr = np.quantile(zc[::2, ::2], 1 - rng.uniform(0.05, 0.6))
            cirrus = (zc > cthr) & ~cloud
            opacity = np.where(cirrus, np.clip(0.15 + 0.3 * (zc - cthr), 0, 0.6), opacity)
        if np.isfinite(thr):
            span = max(float(core - thr), 1e-6)
            opacity = np.where(medium, 0.5 + 0.5 * np.clip((z - thr) / span, 0, 1), opacity)
        opacity = np.where(high, 1.0, opacity).astype(np.float32)
        return _Sky(high, medium, cirrus, shadow, penumbra, shade, fringe, opacity, fraction)

    def _snow(self, rng, date, classes) -> np.ndarray:
        """Snow cover on winter dates of snowy regions (less visible under forest canopies)."""
        season = {12: 1.0, 1: 1.0, 2: 1.0, 11: 0.4, 3: 0.4}.get(date.month, 0.0)
        if rng.random() >= self.region.snow_risk * season:
            return np.zeros(self.shape, bool)
        z = smooth_field(rng, self.shape, 40)
        thr = np.quantile(z[::2, ::2], 1 - rng.uniform(0.3, 1.0))
        forest = (classes == DECIDUOUS) | (classes == CONIFER)
        return (z > thr) & (~forest | (z > thr + 0.8))

    def _retrieval(self, rng, truth) -> np.ndarray:
        """SNAP LAI on clear pixels: truth plus pixel noise and a smooth per-date bias."""
        bias = RETRIEVAL_BIAS * smooth_field(rng, self.shape, 50)
        noise = rng.standard_normal(self.shape, dtype=np.float32) * (RETRIEVAL_NOISE[0] + RETRIEVAL_NOISE[1] * truth)
        return np.clip(truth * (1 + bias) + noise, 0, 8).astype(np.float32)

    def _scl(self, rng, date, clear_lai, classes, sky, snow) -> np.ndarray:
        """Sen2Cor scene classification: surface classes, then snow, shadows, clouds, rare flags."""
        scl = np.where(clear_lai > 0.45, 4, 5).astype(np.uint8)
        scl[classes == WATER] = 6
        winter = 0.5 + 0.5 * math.cos(2 * math.pi * (date.timetuple().tm_yday - 355) / 365)
        dark = (classes == CONIFER) & (rng.random(self.shape, dtype=np.float32) < 0.05 + 0.4 * winter)
        scl[dark] = 2
        scl[snow] = 11
        scl[sky.shadow] = 3
        scl[sky.penumbra & (classes != WATER)] = 2
        scl[sky.cirrus] = 10
        scl[sky.medium] = 8
        scl[sky.high] = 9
        scl[sky.fringe & (rng.random(self.shape, dtype=np.float32) < 0.3)] = 7
        n_bad = rng.poisson(3e-5 * scl.size)
        scl.flat[rng.integers(0, scl.size, n_bad)] = 1
        if rng.random() < 0.04:  # edge of the satellite swath: no data beyond a tilted line
            rows, cols = np.indices(self.shape)
            edge = rng.uniform(0.1, 0.9) * self.shape[1] + np.tan(math.radians(12)) * (rows - self.shape[0] / 2)
            scl[(cols > edge) if rng.random() < 0.5 else (cols < edge)] = 0
        return scl

    def _s2_lai(self, rng, truth, clear_lai, scl, sky) -> np.ndarray:
        """LAI as the SNAP processor outputs it: clear values, too low in cloud shadows, corrupted under clouds."""
        garbage = rng.gamma(1.2, 0.3, self.shape).astype(np.float32)
        wild = rng.random(self.shape, dtype=np.float32) < 0.03
        garbage = np.where(wild, rng.uniform(2, 8, self.shape).astype(np.float32), garbage)
        darkest = np.float32(rng.uniform(*SHADOW_LAI_GAIN)) * (1 + 0.1 * smooth_field(rng, self.shape, 20))
        shaded = clear_lai * (1 - sky.shade * (1 - darkest))  # detected by Sen2Cor (SCL 3, 2) or not
        lai = (1 - sky.opacity) * shaded + sky.opacity * garbage
        lai = np.where(scl == 11, garbage * 0.3, lai)
        lai = np.where(scl == 6, np.abs(clear_lai) * 0.5, lai)
        lai = np.where(scl == 7, 0.7 * clear_lai + 0.3 * garbage, lai)
        lai = np.where(scl == 1, garbage * 3, lai)
        lai = np.clip(lai, 0, 8).astype(np.float32)
        lai[scl == 0] = np.nan
        return lai

    # ---------------------------------------------------------------- Sentinel-1

    def _moisture(self, rng, s1_date, classes) -> np.ndarray:
        """Soil moisture (vol. %): scene weather + texture + field drainage + irrigation + rain cells."""
        i = self.weather.index(s1_date)
        land = self.land
        mv = self.weather.moisture[i] + land.texture + land.field_moisture[land.labels].astype(np.float32)
        mv = mv + 0.3 * self.weather.wetness[i] * smooth_field(rng, self.shape, 80)
        doy = s1_date.timetuple().tm_yday
        if 150 <= doy <= 250:
            mv = mv + 12 * (land.irrigated[land.labels] & (classes == MAIZE))
        return np.clip(mv, 2, 45).astype(np.float32)

    def _s1(self, rng, s1_date, canopy, classes, snow):
        """Water cloud model per polarisation (``canopy``: vegetation descriptor), structure terms, noise floor, speckle, dB."""
        land, labels, f32 = self.land, self.land.labels, np.float32
        theta_deg = self.orbits[rng.integers(len(self.orbits))] + self.theta_span * np.linspace(0, 1, self.shape[1])
        cos = np.cos(np.radians(theta_deg)).astype(f32)[None, :]
        mv = self._moisture(rng, s1_date, classes)
        year = s1_date.year - START.year
        tilled = land.tillage(s1_date)[labels].astype(f32)
        base_db = land.roughness[year][labels].astype(f32) - f32(rng.uniform(1, 3)) * snow  # wet snow darkens
        wind_db = f32(rng.uniform(-25, -15)) + 1.5 * smooth_field(rng, self.shape, 30)
        water = classes == WATER
        volume = land.volume_gain[labels].astype(f32)
        wetness = np.exp(rng.normal(0, 0.2, land.fields))  # dew / rain on the canopy, per field and date
        gains = land.canopy_gain[year] * np.exp(rng.normal(0, 0.1, (land.fields, 2))) * wetness[:, None]
        bright = (land.brightness[labels] * land.building).astype(f32)
        out = []
        for p, (pol, A, B, struct, bright_gain, water_offset) in enumerate((
            ("vv", _A_VV, _B_VV, _STRUCT_VV, 1.0, 0.0),
            ("vh", _A_VH, _B_VH, _STRUCT_VH, 0.12, -9.0),
        )):
            a, b, k = _SOIL_DB[pol]
            angle_db = (k * (theta_deg - 37.5)).astype(f32)[None, :]
            soil = _db_to_linear(f32(a) + f32(b) * mv + base_db + f32(TILLAGE_GAIN[pol]) * tilled + angle_db)
            tau2 = np.exp(-2 * B[classes] * canopy / cos)
            volume_scatter = A[classes] * gains[:, p].astype(f32)[labels] * canopy * cos * (1 - tau2)
            sigma = volume_scatter + tau2 * soil + struct[classes] * volume + f32(bright_gain) * bright
            sigma = np.where(water, _db_to_linear(wind_db + f32(water_offset)), sigma) + f32(_NOISE_FLOOR[pol])
            sigma *= rng.standard_gamma(ENL, self.shape, dtype=f32) / f32(ENL)
            out.append(np.clip(10 * np.log10(sigma), -30, 0).astype(f32))
        return out


def _db_to_linear(db: np.ndarray) -> np.ndarray:
    return np.exp(db * np.float32(math.log(10) / 10))


# --------------------------------------------------------------------------- planning


@dataclass
class ScenePlan:
    """What to write for one scene: its windows and the (window, row, col) triplets picked."""

    region: Region
    role: str  # "train" or "unique"
    index: int  # scene number within the region
    col_offset: int  # scenes of a region sit side by side (one empty tile between them)
    first: dt.date  # first S2 acquisition of the scene's 5-day timeline
    windows: list  # [(t-2, t-1, t)]
    picks: list = field(default_factory=list)  # [(window, row, col)]

    def n_before(self, date: dt.date) -> int:
        return (date - self.first).days // REVISIT


def _windows(rng, first: dt.date, count: int) -> list:
    """``count`` dated windows spread over the seasons (stratified day of year), years 2017-2020."""
    out, used = [], set()
    for w in range(count):
        for _ in range(1000):
            target = dt.date(int(rng.integers(2017, 2021)), 1, 1) + dt.timedelta(days=int((w + rng.random()) / count * 365))
            t = first + dt.timedelta(days=REVISIT * round((target - first).days / REVISIT))
            t1 = t - dt.timedelta(days=10 if rng.random() < 0.2 else 5)
            t0 = t1 - dt.timedelta(days=10 if rng.random() < 0.2 else 5)
            if t0 >= first and t <= END and (t0, t) not in used:
                break
        else:
            raise ConfigError(f"simulate.windows_per_scene={count} is too many distinct windows for 2017-2020")
        used.add((t0, t))
        out.append((t0, t1, t))
    return sorted(out)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def plan(cfg: SimConfig) -> list[ScenePlan]:
    """Scenes, windows and picked triplets for every region, deterministic in ``cfg.seed``."""
    plans = []
    per_scene = cfg.grid**2 * cfg.windows_per_scene
    for role, names, total in (("train", cfg.train_regions, cfg.train_triplets), ("unique", cfg.unique_regions, cfg.unique_triplets)):
        if not total:
            continue
        for name, count in zip(names, _split(total, len(names))):
            if not count:  # fewer triplets than regions
                continue
            region = REGIONS[name]
            n_scenes = -(-count // per_scene)
            for index, n in enumerate(_split(count, n_scenes)):
                rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), _crc(name), index, 0x9A17]))
                first = START + dt.timedelta(days=int(rng.integers(0, REVISIT)))
                scene = ScenePlan(region, role, index, index * (cfg.grid + 1), first, _windows(rng, first, cfg.windows_per_scene))
                chosen = np.sort(rng.choice(per_scene, size=n, replace=False))
                w, rc = np.divmod(chosen, cfg.grid**2)
                r, c = np.divmod(rc, cfg.grid)
                scene.picks = list(zip(w.tolist(), r.tolist(), c.tolist()))
                plans.append(scene)
    return plans


def check_regions(cfg: SimConfig) -> None:
    """Raise ConfigError for unknown, repeated or shared region names."""
    known = ", ".join(REGIONS)
    for key in ("train_regions", "unique_regions"):
        names = getattr(cfg, key)
        unknown = [n for n in names if n not in REGIONS]
        if unknown:
            raise ConfigError(f"simulate.{key}: unknown region(s) {', '.join(unknown)}; known regions: {known}")
        if len(set(names)) != len(names):
            raise ConfigError(f"simulate.{key} repeats a region: {names}")
    both = sorted(set(cfg.train_regions) & set(cfg.unique_regions))
    if both and cfg.unique_triplets:
        raise ConfigError(f"simulate.unique_regions must not repeat training regions: {', '.join(both)}")
    if cfg.windows_per_scene > 200:
        raise ConfigError(f"simulate.windows_per_scene must be at most 200, got {cfg.windows_per_scene}")


# --------------------------------------------------------------------------- writing


def _write_tiff(path: Path, data: np.ndarray, crs, transform) -> None:
    """Write (bands, H, W) as an uncompressed, pixel-interleaved GeoTIFF (no timestamps)."""
    import rasterio

    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=crs, transform=transform, interleave="pixel",
    ) as dst:
        dst.write(data)


def yaml_text(cfg: SimConfig) -> str:
    """Contents of ``simulation.yaml``: the SimConfig plus a note that the data are simulated."""
    doc = {
        "note": "SIMULATED data written by lai.simulate (not real Sentinel-1/2 observations); "
        "truth/ holds the true LAI at t of every triplet.",
        "simulated": True,
        "simulator_version": SIM_VERSION,
        "simulate": dataclasses.asdict(cfg),
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _scene_dates(scene: ScenePlan) -> dict:
    """Date -> [(window, time index)] for the windows that have picks."""
    used = sorted({w for w, _, _ in scene.picks})
    out: dict = {}
    for w in used:
        for k, d in enumerate(scene.windows[w]):
            out.setdefault(d, []).append((w, k))
    return dict(sorted(out.items()))


def _tile_name(scene: ScenePlan, window: tuple, k: int, row: int, col: int) -> str:
    r = scene.region
    return TileName(r.country, r.area, window[0], window[2], k, scene.n_before(window[k]), row, col + scene.col_offset).format()


def _simulate_scene(cfg: SimConfig, scene: ScenePlan, root: Path, bar=None) -> list:
    """Simulate the dates of one scene, write its picked tiles, return its CSV rows."""
    from affine import Affine
    from rasterio.crs import CRS

    ts = cfg.tile_size
    model = Scene(scene.region, cfg.grid * ts, cfg.seed, scene.index, cfg.cloudiness)
    crs = CRS.from_epsg(scene.region.epsg)
    east, north = scene.region.origin()
    by_window: dict = {}
    for w, r, c in scene.picks:
        by_window.setdefault(w, []).append((r, c))
    for date, uses in _scene_dates(scene).items():
        obs = model.observe(date)
        for w, k in uses:
            for r, c in by_window[w]:
                name = _tile_name(scene, scene.windows[w], k, r, c)
                sl = np.s_[r * ts : (r + 1) * ts, c * ts : (c + 1) * ts]
                transform = Affine(PIXEL, 0, east + (c + scene.col_offset) * ts * PIXEL, 0, -PIXEL, north - r * ts * PIXEL)
                _write_tiff(root / S1_DIR / name, np.stack([obs.vv[sl], obs.vh[sl]]), crs, transform)
                _write_tiff(root / S2_DIR / name, obs.lai[sl][None], crs, transform)
                _write_tiff(root / MASK_DIR / name, obs.scl[sl][None], crs, transform)
                if k == 2:
                    _write_tiff(root / TRUTH_DIR / name, obs.truth[sl][None], crs, transform)
        if bar is not None:
            bar.update(1)
    return [tuple(_tile_name(scene, scene.windows[w], k, r, c) for k in range(3)) for w, r, c in scene.picks]


# --------------------------------------------------------------------------- entry point


def _reuse_or_refuse(out: Path, text: str) -> bool:
    """True if ``out`` holds a finished simulation with this exact ``simulation.yaml``.

    An absent or empty folder is False (it will be written); anything else raises.
    """
    if not out.exists():
        return False
    existing = out / "simulation.yaml"
    if out.is_dir() and existing.is_file() and existing.read_text() == text and (out / SERIES_CSV).is_file():
        return True
    if out.is_dir() and not any(out.iterdir()):
        return False
    raise FileExistsError(
        f"{out} already exists and does not hold a simulation of this configuration "
        "(different or missing simulation.yaml); choose another folder or delete it"
    )


def _auto_workers(cfg: SimConfig, plans: list) -> int:
    """Processes worth starting: one per scene up to the CPUs, only when the run is not tiny."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    files = 10 * sum(len(s.picks) for s in plans)
    big = files >= 2000 or cfg.grid * cfg.tile_size >= 1024
    return max(1, min(cpus, len(plans), 16)) if big else 1


def _run_scenes(cfg: SimConfig, plans: list, root: Path, workers: int, bar, dask: dict | None = None) -> list:
    """Simulate every scene, on dask (``dask``: workers or scheduler), in ``workers`` forked
    processes (one scene each) or serially.

    Returns each scene's CSV rows in plan order; the files do not depend on how they were run.
    """
    import multiprocessing

    if dask:
        from lai.parallel import dask_client, map_ordered

        with dask_client(**dask) as client:
            return map_ordered(functools.partial(_simulate_scene, cfg, root=root), plans, client,
                               on_done=lambda i, _: bar.update(len(_scene_dates(plans[i]))))

    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {pool.submit(_simulate_scene, cfg, scene, root): i for i, scene in enumerate(plans)}
            results: list = [None] * len(plans)
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                bar.update(len(_scene_dates(plans[i])))
        return results
    results = []
    for scene in plans:
        bar.set_postfix_str(f"{scene.region.name} #{scene.index}")
        results.append(_simulate_scene(cfg, scene, root, bar))
    return results


def simulate(cfg: SimConfig, out: str | Path, progress: bool = True, workers: int | None = None,
             dask: dict | None = None) -> dict:
    """Write a simulated dataset in the real LNB layout (plus truth/) to ``out``; return a summary.

    Reuses ``out`` if it already holds a simulation of the identical configuration; refuses
    (FileExistsError) to touch any other existing content. The folder appears atomically
    (built in a hidden sibling, renamed at the end) and is locked while written (a second
    writer is refused; the leftovers of a killed one are removed). ``workers``: processes,
    one scene each (None: automatic); ``dask``: ``{"workers": N}`` or ``{"scheduler": ADDRESS}``
    runs the scenes on dask.distributed instead. The output does not depend on either.
    """
    cfg.validate()
    with output_lock(out):
        return _simulate(cfg, Path(out), progress, workers, dask)


def _simulate(cfg: SimConfig, out: Path, progress: bool, workers: int | None, dask: dict | None) -> dict:
    from tqdm.auto import tqdm

    cfg.validate()
    check_regions(cfg)
    out, text, start = Path(out), yaml_text(cfg), time.perf_counter()
    summary = {"out": str(out), "train_triplets": cfg.train_triplets, "unique_triplets": cfg.unique_triplets}
    if _reuse_or_refuse(out, text):
        n = max(0, len((out / SERIES_CSV).read_text().splitlines()) - 1)
        return {**summary, "reused": True, "triplets": n, "message": f"reused the existing simulation in {out}",
                "seconds": time.perf_counter() - start}
    plans = plan(cfg)
    workers = _auto_workers(cfg, plans) if workers is None else max(1, int(workers))
    total_dates = sum(len(_scene_dates(s)) for s in plans)
    with atomic_path(out) as tmp, tqdm(total=total_dates, desc="simulate", unit="date", disable=not progress) as bar:
        tmp = Path(tmp)
        for sub in (S1_DIR, S2_DIR, MASK_DIR, TRUTH_DIR):
            (tmp / sub).mkdir(parents=True)
        rows = [row for scene_rows in _run_scenes(cfg, plans, tmp, workers, bar, dask) for row in scene_rows]
        (tmp / SERIES_CSV).write_text("\n".join(["0,1,2"] + [",".join(r) for r in rows]) + "\n")
        (tmp / "simulation.yaml").write_text(text)
    regions: dict = {}
    for scene in plans:
        info = regions.setdefault(scene.region.name, {"role": scene.role, "scenes": 0, "triplets": 0})
        info["scenes"] += 1
        info["triplets"] += len(scene.picks)
    seconds = time.perf_counter() - start
    return {
        **summary, "reused": False, "triplets": len(rows), "regions": regions, "scenes": len(plans),
        "files": 10 * len(rows), "workers": workers, "message": f"simulated {len(rows)} triplets into {out}",
        "seconds": seconds, "triplets_per_second": len(rows) / max(seconds, 1e-9),
    }
