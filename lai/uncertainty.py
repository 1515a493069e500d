"""Per-pixel uncertainty: the spread head's standard deviation, recalibrated on validation, and its calibration.

A model with ``model.uncertainty`` predicts, beside LAI at t, the standard deviation of its error
(:func:`lai.model.spread_head`, trained by Gaussian negative log-likelihood on pixels clear at t). That
spread is learnt on training pixels and against the noisy observation, so it is rescaled on the validation
split (:func:`fit_calibration`), per *stratum* of pixels, twice:

- the map's standard deviation (band ``lai_std``, :meth:`Calibration.std`): one factor per stratum that makes
  the root mean square of the deviation equal the stratum's validation RMSE (variance recalibration: the
  spread is as large as the error);
- the intervals (:meth:`Calibration.deviations`): per nominal coverage ``level`` (:data:`LEVELS`), the factor
  that is the ``level`` quantile of the stratum's validation errors over the predicted deviation, divided by
  the Gaussian's (quantile recalibration), so that the central ``level`` interval covers ``level`` of those
  pixels.

The errors have heavier tails than a Gaussian: a deviation as large as the RMSE holds more than 68 % of them
within plus or minus one deviation, and one factor per stratum cannot make both the 68 % and the 95 % intervals
right. So intervals never come from ``lai_std`` times a Gaussian's quantile; :meth:`Calibration.summary` says,
per stratum, how many ``lai_std`` each central interval reaches. Strata are per
pixel, from what every prediction knows: how many of t-2 and t-1 are clear (0, 1 or 2) and whether t is
clear (:func:`strata`), so the same factors serve Table 1's test sets and any map. On simulated data the
factors are fitted against the true LAI (the target of a gap-filled value); on real data against the
observation, on pixels clear at t only (pixels clouded at t take the pooled factor).

``calibration.json`` in the trained stage's folder holds the factors and ``observation_sd``: the error of the
observed S2 LAI itself (its RMSE against the true LAI on validation pixels clear at t, simulated data only),
the deviation a gap-filled map gives where it keeps the observation.

:func:`calibration_rows` measures, per test set and for pixels clear or clouded at t, against the truth: the
coverage of the central 68 % and 95 % intervals, the mean predicted standard deviation (sharpness) over the
RMSE, and the rank correlation of standard deviation and absolute error, the coverages and the ratio with a 95 %
interval over resampled test triplets (:func:`calibration_intervals`); :func:`reliability` gives observed against
nominal coverage for the reliability diagram; :func:`region_transfer`, fitting on validation less one of its regions
and measuring on that one, how far the factors carry over to another area.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lai.errors import RunFolderError, shorten
from lai.facts import MIN_SCORED_TRIPLETS
from lai.io import atomic_write_text
from lai.metrics import BOOTSTRAP_SAMPLES, percentile_interval, resample_weights
from lai.pixels import LAI_RANGE

CALIBRATION_FILE = "calibration.json"
FITTED_AGAINST = ("truth", "observation")  # what a calibration file's factors were fitted against
STRATA = tuple(f"{past} past clear, {'clear' if clear else 'clouded'} at t" for clear in (0, 1) for past in (0, 1, 2))
POOLED = "pooled"
MIN_PIXELS = 20_000  # a stratum with fewer validation pixels (about five 64x64 tiles: the pixels of one triplet are
# far from independent) takes the pooled factor
NOMINAL = (0.68, 0.95)  # the central intervals whose coverage the calibration table reports
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.68, 0.7, 0.8, 0.9, 0.95, 0.99)  # the reliability diagram's and the fitted ones
ONE_SIGMA = 0.68  # the level whose factor a calibration file without sd_factors (before 2026-12-03) used for lai_std
FACTOR_RANGE = (1e-3, 1e3)  # a recalibration factor outside it is no recalibration (fitted ones are about 0.5-3)
SPEARMAN_PIXELS = 200_000  # pixels drawn (fixed seed) for the rank correlation
# the columns of tables/calibration_transfer.csv (:func:`region_transfer`), written also where it has no rows
TRANSFER_COLUMNS = ("held_out", "triplets", "pixels", "against", "n_pixels", *(f"coverage_{round(100 * lv)}" for lv in NOMINAL))


def z_of(level: float) -> float:
    """Half-width of the central ``level`` interval of a standard normal, in standard deviations."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def strata(past_clear: np.ndarray, clear_t: np.ndarray) -> np.ndarray:
    """Stratum index (into :data:`STRATA`) per pixel: ``past_clear`` the number of clear dates among t-2 and t-1
    (0-2), ``clear_t`` whether t is clear."""
    return (np.asarray(clear_t).astype(np.int64) * 3 + np.asarray(past_clear).astype(np.int64)).astype(np.int8)


