"""Figures of a run: data exploration, training, results (each function returns a matplotlib Figure).

Every function builds a :class:`matplotlib.figure.Figure` directly (not through
``pyplot``), so nothing is shown or kept open behind the caller's back; show it
in a notebook by leaving it as a cell's value, write it with :func:`save`.

Conventions shared by all figures: LAI in m2/m2 with the colormap ``LAI_CMAP``
from 0 to ``LAI_VMAX``; SCL classes with the Sen2Cor colours and a legend
naming them; backscatter in dB; a panel whose data are empty (a split with no
triplets, a row not trained) shows a note instead of failing.

File names in a run folder are ``figures/<function name>.png`` (``FIGURE_NAMES``, listed in lai.facts).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt  # noqa: F401 - activates Jupyter's inline display of returned figures
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lai.config import EncodingConfig
from lai.facts import POLARISATIONS, ROWS, SET_TITLES, TEST_SETS, TIME_LABELS
from lai.io import atomic_path
from lai.lnb import SCL_NAMES, scl_lookup

LAI_CMAP = "YlGn"
LAI_VMAX = 6.0
LAI_UNITS = "LAI [m²/m²]"
ERROR_CMAP = "RdBu_r"
DB_CMAP = "gray"
DPI = 150
SPLIT_ORDER = ("train", "val", *TEST_SETS, "buffer")

# Sen2Cor's own SCL colours (ESA scene classification legend).
SCL_COLORS = {
    0: "#000000",
    1: "#ff0000",
    2: "#2f2f2f",
    3: "#643200",
    4: "#00a000",
    5: "#ffe65a",
    6: "#0000ff",
    7: "#808080",
    8: "#c0c0c0",
    9: "#ffffff",
    10: "#64c8ff",
    11: "#ff96ff",
}
SCL_CMAP = mcolors.ListedColormap([SCL_COLORS[k] for k in range(12)], name="scl")
SCL_NORM = mcolors.BoundaryNorm(np.arange(-0.5, 12.5, 1.0), SCL_CMAP.N)


# --------------------------------------------------------------------------- helpers


def lai_cmap():
    """The LAI colormap, with missing values (NaN) in light grey."""
    cmap = matplotlib.colormaps[LAI_CMAP].copy()
    cmap.set_bad("#d9d9d9")
    return cmap


def scl_legend_handles(classes: Iterable[int] | None = None) -> list[Patch]:
    classes = range(12) if classes is None else sorted(set(int(c) for c in classes))
    return [Patch(facecolor=SCL_COLORS[c], edgecolor="0.4", label=f"{c}: {SCL_NAMES[c]}") for c in classes]


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _note(ax, text: str, title: str | None = None) -> None:
    """Replace a panel's content with a note (for empty data)."""
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10, color="0.3",
            transform=ax.transAxes, bbox=dict(boxstyle="round", facecolor="0.95", edgecolor="0.7"))


def note_figure(title: str, text: str, size=(6.0, 2.5)) -> Figure:
    """A figure that only says why there is nothing to show."""
    fig = _figure(*size)
    ax = fig.add_subplot()
    _note(ax, text)
    fig.suptitle(title)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as PNG atomically (temporary name, then rename) and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", facecolor="white")
    finally:
        plt.close(fig)
    return path


def _dates(ds, triplet: int) -> list[pd.Timestamp]:
    values = np.asarray(ds["date"].isel(triplet=triplet).values)
    if np.issubdtype(values.dtype, np.datetime64):
        return [pd.Timestamp(v) for v in values]
    return [pd.Timestamp("1970-01-01") + pd.Timedelta(days=int(v)) for v in values]


def _labels(ds, dim: str) -> tuple[str, ...]:
    """The cube's labels of ``time`` (t-2, t-1, t) or ``pol`` (VV, VH); cubes written before the labels
    were stored get ``lai.facts``' (the labels the cube writer stores)."""
    if ds is not None and dim in ds.coords and ds[dim].dtype.kind in "OUS":
        return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in ds[dim].values)
    return {"time": TIME_LABELS, "pol": POLARISATIONS}[dim]


