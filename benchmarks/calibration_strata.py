"""Which strata to recalibrate the predicted spread in: lai's pixel strata against the triplet classes of the test
sets' own thresholds, on one finished run::

    python benchmarks/calibration_strata.py reports/quick --out FILE.json [--model final_gated]

The spread model (default: the run's chosen model, ``tables/selection.csv``) predicts the validation split and the
test sets of the run's cube. Its spread is recalibrated in several ways, each by
:func:`lai.uncertainty.fit_calibration` (a factor per stratum and nominal level; strata with fewer than
``MIN_PIXELS`` validation pixels take the pooled factor):

* ``pixel``: lai's strata (clear past dates 0/1/2 x clear or clouded at t), one calibration for every test set;
* ``triplet``: what the uncertainty issue first proposed: one factor per *triplet class*, a validation triplet
  being non-cloudy-like or cloudy-like by the split thresholds that choose the test sets (mean clear fraction of
  t-2 and t-1 at least ``splits.clear_past_threshold``; else mean cloud fraction at least
  ``splits.cloudy_past_threshold``), each test set calibrated by its own class, the unique set by the pooled factor;
* ``pixel_x_triplet``: lai's pixel strata fitted within each triplet class (the unique set: lai's, unchanged);
* ``pixel_x_context``: lai's pixel strata fitted within classes of the tile's share of clear past pixels (the mean
  over the tile of clear dates among t-2 and t-1, over 2: below 0.5, 0.5-0.9, from 0.9; a class with fewer than
  ``MIN_PIXELS`` validation pixels takes the pixel stratum's factors): the same per pixel, one calibration for every
  set, but a clouded pixel in a clear tile (most of the non-cloudy set's) apart from one in a cloudy tile;
* ``pixel_buffer`` and ``pixel_val_buffer``: lai's pixel strata fitted on the buffer split (tiles beside test
  tiles, used by neither training nor the choice of epochs and model), or on validation and buffer together,
  instead of on validation: whether a calibration split that took no part in training's choices carries over
  better. The buffer lies next to the test tiles, so this is a measurement, not a method lai could adopt as is;
* ``pixel_gaussian``: lai's strata with one factor per stratum, the standard deviation's (its root mean square
  matched to the validation RMSE, band ``lai_std``), and the Gaussian's interval of plus or minus 0.994 and 1.96 of
  it: what the per-level factors replace.

And how far any recalibration fitted on validation can carry over to another area: **leave one region out** on
validation (:func:`lai.uncertainty.region_transfer`, which every run's tables/calibration_transfer.csv holds for
lai's form), lai's pixel strata (per level; and ``pixel_gaussian``) fitted on the other validation regions, the
coverage on the held-out region's pixels clear and clouded at t.

Measured per test set on pixels clear and clouded at t against the true LAI: the coverage of the central 68 % and
95 % intervals (goal 0.63-0.73 and 0.92-0.97). And, to see why validation's factors do not carry over, per split
(training, validation and buffer too) and pixels clear / clouded at t: the 68 % and 95 % quantiles of
``|error| / sd`` (the raw spread),
per split and pixel stratum the share of pixels, the RMSE against the truth and the 68 % quantile of ``|error| / sd``
(does one stratum's error, relative to its spread, carry over from validation to each test set?),
and how many of the split's triplets have a training tile among their 8 neighbours or at their own position, or
share their scene and target date with a training triplet. Reads the run's model and cube only; writes nothing
but the JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_chosen, run_cube, run_profile, write_report  # noqa: E402
from lai.evaluate import _error, predict  # noqa: E402
from lai.facts import BUFFER, CLOUDY, NON_CLOUDY, TEST_SETS, TRAIN, VAL  # noqa: E402
from lai.infer import load_trained  # noqa: E402
from lai.loader import CubeSplit  # noqa: E402
from lai.splits import neighbour_leaks, past_cloud_classes, regions_of, scene_start  # noqa: E402
from lai.uncertainty import (  # noqa: E402
    LEVELS,
    MIN_PIXELS,
    NOMINAL,
    STRATA,
    coverage,
    fit_calibration,
    level_factors,
    region_transfer,
    strata,
)

GOAL = {0.68: (0.63, 0.73), 0.95: (0.92, 0.97)}
CLASS_OF_SET = {NON_CLOUDY: 0, CLOUDY: 1}  # the unique set has no class of its own: the pooled factor
CONTEXT_EDGES = (0.5, 0.9)  # the classes of the tile's share of clear past pixels (pixel_x_context)


def context_cells(p: dict[str, np.ndarray]) -> np.ndarray:
    """Per pixel: its pixel stratum times len(CONTEXT_EDGES) + 1, plus the class of its tile's clear past share."""
    share = p["past_clear"].reshape(len(p["past_clear"]), -1).mean(1) / 2
    tile_class = np.digitize(share, CONTEXT_EDGES)[:, None, None]
    return strata(p["past_clear"], p["clear"]).astype(np.int64) * (len(CONTEXT_EDGES) + 1) + tile_class


