"""Prediction maps (the report's results section): prediction datasets as arrays, the choice of triplets
to show, and truth next to prediction maps."""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import matplotlib
import matplotlib.pyplot as plt  # noqa: F401 - activates Jupyter's inline display of returned figures
import numpy as np
from matplotlib.figure import Figure

from lai.figures.common import (
    ERROR_CMAP,
    LAI_VMAX,
    _dates,
    _figure,
    _labels,
    _set_order,
    _set_title,
    lai_cmap,
    note_figure,
)


def _as_prediction_sets(predictions) -> dict:
    if predictions is None:
        return {}
    if isinstance(predictions, Mapping):
        return {k: v for k, v in predictions.items() if v is not None}
    return {str(predictions.attrs.get("split", "predictions")): predictions}


def prediction_arrays(ds, predictions) -> tuple[dict, dict, dict]:
    """``(pred, target, mask)`` dicts per test set from prediction datasets (``<run>/predictions/<set>.nc``).

    ``predictions``: one dataset or ``{set: dataset}``; target = observed LAI at t in the cube,
    mask = pixels clear at t (``clear_t``). A set with no triplets gives empty arrays.
    """
    pred, target, mask = {}, {}, {}
    for name, p in _as_prediction_sets(predictions).items():
        idx = np.asarray(p["triplet"].values, int) if "triplet" in p.coords else np.arange(p.sizes.get("triplet", 0))
        if len(idx) == 0:
            pred[name] = target[name] = np.zeros((0,), np.float32)
            mask[name] = np.zeros((0,), bool)
            continue
        pred[name] = np.asarray(p["lai_pred"].values, np.float32)
        target[name] = np.asarray(ds["lai"].isel(triplet=idx, time=2).values, np.float32)
        mask[name] = np.asarray(p["clear_t"].values).astype(bool)
    return pred, target, mask


def choose_triplets(predictions, n: int = 4, seed: int = 0) -> list[int]:
    """Triplets (cube positions) for prediction maps, drawn from every test set in the tables' order.

    The ``n`` maps are shared out between the sets with triplets in turn (non-cloudy, cloudy, unique), so
    the cloudy set's cases (cloudy at t-2 and t-1) always appear when ``n`` reaches the number of sets.
    Within a set the picks alternate between tiles partly cloudy at t and tiles clear at t; tiles
    overcast at t only when nothing else is left. Returned grouped by set, in the sets' order.
    """
    rng = np.random.default_rng(seed)
    sets = _as_prediction_sets(predictions)
    pools: dict[str, list[list[int]]] = {}
    for name in _set_order(sets):
        p = sets[name]
        if p.sizes.get("triplet", 0) == 0:
            continue
        frac = 1 - np.asarray(p["clear_t"].values, float).mean(axis=(1, 2))
        idx = np.asarray(p["triplet"].values, int)
        partly, clear, overcast = idx[(frac >= 0.05) & (frac <= 0.8)], idx[frac < 0.05], idx[frac > 0.8]
        pools[name] = [list(rng.permutation(a)) for a in (partly, clear, overcast)]
    quota = dict.fromkeys(pools, 0)
    names = list(pools)
    for k in range(min(n, sum(len(x) for pool in pools.values() for x in pool))):
        for j in range(len(names)):  # the next set in turn that still has triplets
            name = names[(k + j) % len(names)]
            if quota[name] < sum(len(x) for x in pools[name]):
                quota[name] += 1
                break
    pick: list[int] = []
    for name in names:
        partly, clear, overcast = pools[name]
        chosen: list[int] = []
        while len(chosen) < quota[name]:
            first, second = (partly, clear) if len(chosen) % 2 == 0 else (clear, partly)
            chosen.append(int((first or second or overcast).pop(0)))
        pick += sorted(chosen)
    return pick