def _all_dates(ds) -> pd.DataFrame:
    """Dates of every triplet as a (triplet, 3) frame of timestamps, columns the time labels."""
    values = np.asarray(ds["date"].values)
    if not np.issubdtype(values.dtype, np.datetime64):
        values = values.astype("int64").astype("datetime64[D]")
    return pd.DataFrame(values.astype("datetime64[ns]"), columns=list(_labels(ds, "time")))


def _estimated(ds) -> list[bool]:
    if "date_estimated" in ds.variables:
        return [bool(v) for v in np.asarray(ds["date_estimated"].values)]
    return [False, True, False]


def _coord_str(ds, name: str, triplet: int, default: str = "") -> str:
    if name not in ds.variables:
        return default
    value = ds[name].isel(triplet=triplet).values
    value = value.item() if hasattr(value, "item") else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _splits(ds) -> np.ndarray:
    if "split" not in ds.variables:
        return np.full(ds.sizes["triplet"], "all", dtype=object)
    return np.asarray(ds["split"].values).astype(str)


def _in_order(names: Iterable[str], order: Iterable[str]) -> list[str]:
    """The distinct ``names`` in ``order``, any other name after them (first seen first)."""
    names, order = list(dict.fromkeys(names)), list(order)
    return [s for s in order if s in names] + [s for s in names if s not in order]


def _set_order(names: Iterable[str]) -> list[str]:
    """Test sets in the tables' order (``lai.facts.TEST_SETS``)."""
    return _in_order(names, TEST_SETS)


def _split_order(present: Iterable[str]) -> list[str]:
    return _in_order(present, SPLIT_ORDER)


def _valid_lut(valid_classes) -> np.ndarray:
    return scl_lookup(valid_classes if valid_classes is not None else EncodingConfig().valid_classes)


def _row_labels() -> dict[str, str]:
    return {k: v.title for k, v in ROWS.items()}


def _set_title(name: str) -> str:
    return {**SET_TITLES, "all": "All"}.get(name, str(name).replace("_", " "))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


# --------------------------------------------------------------------------- data exploration


