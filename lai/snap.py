"""LAI from Sentinel-2 L2A reflectances: the SNAP biophysical processor's neural network.

The network maps eight L2A surface reflectances (B3, B4, B5, B6, B7, B8A, B11, B12) and the cosines
of the view zenith, sun zenith and relative azimuth angles to LAI: each input is scaled to [-1, 1]
with fixed bounds, then one hidden layer of tansig neurons and a linear output, scaled back from
[-1, 1] to LAI. Two versions:

* **2_1, built in** (:data:`BUILTIN`): the network published with its ATBD (Weiss, M. and Baret, F.,
  "S2ToolBox Level 2 products: LAI, FAPAR, FCOVER", version 1.1, INRA, 2016,
  https://step.esa.int/docs/extra/ATBD_S2ToolBox_L2B_V1.1.pdf), as transcribed in sentinel-hub
  custom-scripts, ``sentinel-2/lai/script.js`` (that script divides its output by 3 for display, which
  is not done here). One network for every platform.
* **3_0, today's SNAP** (:func:`read_auxdata`): one network per platform (S2A, S2B), read at run time from
  the user's SNAP auxdata folder (``lai preprocess --snap-auxdata PATH``), so that no GPL-3.0 numbers
  ship with lai. s2tbx's 3_0 has no network for S2C or S2D: those are refused unless the folder holds one.

:func:`snap_product` reproduces the processor's output and its flags (:data:`FLAGS`, SNAP's bit order):
input outside the network's definition domain (per-band bounds, then the grid of the ATBD's convex
hull, where the auxdata has it), output within the tolerance below the minimum (set to the minimum) or
above the maximum (set to the maximum), output beyond the tolerance (kept, flagged).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BANDS = ("B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
VALID_RANGE = (0.0, 8.0)  # LAI output domain of the processor (both versions)
FLAGS = ("input_out_of_range", "output_thresholded_to_min", "output_thresholded_to_max", "output_too_low",
         "output_too_high")  # bit k of the flag band is FLAGS[k], as in SNAP's BiophysicalFlag
SNAP_VERSION = "3_0"
PLATFORMS = ("S2A", "S2B", "S2C", "S2D")  # Sentinel-2 units a manifest may name
MIN_SUN_ZENITH = 10.0  # degrees: the sun is never closer to the zenith at Sentinel-2's 10:30 overpass
MAX_VIEW_ZENITH = 20.0  # degrees: Sentinel-2 views within about 12 degrees of nadir


@dataclass(frozen=True)
class Network:
    """One SNAP LAI network: input bounds, weights, output bounds, extreme cases and definition domain."""

    name: str
    normalisation: np.ndarray  # (11, 2): (min, max) mapping each input to [-1, 1]
    w1: np.ndarray  # (hidden, 11)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden,)
    b2: float
    denormalisation: tuple[float, float]  # output [-1, 1] -> LAI
    extreme: tuple[float, float, float]  # (tolerance, output min, output max)
    domain_minmax: np.ndarray | None = None  # (2, 8): band min and max of the definition domain
    domain_grid: np.ndarray | None = None  # sorted keys of the grid cells inside the domain (see _grid_keys)


BUILTIN = Network(
    name="SNAP 2_1 (built in; Weiss and Baret, ATBD 1.1)",
    normalisation=np.array([
        (0.0, 0.253061520471542), (0.0, 0.290393577911328), (0.0, 0.305398915248555),
        (0.006637972542253, 0.608900395797889), (0.013972727018939, 0.753827384322927),
        (0.026690138082061, 0.782011770669178), (0.016388074192258, 0.493761397883092),
        (0.0, 0.493025984460231), (0.918595400582046, 1.0), (0.342022871159208, 0.936206429175402),
        (-1.0, 1.0),  # cos(relative azimuth): not scaled
    ]),
    w1=np.array([
        [-0.023406878966470, 0.921655164636366, 0.135576544080099, -1.938331472397950, -3.342495816122680,
         0.902277648009576, 0.205363538258614, -0.040607844721716, -0.083196409727092, 0.260029270773809,
         0.284761567218845],
        [-0.132555480856684, -0.139574837333540, -1.014606016898920, -1.330890038649270, 0.031730624503341,
         -1.433583541317050, -0.959637898574699, 1.133115706551000, 0.216603876541632, 0.410652303762839,
         0.064760155543506],
        [0.086015977724868, 0.616648776881434, 0.678003876446556, 0.141102398644968, -0.096682206883546,
         -1.128832638862200, 0.302189102741375, 0.434494937299725, -0.021903699490589, -0.228492476802263,
         -0.039460537589826],
        [-0.109366593670404, -0.071046262972729, 0.064582411478320, 2.906325236823160, -0.673873108979163,
         -3.838051868280840, 1.695979344531530, 0.046950296081713, -0.049709652688365, 0.021829545430994,
         0.057483827104091],
        [-0.089939416159969, 0.175395483106147, -0.081847329172620, 2.219895367487790, 1.713873975136850,
         0.713069186099534, 0.138970813499201, -0.060771761518025, 0.124263341255473, 0.210086140404351,
         -0.183878138700341],
    ]),
    b1=np.array([4.96238030555279, 1.416008443981500, 1.075897047213310, 1.533988264655420, 3.024115930757230]),
    w2=np.array([-1.500135489728730, -0.096283269121503, -0.194935930577094, -0.352305895755591,
                 0.075107415847473]),
    b2=1.096963107077220,
    denormalisation=(0.000319182538301, 14.4675094548151),
    extreme=(0.2, *VALID_RANGE),  # the ATBD's output domain [0, 8] and its tolerance
)


@dataclass(frozen=True)
class Angles:
    """Mean acquisition geometry of a scene, in degrees (from the L2A metadata, MTD_TL.xml)."""

    view_zenith: float
    sun_zenith: float
    relative_azimuth: float  # sun azimuth minus view azimuth

    def check(self) -> None:
        for name in ("view_zenith", "sun_zenith", "relative_azimuth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"angle {name} must be a finite number of degrees, got {value!r}")
        if not 0 <= self.view_zenith < MAX_VIEW_ZENITH:
            raise ValueError(f"angle view_zenith must lie in [0, {MAX_VIEW_ZENITH:g}) degrees (Sentinel-2 views within "
                             f"about 12 degrees of nadir), got {self.view_zenith}")
        if not MIN_SUN_ZENITH <= self.sun_zenith < 90:
            hint = (" (it looks like radians or a cosine: give degrees)" if 0 <= self.sun_zenith < MIN_SUN_ZENITH
                    else "")
            raise ValueError(f"angle sun_zenith must lie in [{MIN_SUN_ZENITH:g}, 90) degrees at Sentinel-2's overpass, "
                             f"got {self.sun_zenith}{hint}")
        if not -360 <= self.relative_azimuth <= 360:
            raise ValueError(f"angle relative_azimuth must lie in [-360, 360] degrees, got {self.relative_azimuth}")


def _grid_keys(cells: np.ndarray) -> np.ndarray:
    """One integer per grid cell (rows of 8 indices in 0..15), for membership tests."""
    return (cells.astype(np.int64) * (16 ** np.arange(cells.shape[-1], dtype=np.int64))).sum(axis=-1)


def _inputs(reflectance: np.ndarray, angles: Angles) -> np.ndarray:
    angles.check()
    refl = np.asarray(reflectance, np.float64)
    if refl.ndim < 1 or refl.shape[0] != len(BANDS):
        raise ValueError(f"reflectance must have {len(BANDS)} bands first ({', '.join(BANDS)}), got shape {refl.shape}")
    x = np.empty((11, *refl.shape[1:]))
    x[:8] = refl
    x[8:] = np.cos(np.deg2rad([angles.view_zenith, angles.sun_zenith, angles.relative_azimuth])).reshape(
        3, *([1] * (refl.ndim - 1)))
    return x


def _forward(x: np.ndarray, net: Network) -> np.ndarray:
    per_input = (-1, *([1] * (x.ndim - 1)))
    lo, hi = net.normalisation[:, 0].reshape(per_input), net.normalisation[:, 1].reshape(per_input)
    hidden = np.tanh(np.tensordot(net.w1, 2 * (x - lo) / (hi - lo) - 1, axes=1) + net.b1.reshape(per_input))
    out = np.tensordot(net.w2, hidden, axes=1) + net.b2
    low, high = net.denormalisation
    return 0.5 * (out + 1) * (high - low) + low


def snap_lai(reflectance: np.ndarray, angles: Angles, network: Network = BUILTIN) -> np.ndarray:
    """The network's raw LAI (m2/m2) from L2A surface reflectance ``(8, ...)`` in :data:`BANDS` order (0..1, not DN).

    Returns float32 of the spatial shape; NaN where any input band is not finite. :func:`snap_product`
    applies the processor's thresholds and flags.
    """
    return _forward(_inputs(reflectance, angles), network).astype(np.float32)


def snap_product(reflectance: np.ndarray, angles: Angles, network: Network = BUILTIN) -> tuple[np.ndarray, np.ndarray]:
    """LAI as SNAP's processor writes it and its flag band (uint8, bit k = :data:`FLAGS` [k]).

    An input outside the definition domain is still computed and only flagged, as SNAP does; NaN input
    gives NaN LAI and no flag.
    """
    return network_product(_inputs(reflectance, angles), network)


def network_product(x: np.ndarray, network: Network) -> tuple[np.ndarray, np.ndarray]:
    """:func:`snap_product` on the network's 11 inputs ``(11, ...)``: 8 reflectances, then the cosines of the view
    zenith, sun zenith and relative azimuth (the layout of SNAP's test cases)."""
    lai = _forward(x, network)
    finite = np.isfinite(x[:8]).all(axis=0)
    flags = np.zeros(lai.shape, np.uint8)
    if network.domain_minmax is not None:
        lo = network.domain_minmax[0].reshape(-1, *([1] * (x.ndim - 1)))
        hi = network.domain_minmax[1].reshape(-1, *([1] * (x.ndim - 1)))
        with np.errstate(invalid="ignore"):
            outside = ((x[:8] < lo) | (x[:8] > hi)).any(axis=0)
            if network.domain_grid is not None:
                cells = np.floor(10 * (np.where(finite, x[:8], lo) - lo) / (hi - lo) + 1).clip(0, 15)
                outside |= ~np.isin(_grid_keys(np.moveaxis(cells, 0, -1)), network.domain_grid)
        flags[outside & finite] |= 1
    lai, extreme_flags = threshold_output(lai, network.extreme)
    return lai, flags | extreme_flags


def threshold_output(lai: np.ndarray, extreme: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The processor's handling of extreme outputs, ``extreme`` = (tolerance, min, max), with its strict
    inequalities: within the tolerance below min (or above max) set to the bound and flagged thresholded, beyond
    it kept and flagged too low (too high); a value exactly at a bound, or exactly one tolerance beyond it, is
    kept without a flag. Returns float32 LAI and the flag bits 1-4 (:data:`FLAGS`)."""
    tolerance, low, high = extreme
    with np.errstate(invalid="ignore"):
        masks = (((lai > low - tolerance) & (lai < low)), ((lai > high) & (lai < high + tolerance)),
                 lai < low - tolerance, lai > high + tolerance)
    flags = np.zeros(np.shape(lai), np.uint8)
    for bit, mask in enumerate(masks, start=1):
        flags[mask] |= 1 << bit
    lai = np.where(masks[0], low, np.where(masks[1], high, lai))
    return lai.astype(np.float32), flags


def flag_counts(flags: np.ndarray) -> dict[str, int]:
    """How many pixels carry each of :data:`FLAGS`."""
    return {name: int(((flags >> bit) & 1).sum()) for bit, name in enumerate(FLAGS)}


def check_reflectance(reflectance: np.ndarray, scale: float, where: str) -> None:
    """Refuse bands that are not surface reflectance once scaled (``ValueError`` naming ``where`` and the scale).

    Digital numbers left unscaled reach thousands; reflectance scaled twice stays below a few thousandths.
    """
    values = np.asarray(reflectance)[np.isfinite(reflectance)]
    values = values[values != 0]
    if not values.size:
        return
    median, p99 = np.median(values), np.percentile(values, 99)
    if median > 1.5:
        raise ValueError(f"{where}: median reflectance {median:g} after scaling by {scale:g}: the bands look like digital "
                         "numbers; give --reflectance-scale 1e-4 (L2A quantification 10000)")
    if p99 < 0.003:
        raise ValueError(f"{where}: 99 % of reflectances below {p99:.2g} after scaling by {scale:g}: the bands look like "
                         "reflectance already in 0-1; give --reflectance-scale 1")


# --------------------------------------------------------------------------- SNAP 3_0 auxdata

_AUXDATA_FILES = {  # file suffix -> expected shape (None: any number), hidden size h
    "Normalisation": (11, 2), "Denormalisation": (1, 2), "Weights_Layer1_Neurons": ("h", 11),
    "Weights_Layer1_Bias": (1, "h"), "Weights_Layer2_Neurons": (1, "h"), "Weights_Layer2_Bias": (1, 1),
    "ExtremeCases": (1, 3), "DefinitionDomain_MinMax": (2, 8), "DefinitionDomain_Grid": (None, 8),
}
AUXDATA_LAYOUT = f"{SNAP_VERSION}/<S2A|S2B>/LAI/LAI_<Normalisation|Weights_Layer1_Neurons|...>"


def auxdata_folder(path: str | Path, platform: str) -> Path:
    """The folder holding one platform's LAI network in a SNAP auxdata tree: ``path`` may be SNAP's auxdata
    folder (``~/.snap/auxdata``), its ``s2tbx/biophysical`` folder, or a copy of s2tbx's
    ``s2tbx-biophysical/src/main/resources/auxdata``."""
    path = Path(path)
    if platform not in PLATFORMS:
        raise ValueError(f"platform {platform!r} is not a Sentinel-2 unit ({', '.join(PLATFORMS)})")
    for base in (path, path / "s2tbx" / "biophysical"):
        folder = base / SNAP_VERSION / platform / "LAI"
        if folder.is_dir():
            return folder
    if not any((base / SNAP_VERSION).is_dir() for base in (path, path / "s2tbx" / "biophysical")):
        raise FileNotFoundError(f"{path}: no SNAP auxdata folder {SNAP_VERSION}/ here or under s2tbx/biophysical; --snap-auxdata "
                                f"takes SNAP's auxdata folder (e.g. ~/.snap/auxdata) laid out as {AUXDATA_LAYOUT}")
    raise FileNotFoundError(f"{path}: SNAP {SNAP_VERSION} has no LAI network for {platform} here ({SNAP_VERSION}/{platform}/LAI "
                            "missing; s2tbx ships S2A and S2B only): preprocess that date without --snap-auxdata (the built-in "
                            "2_1 network) or give an LAI product")


def _read_table(file: Path, shape: tuple, hidden: int | None) -> np.ndarray:
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing; a SNAP LAI network folder holds LAI_<{'|'.join(_AUXDATA_FILES)}>")
    if file.stat().st_size > 10_000_000:
        raise ValueError(f"{file}: {file.stat().st_size} bytes, too large for a SNAP coefficient table")
    try:
        rows = [[float(v) for v in line.split(",")] for line in file.read_text().splitlines() if line.strip()]
        table = np.array(rows, dtype=np.float64)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{file}: expected lines of comma-separated numbers (SNAP's coefficient format)") from None
    want = tuple(hidden if s == "h" else s for s in shape)
    if table.ndim != 2 or any(w is not None and w != g for w, g in zip(want, table.shape)) or not np.isfinite(table).all():
        raise ValueError(f"{file}: expected a table of {' x '.join('n' if w is None else str(w) for w in want)} finite "
                         f"numbers, got shape {table.shape}")
    return table


def read_auxdata(path: str | Path, platform: str) -> Network:
    """SNAP 3_0's LAI network of ``platform`` (S2A or S2B) from a SNAP auxdata folder (see :func:`auxdata_folder`)."""
    folder = auxdata_folder(path, platform)
    w1 = _read_table(folder / "LAI_Weights_Layer1_Neurons", _AUXDATA_FILES["Weights_Layer1_Neurons"], None)
    t = {name: _read_table(folder / f"LAI_{name}", shape, w1.shape[0]) for name, shape in _AUXDATA_FILES.items()}
    grid = t["DefinitionDomain_Grid"]
    if grid.min() < 0 or grid.max() > 15 or (grid != np.round(grid)).any():
        raise ValueError(f"{folder / 'LAI_DefinitionDomain_Grid'}: expected whole grid indices in 0..15")
    tolerance, low, high = t["ExtremeCases"][0]
    return Network(
        name=f"SNAP {SNAP_VERSION} {platform} ({folder})", normalisation=t["Normalisation"], w1=w1,
        b1=t["Weights_Layer1_Bias"][0], w2=t["Weights_Layer2_Neurons"][0], b2=float(t["Weights_Layer2_Bias"][0, 0]),
        denormalisation=tuple(t["Denormalisation"][0]), extreme=(abs(tolerance), low, high),  # SNAP takes |tolerance|
        domain_minmax=t["DefinitionDomain_MinMax"], domain_grid=np.unique(_grid_keys(grid.astype(np.int64))),
    )
