"""Tables of results: Table 1 as reproduced next to the paper's, the noise floor, paired
comparisons between models and the spread over training seeds.

Column names are stable (checks read them): ``rmse`` in LAI units, its 95% bootstrap
interval ``rmse_lo``/``rmse_hi``, ``r2`` with ``r2_lo``/``r2_hi``, and ``floor_ratio``, the
RMSE over the noise floor of the set (simulated data only).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lai.facts import (
    BETTER,
    EMPTY,
    EXTRA_BASELINES,
    EXTRA_ROWS,
    FINAL,
    LARGE_ERROR_LAI,
    LARGE_ERROR_TRIPLETS,
    N_PIXELS,
    NO_HISTORY,
    NOT_RESOLVED,
    ORACLE,
    ORACLE_GAP_ALL,
    ORACLE_GAP_EDGES,
    PAPER_TABLE1,
    RMSE_NORM,
    ROWS,
    SET_TITLES,
    STRICT_VALID_CLASSES,
    TEST_SETS,
    WORSE,
    ensemble_names,
    model_title,
)
from lai.metrics import SUMS, paired_difference, seed_mean_rmse
from lai.pixels import scl_lookup

METRIC_COLUMNS = ("rmse", "rmse_lo", "rmse_hi", RMSE_NORM, "r2", "r2_lo", "r2_hi", N_PIXELS, "rmse_strict",
                  "r2_strict", "truth_rmse_clear", "truth_rmse_cloudy")
COMPARISON_NUMBERS = ("rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi")


def table1(metrics: pd.DataFrame, floor: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long metrics (columns row, set and those of :class:`lai.metrics.Scores`) -> one line per Table 1
    row and test set, with the paper's RMSE and R2 beside ours and, given the noise floor
    (:func:`lai.noise.noise_floor`), each RMSE's ratio to it. ``note`` is ``"empty"`` (``lai.facts.EMPTY``)
    where the set held no triplet (or the row was not evaluated): its metrics are NaN."""
    out = []
    for row, spec in ROWS.items():
        for name in TEST_SETS:
            ours = metrics[(metrics["row"] == row) & (metrics["set"] == name)]
            paper_rmse, paper_r2 = PAPER_TABLE1[row][name]
            rec = {"row": row, "input": spec.label, "architecture": spec.architecture, "set": name,
                   "paper_rmse": paper_rmse, "paper_r2": paper_r2}
            for col in METRIC_COLUMNS:
                rec[col] = float(ours[col].iloc[0]) if len(ours) and col in ours else float("nan")
            triplets = int(ours["triplets"].iloc[0]) if len(ours) and "triplets" in ours else 0
            rec.update(triplets=triplets, note="" if triplets else EMPTY)
            out.append(rec)
    return with_floor(pd.DataFrame(out), floor)


def with_floor(table: pd.DataFrame, floor: pd.DataFrame | None) -> pd.DataFrame:
    """``table`` with floor_rmse of its set and floor_ratio = rmse / floor_rmse (unchanged without a floor)."""
    if floor is None or not len(floor):
        return table
    out = table.drop(columns=["floor_rmse", "floor_ratio"], errors="ignore")
    out = out.merge(floor[["set", "floor_rmse"]], on="set", how="left")
    return out.assign(floor_ratio=out["rmse"] / out["floor_rmse"])


FLOOR_MODEL_COLUMNS = ("model", "model_rmse", "model_floor_ratio", "model_oracle_ratio", "oracle_diff", "oracle_diff_lo",
                       "oracle_diff_hi", "oracle_verdict")


