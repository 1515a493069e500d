"""Where the chosen model loses to the oracle bound, against the simplest estimators from the same observations::

    python benchmarks/stable_pixels.py RUN --out FILE.json

``RUN`` is a finished ``lai run`` folder of simulated data (the cube holds the true LAI of every date). On each test
set's pixels whose observed LAI is clear at t-2 and t-1 (SCL 4-6, :data:`lai.facts.STRICT_VALID_CLASSES`: not the
cloud shadows and dark areas, whose retrieved LAI is too low) and that the model is scored on at t, per class of
the true change from t-1 to t (the classes of ``tables/oracle_gap.csv``), the RMSE against the true LAI at t of

- ``model``: the run's chosen model (``tables/selection.csv``), its mean squared error averaged over its seeds;
- ``last_observation``: the observed LAI of t-1 (persistence);
- ``two_date_mean``: the mean of the observed LAI of t-2 and t-1, which halves the retrieval noise's variance where
  the LAI did not change and lags where it did;
- ``two_date_mean_smoothed``: that mean under a Gaussian of one pixel over the pixels clear on both dates (a
  normalised convolution): whether averaging neighbours too removes more noise than it blurs the field's texture;
- ``oracle``: the true LAI of t-1 (no model has it);
- ``stability_known``: the two-date mean on the pixels whose true LAI changed by less than the first class edge
  (0.1), the model elsewhere. It reads the truth, so no model can reach it: what knowing which pixels did not
  change would be worth.

Not a table of lai's (the pixels are those with two valid past dates, a subset of what the run scores): a diagnosis
of the gap to the oracle. Prints one block per set and writes the JSON; about 10 s for the standard reference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, write_report  # noqa: E402
from lai.facts import ORACLE_GAP_ALL, ORACLE_GAP_EDGES, STRICT_VALID_CLASSES, TEST_SETS  # noqa: E402
from lai.pixels import scl_lookup  # noqa: E402
from lai.run_folder import RunContext  # noqa: E402
from lai.tables import change_classes  # noqa: E402

ESTIMATORS = ("model", "last_observation", "two_date_mean", "two_date_mean_smoothed", "oracle", "stability_known")
SMOOTHING_SIGMA = 1.0  # pixels


def set_errors(ds, predictions: list) -> dict[str, np.ndarray] | None:
    """Per pixel clear at t-2 and t-1 and scored at t (flattened): each estimator's squared error against the true LAI at t (the
    model's averaged over seeds) and the true change from t-1 to t; None where no pixel qualifies."""
    idx = np.asarray(predictions[0]["triplet"].values, int)
    true = np.asarray(ds["lai_true"].isel(triplet=idx).values, np.float64)  # (triplet, time, y, x)
    obs = np.asarray(ds["lai"].isel(triplet=idx).values, np.float64)
    past_valid = scl_lookup(STRICT_VALID_CLASSES)[np.asarray(ds["scl"].isel(triplet=idx).values)][:, :2].all(1)
    keep = past_valid & np.asarray(predictions[0]["clear_t"].values).astype(bool) & np.isfinite(true).all(1)
    if not keep.any():
        return None
    for p in predictions[1:]:
        if not np.array_equal(np.asarray(p["triplet"].values, int), idx):
            raise ValueError("the seeds' predictions hold different triplets")
    t = true[:, 2][keep]
    change = t - true[:, 1][keep]
    model = np.mean([(np.asarray(p["lai_pred"].values, np.float64)[keep] - t) ** 2 for p in predictions], axis=0)
    both = (obs[:, 0] + obs[:, 1]) / 2
    weight = past_valid.astype(np.float64)
    smoothed = (np.stack([gaussian_filter(b * w, SMOOTHING_SIGMA) for b, w in zip(both, weight)])
                / np.maximum(np.stack([gaussian_filter(w, SMOOTHING_SIGMA) for w in weight]), 1e-9))
    two_dates = both[keep]
    stable = np.abs(change) < ORACLE_GAP_EDGES[0]
    return {"change": change, "model": model, "last_observation": (obs[:, 1][keep] - t) ** 2,
            "two_date_mean": (two_dates - t) ** 2, "two_date_mean_smoothed": (smoothed[keep] - t) ** 2, "oracle": change ** 2,
            "stability_known": np.where(stable, (two_dates - t) ** 2, model)}


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
        errors = set_errors(ds, [p[set_name] for p in predictions])
        if errors is None:
            continue
        size = np.abs(errors["change"])
        rows = []
        for label, lo, hi in [*change_classes(ORACLE_GAP_EDGES), (ORACLE_GAP_ALL, 0.0, np.inf)]:
            sel = (size >= lo) & (size < hi)
            rows.append({"change": label, "pixels": int(sel.sum()), "share": float(sel.mean()),
                         **{e: float(np.sqrt(errors[e][sel].mean())) if sel.any() else None for e in ESTIMATORS}})
        report["sets"][set_name] = rows
        print(f"{set_name} ({name}, {len(seeds)} seed(s)), pixels clear at t-2 and t-1, scored at t; RMSE against the true LAI at t")
        print("  change      share  " + "  ".join(f"{e:>22s}" for e in ESTIMATORS))
        for r in rows:
            print(f"  {r['change']:10s} {r['share']:5.2f}  " + "  ".join(
                f"{r[e]:22.3f}" if r[e] is not None else f"{'-':>22s}" for e in ESTIMATORS))
    write_report(args.out, report)


if __name__ == "__main__":
    main()
