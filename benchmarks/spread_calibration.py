"""The predicted spread's recalibration (one factor per stratum, or one per stratum and level) and a deep ensemble
of the final model's training seeds against one seed with its spread head, on a finished run::

    python benchmarks/spread_calibration.py reports/standard [--json benchmarks/results/spread-calibration.json]

``RUN`` is a finished ``lai run`` folder of a simulated profile that trained the final model with several seeds
(``train.seeds`` > 1, e.g. the ``standard`` profile: ``runs/final``, ``runs/final_seed1``, ``runs/final_seed2``,
each with the spread head of ``model.uncertainty``). Every seed predicts the validation split and the test sets
of the run's cube. Compared, on the same triplets:

* **accuracy**: the ensemble's mean prediction against the mean over seeds of each seed's RMSE (what the run's
  tables report), on pixels clear at t against the observation, by paired bootstrap over triplets with every
  resample applied to every seed (:func:`lai.metrics.paired_difference`); and against the oracle bound (the
  true LAI at t-1, ``tables/oracle_per_triplet.csv``);
* **spread**, three ways, each raw and recalibrated on validation two ways, with lai's strata (past clear dates
  and clear at t): ``per_level`` exactly as lai does (:func:`lai.uncertainty.fit_calibration`, a factor per
  stratum and nominal level, and its standard deviation's factor per stratum) and ``one_factor``, one factor per stratum fitted by least squares to the 68 % and
  95 % coverage (what lai did before 2026-12-03); measured against the true LAI per test set and for pixels
  clear and clouded at t (:func:`lai.uncertainty.calibration_rows`):
  ``head`` (seed 0's spread head around seed 0's prediction: what the run's products give), ``seeds`` (the
  standard deviation over seeds around the ensemble mean: model disagreement only) and ``ensemble`` (the
  Gaussian mixture of the seeds: ``sqrt(mean(sd_k^2) + var_k(pred_k))`` around the ensemble mean, as in
  Lakshminarayanan et al. 2017).

* **what each set would need**: per split (validation and each test set) and stratum, the factor at 68 % and 95 %
  that the head's spread would need to be calibrated on that split itself (:func:`lai.uncertainty.level_factors`),
  to show whether the validation split's factors differ from the test sets' evenly or not.

Reads the run's models and cube only; writes nothing but the JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_cube, run_profile, write_report  # noqa: E402
from lai.evaluate import _error, predict  # noqa: E402
from lai.facts import STAGE_WEIGHTS_FILE, TEST_SETS, VAL  # noqa: E402
from lai.infer import Trained, load_trained  # noqa: E402
from lai.loader import CubeSplit  # noqa: E402
from lai.metrics import paired_difference, rmse_r2, triplet_sums  # noqa: E402
from lai.train import seed_runs  # noqa: E402
from lai.uncertainty import MIN_PIXELS, NOMINAL, STRATA, calibration_rows, fit_calibration, level_factors, strata, z_of  # noqa: E402

SPREADS = ("head", "seeds", "ensemble")


def one_factor(z: np.ndarray) -> float:
    """The single factor whose central 68 % and 95 % intervals cover nearest those shares of ``z`` (least squares)."""
    ratios = np.sort(np.abs(z))
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2000))
    miss = sum((np.searchsorted(ratios, z_of(lv) * grid, side="right") / ratios.size - lv) ** 2 for lv in NOMINAL)
    return float(grid[int(np.argmin(miss))])


def one_factor_fit(sd: np.ndarray, err: np.ndarray, stratum: np.ndarray, min_pixels: int) -> np.ndarray:
    """:func:`one_factor` per stratum (the pooled one for strata under ``min_pixels``), indexed like ``STRATA``."""
    ok = np.isfinite(err) & np.isfinite(sd) & (sd > 0)
    z, s = err[ok] / sd[ok], stratum[ok]
    pooled = one_factor(z)
    return np.array([one_factor(z[s == i]) if (s == i).sum() >= min_pixels else pooled for i in range(len(STRATA))])


def seed_predictions(models: list[Trained], cube: Path, split: str) -> list[dict[str, np.ndarray]]:
    """Each seed's prediction of ``split`` (:func:`lai.evaluate.predict`: pred, sd, truth, clear, past_clear...)."""
    return [predict(model, CubeSplit(cube, split)) for model in models]