def floor_with_model(floor: pd.DataFrame, model: pd.DataFrame | list[pd.DataFrame], oracle: pd.DataFrame,
                     name: str = FINAL) -> pd.DataFrame:
    """The noise floor table (:func:`lai.noise.noise_floor`) with a model beside the floor and the oracle: per
    test set ``model`` (its name), ``model_rmse``, its ratios ``model_floor_ratio`` (to ``floor_rmse``) and
    ``model_oracle_ratio`` (to ``oracle_rmse``), and the paired difference model - oracle on the same triplets
    (``oracle_diff``, ``oracle_diff_lo``, ``oracle_diff_hi``, ``oracle_verdict``: better where the model beats
    the oracle).

    ``model``: per-triplet sums (set, triplet, ``lai.metrics.SUMS``) of the run's per_tile.csv, or a list of them,
    one per seed (pooled as in :func:`comparisons`); ``oracle``: the floor's ``attrs["per_triplet"]``
    (tables/oracle_per_triplet.csv)."""
    paired = comparisons(model, {ORACLE: oracle}, name).set_index("set")
    out = floor.drop(columns=list(FLOOR_MODEL_COLUMNS), errors="ignore").copy()
    rmse = paired["rmse_model"].reindex(out["set"]).to_numpy()
    out["model"] = name
    out["model_rmse"] = rmse
    out["model_floor_ratio"] = rmse / out["floor_rmse"].to_numpy()
    out["model_oracle_ratio"] = rmse / out["oracle_rmse"].to_numpy()
    for col in ("diff", "diff_lo", "diff_hi", "verdict"):
        out[f"oracle_{col}"] = paired[col].reindex(out["set"]).to_numpy()
    return out


def comparisons(model: pd.DataFrame | list[pd.DataFrame], others: dict[str, pd.DataFrame],
                model_name: str = FINAL, sets=TEST_SETS, resample_trainings: bool = True) -> pd.DataFrame:
    """Paired bootstrap of RMSE differences between ``model`` and each of ``others``, per test set.

    Each frame holds per-triplet sums (columns set, triplet and ``lai.metrics.SUMS``, as in a run's
    per_tile.csv); ``model`` may be a list of such frames, one per training seed: its RMSE is then the
    mean over seeds, and each bootstrap resample draws the triplets and, with ``resample_trainings`` (the
    default), the seeds too (a two-stage bootstrap, :func:`lai.metrics.paired_difference`: the interval says
    what trainings of this kind score, not only these); ``seeds`` says how many, ``trainings_resampled``
    whether they were drawn. One line per (set, other): both RMSEs, ``diff`` = model - other (LAI; negative:
    the model is better) with its 95% interval, ``scored_triplets`` (those holding a scored pixel: below
    ``lai.facts.MIN_SCORED_TRIPLETS`` no interval), and ``verdict``: better or worse where the
    interval excludes 0, else not resolved (``lai.facts.VERDICTS``); "empty" (``lai.facts.EMPTY``, NaN numbers) where either
    model has no triplet of the set. ``sets``: the sets compared (the test sets by default).
    """
    runs = model if isinstance(model, list) else [model]
    drawn = resample_trainings and len(runs) > 1
    out = []
    for name in sets:
        mine = [m[m["set"] == name].set_index("triplet") for m in runs]
        for other_name, other in others.items():
            theirs = other[other["set"] == name].set_index("triplet")
            if not len(mine[0]) or not len(theirs):
                out.append({"set": name, "model": model_name, "other": other_name, "seeds": len(runs), "triplets": 0,
                            **dict.fromkeys(COMPARISON_NUMBERS, np.nan), "resolved": False, "scored_triplets": 0,
                            "verdict": EMPTY, "trainings_resampled": drawn})
                continue
            if any(set(m.index) != set(theirs.index) for m in mine):
                raise ValueError(f"{model_name} and {other_name} were scored on different {name} triplets")
            a = np.stack([m.loc[theirs.index, list(SUMS)].to_numpy() for m in mine])
            b = theirs[list(SUMS)].to_numpy()
            for who, sums in ((model_name, a), (other_name, b[None])):
                if not np.isfinite(sums).all():
                    triplet = theirs.index[np.flatnonzero(~np.isfinite(sums).all(axis=(0, 2)))[0]]
                    raise ValueError(f"{who} has a prediction that is not a finite number on a scored pixel of {name} "
                                     f"triplet {triplet}: no RMSE, so nothing to compare")
            n, t = SUMS.index("n"), SUMS.index("sum_t")  # the same pixels: their count and their targets' sum
            other_pixels = (a[..., n] != b[:, n]) | ~np.isclose(a[..., t], b[:, t], rtol=1e-6, atol=1e-6)
            if other_pixels.any():
                triplet = theirs.index[np.flatnonzero(other_pixels.any(axis=0))[0]]
                raise ValueError(f"{model_name} and {other_name} were scored on different pixels of {name} triplet "
                                 f"{triplet}: a paired comparison needs the same pixels")
            diff = paired_difference(a, b, resample_trainings=resample_trainings)
            verdict = NOT_RESOLVED if not diff["resolved"] else (BETTER if diff["diff"] < 0 else WORSE)
            out.append({"set": name, "model": model_name, "other": other_name, "seeds": len(runs),
                        "triplets": b.shape[0], "rmse_model": float(seed_mean_rmse(a.sum(1))),
                        "rmse_other": float(np.sqrt(b[:, 0].sum() / b[:, 3].sum())), **diff, "verdict": verdict,
                        "trainings_resampled": drawn})
    return pd.DataFrame(out)