def sample_maps(ds, triplets: Iterable[int], valid_classes=None) -> Figure:
    """VV, VH, LAI and SCL at t-2, t-1, t for each triplet (positions in the cube), two triplets per row.

    LAI is grey where missing; t-1's date is marked as estimated (file names carry only t-2 and t).
    """
    triplets = [int(t) for t in triplets]
    if not triplets or ds.sizes.get("triplet", 0) == 0:
        return note_figure("Sample triplets", "no triplet to show (empty selection or empty cube)")
    sub = ds.isel(triplet=triplets)[["s1", "lai", "scl"]].load()
    s1 = np.asarray(sub["s1"].values, np.float32)
    ranges = []
    for p in range(2):
        finite = s1[:, :, p][np.isfinite(s1[:, :, p])]
        lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (-25.0, 0.0))
        ranges.append((float(lo), float(hi) if hi > lo else float(lo) + 1))
    estimated = _estimated(ds)
    times, pols = _labels(ds, "time"), _labels(ds, "pol")
    n = len(triplets)
    ncols = min(2, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(4.2 * ncols, 4.6 * nrows + 0.9)
    subfigs = np.atleast_2d(fig.subfigures(nrows, ncols, squeeze=False))
    cmap_lai = lai_cmap()
    for k, t in enumerate(triplets):
        sf = subfigs[k // ncols, k % ncols]
        axes = sf.subplots(4, 3, sharex=True, sharey=True)
        dates = _dates(ds, t)
        images = []
        for j in range(3):
            images.append(axes[0, j].imshow(s1[k, j, 0], cmap=DB_CMAP, vmin=ranges[0][0], vmax=ranges[0][1]))
            images.append(axes[1, j].imshow(s1[k, j, 1], cmap=DB_CMAP, vmin=ranges[1][0], vmax=ranges[1][1]))
            im_lai = axes[2, j].imshow(np.asarray(sub["lai"].values[k, j], np.float32), cmap=cmap_lai, vmin=0, vmax=LAI_VMAX)
            axes[3, j].imshow(np.asarray(sub["scl"].values[k, j]), cmap=SCL_CMAP, norm=SCL_NORM, interpolation="nearest")
            date = dates[j].strftime("%Y-%m-%d")
            label = f"{times[j]}: ≈{date}\n(estimated)" if estimated[j] else f"{times[j]}: {date}\n"
            axes[0, j].set_title(label, fontsize=8)
        for r, name in enumerate((*pols, "LAI", "SCL")):
            axes[r, 0].set_ylabel(name, fontsize=9)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        for r, (im, label, extend) in enumerate(((images[0], "dB", "both"), (images[1], "dB", "both"),
                                                 (im_lai, "m²/m²", "max"), (im_lai, "", "neither"))):
            cb = sf.colorbar(im, ax=axes[r, :], shrink=0.9, aspect=12, pad=0.02, extend=extend)
            cb.ax.tick_params(labelsize=7)
            cb.set_label(label, fontsize=8)
            if r == 3:
                cb.ax.set_visible(False)  # keeps the SCL row aligned with the others
        place = " ".join(x for x in (_coord_str(ds, "country", t), _coord_str(ds, "area", t)) if x)
        split = _coord_str(ds, "split", t)
        sf.suptitle(f"Triplet {t}" + (f" · {place}" if place else "") + (f"\nsplit {split}" if split else ""),
                    fontsize=9, fontweight="bold")
    fig.legend(handles=scl_legend_handles(), loc="outside lower center", ncol=3 if ncols < 2 else 4, fontsize=7.5,
               title="Sen2Cor scene classification (SCL)", title_fontsize=8, frameon=False, columnspacing=1.0,
               handlelength=1.2)
    return fig


def cloud_statistics(ds) -> Figure:
    """Distributions of clear and cloud fractions per time step and per split."""
    import seaborn as sns

    n = ds.sizes.get("triplet", 0)
    if n == 0:
        return note_figure("Cloud statistics", "the cube holds no triplet")
    clear = np.asarray(ds["clear_fraction"].values, float)
    cloud = np.asarray(ds["cloud_fraction"].values, float)
    split = _splits(ds)
    times = list(_labels(ds, "time"))
    df = pd.DataFrame(
        {
            "split": np.repeat(split, 3),
            "time": np.tile(times, n),
            "clear": clear.reshape(-1),
            "cloud": cloud.reshape(-1),
        }
    )
    order = _split_order(split)
    counts = pd.Series(split).value_counts()
    ticklabels = [f"{s}\n(n={counts.get(s, 0)})" for s in order]
    fig = _figure(8.5, 6.3)
    axes = fig.subplots(2, 2)
    palette = dict(zip(times, sns.color_palette("colorblind", 3)))
    for ax, col, what in ((axes[0, 0], "clear", "Clear fraction (valid SCL, finite LAI)"),
                          (axes[0, 1], "cloud", "Cloud fraction (SCL 8, 9, 10)")):
        sns.histplot(df, x=col, hue="time", hue_order=times, bins=20, binrange=(0, 1), element="step",
                     fill=False, palette=palette, ax=ax, legend=False)
        ax.set_xlabel(f"{what} of a tile")
        ax.set_ylabel("triplets")
        ax.set_title(f"{what.split(' (')[0]} per time step ({n} triplets)", fontsize=10.5)
    for ax, col, what in ((axes[1, 0], "clear", "Clear fraction"), (axes[1, 1], "cloud", "Cloud fraction")):
        sns.boxplot(df, x="split", y=col, hue="time", order=order, hue_order=times, palette=palette,
                    fliersize=1.5, ax=ax, legend=False)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(ticklabels, fontsize=8.5)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel(f"{what} of a tile")
        ax.set_xlabel("")
        ax.set_title(f"{what} per split and time step", fontsize=10.5)
    fig.legend(handles=[Patch(facecolor=palette[t], label=t) for t in times], loc="outside lower center",
               ncol=3, title="time step", fontsize=9, title_fontsize=9, frameon=False)
    missing = [s for s in SPLIT_ORDER[:5] if s not in order]
    title = "Clear and cloudy tiles in the cube"
    if missing:
        title += f"\n(no triplets in split(s): {', '.join(missing)})"
    fig.suptitle(title)
    return fig


def _season_curve(doy: np.ndarray, kind: str) -> np.ndarray:
    """The model's seasonality encoding (two components) of day-of-year values, via lai.encode."""
    try:
        import torch

        from lai.encode import seasonality

        d = torch.as_tensor(np.asarray(doy, np.float32))
        return seasonality(d, d, EncodingConfig(seasonality=kind)).numpy()
    except ImportError:  # numpy twin (same formulas)
        if kind == "sincos":
            a = 2 * np.pi * doy / 365.25
            return np.stack([np.sin(a), np.cos(a)], 1)
        tri = lambda p: 1 - 2 * np.abs(np.mod(p, 1.0) - 0.5)  # noqa: E731
        return np.stack([tri(doy / 365.25), tri(doy / 365.25 + 0.25)], 1)


def seasonality_encoding(enc=None, ds=None) -> Figure:
    """The seasonality encoding against day of year, with the cube's dates as a rug and their histogram.

    ``enc``: an EncodingConfig or the name of an encoding ("sincos": of the target date t, as in the paper;
    "triangular": of DateFrom t-2, as in the reference code).
    """
    import seaborn as sns

    kind = enc if isinstance(enc, str) else getattr(enc, "seasonality", "sincos")
    doy = np.arange(1, 367, dtype=float)
    curve = _season_curve(doy, kind)
    names = ("sin(2π·DOY/365.25)", "cos(2π·DOY/365.25)") if kind == "sincos" else (
        "tri(DOY/365.25)", "tri(DOY/365.25 + 1/4)")
    which = "target date t" if kind == "sincos" else "first date t-2 (DateFrom)"
    fig = _figure(8.4, 4.9)
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for i, name in enumerate(names):
        ax.plot(doy, curve[:, i], lw=2, label=name)
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_ylabel("encoding value")
    ax.set_ylim(-1.25 if kind == "sincos" else -0.25, 1.5)
    ax.set_title(f"Seasonality encoding '{kind}' of the {which}", fontsize=10.5)
    if ds is not None and ds.sizes.get("triplet", 0):
        dates = _all_dates(ds)
        col = dates.columns[-1] if kind == "sincos" else dates.columns[0]
        day = pd.DatetimeIndex(dates[col]).dayofyear.to_numpy()
        frame = pd.DataFrame({"day of year": day, "split": _splits(ds)})
        order = _split_order(frame["split"])
        sns.rugplot(x=day, ax=ax, height=0.06, color="k", alpha=0.4, lw=1)
        sns.histplot(frame, x="day of year", hue="split", hue_order=order, multiple="stack", bins=np.arange(1, 368, 14),
                     palette="tab10", ax=ax2)
        ax2.set_ylabel("triplets")
        ax2.set_title(f"Day of year of the {which} of the {len(day)} triplets (rug above), by split", fontsize=10.5)
        if ax2.get_legend() is not None:
            sns.move_legend(ax2, "upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="split", frameon=False)
    else:
        _note(ax2, "no cube dates given (empty cube)")
    ax.legend(loc="upper center", ncol=2, fontsize=9, frameon=False)
    ax2.set_xlabel("day of year")
    ax2.set_xlim(1, 366)
    months = pd.date_range("2021-01-01", periods=12, freq="MS")
    sec = ax.secondary_xaxis("top")
    sec.set_xticks(months.dayofyear, months.strftime("%b"), fontsize=8)
    return fig


def _block_mean(x: np.ndarray, b: int) -> np.ndarray:
    """Mean over b x b blocks of the last two axes (ignoring NaN)."""
    h, w = x.shape[-2:]
    h2, w2 = h // b * b, w // b * b
    x = x[..., :h2, :w2].reshape(*x.shape[:-2], h2 // b, b, w2 // b, b)
    import warnings

    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks give NaN
        return np.nanmean(x, axis=(-3, -1))


def s1_vs_lai(ds, n_pixels: int = 200_000, block: int = 8, max_triplets: int = 200, valid_classes=None,
              seed: int = 0) -> Figure:
    """S1 backscatter against LAI (same date, clear pixels): single pixels and ``block`` x ``block`` block means.

    Cross ratio VH - VV [dB] and VH [dB] on the x axis; Pearson r in the titles. Block means average
    backscatter in linear power and LAI over the block's clear pixels (blocks at least half clear).
    """
    n = ds.sizes.get("triplet", 0)
    if n == 0:
        return note_figure("S1 backscatter vs LAI", "the cube holds no triplet")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, min(n, max_triplets), replace=False))
    sub = ds.isel(triplet=idx)[["s1", "lai", "scl"]].load()
    s1 = np.asarray(sub["s1"].values, np.float64)  # (N, 3, 2, H, W)
    lai = np.asarray(sub["lai"].values, np.float64)  # (N, 3, H, W)
    valid = _valid_lut(valid_classes)[np.asarray(sub["scl"].values)] & np.isfinite(lai)
    valid &= np.isfinite(s1).all(axis=2)
    vv, vh = s1[:, :, 0], s1[:, :, 1]
    b = max(1, min(block, lai.shape[-1], lai.shape[-2]))
    with np.errstate(invalid="ignore", divide="ignore"):
        lin = lambda d: np.where(valid, 10 ** (d / 10), np.nan)  # noqa: E731
        frac = _block_mean(valid.astype(float), b)
        keep = frac >= 0.5
        bvv = 10 * np.log10(_block_mean(lin(vv), b))[keep]
        bvh = 10 * np.log10(_block_mean(lin(vh), b))[keep]
        blai = _block_mean(np.where(valid, lai, np.nan), b)[keep]
    pix = np.flatnonzero(valid.reshape(-1))
    if len(pix) > n_pixels:
        pix = rng.choice(pix, n_pixels, replace=False)
    pvv, pvh, plai = vv.reshape(-1)[pix], vh.reshape(-1)[pix], lai.reshape(-1)[pix]

    fig = _figure(8.5, 7.2)
    axes = fig.subplots(2, 2, sharey=True)
    panels = [
        (axes[0, 0], pvh - pvv, plai, "single pixels", "cross ratio VH − VV [dB]"),
        (axes[0, 1], pvh, plai, "single pixels", "VH [dB]"),
        (axes[1, 0], bvh - bvv, blai, f"{b}×{b}-pixel block means", "cross ratio VH − VV [dB]"),
        (axes[1, 1], bvh, blai, f"{b}×{b}-pixel block means", "VH [dB]"),
    ]
    for ax, x, y, what, xlabel in panels:
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3:
            _note(ax, f"too few clear {what} to plot", title=what)
            continue
        x, y = x[ok], y[ok]
        lo, hi = np.percentile(x, [0.5, 99.5])
        hb = ax.hexbin(x, y, gridsize=50 if "pixels" in what else 35, bins="log", mincnt=1, cmap="viridis",
                       extent=(lo, hi, 0, max(LAI_VMAX, float(np.nanpercentile(y, 99.5)))))
        fig.colorbar(hb, ax=ax, label="count (log)")
        ax.set_title(f"{what}: Pearson r = {_pearson(x, y):.2f}\n(n = {len(x):,})", fontsize=9.5)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("LAI, same date [m²/m²]")
    fig.suptitle(f"Sentinel-1 backscatter vs Sentinel-2 LAI at the same date\n(clear pixels of {len(idx)} "
                 f"random triplets, all three dates)", fontsize=11)
    return fig


# --------------------------------------------------------------------------- training


def _stage_label(name: str, labels: Mapping[str, str]) -> tuple[str, str]:
    """(row, legend label) of a training stage: a Table 1 row, or a further seed of one (``<row>_seed<k>``)."""
    if name in labels:
        return name, labels[name]
    row, _, seed = name.rpartition("_seed")
    if row in labels and seed.isdigit():
        return row, f"{labels[row]}, seed {seed}"
    return name, name


def learning_curves(histories: Mapping[str, pd.DataFrame], stages: Iterable[str] = tuple(ROWS)) -> Figure:
    """Training loss and validation RMSE per epoch for each training stage; dotted lines at LR decays.

    ``histories``: stage (run folder name: a Table 1 row, or ``<row>_seed<k>`` for a further seed) ->
    its history.csv. Every one of ``stages`` (default: the six Table 1 rows) gets a line, in Table 1's
    order; further seeds are dashed in their row's colour; stages without a history are named in the title.
    """
    import seaborn as sns

    histories = {k: v for k, v in (histories or {}).items() if v is not None and len(v)}
    stages = list(stages)
    missing = [s for s in stages if s not in histories]
    if not histories:
        return note_figure("Learning curves", "no training history available")
    labels = _row_labels()
    order = [s for s in stages if s in histories] + [s for s in histories if s not in stages]
    rows = list(dict.fromkeys(_stage_label(name, labels)[0] for name in order))
    palette = dict(zip(rows, sns.color_palette("tab10", len(rows))))
    fig = _figure(9.4, 4.6)
    ax1, ax2 = fig.subplots(1, 2)
    positive = True
    for name in order:
        h = histories[name]
        row, label = _stage_label(name, labels)
        seed_run = name != row
        style = dict(color=palette[row], marker="o" if len(h) <= 30 else None, ms=3 if seed_run else 4,
                     lw=1.1 if seed_run else 1.6, ls="--" if seed_run else "-", label=label)
        if "train_loss" in h:
            ax1.plot(h["epoch"], h["train_loss"], **style)
            positive &= bool((h["train_loss"].dropna() > 0).all())
        if "val_rmse" in h:
            ax2.plot(h["epoch"], h["val_rmse"], **style)
        if "lr" in h and len(h) > 1:
            lr = h["lr"].to_numpy()
            for e in h["epoch"].to_numpy()[1:][np.diff(lr) != 0]:
                for ax in (ax1, ax2):
                    ax.axvline(e - 0.5, color=palette[row], ls=":", lw=1, alpha=0.7)
    if positive:
        ax1.set_yscale("log")
    ax1.set_title("Training loss (masked MSE, LAI/5 units)", fontsize=10)
    ax1.set_ylabel("training loss")
    ax2.set_title("Validation RMSE, pixels clear at t", fontsize=10)
    ax2.set_ylabel("RMSE [LAI, m²/m²]")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    handles, names = ax2.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=3, fontsize=8, title="training stage (Table 1 row)",
               title_fontsize=8, frameon=False)
    title = f"Learning curves of the {len(order)} training stages (dotted: learning-rate decay)"
    if missing:
        title += "\nnot trained (no history): " + ", ".join(labels.get(m, m) for m in missing)
    fig.suptitle(title, fontsize=11)
    return fig


# --------------------------------------------------------------------------- results


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
        return note_figure("Ground truth and predictions", "no predicted triplet to show (empty test sets?)")
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
            true = np.asarray(ds["lai_true"].isel(triplet=t).values, np.float32)
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
    fig.suptitle("Ground truth and predictions of LAI at t (final model)", fontsize=11)
    return fig


def density(pred, target, mask=None, lai_scale: float = 5.0, max_points: int = 400_000, seed: int = 0) -> Figure:
    """Predicted vs observed LAI as a 2D histogram (log counts) with the 1:1 line, one panel per test set
    in the tables' order (``lai.facts.TEST_SETS``), each with its labelled colour bar.

    ``pred``, ``target`` (and ``mask``: pixels to score, e.g. clear at t): arrays, or dicts ``{set: array}``
    (see :func:`prediction_arrays`). RMSE (LAI and LAI/``lai_scale``) and R2 over all masked pixels.
    """
    import seaborn as sns

    from lai.metrics import pooled

    if not isinstance(pred, Mapping):
        pred, target, mask = {"all": pred}, {"all": target}, (None if mask is None else {"all": mask})
    names = _set_order(pred)
    if not names:
        return note_figure("Predicted vs observed LAI", "no test set given")
    rng = np.random.default_rng(seed)
    top = LAI_VMAX  # one scale for every panel
    for name in names:
        both = np.concatenate([np.asarray(pred[name], float).reshape(-1), np.asarray(target[name], float).reshape(-1)])
        both = both[np.isfinite(both)]
        if both.size:
            top = max(top, float(np.percentile(both, 99.5)))
    fig = _figure(2.8 * len(names) + 0.4, 3.45)
    axes = np.atleast_1d(fig.subplots(1, len(names), squeeze=False)[0])
    for ax, name in zip(axes, names):
        p = np.asarray(pred[name], np.float64).reshape(-1)
        y = np.asarray(target[name], np.float64).reshape(-1)
        m = np.ones_like(p, bool) if mask is None or mask.get(name) is None else np.asarray(mask[name], bool).reshape(-1)
        m = m & np.isfinite(p) & np.isfinite(y)
        if not m.any():
            _note(ax, "no triplets / no clear pixels\nin this set", title=_set_title(name))
            continue
        s = pooled(p, y, m, lai_scale)
        p, y = p[m], y[m]
        if len(p) > max_points:
            keep = rng.choice(len(p), max_points, replace=False)
            p, y = p[keep], y[keep]
        peak = np.histogram2d(y, p, bins=60, range=((0, top), (0, top)))[0].max()
        sns.histplot(x=y, y=p, bins=60, binrange=((0, top), (0, top)), cmap="mako_r",
                     norm=mcolors.LogNorm(vmin=1, vmax=max(peak, 2)), vmin=None, vmax=None, cbar=True,
                     cbar_kws={"label": "pixels (log)", "shrink": 0.7}, ax=ax)
        ax.plot([0, top], [0, top], "k--", lw=1, label="1:1")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        ax.set_xlabel("observed LAI [m²/m²]")
        ax.set_ylabel("predicted LAI [m²/m²]")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(f"{_set_title(name)}: R² {s['r2']:.3f}\nRMSE {s['rmse']:.3f} LAI ({s['rmse_norm']:.3f} "
                     f"LAI/{lai_scale:g})\n{s['n_pixels']:,} clear pixels", fontsize=9)
    fig.suptitle("Predicted vs observed LAI at t, pixels clear at t", fontsize=11)
    return fig


def _results_long(table1_long: pd.DataFrame | None, baselines: pd.DataFrame | None) -> pd.DataFrame:
    frames = []
    if table1_long is not None and len(table1_long):
        t = table1_long.copy()
        labels = _row_labels()
        if "input" in t and "architecture" in t:
            t["model"] = t["input"].astype(str) + " (" + t["architecture"].astype(str) + ")"
        else:
            t["model"] = t["row"].map(lambda r: labels.get(r, r))
        t["kind"] = "U-Net"
        frames.append(t[["model", "kind", "set", "rmse", "r2"]])
    if baselines is not None and len(baselines):
        b = baselines.rename(columns={"baseline": "model"}).copy()
        b["kind"] = "baseline"
        frames.append(b[["model", "kind", "set", "rmse", "r2"]])
    if not frames:
        return pd.DataFrame(columns=["model", "kind", "set", "rmse", "r2"])
    return pd.concat(frames, ignore_index=True)


def error_by_set(table1_long: pd.DataFrame | None, baselines: pd.DataFrame | None = None,
                 r2_floor: float = -1.0) -> Figure:
    """Grouped bars of RMSE (LAI units) and R2 per test set, for each Table 1 row and each baseline.

    R2 below ``r2_floor`` is clipped and printed on the bar.
    """
    import seaborn as sns

    df = _results_long(table1_long, baselines)
    if df[["rmse", "r2"]].notna().to_numpy().sum() == 0:
        return note_figure("Error by test set", "no metrics available (no model evaluated, or empty test sets)")
    sets = _set_order(df["set"])
    df["set title"] = df["set"].map(_set_title)
    models = list(dict.fromkeys(df["model"]))
    n_unet = df.loc[df["kind"] == "U-Net", "model"].nunique()
    n_base = len(models) - n_unet
    palette = dict(zip(models, list(sns.color_palette("crest", n_unet)) + list(sns.color_palette("Oranges_r", n_base + 1))[:n_base]))
    fig = _figure(8.6, 6.0)
    ax1, ax2 = fig.subplots(1, 2)
    order = [_set_title(s) for s in sets]
    for ax, col, label in ((ax1, "rmse", "RMSE [LAI] (lower: better)"), (ax2, "r2", "R² (higher: better)")):
        data = df.copy()
        if col == "r2":
            data[col] = data[col].clip(lower=r2_floor)
        sns.barplot(data, x="set title", y=col, hue="model", order=order, hue_order=models, palette=palette, ax=ax,
                    legend=(ax is ax2))
        ax.set_xlabel("")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.axhline(0, color="k", lw=0.8)
        for bar_container, model in zip(ax.containers, models):
            if df.loc[df["model"] == model, "kind"].iloc[0] == "baseline":
                for bar in bar_container:
                    bar.set_hatch("//")
                    bar.set_edgecolor("0.3")
        for i, s in enumerate(sets):
            if df.loc[df["set"] == s, col].notna().sum() == 0:
                ax.text(i, 0.02, "no data", ha="center", va="bottom", fontsize=8, color="0.4",
                        transform=ax.get_xaxis_transform())
        if col == "r2":
            low = df[df["r2"] < r2_floor]
            width = 0.8 / max(len(models), 1)
            for _, rec in low.iterrows():
                x = order.index(rec["set title"]) - 0.4 + width * (models.index(rec["model"]) + 0.5)
                ax.text(x, r2_floor - 0.03, f"{rec['r2']:.2f}".replace("-", "−"), rotation=90, ha="center",
                        va="top", fontsize=7)
            if len(low):
                ax.set_ylim(bottom=r2_floor - 0.3)
    if ax2.get_legend() is not None:
        ax2.get_legend().remove()
    kinds = dict(zip(df["model"], df["kind"]))
    handles = [Patch(facecolor=palette[m], edgecolor="0.3", hatch="//" if kinds[m] == "baseline" else None, label=m)
               for m in models]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8.5, title="model (hatched: baseline)",
               title_fontsize=8.5, frameon=False, columnspacing=1.2)
    fig.suptitle("Error per test set: Table 1 rows (U-Nets) and baselines", fontsize=11)
    return fig