@dataclass
class Calibration:
    """Factors that turn the spread head's deviation into calibrated ones, per stratum (:data:`STRATA`): the
    standard deviation's (``sd_factors``) and the intervals', per level (``factors``)."""

    factors: dict[str, list[float]] = field(default_factory=dict)  # stratum name (or POOLED) -> factor per level
    observation_sd: float | None = None  # error of the observed LAI (m2/m2), None where unknown (real data)
    against: str = "none"  # what the factors were fitted against: "truth", "observation" or "none"
    fitted_on: str = ""  # the cube and split
    levels: list[float] = field(default_factory=lambda: list(LEVELS))  # the nominal coverages of the factors
    sd_factors: dict[str, float] = field(default_factory=dict)  # stratum name (or POOLED) -> the standard deviation's
    sd_fitted: str = "rms"  # "rms": root mean square matched to the RMSE; "68 %": a file from before sd_factors

    def factor_array(self, level: float) -> np.ndarray:
        """The factor of every stratum at ``level`` (linear between the fitted levels, the nearest beyond them)."""
        pooled = self.factors.get(POOLED, [1.0] * len(self.levels))
        return np.array([np.interp(level, self.levels, self.factors.get(name, pooled)) for name in STRATA], np.float32)

    def sd_factor_array(self) -> np.ndarray:
        """The standard deviation's factor of every stratum (the pooled one where a stratum has none)."""
        pooled = self.sd_factors.get(POOLED, 1.0)
        return np.array([self.sd_factors.get(name, pooled) for name in STRATA], np.float32)

    def std(self, sd: np.ndarray, past_clear: np.ndarray, clear_t: np.ndarray) -> np.ndarray:
        """The calibrated standard deviation (band ``lai_std``): ``sd`` (any shape) times its stratum's factor."""
        return (sd * self.sd_factor_array()[strata(past_clear, clear_t)]).astype(np.float32)

    def deviations(self, sd: np.ndarray, past_clear: np.ndarray, clear_t: np.ndarray, levels=LEVELS
                   ) -> dict[float, np.ndarray]:
        """Per level of ``levels``: ``sd`` (any shape) times its stratum's factor at that level, the deviation whose
        central ``level`` interval (of a Gaussian: plus or minus :func:`z_of` times it) is calibrated."""
        stratum = strata(past_clear, clear_t)
        return {level: (sd * self.factor_array(level)[stratum]).astype(np.float32) for level in levels}

    @property
    def recalibrated(self) -> bool:
        """Whether factors were fitted (else the identity: the spread head's raw deviation)."""
        return self.against != "none"

    def describe(self) -> str:
        """One sentence: what the model's ``lai_std`` is under this calibration (a map's tag, summary.json)."""
        if not self.recalibrated:
            return (f"NOT recalibrated (the run folder holds no {CALIBRATION_FILE}): the spread head's raw standard "
                    "deviation, learnt on training pixels against the observation")
        fitted = {"truth": "recalibrated on the validation split against the true LAI (simulated data)",
                  "observation": "recalibrated on the validation split against the observation (pixels clear at t)"}
        meaning = ("scaled per stratum so that its root mean square equals the validation RMSE" if self.sd_fitted == "rms"
                   else "the 68 % deviation (plus or minus it holds 68 % of the errors): a calibration file from before "
                        "the standard deviation was fitted; rerun the calibration to update it")
        return f"{fitted.get(self.against, self.against)}; {meaning}"

    def summary(self) -> dict:
        """What a map's band ``lai_std`` holds under this calibration (for summary.json)."""
        if self.observation_sd is not None:
            obs = (f"{self.observation_sd:.3f} m2/m2 where observed: the observed LAI's RMSE against the true LAI on the "
                   "training run's simulated validation pixels clear at t, an estimate for real data")
        elif not self.recalibrated:
            obs = f"unknown (the run folder holds no {CALIBRATION_FILE}): NaN where observed"
        else:
            obs = "unknown (no true LAI in the training data): NaN where observed"
        std = self.sd_factor_array()
        reach = {f"{round(100 * lv)} %": dict(zip(STRATA, (z_of(lv) * self.factor_array(lv) / std).round(3).tolist()))
                 for lv in NOMINAL}
        return {"model_sd": self.describe(), "observation_sd": obs,
                "interval_half_width": "the central interval of each nominal coverage, in units of lai_std, per stratum "
                                       "(0.994 and 1.96 for a Gaussian): " + json.dumps(reach),
                "sd_factors": self.sd_factors, "factors": self.factors, "levels": self.levels}

    def write(self, folder: Path) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        atomic_write_text(path, json.dumps(asdict(self), indent=2))
        return path