def ensemble_comparisons(ensemble: pd.DataFrame, seeds: list[pd.DataFrame], others: dict[str, pd.DataFrame],
                         model: str, sets=TEST_SETS) -> pd.DataFrame:
    """The mean prediction of ``model``'s seeds (``ensemble``, per-triplet sums; named by
    :func:`lai.facts.ensemble_names`) against the seeds themselves (their
    RMSE the mean over seeds, each resample of the triplets applied to every seed, the seeds held fixed; on every set of ``sets`` and of ``seeds``,
    e.g. the validation split too) and against each of ``others`` (:func:`comparisons`), in :func:`comparisons`'
    columns: ``diff`` is the ensemble's RMSE minus the other's; ``seeds`` counts the seeds on the lines against
    them, 1 elsewhere."""
    name, seeds_name = ensemble_names(model)
    sets_seen = [s for s in dict.fromkeys(seeds[0]["set"]) if s not in sets] + list(sets)
    # seeds - ensemble (turned round below), the seeds held fixed: the ensemble is the mean of these very trainings
    flipped = comparisons(seeds, {name: ensemble}, seeds_name, sets_seen, resample_trainings=False)
    lo, hi = flipped["diff_lo"].copy(), flipped["diff_hi"].copy()
    flipped = flipped.assign(model=name, other=seeds_name, rmse_model=flipped["rmse_other"],
                             rmse_other=flipped["rmse_model"], diff=-flipped["diff"], diff_lo=-hi, diff_hi=-lo,
                             verdict=flipped["verdict"].replace({BETTER: WORSE, WORSE: BETTER}))
    return pd.concat([flipped, comparisons(ensemble, others, name, sets)], ignore_index=True)