def combine(preds: list[dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """The three spreads, each with the prediction it is centred on (the shared fields of seed 0 kept)."""
    stack = np.stack([p["pred"] for p in preds])
    mean = stack.mean(0)
    between = stack.var(0)  # the mixture's variance: the seeds' own spread about their mean (ddof 0)
    within = np.mean(np.stack([np.square(p["sd"]) for p in preds]), axis=0)
    base = preds[0]
    return {"head": base,
            "seeds": {**base, "pred": mean, "sd": np.sqrt(between)},
            "ensemble": {**base, "pred": mean, "sd": np.sqrt(within + between)}}


def needed_factors(split: str, p: dict[str, np.ndarray]) -> list[dict]:
    """Per stratum of ``split`` (enough pixels only), the factors its own errors need at 68 % and 95 %."""
    err, _ = _error(p)
    ok = np.isfinite(err) & np.isfinite(p["sd"]) & (p["sd"] > 0)
    stratum = strata(p["past_clear"], p["clear"])[ok]
    z = err[ok] / p["sd"][ok]
    return [{"split": split, "stratum": name, "pixels": int((stratum == i).sum()),
             **dict(zip(("factor_68", "factor_95"), level_factors(z[stratum == i], NOMINAL)))}
            for i, name in enumerate(STRATA) if (stratum == i).sum() >= MIN_PIXELS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished lai run folder (simulated data, train.seeds > 1)")
    ap.add_argument("--cube", type=Path, help="the run's cube (default: the one its data.json names)")
    ap.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results" / "spread-calibration.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cube = args.cube or run_cube(args.run)
    runs = [args.run / "runs" / name for name in seed_runs("final", run_profile(args.run).train)]
    missing = [str(r) for r in runs if not (r / STAGE_WEIGHTS_FILE).is_file()]
    if len(runs) < 2 or missing:
        raise SystemExit(f"{args.run}: needs the final model trained with at least 2 seeds; missing: {missing or runs}")
    models = [load_trained(run, "cpu") for run in runs]  # loaded once, used on every split

    val = combine(seed_predictions(models, cube, VAL))
    cals = {}
    for name, p in val.items():
        err, against = _error(p)
        if against != "truth":
            raise SystemExit(f"{cube}: holds no true LAI; the spreads are measured against it (simulated data only)")
        stratum = strata(p["past_clear"], p["clear"])
        cals[name] = (fit_calibration(p["sd"], err, stratum, against, f"{cube.name}:{VAL}"),
                      one_factor_fit(p["sd"], err, stratum, MIN_PIXELS))

    oracle = pd.read_csv(args.run / "tables" / "oracle_per_triplet.csv")
    accuracy, calibration = [], []
    needed = needed_factors(VAL, val["head"])
    for test_set in TEST_SETS:
        seeds = seed_predictions(models, cube, test_set)
        needed += needed_factors(test_set, seeds[0])
        by_seed = np.stack([triplet_sums(p["pred"], p["target"], p["clear"]) for p in seeds])
        spreads = combine(seeds)
        ens = triplet_sums(spreads["ensemble"]["pred"], seeds[0]["target"], seeds[0]["clear"])
        orc = oracle[oracle["set"] == test_set].set_index("triplet").loc[CubeSplit(cube, test_set).index,
                                                                         ["sse", "sum_t", "sum_tt", "n"]].to_numpy()
        accuracy.append({"set": test_set, "triplets": len(ens),
                         "rmse_seed_mean": float(rmse_r2(by_seed.sum(1))[0].mean()),
                         "rmse_per_seed": [float(v) for v in rmse_r2(by_seed.sum(1))[0]],
                         "rmse_ensemble": float(rmse_r2(ens.sum(0))[0]),
                         "rmse_oracle": float(rmse_r2(orc.sum(0))[0]),
                         "ensemble_minus_seeds": paired_difference(ens, by_seed),
                         "ensemble_minus_oracle": paired_difference(ens, orc),
                         "seeds_minus_oracle": paired_difference(by_seed, orc)})
        for name, p in spreads.items():
            err, against = _error(p)
            per_level, one = cals[name]
            one_sd = p["sd"] * one[strata(p["past_clear"], p["clear"])]
            versions = {"per_level": (per_level.deviations(p["sd"], p["past_clear"], p["clear"], NOMINAL),
                                      per_level.std(p["sd"], p["past_clear"], p["clear"])),
                        "one_factor": (one_sd, one_sd)}
            for method, (calibrated, std) in versions.items():
                rows = calibration_rows(test_set, err, p["sd"], calibrated, std, p["clear"], against)
                calibration += [{"spread": name, "method": "raw" if r["sd"] == "raw" else method, **r} for r in rows
                                if method == "per_level" or r["sd"] != "raw"]

    report = {**report_header(__file__), "run": str(args.run), "cube": str(cube),
              "seed_runs": [r.name for r in runs], "load_average": os.getloadavg(),
              "seconds": time.perf_counter() - t0, "factors": {k: {"per_level": c.factors, "levels": c.levels, "one_factor": dict(zip(STRATA, one.tolist()))}
                          for k, (c, one) in cals.items()},
              "accuracy": accuracy, "calibration": calibration, "needed_factors": needed}
    write_report(args.json, report)
    if needed:
        print(pd.DataFrame(needed).pivot(index="stratum", columns="split", values="factor_68")
              .to_string(float_format=lambda v: f"{v:.3f}"))
    else:
        print(f"needed factors: no stratum of any split has {MIN_PIXELS:,} pixels (a small run); none measured")
    table = pd.DataFrame(calibration)
    print(table[["spread", "set", "pixels", "method", "sd_ratio", "coverage_68", "coverage_95", "spearman"]]
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for (spread, method), group in table.groupby(["spread", "method"], sort=False):
        ok95 = group["coverage_95"].between(0.92, 0.97).sum()
        ok68 = group["coverage_68"].between(0.63, 0.73).sum()
        okr = group["sd_ratio"].between(0.8, 1.25).sum()
        print(f"{spread:8s} {method:10s}: 95 % coverage in 0.92-0.97 in {ok95} of {len(group)} strata, 68 % in "
              f"0.63-0.73 in {ok68}, mean sd / RMSE in 0.8-1.25 in {okr}")
    for row in accuracy:
        d, o = row["ensemble_minus_seeds"], row["ensemble_minus_oracle"]
        print(f"{row['set']}: ensemble {row['rmse_ensemble']:.4f}, seeds {row['rmse_seed_mean']:.4f} "
              f"({d['diff']:+.4f} [{d['diff_lo']:+.4f}, {d['diff_hi']:+.4f}]); oracle {row['rmse_oracle']:.4f}, "
              f"ensemble - oracle {o['diff']:+.4f} [{o['diff_lo']:+.4f}, {o['diff_hi']:+.4f}]")


if __name__ == "__main__":
    main()