def read_calibration(folder: str | Path) -> Calibration:
    """The calibration stored beside a trained model, or the identity (factor 1, ``against="none"``).

    A file written before the factors were fitted per level (one number per stratum) is read as that factor at
    every level, which is what it meant."""
    from lai.records import read_json_record

    path = Path(folder) / CALIBRATION_FILE
    if not path.exists():
        return Calibration()
    uncalibrated = "delete it to predict uncalibrated"
    data = read_json_record(path, RunFolderError, uncalibrated)
    problems: list[str] = []

    def number(value, field: str) -> float:
        """``value`` as a float; a problem naming ``field`` where it is no number (text, true/false, null)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{field} is {shorten(json.dumps(value), 30)}, not a number")
            return math.nan
        if not math.isfinite(value):
            problems.append(f"{field} is {value}, not a finite number")
        return float(value)

    def per_stratum(mapping, field: str) -> dict:
        if not isinstance(mapping, dict):
            problems.append(f"{field} must map strata to factors, got {shorten(json.dumps(mapping), 30)}")
            return {}
        unknown = [str(k) for k in mapping if k not in (*STRATA, POOLED)]
        if unknown:
            problems.append(f"{field} names unknown strata {', '.join(unknown)} (expected {POOLED} and any of "
                            f"{', '.join(STRATA)})")
        if POOLED not in mapping:
            problems.append(f"{field} lacks {POOLED!r} (the factor of every stratum without its own)")
        return {str(k): v for k, v in mapping.items()}

    if not isinstance(data, dict) or "factors" not in data or "against" not in data:
        raise RunFolderError(f"{path}: not a lai calibration file (it needs factors and against); {uncalibrated}")
    raw_levels = data.get("levels", LEVELS)
    levels = [number(v, "levels[]") for v in raw_levels] if isinstance(raw_levels, (list, tuple)) else []
    if not levels or not all(0 < lv < 1 for lv in levels) or any(a >= b for a, b in zip(levels, levels[1:])):
        problems.append(f"levels must increase strictly within (0, 1), got {shorten(json.dumps(raw_levels), 40)}")
    factors = {}
    for k, v in per_stratum(data["factors"], "factors").items():
        values = [number(v, f"factors.{k}")] * len(levels) if not isinstance(v, list) else \
            [number(f, f"factors.{k}[]") for f in v]
        if len(values) != len(levels):
            problems.append(f"factors.{k} holds {len(values)} factor(s) for {len(levels)} level(s)")
        if not all(_plausible(f) for f in values):
            problems.append(f"factors.{k} {shorten(json.dumps(v), 40)} must lie in [{FACTOR_RANGE[0]:g}, "
                            f"{FACTOR_RANGE[1]:g}]")
        factors[k] = values
    if "sd_factors" in data:
        fitted = "rms"
        sd_factors = {k: number(v, f"sd_factors.{k}") for k, v in per_stratum(data["sd_factors"], "sd_factors").items()}
        problems += [f"sd_factors.{k} {v:g} must lie in [{FACTOR_RANGE[0]:g}, {FACTOR_RANGE[1]:g}]"
                     for k, v in sd_factors.items() if math.isfinite(v) and not _plausible(v)]
    else:  # written before the standard deviation had its own factors: lai_std was the 68 % deviation
        sd_factors = {k: float(np.interp(ONE_SIGMA, levels, v)) for k, v in factors.items()
                      if len(v) == len(levels) and levels and not problems}
        fitted = "68 %"
    if data["against"] not in FITTED_AGAINST:
        problems.append(f"against is {shorten(json.dumps(data['against']), 30)}; expected one of {', '.join(FITTED_AGAINST)}")
    obs = data.get("observation_sd")
    if obs is not None:
        obs = number(obs, "observation_sd")
        if math.isfinite(obs) and not 0 <= obs <= LAI_RANGE[1]:
            problems.append(f"observation_sd {obs:g} must lie in [0, {LAI_RANGE[1]:g}] (m2/m2, the observed LAI's error)")
    if problems:
        raise RunFolderError(f"{path}: {'; '.join(dict.fromkeys(problems))}; {uncalibrated}")
    return Calibration(factors, obs, str(data["against"]), str(data.get("fitted_on", "")), levels, sd_factors, fitted)


def _plausible(factor: float) -> bool:
    """Whether ``factor`` lies in :data:`FACTOR_RANGE` (NaN does not)."""
    return FACTOR_RANGE[0] <= factor <= FACTOR_RANGE[1]


def level_factors(z: np.ndarray, levels=LEVELS) -> list[float]:
    """Per level, the factor ``f`` that makes the central ``level`` interval of N(0, (f sd)²) cover exactly ``level``
    of the standardised errors ``z = err / sd``: their ``level`` quantile of ``|z|`` over the Gaussian's (within
    :data:`FACTOR_RANGE`, which the reader requires); 1 without data."""
    if not z.size:
        return [1.0] * len(levels)
    q = np.quantile(np.abs(z), levels)
    return [float(np.clip(v / z_of(lv), *FACTOR_RANGE)) for v, lv in zip(q, levels)]


def sd_factor(sd: np.ndarray, err: np.ndarray) -> float:
    """The factor ``f`` that makes the root mean square of ``f sd`` equal that of ``err`` (within :data:`FACTOR_RANGE`);
    1 without data."""
    mean_var = float(np.mean(np.square(sd, dtype=np.float64))) if sd.size else 0.0
    factor = math.sqrt(float(np.mean(np.square(err, dtype=np.float64))) / mean_var) if mean_var > 0 else 1.0
    return float(np.clip(factor, *FACTOR_RANGE))


def fit_calibration(sd: np.ndarray, err: np.ndarray, stratum: np.ndarray, against: str, fitted_on: str = "",
                    observation_sd: float | None = None, levels=LEVELS) -> Calibration:
    """The standard deviation's factor (:func:`sd_factor`) and the intervals' factors per level
    (:func:`level_factors`) of each stratum, over pixels where ``err`` and ``sd`` are finite; strata with fewer
    than :data:`MIN_PIXELS` pixels take the pooled factors."""
    ok = np.isfinite(err) & np.isfinite(sd) & (sd > 0)
    sd, err, s = sd[ok], err[ok], stratum[ok]
    z = (err / sd).astype(np.float64)
    factors, sd_factors = {POOLED: level_factors(z, levels)}, {POOLED: sd_factor(sd, err)}
    for i, name in enumerate(STRATA):
        sel = s == i
        if sel.sum() >= MIN_PIXELS:
            factors[name] = level_factors(z[sel], levels)
            sd_factors[name] = sd_factor(sd[sel], err[sel])
    return Calibration(factors, observation_sd, against, fitted_on, list(levels), sd_factors)


def coverage(err: np.ndarray, sd: np.ndarray, level: float) -> float:
    """Share of pixels whose error lies inside the central ``level`` interval of N(0, sd²)."""
    return float(np.mean(np.abs(err) <= z_of(level) * sd)) if err.size else float("nan")


def spearman(a: np.ndarray, b: np.ndarray, n: int = SPEARMAN_PIXELS, seed: int = 0) -> float:
    """Rank correlation of ``a`` and ``b`` (at most ``n`` pixels drawn with ``seed``)."""
    from scipy.stats import spearmanr

    if a.size < 3:
        return float("nan")
    if a.size > n:
        pick = np.random.default_rng(seed).choice(a.size, n, replace=False)
        a, b = a[pick], b[pick]
    return float(spearmanr(a, b).statistic)


def at_level(deviation: np.ndarray | dict[float, np.ndarray], level: float) -> np.ndarray:
    """The deviation for the central ``level`` interval: ``deviation[level]`` from a mapping of levels
    (:meth:`Calibration.deviations`), else the one array (the same at every level, e.g. the raw spread)."""
    return deviation[level] if isinstance(deviation, dict) else deviation


def calibration_rows(name: str, err: np.ndarray, sd: np.ndarray, calibrated: dict[float, np.ndarray],
                     std: np.ndarray, clear_t: np.ndarray, against: str) -> list[dict]:
    """Rows of the calibration table for one test set: pixels clear and clouded at t, the spread head's raw
    deviation and the recalibrated one: intervals from ``calibrated`` (:meth:`Calibration.deviations`, each level
    its own), mean and rank correlation from the standard deviation ``std`` (:meth:`Calibration.std`). ``err`` is
    prediction minus reference (``against``), NaN where none. ``sd_ratio`` is the mean ``std`` over the RMSE (a
    spread exactly as large as the error reads below 1 on it wherever ``std`` varies), ``rms_sd_ratio`` its root
    mean square over the RMSE (1 for such a spread: what :func:`sd_factor` fits on validation). Arrays indexed by
    triplet first (triplet, y, x) also give each coverage and both ratios a 95 % interval over resampled triplets
    (:func:`calibration_intervals`)."""
    rows = []
    for where, sel in (("clear at t", clear_t), ("clouded at t", ~clear_t)):
        sel = sel & np.isfinite(err) & np.isfinite(sd)
        e = err[sel]
        rmse = float(np.sqrt(np.mean(np.square(e)))) if e.size else float("nan")
        for version, dev, s in (("raw", sd, sd), ("recalibrated", calibrated, std)):
            mean_sd = float(s[sel].mean()) if e.size else float("nan")
            rms_sd = float(np.sqrt(np.mean(np.square(s[sel], dtype=np.float64)))) if e.size else float("nan")
            rows.append({"set": name, "pixels": where, "sd": version, "against": against, "n_pixels": int(e.size),
                         "rmse": rmse, "mean_sd": mean_sd, "sd_ratio": mean_sd / rmse if rmse > 0 else float("nan"),
                         "rms_sd_ratio": rms_sd / rmse if rmse > 0 else float("nan"),
                         **{f"coverage_{round(100 * lv)}": coverage(e, at_level(dev, lv)[sel], lv) for lv in NOMINAL},
                         "spearman": spearman(s[sel], np.abs(e)), **calibration_intervals(err, dev, s, sel)})
    return rows


def calibration_intervals(err: np.ndarray, deviation: np.ndarray | dict[float, np.ndarray], std: np.ndarray,
                          sel: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict[str, float]:
    """95 % percentile intervals of the coverage of each :data:`NOMINAL` interval (``coverage_68_lo``,
    ``coverage_68_hi``, ...), of ``sd_ratio`` (mean ``std`` over the RMSE) and of ``rms_sd_ratio`` (its root mean
    square over the RMSE: what :func:`sd_factor` makes 1 on the pixels it is fitted on) on the pixels ``sel``, over
    resamples of the triplets (the first axis: the pixels of one tile are not independent, as in
    :mod:`lai.metrics`). NaN without a triplet axis (1-D arrays) or with fewer than ``lai.facts.MIN_SCORED_TRIPLETS``
    triplets holding a pixel of ``sel`` (too few resample into overconfident intervals, as Table 1's)."""
    names = [f"coverage_{round(100 * lv)}" for lv in NOMINAL] + ["sd_ratio", "rms_sd_ratio"]
    if err.ndim < 2 or np.count_nonzero(np.asarray(sel).reshape(len(sel), -1).any(1)) < MIN_SCORED_TRIPLETS:
        return {f"{c}_{end}": float("nan") for c in names for end in ("lo", "hi")}

    def per_triplet(values: np.ndarray) -> np.ndarray:  # sums over each triplet's pixels in sel, in float64
        kept = values & sel if values.dtype == bool else np.where(sel, values, 0)  # a mask stays one byte a pixel
        return kept.reshape(len(sel), -1).sum(1, dtype=np.float64)

    with np.errstate(invalid="ignore", divide="ignore"):
        weights = resample_weights(len(err), samples, seed)
        pixels = weights @ per_triplet(sel)
        draws = [weights @ per_triplet(np.abs(err) <= z_of(lv) * at_level(deviation, lv)) / pixels for lv in NOMINAL]
        squared = weights @ per_triplet(np.square(err, dtype=np.float64))
        draws.append(weights @ per_triplet(std) / np.sqrt(squared * pixels))
        draws.append(np.sqrt(weights @ per_triplet(np.square(std, dtype=np.float64)) / squared))
    return {f"{c}_{end}": bound for c, d in zip(names, draws) for end, bound in zip(("lo", "hi"), percentile_interval(d))}


def region_transfer(sd: np.ndarray, err: np.ndarray, stratum: np.ndarray, clear_t: np.ndarray, regions: np.ndarray,
                    against: str, form: str = "levels") -> list[dict]:
    """How far a recalibration fitted on validation carries over to another area (tables/calibration_transfer.csv):
    per region of the validation split (``regions``: one per triplet, the arrays' first axis), :func:`fit_calibration`
    on the other regions' pixels, and the coverage of its 68 % and 95 % intervals on this region's pixels clear and
    clouded at t (``err``: prediction minus ``against``, NaN where none). ``form`` "levels": the intervals of lai's
    per-level factors; "gaussian": plus or minus :func:`z_of` times the standard deviation's factor. No rows with
    fewer than two regions."""
    if form not in ("levels", "gaussian"):
        raise ValueError(f"form must be 'levels' or 'gaussian'; got {form!r}")
    regions = np.asarray(regions).astype(str)
    names = np.unique(regions)
    rows = []
    for region in names if len(names) > 1 else ():
        mine = regions == region
        held = np.broadcast_to(mine.reshape(-1, *[1] * (err.ndim - 1)), err.shape)
        cal = fit_calibration(sd, np.where(held, np.nan, err), stratum, against)
        factor = {lv: cal.sd_factor_array() if form == "gaussian" else cal.factor_array(lv) for lv in NOMINAL}
        for where, sel in (("clear at t", clear_t), ("clouded at t", ~clear_t)):
            m = held & sel & np.isfinite(err) & np.isfinite(sd)
            rows.append({"held_out": str(region), "triplets": int(mine.sum()), "pixels": where, "against": against,
                         "n_pixels": int(m.sum()), **{f"coverage_{round(100 * lv)}": coverage(
                             err[m], (sd * factor[lv][stratum])[m], lv) for lv in NOMINAL}})
    return rows


def reliability(name: str, err: np.ndarray, sd: np.ndarray | dict[float, np.ndarray], levels=LEVELS) -> list[dict]:
    """Observed coverage of the central intervals at each nominal level (finite pixels of ``err`` and the deviation
    of that level, :func:`at_level`)."""
    rows = []
    for lv in levels:
        dev = at_level(sd, lv)
        ok = np.isfinite(err) & np.isfinite(dev)
        rows.append({"set": name, "nominal": lv, "observed": coverage(err[ok], dev[ok], lv)})
    return rows