def truth_vs_prediction_maps(ds, predictions, triplets: Iterable[int] | None = None, n: int = 4,
                             error_range: float = 2.0, seed: int = 0) -> Figure:
    """Maps in the style of the paper's Fig. 3: observed LAI at t (pixels not clear at t greyed and
    hatched), the prediction, and on simulated data the true LAI and the error prediction - truth.
    On real data the last column is prediction - observed on clear pixels.

    ``triplets``: cube positions among the predictions (default: :func:`choose_triplets`: every test set,
    the cloudy one included, and triplets partly cloudy at t).
    """
    sets = _as_prediction_sets(predictions)
    lookup = {}
    for name, p in sets.items():
        if p.sizes.get("triplet", 0):
            for k, i in enumerate(np.asarray(p["triplet"].values, int)):
                lookup[int(i)] = (name, p, k)
    if triplets is None:
        triplets = choose_triplets(sets, n, seed)
    triplets = [int(t) for t in triplets if int(t) in lookup]
    if not triplets:
        return note_figure("Observed and predicted LAI", "no predicted triplet to show (empty test sets?)")
    truth = "lai_true" in ds
    times = _labels(ds, "time")
    cols = ["Observed LAI at t\n(grey, hatched: not clear at t)", "Predicted LAI at t"]
    cols += ["True LAI at t\n(simulation)", "Prediction − truth"] if truth else ["Prediction − observed\n(clear pixels)"]
    nrows, ncols = len(triplets), len(cols)
    fig = _figure(2.05 * ncols + 0.5, 2.0 * nrows + 1.3)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cmap = lai_cmap()
    err_cmap = matplotlib.colormaps[ERROR_CMAP].copy()
    err_cmap.set_bad("#d9d9d9")
    im_lai = im_err = None
    for r, t in enumerate(triplets):
        name, p, k = lookup[t]
        obs = np.asarray(ds["lai"].isel(triplet=t, time=2).values, np.float32)
        pred = np.asarray(p["lai_pred"].values[k], np.float32)
        clear = np.asarray(p["clear_t"].values[k]).astype(bool)
        cloudy_frac = 1 - clear.mean()
        im_lai = axes[r, 0].imshow(np.where(clear, obs, np.nan), cmap=cmap, vmin=0, vmax=LAI_VMAX)
        if (~clear).any():
            axes[r, 0].contourf((~clear).astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
        axes[r, 1].imshow(pred, cmap=cmap, vmin=0, vmax=LAI_VMAX)
        if truth:
            true_t = ds["lai_true"].isel(triplet=t)
            true = np.asarray((true_t.isel(time=2) if "time" in true_t.dims else true_t).values, np.float32)
            axes[r, 2].imshow(true, cmap=cmap, vmin=0, vmax=LAI_VMAX)
            err = pred - true
            im_err = axes[r, 3].imshow(err, cmap=err_cmap, vmin=-error_range, vmax=error_range)
            rm_clear = math.sqrt(np.nanmean(err[clear] ** 2)) if clear.any() else float("nan")
            rm_cloud = math.sqrt(np.nanmean(err[~clear] ** 2)) if (~clear).any() else float("nan")
            text = f"RMSE clear {rm_clear:.2f}" + (f"\ncloudy {rm_cloud:.2f}" if (~clear).any() else "")
            ax_err = axes[r, 3]
        else:
            err = np.where(clear, pred - obs, np.nan)
            im_err = axes[r, 2].imshow(err, cmap=err_cmap, vmin=-error_range, vmax=error_range)
            rm_clear = math.sqrt(np.nanmean(err[clear] ** 2)) if clear.any() else float("nan")
            text = f"RMSE clear {rm_clear:.2f}"
            ax_err = axes[r, 2]
        ax_err.text(0.02, 0.02, text, transform=ax_err.transAxes, fontsize=8, va="bottom",
                    bbox=dict(facecolor="white", alpha=0.8, edgecolor="none", pad=1.5))
        date = _dates(ds, t)[2].strftime("%Y-%m-%d")
        past = ""
        if "clear_fraction" in ds.variables:
            past = f"\nclear at {times[0]}, {times[1]}: {float(np.mean(ds['clear_fraction'].values[t, :2])):.0%}"
        axes[r, 0].set_ylabel(f"{_set_title(name)}: triplet {t}\n{date}\nclear at {times[2]}: {1 - cloudy_frac:.0%}"
                              f"{past}", fontsize=7.5)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    for j, c in enumerate(cols):
        axes[0, j].set_title(c, fontsize=8.5)
    n_lai = ncols - 1
    fig.colorbar(im_lai, ax=axes[:, :n_lai], location="bottom", shrink=0.6, aspect=35, extend="max",
                 label="LAI [m²/m²]")
    fig.colorbar(im_err, ax=axes[:, n_lai], location="bottom", shrink=0.95, aspect=12, extend="both",
                 label="error [LAI]")
    fig.suptitle("True, observed and predicted LAI at t (final model)" if truth else
                 "Observed and predicted LAI at t (final model; real data: no true LAI)", fontsize=11)
    return fig


def real_patch(name: str, red: np.ndarray, nir: np.ndarray, vv: np.ndarray, snap_lai: np.ndarray,
               model_lai: np.ndarray) -> Figure:
    """One real patch side by side: NDVI from the L2A red and NIR reflectances (0-1), Sentinel-1 VV (dB), the
    SNAP LAI and the model's LAI (m2/m2). A format test: the patch has one date, used as t-2, t-1 and t."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (nir - red) / (nir + red)
    fig = _figure(14, 3.4)
    axes = fig.subplots(1, 4)
    for ax, (title, img, kw) in zip(axes, [
            ("NDVI (S2 L2A)", ndvi, dict(cmap="RdYlGn", vmin=-0.2, vmax=1)),
            ("S1 VV (dB)", vv, dict(cmap="gray", vmin=-25, vmax=0)),
            ("LAI from SNAP (m2/m2)", snap_lai, dict(cmap=lai_cmap(), vmin=0, vmax=6)),
            ("model LAI at t (m2/m2)", model_lai, dict(cmap=lai_cmap(), vmin=0, vmax=6))]):
        im = ax.imshow(img, **kw)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{name}: one real date used as t-2, t-1 and t (format test, not a science result)", fontsize=9)
    return fig


def uncertainty_map(example: Mapping) -> Figure:
    """One triplet's predicted LAI, its calibrated standard deviation, and the error against the reference
    (:func:`lai.evaluate.calibrate_run`'s ``example``), pixels clouded at t outlined."""
    if not example:
        return note_figure("Predicted LAI and its spread", "no test triplet to show")
    err = example["pred"] - example["reference"]
    fig = _figure(12, 3.6)
    axes = fig.subplots(1, 3)
    sd_max = float(np.nanpercentile(example["sd"], 99)) if np.isfinite(example["sd"]).any() else 1.0
    err_max = max(float(np.nanpercentile(np.abs(err), 99)) if np.isfinite(err).any() else 1.0, sd_max)
    panels = [("predicted LAI at t (m²/m²)", example["pred"], dict(cmap=lai_cmap(), vmin=0, vmax=LAI_VMAX)),
              ("predicted standard deviation (m²/m²)", example["sd"], dict(cmap="magma", vmin=0, vmax=sd_max)),
              (f"prediction − {example['against']} (m²/m²)", err, dict(cmap=ERROR_CMAP, vmin=-err_max, vmax=err_max))]
    for ax, (title, img, kw) in zip(axes, panels):
        im = ax.imshow(img, **kw)
        ax.contour(~np.asarray(example["clear"], bool), levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{_set_title(example['set'])} set, triplet {example['triplet']}: cyan outlines pixels clouded at t",
                 fontsize=9)
    return fig
