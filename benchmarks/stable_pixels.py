"""Where the chosen model loses to the oracle bound, against the simplest estimators from the same observations::

    python benchmarks/stable_pixels.py RUN --out FILE.json

``RUN`` is a finished ``lai run`` folder of simulated data (the cube holds the true LAI of every date). Per test set
and class of the true change from t-1 to t, on the pixels clear (SCL 4-6) at t-2 and t-1 and scored at t, the RMSE
against the true LAI at t of the estimators of the run's ``tables/past_estimators.csv``
(:func:`lai.tables.past_estimators`: the chosen model over its seeds, the last observation, the mean of the two past
observations, the oracle, and ``stability_known``, which reads the truth), recomputed from the run's predictions,
and one more:

- ``two_date_mean_smoothed``: the two-date mean under a Gaussian of one pixel over the pixels clear on both dates (a
  normalised convolution): whether averaging neighbours too removes more noise than it blurs the field's texture.

A diagnosis of the gap to the oracle, not a table of lai's. Prints one block per set and writes the JSON; about 10 s
for the standard reference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, write_report  # noqa: E402
from lai.facts import TEST_SETS  # noqa: E402
from lai.run_folder import RunContext  # noqa: E402
from lai.tables import PAST_ESTIMATORS, past_clear_pixels, past_estimator_errors, rmse_by_change  # noqa: E402

SMOOTHING_SIGMA = 1.0  # pixels
ESTIMATORS = (*PAST_ESTIMATORS, "two_date_mean_smoothed")


def smoothed_errors(ds, prediction) -> np.ndarray:
    """Squared error against the true LAI at t of the two-date mean under a Gaussian of :data:`SMOOTHING_SIGMA`
    pixels over the pixels clear on both past dates, on :func:`lai.tables.past_clear_pixels` (flattened, in the
    order of :func:`lai.tables.past_estimator_errors`)."""
    idx = np.asarray(prediction["triplet"].values, int)
    true = np.asarray(ds["lai_true"].isel(triplet=idx).values, np.float64)
    obs = np.asarray(ds["lai"].isel(triplet=idx).values, np.float64)
    scl = np.asarray(ds["scl"].isel(triplet=idx).values)
    keep = past_clear_pixels(scl, true, prediction["clear_t"].values)
    # the blur's weights: every pixel clear on both past dates, scored at t or not (a simulated cube: truth everywhere)
    clear_past = past_clear_pixels(scl, true, np.ones(keep.shape, bool))
    weight = clear_past.astype(np.float64)
    both = np.where(clear_past, (obs[:, 0] + obs[:, 1]) / 2, 0.0)
    smoothed = (np.stack([gaussian_filter(b * w, SMOOTHING_SIGMA) for b, w in zip(both, weight)])
                / np.maximum(np.stack([gaussian_filter(w, SMOOTHING_SIGMA) for w in weight]), 1e-9))
    return (smoothed[keep] - true[:, 2][keep]) ** 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished lai run folder of simulated data")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = ap.parse_args()
    ctx = RunContext(run_dir=args.run)  # the finished folder as it is
    name, seeds = ctx.chosen()
    ds = ctx.open_cube()
    if "lai_true" not in ds:
        raise SystemExit(f"{args.run}: its cube holds no true LAI (simulated data only)")
    predictions = [ctx.predictions(seed) for seed in seeds]
    report = {**report_header(__file__), "run": str(args.run), "model": name, "seeds": len(seeds), "sets": {}}
    for set_name in [s for s in TEST_SETS if all(s in p for p in predictions)]:
        of_set = [p[set_name] for p in predictions]
        errors = past_estimator_errors(ds, of_set)
        if errors is None:
            continue
        errors["two_date_mean_smoothed"] = smoothed_errors(ds, of_set[0])
        rows = [{k: None if isinstance(v, float) and np.isnan(v) else v for k, v in line.items()}  # JSON: null
                for line in rmse_by_change(errors, ESTIMATORS)]
        report["sets"][set_name] = rows
        print(f"{set_name} ({name}, {len(seeds)} seed(s)), pixels clear at t-2 and t-1, scored at t; RMSE against the true LAI at t")
        print("  change      share  " + "  ".join(f"{e:>22s}" for e in ESTIMATORS))
        for r in rows:
            print(f"  {r['change']:10s} {r['share']:5.2f}  " + "  ".join(
                f"{r[e]:22.3f}" if r[e] is not None else f"{'-':>22s}" for e in ESTIMATORS))
    write_report(args.out, report)


if __name__ == "__main__":
    main()