def cell_factors(sd: np.ndarray, err: np.ndarray, cells: np.ndarray) -> dict[int, list[float]]:
    """Per cell with at least ``MIN_PIXELS`` finite pixels: its factors per level of ``LEVELS`` (as lai's strata's)."""
    ok = np.isfinite(err) & np.isfinite(sd) & (sd > 0)
    return {int(c): level_factors((err[ok & (cells == c)] / sd[ok & (cells == c)]).astype(np.float64))
            for c in np.unique(cells[ok]) if (ok & (cells == c)).sum() >= MIN_PIXELS}


def context_deviation(p: dict[str, np.ndarray], factors: dict[int, list[float]], pixel_cal, level: float) -> np.ndarray:
    """The deviation of ``level``: the factor of each pixel's cell (:func:`context_cells`) where validation had one
    (:func:`cell_factors`), else its pixel stratum's (``pixel_cal``)."""
    cells, per_cell = context_cells(p), len(CONTEXT_EDGES) + 1
    factor = pixel_cal.factor_array(level)[cells // per_cell]
    for c, f in factors.items():
        factor = np.where(cells == c, np.float32(np.interp(level, LEVELS, f)), factor)
    return p["sd"] * factor


def stratum_shift(name: str, p: dict[str, np.ndarray], err: np.ndarray) -> list[dict]:
    """Per pixel stratum of ``p``: share of pixels, RMSE against the truth, 68 % quantile of |error| / raw sd."""
    s, rows = strata(p["past_clear"], p["clear"]), []
    for i, stratum in enumerate(STRATA):
        sel = (s == i) & np.isfinite(err)
        if sel.sum():
            rows.append({"split": name, "stratum": stratum, "share": float(sel.mean()), "n_pixels": int(sel.sum()),
                         "rmse": float(np.sqrt(np.mean(np.square(err[sel], dtype=np.float64)))),
                         "abs_z_q68": float(np.quantile(np.abs(err[sel] / p["sd"][sel]), 0.68))})
    return rows


def method_calibration(method: str, k: int | None, cal: dict, pooled, p: dict[str, np.ndarray]) -> tuple:
    """The calibration a method (but ``pixel_x_context``) applies to the predictions ``p`` of a test set of triplet
    class ``k`` (None: the unique set), and each pixel's stratum in it."""
    if method in ("pixel", "pixel_buffer", "pixel_val_buffer") or (method == "pixel_x_triplet" and k is None):
        return cal[method if method != "pixel_x_triplet" else "pixel"], strata(p["past_clear"], p["clear"])
    if method == "pixel_gaussian":
        return cal["pixel"], strata(p["past_clear"], p["clear"])
    if method == "triplet":
        return (pooled if k is None else cal[("triplet", k)]), np.zeros(p["sd"].shape, np.int64)
    return cal[("pixel_x_triplet", k)], strata(p["past_clear"], p["clear"])


def triplet_classes(clear: np.ndarray, cloud: np.ndarray, index: np.ndarray, splits) -> np.ndarray:
    """Per triplet of ``index``: 0 non-cloudy-like, 1 cloudy-like, 2 neither (the split's thresholds on t-2, t-1)."""
    mostly_clear, mostly_cloudy = past_cloud_classes(clear[index, :2].mean(1), cloud[index, :2].mean(1), splits)
    return np.where(mostly_clear, 0, np.where(mostly_cloudy, 1, 2))


def training_contact(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per triplet of the cube: whether a training tile lies among its 8 neighbours or at its position (same
    region), and whether a training triplet shares its scene and target date."""
    meta = pd.DataFrame({k: ds[k].values for k in ("country", "area", "grid_row", "grid_col")})
    labels = ds["split"].values.astype(str)
    near = np.zeros(len(meta), bool)
    near[neighbour_leaks(meta, labels, others=(TRAIN,), of=np.unique(labels)).index] = True
    region, col, train = regions_of(meta), meta["grid_col"].to_numpy(), labels == TRAIN
    scene_date = pd.Series(region.astype(str) + ":" + scene_start(region, col).astype(str) + ":"
                           + pd.Series(ds["date"].values[:, 2]).astype(str).to_numpy())
    return near, scene_date.isin(set(scene_date[train])).to_numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished lai run folder of simulated data whose model predicts its spread")
    ap.add_argument("--out", type=Path, required=True, help="JSON file")
    ap.add_argument("--model", help="the run's model (default: the one it chose)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cube, profile = run_cube(args.run), run_profile(args.run)
    model = args.model or run_chosen(args.run)
    trained = load_trained(args.run / "runs" / model, "cpu")
    if not trained.predicts_spread:
        raise SystemExit(f"{args.run / 'runs' / model}: predicts no spread (model.uncertainty is false)")
    with xr.open_dataset(cube, engine="h5netcdf") as ds:
        clear, cloud = ds["clear_fraction"].values, ds["cloud_fraction"].values
        near_train, shares_date = training_contact(ds)

    preds, classes, region_of, standardised, shift = {}, {}, {}, [], []
    for name in (TRAIN, VAL, BUFFER, *TEST_SETS):  # training and buffer: only their standardised errors
        split = CubeSplit(cube, name)
        if not len(split):
            continue
        index = np.asarray(split.index)
        p = predict(trained, split, profile.train.batch_size)
        if name != TRAIN:
            preds[name] = p
            classes[name] = triplet_classes(clear, cloud, index, profile.splits)
            region_of[name] = split.regions()
        e, _ = _error(p)
        if name != TRAIN:
            shift += stratum_shift(name, p, e)
        for at_t, sel in (("clear at t", p["clear"]), ("clouded at t", ~p["clear"])):
            z = np.abs(e[sel] / p["sd"][sel])
            standardised.append({"split": name, "pixels": at_t, "triplets": len(index),
                                 "near_a_training_tile": int(near_train[index].sum()),
                                 "shares_scene_date_with_training": int(shares_date[index].sum()),
                                 **{f"abs_z_q{round(100 * lv)}": float(np.quantile(z, lv)) for lv in NOMINAL}})
    val = preds[VAL]
    err, against = _error(val)
    if against != "truth":
        raise SystemExit(f"{cube}: holds no true LAI; the coverage is measured against it (simulated data only)")
    pixel_strata = strata(val["past_clear"], val["clear"])
    in_class = {k: np.broadcast_to((classes[VAL] == k)[:, None, None], err.shape) for k in (0, 1)}
    one_stratum = np.zeros_like(pixel_strata)
    cal = {"pixel": fit_calibration(val["sd"], err, pixel_strata, against)}
    for k, sel in in_class.items():
        masked = np.where(sel, err, np.nan)  # pixels of other classes left out (fit_calibration keeps finite ones)
        cal[("triplet", k)] = fit_calibration(val["sd"], masked, one_stratum, against, levels=NOMINAL)
        cal[("pixel_x_triplet", k)] = fit_calibration(val["sd"], masked, pixel_strata, against)
    pooled = fit_calibration(val["sd"], err, one_stratum, against, levels=NOMINAL)
    context = cell_factors(val["sd"], err, context_cells(val))
    if BUFFER in preds:
        buf = preds[BUFFER]
        buf_err, buf_strata = _error(buf)[0], strata(buf["past_clear"], buf["clear"])
        cal["pixel_buffer"] = fit_calibration(buf["sd"], buf_err, buf_strata, against)
        cal["pixel_val_buffer"] = fit_calibration(*(np.concatenate([a.ravel(), b.ravel()]) for a, b in (
            (val["sd"], buf["sd"]), (err, buf_err), (pixel_strata, buf_strata))), against)
    methods = ["pixel", "pixel_gaussian", "triplet", "pixel_x_triplet", "pixel_x_context", *(m for m in ("pixel_buffer", "pixel_val_buffer") if m in cal)]

    rows = []
    for name in TEST_SETS:
        p, k = preds[name], CLASS_OF_SET.get(name)
        e, _ = _error(p)
        for method in methods:
            if method == "pixel_x_context":
                dev = {lv: context_deviation(p, context, cal["pixel"], lv) for lv in NOMINAL}
            else:
                c, s = method_calibration(method, k, cal, pooled, p)
                dev = {lv: p["sd"] * (c.sd_factor_array() if method == "pixel_gaussian" else c.factor_array(lv))[s]
                       for lv in NOMINAL}
            for at_t, sel in (("clear at t", p["clear"]), ("clouded at t", ~p["clear"])):
                rows.append({"set": name, "pixels": at_t, "method": method, "n_pixels": int(sel.sum()),
                             **{f"coverage_{round(100 * lv)}": coverage(e[sel], dev[lv][sel], lv) for lv in NOMINAL}})
    table = pd.DataFrame(rows)
    loro = pd.DataFrame([{"method": method, **row} for method, form in (("pixel", "levels"), ("pixel_gaussian", "gaussian"))
                         for row in region_transfer(val["sd"], err, pixel_strata, val["clear"], region_of[VAL], against, form)])
    counts = {m: {f"in_goal_{round(100 * lv)}": int(g[f"coverage_{round(100 * lv)}"].between(*GOAL[lv]).sum()) for lv in NOMINAL}
              for m, g in table.groupby("method", sort=False)}
    write_report(args.out, {**report_header(__file__), "run": str(args.run), "cube": str(cube), "model": model,
                            "validation_triplets_per_class": np.bincount(classes[VAL], minlength=3).tolist(),
                            "seconds": time.perf_counter() - t0, "coverage": rows, "strata_in_goal": counts,
                            "standardised_errors": standardised, "stratum_shift": shift,
                            "leave_one_region_out": loro.to_dict("records")})
    print(pd.DataFrame(standardised).to_string(index=False, float_format=lambda v: f"{v:.3f}"), "")
    print(pd.DataFrame(shift).to_string(index=False, float_format=lambda v: f"{v:.3f}"), "")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"), "")
    print(loro.to_string(index=False, float_format=lambda v: f"{v:.3f}"), "")
    for method, g in loro.groupby("method", sort=False):
        print(f"{method:16s}: leave one validation region out, 68 % coverage {g['coverage_68'].min():.3f}-"
              f"{g['coverage_68'].max():.3f}, 95 % {g['coverage_95'].min():.3f}-{g['coverage_95'].max():.3f}")
    for method, c in counts.items():
        print(f"{method:16s}: 68 % in 0.63-0.73 in {c['in_goal_68']} of 6 strata, 95 % in 0.92-0.97 in {c['in_goal_95']}")


if __name__ == "__main__":
    main()
