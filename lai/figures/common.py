"""The conventions all figures share (colours, LAI range, the SCL legend, notes for empty panels),
:func:`save`, and helpers that read the cube's coordinates."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt  # noqa: F401 - activates Jupyter's inline display of returned figures
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lai.config import EncodingConfig
from lai.facts import POLARISATIONS, SET_TITLES, SPLIT_LABELS, TEST_SETS, TIME_LABELS
from lai.io import atomic_path
from lai.lnb import FIRST_DATE
from lai.pixels import SCL_MAX, SCL_NAMES, scl_lookup

LAI_CMAP = "YlGn"
LAI_VMAX = 6.0
LAI_UNITS = "LAI [m²/m²]"
ERROR_CMAP = "RdBu_r"
DB_CMAP = "gray"
DPI = 150

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
SCL_CMAP = mcolors.ListedColormap([SCL_COLORS[k] for k in range(SCL_MAX + 1)], name="scl")
SCL_NORM = mcolors.BoundaryNorm(np.arange(-0.5, SCL_MAX + 1.5, 1.0), SCL_CMAP.N)


# --------------------------------------------------------------------------- helpers


def lai_cmap():
    """The LAI colormap, with missing values (NaN) in light grey."""
    cmap = matplotlib.colormaps[LAI_CMAP].copy()
    cmap.set_bad("#d9d9d9")
    return cmap


def scl_legend_handles(classes: Iterable[int] | None = None) -> list[Patch]:
    classes = range(SCL_MAX + 1) if classes is None else sorted(set(int(c) for c in classes))
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
    return [pd.Timestamp(FIRST_DATE) + pd.Timedelta(days=int(v)) for v in values]


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
    return _in_order(present, SPLIT_LABELS)


def _valid_lut(valid_classes) -> np.ndarray:
    return scl_lookup(valid_classes if valid_classes is not None else EncodingConfig().valid_classes)


def _set_title(name: str) -> str:
    return {**SET_TITLES, "all": "All"}.get(name, str(name).replace("_", " "))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])
