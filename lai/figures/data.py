"""Data figures (the report's data section): sample triplets, clear and cloudy tiles per split, the
seasonality encoding, and Sentinel-1 backscatter against LAI."""
from __future__ import annotations

import math
from collections.abc import Iterable

import matplotlib.pyplot as plt  # noqa: F401 - activates Jupyter's inline display of returned figures
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lai.config import EncodingConfig
from lai.facts import SPLIT_LABELS
from lai.figures.common import (
    DB_CMAP,
    LAI_VMAX,
    SCL_CMAP,
    SCL_NORM,
    _all_dates,
    _coord_str,
    _dates,
    _estimated,
    _figure,
    _labels,
    _note,
    _pearson,
    _split_order,
    _splits,
    _valid_lut,
    lai_cmap,
    note_figure,
    scl_legend_handles,
)
from lai.pixels import CLOUD_CLASSES

# --------------------------------------------------------------------------- data exploration


def sample_triplets(n_triplets: int, n: int, seed: int = 0) -> list[int]:
    """``n`` distinct triplets of ``n_triplets`` (all of them where there are fewer) drawn with ``seed``, in cube order:
    the rows of :func:`sample_maps`."""
    return sorted(np.random.default_rng(seed).choice(n_triplets, min(n, n_triplets), replace=False).tolist())


def sample_maps(ds, triplets: Iterable[int], valid_classes=None) -> Figure:
    """VV, VH, LAI and SCL at t-2, t-1, t for each triplet (positions in the cube), two triplets per row.

    LAI is grey where the model cannot use it (SCL outside ``valid_classes``, or no value), as the model
    sees it; t-1's date is marked as estimated (file names carry only t-2 and t).
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
    usable = _valid_lut(valid_classes)[np.asarray(sub["scl"].values)]
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
            lai = np.where(usable[k, j], np.asarray(sub["lai"].values[k, j], np.float32), np.nan)
            im_lai = axes[2, j].imshow(lai, cmap=cmap_lai, vmin=0, vmax=LAI_VMAX)
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
                          (axes[0, 1], "cloud", f"Cloud fraction (SCL {', '.join(map(str, CLOUD_CLASSES))})")):
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
    missing = [s for s in SPLIT_LABELS[:5] if s not in order]
    title = "Clear and cloudy tiles in the cube"
    if missing:
        title += f"\n(no triplets in split(s): {', '.join(missing)})"
    fig.suptitle(title)
    return fig


def _season_curve(doy: np.ndarray, kind: str) -> np.ndarray:
    """The model's seasonality encoding (two components) of day-of-year values, via lai.encode."""
    import torch

    from lai.encode import seasonality

    d = torch.as_tensor(np.asarray(doy, np.float32))
    return seasonality(d, d, EncodingConfig(seasonality=kind)).numpy()


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