def extras_table(runs: dict[str, pd.DataFrame], baselines: pd.DataFrame, final: pd.DataFrame,
                 others: dict[str, pd.DataFrame], floor: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows beyond the paper, in their own table: one line per (name, set) with the metric columns,
    the ratio to the noise floor and the paired difference final - this row (``diff``, ``diff_lo``,
    ``diff_hi``, ``verdict`` of the final model against it).

    ``runs``: metrics of each extra model run (``lai.facts.EXTRA_ROWS``); ``baselines``: the scored
    baselines, of which the extra ones (``lai.facts.EXTRA_BASELINES``) are kept; ``final`` and ``others``:
    per-triplet sums of the final model and of every extra row, for :func:`comparisons`.
    """
    parts = [m.assign(name=name, title=EXTRA_ROWS[name].title, kind="model") for name, m in runs.items()]
    for name, base in EXTRA_BASELINES.items():
        part = baselines[baselines["baseline"] == name]
        if len(part):
            parts.append(part.assign(name=name, title=f"{base} {NO_HISTORY}", kind="baseline"))
    if not parts:
        return pd.DataFrame(columns=["name", "title", "kind", "set", *METRIC_COLUMNS])
    long = pd.concat(parts, ignore_index=True)
    cols = ["name", "title", "kind", "set", "triplets", *[c for c in (*METRIC_COLUMNS, "note") if c in long]]
    table = with_floor(long[cols], floor)
    verdicts = comparisons(final, others).rename(columns={"other": "name"})
    return table.merge(verdicts[["set", "name", "diff", "diff_lo", "diff_hi", "verdict"]], on=["set", "name"], how="left")


def seed_spread(metrics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per test set: mean, standard deviation, min and max of rmse and r2 over the runs of several seeds (and the
    mean RMSE against the true LAI, ``truth_rmse_clear_mean``, where scored);
    ``note`` "empty" (``lai.facts.EMPTY``) for a set without triplets."""
    long = pd.concat([m.assign(run=name) for name, m in metrics.items()], ignore_index=True)
    long = long[long["set"].isin(TEST_SETS)]
    truth = {"truth_rmse_clear_mean": ("truth_rmse_clear", "mean")} if "truth_rmse_clear" in long else {}
    agg = long.groupby("set", sort=False).agg(
        seeds=("run", "nunique"), rmse_mean=("rmse", "mean"), rmse_std=("rmse", "std"), rmse_min=("rmse", "min"),
        rmse_max=("rmse", "max"), r2_mean=("r2", "mean"), r2_std=("r2", "std"), **truth)
    if "triplets" in long:
        agg["note"] = np.where(long.groupby("set", sort=False)["triplets"].max() > 0, "", EMPTY)
    return agg.reset_index()


def table1_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Paper layout: one line per row; for each test set RMSE (LAI/5 units) and R2, ours and the paper's."""
    cols = {}
    for name in TEST_SETS:
        part = long[long["set"] == name].set_index("row")
        title = SET_TITLES[name]
        cols[(title, "RMSE")] = part[RMSE_NORM]
        cols[(title, "RMSE paper")] = part["paper_rmse"]
        cols[(title, "R2")] = part["r2"]
        cols[(title, "R2 paper")] = part["paper_r2"]
    wide = pd.DataFrame(cols)
    labels = long.drop_duplicates("row").set_index("row")
    wide.index = [model_title(labels.loc[r, "input"], labels.loc[r, "architecture"]) for r in wide.index]
    return wide


def large_errors(ds, predictions: dict, valid_classes, threshold: float = LARGE_ERROR_LAI,
                 top: int = LARGE_ERROR_TRIPLETS) -> pd.DataFrame:
    """Where a model misses by more than ``threshold`` LAI, per test set: the pixels clear at t it scores
    (``pixels``), how many it misses so (``large``, ``large_share``), the share of those whose past dates t-2 and
    t-1 were both unusable (``no_clear_past_share``: SCL outside ``valid_classes`` or no LAI), their mean
    prediction, observation and (simulated data) true LAI at t, the share of them predicted too low
    (``under_share``), and the share held by the ``top`` triplets with
    the most of them (``top_share``, ``top_triplets``: cube positions).

    ``ds``: the cube (``lai``, ``scl``, optional ``lai_true``); ``predictions``: ``{set: dataset}`` of a run's
    ``predictions/<set>.nc`` (``lai_pred``, ``clear_t``, coordinate ``triplet``).
    """
    rows = []
    for name in [s for s in TEST_SETS if s in predictions]:
        p = predictions[name]
        idx = np.asarray(p["triplet"].values, int)
        if len(idx) == 0:
            rows.append({"set": name, "pixels": 0, "large": 0})
            continue
        part = ds.isel(triplet=idx)
        lai = np.asarray(part["lai"].values, np.float32)  # (triplet, time, y, x), read once
        obs = lai[:, 2]
        pred = np.asarray(p["lai_pred"].values, np.float32)
        clear = np.asarray(p["clear_t"].values).astype(bool)
        past = scl_lookup(valid_classes)[np.asarray(part["scl"].values)[:, :2]] & np.isfinite(lai[:, :2])
        large = clear & (np.abs(pred - obs) > threshold)
        per_triplet = large.reshape(len(idx), -1).sum(1)
        order = np.argsort(-per_triplet, kind="stable")[:top]
        n = int(large.sum())
        row = {"set": name, "pixels": int(clear.sum()), "large": n, "large_share": n / max(int(clear.sum()), 1),
               "no_clear_past_share": float((~past.any(1))[large].mean()) if n else np.nan,
               "pred_mean": float(pred[large].mean()) if n else np.nan, "obs_mean": float(obs[large].mean()) if n else np.nan,
               "under_share": float((pred[large] < obs[large]).mean()) if n else np.nan,
               "top_share": float(per_triplet[order].sum() / n) if n else np.nan,
               "top_triplets": " ".join(str(int(idx[i])) for i in order if per_triplet[i])}
        if "lai_true" in part:
            true_t = np.asarray(part["lai_true"].isel(time=-1).values, np.float32)
            row["true_mean"] = float(true_t[large].mean()) if n else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def change_classes(edges=ORACLE_GAP_EDGES) -> list[tuple[str, float, float]]:
    """(label, low, high) of each class of the true change from t-1 to t, in LAI: "< 0.1", "0.1-0.3", ... "≥ 0.6"."""
    bounds = [0.0, *edges, np.inf]
    return [(f"< {hi:g}" if lo == 0 else f"≥ {lo:g}" if hi == np.inf else f"{lo:g}-{hi:g}", lo, hi)
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def by_change(change: np.ndarray, edges=ORACLE_GAP_EDGES):
    """(label, low, high, mask of ``change``'s pixels) of each class of :func:`change_classes` by the size of the true
    change ``change``, then of the line ``ORACLE_GAP_ALL`` (every pixel)."""
    size = np.abs(change)
    for label, lo, hi in [*change_classes(edges), (ORACLE_GAP_ALL, 0.0, np.inf)]:
        yield label, lo, hi, (size >= lo) & (size < hi)


def rmse_by_change(errors: dict[str, np.ndarray], names, edges=ORACLE_GAP_EDGES, suffix: str = "") -> list[dict]:
    """Per line of :func:`by_change` of ``errors["change"]``: ``change`` (its label), ``pixels``, ``share`` and the RMSE
    of each of ``names`` (keys of ``errors``: squared errors per pixel; NaN where the class holds no pixel), under the
    name plus ``suffix``."""
    return [{"change": label, "pixels": int(sel.sum()), "share": float(sel.mean()),
             **{e + suffix: float(np.sqrt(errors[e][sel].mean())) if sel.any() else np.nan for e in names}}
            for label, _, _, sel in by_change(errors["change"], edges)]


def oracle_gap(ds, predictions: list[dict], edges=ORACLE_GAP_EDGES) -> pd.DataFrame:
    """Where a model wins or loses against the oracle bound (simulated data): per test set and class of the true
    change of LAI from t-1 to t (:func:`change_classes`), over the pixels clear at t that the model is scored on,
    against the true LAI at t: the pixels (``pixels``, ``share`` of the set's), the model's RMSE (``model_rmse``)
    and the oracle's (``oracle_rmse``: the true LAI at t-1, i.e. the size of the true change), and each class's
    part of the set's mean squared error (``model_mse_part``, ``oracle_mse_part``: share times MSE; they add up to
    the line ``change == "all"``). The line "all" also holds ``change_slope``: the slope of the model's change
    (prediction minus the true LAI at t-1) regressed on the true change, through 0: 1 forecasts every change, 0
    none (a copy of the past).

    ``ds``: the cube with ``lai_true``; ``predictions``: one ``{set: dataset}`` per training seed of the model
    (:meth:`lai.run_folder.RunContext.predictions`: ``lai_pred``, ``clear_t``, coordinate ``triplet``), whose
    mean squared errors and slopes are averaged over the seeds (``seeds``)."""
    if "lai_true" not in ds:
        raise ValueError("oracle_gap needs the true LAI of every date (lai_true: simulated data)")
    rows = []
    for name in [s for s in TEST_SETS if all(s in p for p in predictions)]:
        idx = np.asarray(predictions[0][name]["triplet"].values, int)
        true = np.asarray(ds["lai_true"].isel(triplet=idx).values, np.float64)  # (triplet, time, y, x)
        clear = np.asarray(predictions[0][name]["clear_t"].values).astype(bool) & np.isfinite(true[:, 1:]).all(1)
        if not clear.any():
            continue
        change = (true[:, 2] - true[:, 1])[clear]
        model_err, model_change = [], []
        for p in predictions:
            if not np.array_equal(np.asarray(p[name]["triplet"].values, int), idx):
                raise ValueError(f"oracle_gap: the seeds' predictions of {name} hold different triplets")
            pred = np.asarray(p[name]["lai_pred"].values, np.float64)[clear]
            model_err.append(pred - true[:, 2][clear])
            model_change.append(pred - true[:, 1][clear])
        sq = np.mean([e ** 2 for e in model_err], axis=0)  # per pixel, mean over seeds
        slope = float(np.mean([np.sum(c * change) / np.sum(change ** 2) for c in model_change])) if np.any(change) else np.nan
        for label, lo, hi, sel in by_change(change, edges):
            n = int(sel.sum())
            share = n / sel.size
            model_mse, oracle_mse = (float(np.mean(x[sel])) if n else np.nan for x in (sq, change ** 2))
            rows.append({"set": name, "change": label, "change_lo": lo, "change_hi": hi, "pixels": n, "share": share,
                         "model_rmse": np.sqrt(model_mse), "oracle_rmse": np.sqrt(oracle_mse),
                         "model_mse_part": share * model_mse if n else 0.0, "oracle_mse_part": share * oracle_mse if n else 0.0,
                         "change_slope": slope if label == ORACLE_GAP_ALL else np.nan, "seeds": len(predictions)})
    return pd.DataFrame(rows)


PAST_ESTIMATORS = ("model", "last_observation", "two_date_mean", "oracle", "stability_known")


def past_clear_pixels(scl: np.ndarray, true: np.ndarray, clear_t: np.ndarray) -> np.ndarray:
    """Mask (triplet, y, x) of the pixels clear at t-2 and t-1 by the strict rule (SCL 4-6,
    :data:`lai.facts.STRICT_VALID_CLASSES`: not the shadows, whose retrieved LAI is too low), scored at t
    (``clear_t``) and with a true LAI at every date (``scl``, ``true``: (triplet, time, y, x))."""
    past = scl_lookup(STRICT_VALID_CLASSES)[scl][:, :2].all(1)
    return past & np.asarray(clear_t).astype(bool) & np.isfinite(true).all(1)


def past_estimator_errors(ds, predictions: list, stable_below: float = ORACLE_GAP_EDGES[0]) -> dict[str, np.ndarray] | None:
    """Per pixel of :func:`past_clear_pixels`, flattened: the true change from t-1 to t (``change``) and each of
    :data:`PAST_ESTIMATORS`' squared error against the true LAI at t: the model's averaged over its seeds
    ``predictions`` (one dataset of one set each: ``lai_pred``, ``clear_t``, coordinate ``triplet``), the last
    observation, the mean of the two past observations, the oracle (true LAI of t-1), and ``stability_known``: the
    two-date mean where the true LAI changed by less than ``stable_below``, the model elsewhere (it reads the truth:
    what knowing which pixels did not change would be worth). None without such pixels."""
    idx = np.asarray(predictions[0]["triplet"].values, int)
    for p in predictions[1:]:
        if not np.array_equal(np.asarray(p["triplet"].values, int), idx):
            raise ValueError("past_estimators: the seeds' predictions hold different triplets")
    true = np.asarray(ds["lai_true"].isel(triplet=idx).values, np.float32)  # (triplet, time, y, x); as stored
    obs = np.asarray(ds["lai"].isel(triplet=idx).values, np.float32)
    keep = past_clear_pixels(np.asarray(ds["scl"].isel(triplet=idx).values), true, predictions[0]["clear_t"].values)
    if not keep.any():
        return None
    t, t1 = (true[:, k][keep].astype(np.float64) for k in (2, 1))  # float64 on the kept pixels only
    change = t - t1
    model = np.mean([(np.asarray(p["lai_pred"].values)[keep].astype(np.float64) - t) ** 2 for p in predictions], axis=0)
    two_dates = (obs[:, 0][keep].astype(np.float64) + obs[:, 1][keep]) / 2
    stable = np.abs(change) < stable_below
    return {"change": change, "model": model, "last_observation": (obs[:, 1][keep] - t) ** 2,
            "two_date_mean": (two_dates - t) ** 2, "oracle": change ** 2,
            "stability_known": np.where(stable, (two_dates - t) ** 2, model)}


def past_estimators(ds, predictions: list[dict], edges=ORACLE_GAP_EDGES) -> pd.DataFrame:
    """How much of the past's retrieval noise any predictor could remove (simulated data): per test set and class of
    the true change from t-1 to t (:func:`change_classes`), on the pixels of :func:`past_clear_pixels`, the RMSE
    against the true LAI at t of each of :data:`PAST_ESTIMATORS` (columns ``<name>_rmse``; "did not change": by less
    than the first edge), the pixels and their share. ``ds``: the cube with ``lai_true``; ``predictions``: one
    ``{set: dataset}`` per training seed of the model (as for :func:`oracle_gap`)."""
    if "lai_true" not in ds:
        raise ValueError("past_estimators needs the true LAI of every date (lai_true: simulated data)")
    rows = []
    for name in [s for s in TEST_SETS if all(s in p for p in predictions)]:
        errors = past_estimator_errors(ds, [p[name] for p in predictions], edges[0])
        if errors is None:
            continue
        rows += [{"set": name, **line, "seeds": len(predictions)}
                 for line in rmse_by_change(errors, PAST_ESTIMATORS, edges, suffix="_rmse")]
    return pd.DataFrame(rows)
