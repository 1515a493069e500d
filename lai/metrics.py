"""RMSE and R2 pooled over pixels clear at t, per tile, and bootstrap intervals over triplets.

Every score keeps per-triplet sums (``SUMS``: squared error, sum and sum of squares of the
target, pixel count), from which the pooled RMSE and R2 of any resample of the triplets
follow exactly; the bootstrap draws triplets, never pixels, since neighbouring pixels of one
tile are not independent.
"""
from __future__ import annotations

import numpy as np

from lai.facts import MIN_SCORED_TRIPLETS, N_PIXELS, PAPER_LAI_SCALE, R2, RMSE, RMSE_NORM, STRICT_VALID_CLASSES

SUMS = ("sse", "sum_t", "sum_tt", "n")
BOOTSTRAP_SAMPLES = 2000
LEVEL = 0.95


class PooledMetrics:
    """Accumulate sums over masked pixels; RMSE and R2 over all of them at the end.

    R2 = 1 - SSE / SST, with SST around the pooled mean of the targets.
    """

    def __init__(self):
        self.sse = self.sy = self.syy = 0.0
        self.n = 0

    def update(self, pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> None:
        sums = triplet_sums(pred, target, mask).sum(0)
        self.sse += float(sums[0])
        self.sy += float(sums[1])
        self.syy += float(sums[2])
        self.n += int(sums[3])

    def result(self) -> dict[str, float]:
        if self.n == 0:
            return {RMSE: np.nan, RMSE_NORM: np.nan, R2: np.nan, N_PIXELS: 0}
        rmse, r2 = rmse_r2(np.array([self.sse, self.sy, self.syy, self.n]))
        return {RMSE: float(rmse), RMSE_NORM: float(rmse) / PAPER_LAI_SCALE, R2: float(r2), N_PIXELS: self.n}


def triplet_sums(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, 4) float64 sums ``SUMS`` over the masked pixels of each sample (first axis)."""
    mask = np.asarray(mask, bool)
    n = mask.shape[0] if mask.ndim > 2 else 1
    mask = mask.reshape(n, -1)
    p = np.where(mask, np.asarray(pred, np.float64).reshape(n, -1), 0.0)
    t = np.where(mask, np.asarray(target, np.float64).reshape(n, -1), 0.0)
    return np.stack([np.square(p - t).sum(1), t.sum(1), np.square(t).sum(1), mask.sum(1)], axis=1)


def rmse_r2(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled RMSE and R2 from summed ``SUMS`` (last axis); NaN where undefined."""
    sse, st, stt, n = np.moveaxis(np.asarray(totals, np.float64), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sst = stt - st**2 / n
        return np.sqrt(sse / n), np.where(sst > 0, 1 - sse / sst, np.nan)


def resample_weights(n_triplets: int, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> np.ndarray:
    """(samples, n_triplets) counts of each triplet in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_triplets, np.full(n_triplets, 1.0 / n_triplets), size=samples).astype(np.float64)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite ``values`` (e.g. over bootstrap resamples); NaN if none.
    A resample whose statistic is undefined (it drew no scored pixel: a set where few triplets hold any) is left
    out, so the interval is conditional on drawing at least one; the quick and standard profiles' test sets hold over a hundred
    scored triplets each, where that never happens."""
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_intervals(sums: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                        level: float = LEVEL) -> dict[str, float]:
    """Percentile intervals (``rmse_lo``, ``rmse_hi``, ``r2_lo``, ``r2_hi``) over resampled triplets."""
    sums = np.asarray(sums, np.float64)
    if scored_triplets(sums) < MIN_SCORED_TRIPLETS:
        return {"rmse_lo": np.nan, "rmse_hi": np.nan, "r2_lo": np.nan, "r2_hi": np.nan}
    rmse, r2 = rmse_r2(resample_weights(len(sums), samples, seed) @ sums)
    (rlo, rhi), (qlo, qhi) = percentile_interval(rmse, level), percentile_interval(r2, level)
    return {"rmse_lo": rlo, "rmse_hi": rhi, "r2_lo": qlo, "r2_hi": qhi}


def paired_difference(sums_a: np.ndarray, sums_b: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                      level: float = LEVEL, resample_trainings: bool = False) -> dict[str, float]:
    """RMSE of A minus RMSE of B on the same triplets (rows aligned), with a paired bootstrap interval.

    Both models are scored on the same resamples. Either may be several trainings (seeds) of one model,
    ``(seeds, triplets, SUMS)``: its RMSE is then the mean of the seeds' RMSEs, and every resample of the
    triplets is applied to every seed, so the interval pools triplets and seeds: it holds the trainings fixed
    (what these trainings score). With ``resample_trainings`` each resample also draws the trainings with
    replacement, so the interval counts how much another set of trainings would move the mean (what trainings
    of this kind score; wider where they differ, e.g. trained on other data). ``resolved`` is True when the
    interval excludes 0.
    """
    a, b = (_by_seed(s) for s in (sums_a, sums_b))
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"paired bootstrap needs the same triplets for both models, got {a.shape[1:]} and {b.shape[1:]}")
    diff = float(seed_mean_rmse(a.sum(1)) - seed_mean_rmse(b.sum(1)))
    scored = scored_triplets(b)
    if scored < MIN_SCORED_TRIPLETS:  # too few for an interval (lai.facts.MIN_SCORED_TRIPLETS): not resolved
        return {"diff": diff, "diff_lo": np.nan, "diff_hi": np.nan, "resolved": False, "scored_triplets": scored}
    w = resample_weights(a.shape[1], samples, seed)
    rng = np.random.default_rng([seed, 1])  # the trainings' draws, apart from the triplets'

    def mean_rmse(sums: np.ndarray) -> np.ndarray:
        per_training = rmse_r2(w @ sums)[0]  # (trainings, samples)
        if not resample_trainings or len(sums) < 2:
            return per_training.mean(axis=0)
        counts = rng.multinomial(len(sums), np.full(len(sums), 1.0 / len(sums)), size=samples)  # (samples, trainings)
        return (counts * per_training.T).sum(axis=1) / len(sums)

    lo, hi = percentile_interval(mean_rmse(a) - mean_rmse(b), level)
    return {"diff": diff, "diff_lo": lo, "diff_hi": hi, "resolved": bool(lo > 0 or hi < 0), "scored_triplets": scored}


def scored_triplets(sums) -> int:
    """How many triplets of ``sums`` (``(triplets, SUMS)`` or ``(seeds, triplets, SUMS)``) hold a scored pixel."""
    n = np.asarray(sums, np.float64)[..., SUMS.index("n")]
    return int((n > 0).reshape(-1, n.shape[-1]).any(axis=0).sum()) if n.size else 0


def _by_seed(sums) -> np.ndarray:
    """``(seeds, triplets, SUMS)`` float64 view of one training's (triplets, SUMS) sums or of several."""
    sums = np.asarray(sums, np.float64)
    return sums[None] if sums.ndim == 2 else sums


def seed_mean_rmse(totals: np.ndarray) -> np.ndarray:
    """Mean over the first axis (seeds) of the pooled RMSE of summed ``SUMS`` (last axis)."""
    return rmse_r2(totals)[0].mean(axis=0)


class Scores:
    """Scores of one model on one test set, accumulated batch by batch (LAI units).

    ``rmse``, ``r2`` (with bootstrap intervals) on pixels clear at t against the observed LAI;
    ``rmse_strict``, ``r2_strict`` on pixels clear under the strict rule (SCL 4-6); and, where the
    true LAI is known, ``truth_rmse_clear`` and ``truth_rmse_cloudy`` against it.
    """

    def __init__(self):
        self.strict, self.truth_clear, self.truth_cloudy = PooledMetrics(), PooledMetrics(), PooledMetrics()
        self.sums: list[np.ndarray] = []
        self.has_truth = False

    def update(self, pred, target, clear, strict, truth=None) -> None:
        clear = np.asarray(clear, bool)
        self.sums.append(triplet_sums(pred, target, clear))
        self.strict.update(pred, target, strict)
        if truth is not None:
            self.has_truth = True
            self.truth_clear.update(pred, truth, clear)
            self.truth_cloudy.update(pred, truth, ~clear)

    @property
    def triplet_sums(self) -> np.ndarray:
        return np.concatenate(self.sums) if self.sums else np.zeros((0, len(SUMS)))

    def result(self) -> dict:
        sums = self.triplet_sums
        total = sums.sum(0)
        rmse, r2 = (float(v) for v in rmse_r2(total)) if total[3] else (np.nan, np.nan)
        out = {RMSE: rmse, RMSE_NORM: rmse / PAPER_LAI_SCALE, R2: r2, N_PIXELS: int(total[3]),
               **bootstrap_intervals(sums)}
        strict = self.strict.result()
        out.update(rmse_strict=strict["rmse"], r2_strict=strict["r2"], n_pixels_strict=strict[N_PIXELS])
        if self.has_truth:
            out["truth_rmse_clear"] = self.truth_clear.result()["rmse"]
            out["truth_rmse_cloudy"] = self.truth_cloudy.result()["rmse"]
            out["cloudy_pixels"] = self.truth_cloudy.n
        return out


def strict_clear(scl_t: np.ndarray, lai_t: np.ndarray) -> np.ndarray:
    """Pixels clear at t under the strict rule (SCL 4-6) with a finite LAI."""
    return np.isin(scl_t, STRICT_VALID_CLASSES) & np.isfinite(lai_t)


def pooled(pred, target, mask) -> dict[str, float]:
    m = PooledMetrics()
    m.update(pred, target, mask)
    return m.result()


def per_tile(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> list[dict[str, float]]:
    """Metrics of each tile (first axis) separately."""
    return [pooled(p, t, m) for p, t, m in zip(pred, target, mask)]
