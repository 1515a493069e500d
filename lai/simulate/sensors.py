"""The sensors: what Sentinel-2 and Sentinel-1 observe of one scene on one date (:class:`Scene`).

* Sentinel-2: the sky (clouds, cirrus, shadows: :mod:`lai.simulate.clouds`, the whole cloud model)
  over the surface classes of Sen2Cor's SCL (6 water, 4/5 vegetated or not, 2 dark conifers,
  11 snow in northern winters, rare 0/1/7). LAI = truth + retrieval noise on clear pixels;
  corrupted (mostly low garbage, as the SNAP network yields on clouds) under clouds, too low in
  cloud shadows (flagged by Sen2Cor or, for about 30% of their area, not), ~0 on snow; NaN only
  where SCL is 0 (no data).
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
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from lai.simulate.clouds import Sky, draw_sky
from lai.simulate.land import PIXEL, START, make_landscape, make_weather, phenology
from lai.simulate.random_fields import name_key, smooth_field
from lai.simulate.regions import CONIFER, DECIDUOUS, MAIZE, WATER, Region

ENL = 4.4  # equivalent number of looks of S1 GRD IW

# Radar per class: water-cloud A and B for VV and VH, and structure (branch volume) terms.
_A_VV = np.array([.015, .015, .020, .020, .012, .012, .020, 0], np.float32)
_B_VV = np.array([.16, .10, .12, .15, .10, .10, .15, 0], np.float32)
_A_VH = np.array([.008, .010, .010, .007, .004, .004, .006, 0], np.float32)
_B_VH = np.array([.09, .07, .09, .10, .08, .08, .10, 0], np.float32)
_STRUCT_VV = np.array([0, 0, 0, 0, .10, .09, 0, 0], np.float32)
_STRUCT_VH = np.array([0, 0, 0, 0, .030, .032, 0, 0], np.float32)
_SOIL_DB = {"vv": (-17.5, 0.28, -0.25), "vh": (-25.0, 0.25, -0.15)}  # dB = a + b*mv + k*(theta - 37.5)
TILLAGE_GAIN = {"vv": 1.0, "vh": 1.3}  # cross-polarised soil return grows faster with roughness (Oh et al. 1992)
_NOISE_FLOOR = {"vv": 10 ** -3.1, "vh": 10 ** -2.8}  # residual thermal noise (linear)
DRY_CANOPY = 0.7  # senesced standing leaf area counted in the radar's vegetation descriptor (drier: weaker)

# S2 LAI retrieval on clear pixels (frozen: every model is compared against observations made with it):
# truth * (1 + RETRIEVAL_BIAS * smooth field of 50 px) + N(0, RETRIEVAL_NOISE[0] + RETRIEVAL_NOISE[1] * truth)
RETRIEVAL_BIAS = 0.06
RETRIEVAL_NOISE = (0.05, 0.08)  # absolute LAI, relative to the true LAI


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


class Scene:
    """One simulated scene: landscape and weather fixed at construction, dates on demand.

    Every date draws from its own random stream, so an observation does not depend on
    which other dates were simulated before it.
    """

    def __init__(self, region: Region, size: int, seed: int = 0, index: int = 0, cloudiness: float = 1.0):
        self.region, self.shape, self.cloudiness = region, (size, size), cloudiness
        self._key = [int(seed), name_key(region.name), int(index)]
        rng = np.random.default_rng(np.random.SeedSequence(self._key))
        self.land = make_landscape(rng, region, self.shape)
        self.weather = make_weather(rng, region)
        span = float(np.clip(size * PIXEL / 1000 * 0.06, 0.5, 15))  # ~15 degrees over the 250 km IW swath
        self.orbits = rng.uniform(30, 45 - span, size=int(rng.integers(2, 4)))
        self.theta_span = span

    # ---------------------------------------------------------------- public

    def _canopy(self, date: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """True green LAI per pixel, and the radar's vegetation descriptor: green plus standing dry canopy.

        Radar sees stems, ears and their water, not green leaves: ripening crops keep scattering
        after their green LAI has gone, until harvest.
        """
        green, dry = phenology(self.land, date)
        labels, het = self.land.labels, self.land.heterogeneity
        lai = green[labels] * het
        urban = self.land.urban[labels]
        lai = np.where(urban, np.where(self.land.building, 0, 2 * lai), lai).astype(np.float32)
        return lai, (lai + DRY_CANOPY * dry[labels] * het).astype(np.float32)

    def observe(self, date: dt.date) -> Observation:
        """Simulate truth, S2 LAI, SCL and S1 backscatter for one date."""
        rng = np.random.default_rng(np.random.SeedSequence(self._key + [date.toordinal()]))
        truth, canopy = self._canopy(date)
        classes = self.land.class_map(date.year)
        sky = draw_sky(rng, self.shape, self.region.cloud_monthly[date.month - 1] * self.cloudiness,
                       self.weather.latent[self.weather.index(date)])
        snow = self._snow(rng, date, classes)
        clear_lai = self._retrieval(rng, truth)
        scl = self._scl(rng, date, clear_lai, classes, sky, snow)
        lai = self._s2_lai(rng, clear_lai, scl, sky)
        s1_date = date + dt.timedelta(days=int(rng.integers(-1, 2)))
        vv, vh = self._s1(rng, s1_date, canopy, classes, snow)
        return Observation(date, s1_date, truth, lai, scl, vv, vh, classes, sky.fraction)

    # ---------------------------------------------------------------- Sentinel-2

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

    def _scl(self, rng, date, clear_lai, classes, sky: Sky, snow) -> np.ndarray:
        """Sen2Cor scene classification: surface classes, then snow, the sky's shadows and clouds, rare flags."""
        scl = np.where(clear_lai > 0.45, 4, 5).astype(np.uint8)
        scl[classes == WATER] = 6
        winter = 0.5 + 0.5 * math.cos(2 * math.pi * (date.timetuple().tm_yday - 355) / 365)
        dark = (classes == CONIFER) & (rng.random(self.shape, dtype=np.float32) < 0.05 + 0.4 * winter)
        scl[dark] = 2
        scl[snow] = 11
        sky.flag(scl, classes == WATER, rng)
        n_bad = rng.poisson(3e-5 * scl.size)
        scl.flat[rng.integers(0, scl.size, n_bad)] = 1
        if rng.random() < 0.04:  # edge of the satellite swath: no data beyond a tilted line
            rows, cols = np.indices(self.shape)
            edge = rng.uniform(0.1, 0.9) * self.shape[1] + np.tan(math.radians(12)) * (rows - self.shape[0] / 2)
            scl[(cols > edge) if rng.random() < 0.5 else (cols < edge)] = 0
        return scl

    def _s2_lai(self, rng, clear_lai, scl, sky: Sky) -> np.ndarray:
        """LAI as the SNAP processor outputs it: clear values, too low in cloud shadows, corrupted under clouds."""
        garbage = rng.gamma(1.2, 0.3, self.shape).astype(np.float32)
        wild = rng.random(self.shape, dtype=np.float32) < 0.03
        garbage = np.where(wild, rng.uniform(2, 8, self.shape).astype(np.float32), garbage)
        lai = sky.lai_under(rng, clear_lai, garbage)
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

