"""One scene's land: fields and their classes, phenology (true LAI), tillage, and the weather.

* Landscape: per scene, Voronoi fields of 1-20 ha (100-2000 pixels of 10 m), seeded
  with a spatially varying density; each field gets a class from the region's crop mix
  (winter cereal, maize, sunflower, grassland, deciduous and conifer forest, bare/urban,
  water), with forests, water and built-up land clustered by smooth "zone" fields.
  Arable fields rotate crops between years. Smooth within-field heterogeneity.
* Phenology: LAI per field is a double logistic in day of year with per-field random
  amplitude and dates (winter cereal with an autumn/winter cover, grassland with
  mowing cuts), shifted per region and per year.
* Tillage: ploughing after each arable harvest leaves rough clods, seedbed preparation before
  sowing a smooth surface; rain smooths both over months (the radar sees it, :mod:`lai.simulate.sensors`).
* Weather: a daily latent "cloudiness" series (AR(1)) drives both the cloud fraction of
  each Sentinel-2 date (:mod:`lai.simulate.clouds`) and rain events, which wet the soil
  (exponential drying).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special, stats

from lai.simulate.random_fields import smooth_field
from lai.simulate.regions import ARABLE, BARE, CEREAL, CONIFER, DECIDUOUS, GRASS, MAIZE, SUNFLOWER, WATER, Region

START, END = dt.date(2017, 1, 1), dt.date(2020, 12, 31)
PIXEL = 10.0  # metres

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

# Tillage roughness around the soil model's average field (dB, C band): fresh clods after ploughing,
# a fine seedbed before sowing; both fade back to the average as rain reworks the surface.
STUBBLE = 0.15  # stubble and straw left by the harvest, as a share of the crop's peak leaf area
TILLAGE_PLOUGH_DB = (2.0, 4.5)
TILLAGE_SEEDBED_DB = (-2.5, -1.0)
TILLAGE_SMOOTHING_DAYS = 120.0


def _sig(x, mid, rate):
    return special.expit((x - mid) / rate)


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


def phenology(land: Landscape, date: dt.date) -> tuple[np.ndarray, np.ndarray]:
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
    return phenology(land, date)[0]


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