def table1_comparison(table1_long: pd.DataFrame | None, data_kind: str = "simulated") -> Figure:
    """Our Table 1 against the paper's: RMSE (LAI/5 units) and R2 per row and test set, with the 1:1 line.

    The data differ (``data_kind`` here, the authors' real data there): compare patterns, not values.
    """
    import seaborn as sns

    if table1_long is None or not len(table1_long) or table1_long[["rmse_norm", "r2"]].notna().to_numpy().sum() == 0:
        return note_figure("Table 1: ours vs paper", "no Table 1 metrics available")
    df = table1_long.copy()
    if "input" in df and "architecture" in df:
        df["model"] = df["input"].astype(str) + " (" + df["architecture"].astype(str) + ")"
    else:
        labels = _row_labels()
        df["model"] = df["row"].map(lambda r: labels.get(r, r))
    df["test set"] = df["set"].map(_set_title)
    models = list(dict.fromkeys(df["model"]))
    palette = dict(zip(models, sns.color_palette("tab10", len(models))))
    markers = dict(zip((SET_TITLES[s] for s in TEST_SETS), ("o", "s", "^")))
    fig = _figure(8.6, 5.7)
    axes = fig.subplots(1, 2)
    for ax, ours, paper, label in ((axes[0], "rmse_norm", "paper_rmse", "RMSE [LAI/5]"),
                                   (axes[1], "r2", "paper_r2", "R²")):
        data = df[df[ours].notna()]
        if data.empty:
            _note(ax, f"no {label} values", title=label)
            continue
        sns.scatterplot(data, x=paper, y=ours, hue="model", hue_order=models, style="test set",
                        style_order=[k for k in markers if k in set(df["test set"])], markers=markers,
                        palette=palette, s=60, ax=ax, legend=False)
        vals = np.concatenate([data[ours].to_numpy(float), data[paper].to_numpy(float)])
        lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
        pad = 0.05 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="_1:1")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.set_xlabel(f"paper: {label}")
        ax.set_ylabel(f"this run: {label}")
        better = "below" if ours == "rmse_norm" else "above"
        ax.set_title(f"{label} (better than the paper\n{better} the dashed 1:1 line)", fontsize=9.5)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", ms=7, color=palette[m], label=m) for m in models]
    handles += [Line2D([], [], ls="", marker=markers.get(s, "o"), ms=7, color="0.3", label=s)
                for s in markers if s in set(df["test set"])]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8.5, frameon=False, columnspacing=1.2)
    fig.suptitle(f"Table 1, this run vs the paper. The data differ ({data_kind} data here,\nthe authors' real "
                 f"data in the paper): compare patterns across rows and sets, not values", fontsize=10.5)
    return fig
