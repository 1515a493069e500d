"""Training and results figures (the report's training and results sections): learning curves, the
density of predicted vs observed LAI, errors per test set, Table 1 next to the paper and the reliability of the
predicted spread."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import matplotlib.cm as plt_cm
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt  # noqa: F401 - activates Jupyter's inline display of returned figures
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lai.facts import MIN_SCORED_TRIPLETS, N_PIXELS, PAPER_LAI_SCALE, RMSE_NORM, ROWS, SET_TITLES, TEST_SETS, model_title, row_title, stage_label
from lai.figures.common import (
    LAI_VMAX,
    _figure,
    _note,
    _set_order,
    _set_title,
    note_figure,
)


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
    order = [s for s in stages if s in histories] + [s for s in histories if s not in stages]
    rows = list(dict.fromkeys(stage_label(name)[0] for name in order))
    palette = dict(zip(rows, sns.color_palette("tab10", len(rows))))
    fig = _figure(9.4, 4.6)
    ax1, ax2 = fig.subplots(1, 2)
    positive = True
    for name in order:
        h = histories[name]
        row, label = stage_label(name)
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
        title += "\nnot trained (no history): " + ", ".join(row_title(m) for m in missing)
    fig.suptitle(title, fontsize=11)
    return fig


def density(pred, target, mask=None, max_points: int = 400_000, seed: int = 0) -> Figure:
    """Predicted vs observed LAI as a 2D histogram (log counts) with the 1:1 line, one panel per test set
    in the tables' order (``lai.facts.TEST_SETS``), one colour scale and colour bar shared by the panels.

    ``pred``, ``target`` (and ``mask``: pixels to score, e.g. clear at t): arrays, or dicts ``{set: array}``
    (see :func:`prediction_arrays`). RMSE (LAI and in the paper's LAI/5, ``lai.facts.PAPER_LAI_SCALE``) and R2 over all masked pixels.
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
    panels = {}
    for name in names:
        p = np.asarray(pred[name], np.float64).reshape(-1)
        y = np.asarray(target[name], np.float64).reshape(-1)
        m = np.ones_like(p, bool) if mask is None or mask.get(name) is None else np.asarray(mask[name], bool).reshape(-1)
        m = m & np.isfinite(p) & np.isfinite(y)
        if m.any():
            s = pooled(p, y, m)
            p, y = p[m], y[m]
            if len(p) > max_points:
                keep = rng.choice(len(p), max_points, replace=False)
                p, y = p[keep], y[keep]
            panels[name] = (p, y, s)
    peak = max([np.histogram2d(y, p, bins=60, range=((0, top), (0, top)))[0].max() for p, y, _ in panels.values()] + [2])
    norm = mcolors.LogNorm(vmin=1, vmax=peak)
    fig = _figure(2.9 * len(names) + 0.9, 3.7)
    axes = np.atleast_1d(fig.subplots(1, len(names), squeeze=False)[0])
    for ax, name in zip(axes, names):
        if name not in panels:
            _note(ax, "no triplets / no clear pixels\nin this set", title=_set_title(name))
            continue
        p, y, s = panels[name]
        sns.histplot(x=y, y=p, bins=60, binrange=((0, top), (0, top)), cmap="mako_r", norm=norm, vmin=None, vmax=None,
                     cbar=False, ax=ax)
        ax.plot([0, top], [0, top], "k--", lw=1, label="1:1")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        ax.set_xlabel("observed LAI [m²/m²]")
        ax.set_ylabel("predicted LAI [m²/m²]" if ax is axes[0] else "")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(f"{_set_title(name)}: R² {s['r2']:.3f}\nRMSE {s['rmse']:.3f} LAI ({s[RMSE_NORM]:.3f} "
                     f"LAI/{PAPER_LAI_SCALE:g})\n{s[N_PIXELS]:,} clear pixels", fontsize=9)
    if panels:
        fig.colorbar(plt_cm.ScalarMappable(norm=norm, cmap="mako_r"), ax=list(axes), label="pixels per bin (log)",
                     shrink=0.8)
    fig.suptitle("Predicted vs observed LAI at t, pixels clear at t", fontsize=11)
    return fig


_LONG_COLUMNS = ["model", "kind", "set", "rmse", "rmse_lo", "rmse_hi", "r2", "r2_lo", "r2_hi"]


def _model_colours(models: list[str]) -> dict:
    """One colour per model, the same in every results figure: seaborn's tab10 in the order of the models."""
    import seaborn as sns

    return dict(zip(models, sns.color_palette("tab10", max(len(models), 1))))


def _results_long(table1_long: pd.DataFrame | None, baselines: pd.DataFrame | None) -> pd.DataFrame:
    frames = []
    if table1_long is not None and len(table1_long):
        t = table1_long.copy()
        if "input" in t and "architecture" in t:
            t["model"] = [model_title(i, a) for i, a in zip(t["input"], t["architecture"])]
        else:
            t["model"] = t["row"].map(row_title)
        t["kind"] = "U-Net"
        frames.append(t.reindex(columns=_LONG_COLUMNS))
    if baselines is not None and len(baselines):
        b = baselines.rename(columns={"baseline": "model"}).copy()
        b["kind"] = "baseline"
        frames.append(b.reindex(columns=_LONG_COLUMNS))
    if not frames:
        return pd.DataFrame(columns=_LONG_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def error_by_set(table1_long: pd.DataFrame | None, baselines: pd.DataFrame | None = None,
                 r2_floor: float = -1.0) -> Figure:
    """Grouped bars of RMSE (LAI units) and R2 per test set, for each Table 1 row and each baseline, with their 95 %
    bootstrap intervals (``*_lo``, ``*_hi`` columns) as error bars; the U-Nets in the colours of Fig. 5's rows.

    R2 below ``r2_floor`` is clipped and printed on the bar.
    """
    import seaborn as sns

    df = _results_long(table1_long, baselines)
    if df[["rmse", "r2"]].notna().to_numpy().sum() == 0:
        return note_figure("Error by test set", "no metrics available (no model evaluated, or empty test sets)")
    sets = _set_order(df["set"])
    df["set title"] = df["set"].map(_set_title)
    models = list(dict.fromkeys(df["model"]))
    palette = _model_colours(models)
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
        for bar_container, model in zip(list(ax.containers), models):  # a copy: error bars add containers
            baseline = df.loc[df["model"] == model, "kind"].iloc[0] == "baseline"
            for bar, title in zip(bar_container, order):
                if baseline:
                    bar.set_hatch("//")
                    bar.set_edgecolor("0.3")
                rec = df[(df["model"] == model) & (df["set title"] == title)]
                if len(rec) and np.isfinite(rec[[f"{col}_lo", f"{col}_hi"]].to_numpy(float)).all():
                    lo, hi = (float(rec[f"{col}_{k}"].iloc[0]) for k in ("lo", "hi"))
                    if col == "r2" and lo < r2_floor:
                        continue  # a clipped bar: its value is printed instead
                    x, value = bar.get_x() + bar.get_width() / 2, float(rec[col].iloc[0])
                    ax.errorbar(x, value, yerr=[[value - lo], [hi - value]], fmt="none", ecolor="0.15", elinewidth=0.8,
                                capsize=1.5)
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
    bare = df[df["rmse"].notna() & ~np.isfinite(df[["rmse_lo", "rmse_hi"]].to_numpy(float)).all(axis=1)]
    why = f"; none where fewer than {MIN_SCORED_TRIPLETS} triplets hold a scored pixel" if len(bare) else ""
    fig.suptitle(f"Error per test set: Table 1 rows (U-Nets) and baselines, 95 % bootstrap intervals{why}", fontsize=11)
    return fig


def table1_comparison(table1_long: pd.DataFrame | None, data_kind: str = "simulated") -> Figure:
    """Our Table 1 against the paper's: RMSE (LAI/5 units) and R2 per row and test set, with the 1:1 line.

    The data differ (``data_kind`` here, the authors' real data there): compare patterns, not values.
    """
    import seaborn as sns

    if table1_long is None or not len(table1_long) or table1_long[[RMSE_NORM, "r2"]].notna().to_numpy().sum() == 0:
        return note_figure("Table 1: ours vs paper", "no Table 1 metrics available")
    df = table1_long.copy()
    if "input" in df and "architecture" in df:
        df["model"] = [model_title(i, a) for i, a in zip(df["input"], df["architecture"])]
    else:
        df["model"] = df["row"].map(row_title)
    df["test set"] = df["set"].map(_set_title)
    models = list(dict.fromkeys(df["model"]))
    palette = _model_colours(models)
    markers = dict(zip((SET_TITLES[s] for s in TEST_SETS), ("o", "s", "^")))
    fig = _figure(8.6, 5.7)
    axes = fig.subplots(1, 2)
    for ax, ours, paper, label in ((axes[0], RMSE_NORM, "paper_rmse", "RMSE [LAI/5]"),
                                   (axes[1], "r2", "paper_r2", "R²")):
        data = df[df[ours].notna()]
        if data.empty:
            _note(ax, f"no {label} values", title=label)
            continue
        sns.scatterplot(data, x=paper, y=ours, hue="model", hue_order=models, style="test set",
                        style_order=[k for k in markers if k in set(df["test set"])], markers=markers,
                        palette=palette, s=60, alpha=0.75, edgecolor="k", linewidth=0.5, ax=ax,
                        legend=False)  # translucent, outlined: markers that coincide stay visible
        vals = np.concatenate([data[ours].to_numpy(float), data[paper].to_numpy(float)])
        lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
        pad = 0.05 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="_1:1")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.set_xlabel(f"paper: {label}")
        ax.set_ylabel(f"this run: {label}")
        better = "below" if ours == RMSE_NORM else "above"
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


def reliability_diagram(curves: pd.DataFrame | None) -> Figure:
    """Observed against nominal coverage of the central intervals of the predicted spread, per test set,
    raw (dashed) and recalibrated on validation (solid); the diagonal is perfect calibration."""
    import seaborn as sns

    if curves is None or curves.empty:
        return note_figure("Reliability of the predicted spread", "no model with a spread head was evaluated")
    fig = _figure(5.2, 4.6)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    colors = dict(zip(_set_order(curves["set"].unique()), sns.color_palette("colorblind")))
    for (name, version), c in curves.groupby(["set", "sd"], sort=False):
        ax.plot(c["nominal"], c["observed"], marker="o", ms=3, color=colors[name],
                ls="-" if version == "recalibrated" else "--", label=f"{_set_title(name)}, {version}")
    ax.set(xlabel="nominal coverage of the central interval", ylabel="observed coverage", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, loc="upper left")
    return fig
