"""The one rule for input pixel values, shared by the LNB folder reader (``lai validate``, ``lai cube``,
``lai predict --data``), scene windows (``lai predict --scene``) and ``lai preprocess``.

:func:`check_stored` refuses what cannot be read as stored (dtype, declared scale or offset);
:func:`masked_as_missing` and :func:`nodata_as_nan` make masked and nodata pixels missing;
:func:`clean_pixels` checks SCL classes, LAI range (SNAP's convention) and S1 dB range, refusing a file
whose units are wrong and counting the pixels it makes missing (:class:`PixelFixes`). Every problem is a
:class:`lai.errors.LNBError` naming the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lai.errors import LNBError
from lai.facts import POLARISATIONS, S1_DB_RANGE

SCL_MAX = 11
SCL_NAMES = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area / cast shadow",
    3: "cloud shadow",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
CLOUD_CLASSES = (8, 9, 10)
CLOUD_SHADOW_CLASS = 3
LAI_RANGE = (0.0, 15.0)  # plausible LAI (m2/m2)


def scl_lookup(classes) -> np.ndarray:
    """A table over every byte value, True at the SCL classes ``classes``: ``scl_lookup(classes)[scl]`` is the mask of
    the pixels whose SCL class is one of them (``scl``: integers 0..255)."""
    lut = np.zeros(256, bool)
    lut[list(classes)] = True
    return lut


def polarisation_order(descriptions, path: Path) -> tuple[int, int]:
    """The band indices of VV and VH in a two-band S1 raster ``path`` from its bands' ``descriptions``: by the names
    where a band names one of them (SNAP's exports list Sigma0_VH before Sigma0_VV; a single named band fixes the
    other's), else VV first (docs/manifest.md). :class:`LNBError` when the descriptions name one polarisation twice
    (which band is VH?) or a band HH or HV (another acquisition mode)."""
    names = named_polarisations(descriptions, path)
    named = [n for n in names if n is not None]
    if len(set(named)) < len(named):
        raise LNBError(path, f"its band descriptions {list(descriptions)} name {named[0]} twice; expected one band VV "
                             "and one VH (or descriptions that name neither: then VV is band 1)")
    if len(named) == 1:  # one band names its polarisation: the other band holds the other one
        first = named[0] if names[0] is not None else next(pol for pol in POLARISATIONS if pol != named[0])
        return (0, 1) if first == POLARISATIONS[0] else (1, 0)
    return tuple(names.index(pol) for pol in POLARISATIONS) if named else (0, 1)


def check_polarisation(descriptions, path: Path, pol: str) -> None:
    """A one-band S1 raster ``path`` given as polarisation ``pol`` (a manifest's ``vv`` or ``vh``): :class:`LNBError`
    when its band description names the other one (the two files swapped) or HH / HV; a description that names
    none is taken at its word."""
    (named,) = named_polarisations(descriptions[:1], path)
    if named is not None and named != pol:
        raise LNBError(path, f"is given as {pol.lower()}, but its band description {descriptions[0]!r} names {named}: "
                             "are vv and vh swapped in the manifest?")


def named_polarisations(descriptions, path: Path) -> list[str | None]:
    """The polarisation (VV or VH) each band's description names, None where it names neither; :class:`LNBError`
    naming ``path`` where one names HH or HV instead (another acquisition mode)."""
    texts = [(text or "").upper() for text in descriptions]
    names = [next((pol for pol in POLARISATIONS if pol in text), None) for text in texts]
    other = [m.group(1) for text, name in zip(texts, names) for m in [_OTHER_POLARISATION.search(text)] if m and not name]
    if other:
        raise LNBError(path, f"its band descriptions {list(descriptions)} name the polarisation {other[0]}; lai reads "
                             "Sentinel-1 VV and VH (dual-polarisation IW), one band each")
    return names


_OTHER_POLARISATION = re.compile(r"(?<![A-Z])(HH|HV)(?![A-Z])")  # polarisations of other modes, as a word


def check_stored(src, path: Path, kinds: str, expected: str) -> None:
    """Refuse pixels that cannot be read as stored, for the folder reader and scenes alike (:class:`LNBError` naming
    ``path``): a dtype whose kind is not one of ``kinds`` (numpy kinds: "f" float, "i" and "u" integer; complex is
    never read), and a declared scale or offset (the values would be off by it: 10 read for LAI 1.0)."""
    dtype = np.dtype(src.dtypes[0])
    if dtype.kind not in kinds:
        raise LNBError(path, f"has dtype {dtype}; expected {expected}")
    scaled = [(b, s, o) for b, s, o in zip(src.indexes, src.scales, src.offsets) if (s, o) != (1, 0)]
    if scaled:
        b, s, o = scaled[0]
        raise LNBError(path, f"band {b} declares scale {s:g} / offset {o:g}; lai reads values as stored: write it "
                             "unscaled (gdal_translate -unscale)")


def masked_as_missing(data: np.ma.MaskedArray) -> np.ndarray:
    """A masked read (``src.read(masked=True)``: GDAL masks a declared nodata value, a mask band or alpha, and
    outside the raster in a boundless read) as a plain array: masked pixels NaN (missing) in float data, 0 in
    integer data (SCL class 0, no data); never a value made up."""
    return np.ma.filled(data, np.nan if data.dtype.kind == "f" else 0)


F32_MAX = float(np.finfo(np.float32).max)  # lai stores pixels as float32


def check_float32(data: np.ndarray, file) -> np.ndarray:
    """``data`` (read from ``file``, masked or not) unchanged; :class:`LNBError` naming ``file`` and the value where a finite value lies
    beyond float32's range: no LAI, SCL or dB value does (an undeclared nodata value), and the cast would make it inf."""
    if data.dtype.kind == "f" and data.dtype.itemsize > 4:
        values = np.ma.filled(data, np.nan)  # a masked pixel (a declared nodata) holds no value
        big = np.isfinite(values) & (np.abs(values) > F32_MAX)
        if big.any():
            worst = values[big].flat[np.argmax(np.abs(values[big]))]
            raise LNBError(file, f"holds values beyond the float32 range (±{F32_MAX:.1e}) lai stores pixels in, such as "
                                 f"{worst:g} (an undeclared nodata value? declare it)")
    return data


def nodata_as_nan(data: np.ndarray, nodata, joint: bool = False) -> np.ndarray:
    """Float ``data`` with its declared ``nodata`` value made NaN (missing data, not a value), in place; ``joint``: a
    pixel only where every band (the first axis) holds it."""
    if nodata is not None and data.dtype.kind == "f":
        if joint:
            data[:, (data == nodata).all(axis=0)] = np.nan
        else:
            data[data == nodata] = np.nan
    return data


def _share(n: int, of: int) -> str:
    return f"{n} of {of} pixel(s), {100 * n / max(of, 1):.1f} %"


@dataclass
class PixelFixes:
    """What :func:`clean_pixels` changed, as masks over (time, y, x): count them where wanted."""

    lai_snapped: np.ndarray  # usable LAI in [-0.2, 0) set to 0 (SNAP's convention)
    lai_masked: np.ndarray  # usable LAI outside [-0.2, 15] or NaN: set to NaN and SCL 0 (no data)
    s1_masked: np.ndarray  # backscatter outside the dB range or inf (either polarisation), or 0 in both: set to NaN

    def counts(self, rows: slice = slice(None), cols: slice = slice(None)) -> dict[str, int]:
        """Pixel counts of each fix (summed over the dates), within ``rows`` x ``cols``."""
        return {k: int(getattr(self, k)[:, rows, cols].sum()) for k in ("lai_snapped", "lai_masked", "s1_masked")}


PIXEL_FIX_NOTES = {
    "lai_snapped": "usable S2 LAI pixels in [-0.2, 0) set to 0 (SNAP's convention)",
    "lai_masked": "usable S2 LAI pixels outside [-0.2, 15] or NaN, treated as missing (SCL 0)",
    "s1_masked": "S1 pixels with a backscatter value outside the plausible dB range (or inf), or exactly 0 dB in both "
                 "VV and VH (a fill value), treated as missing",
}


def pixel_fix_lines(counts: dict[str, int], indent: str = "") -> list[str]:
    """One line per non-zero count of :func:`clean_pixels`' fixes."""
    return [f"{indent}{counts[k]} {PIXEL_FIX_NOTES[k]}" for k in PIXEL_FIX_NOTES if counts.get(k)]


# S1 scene rasters (lai preprocess, --scene): an exact 0 is no data: GRD products' border outside the swath,
# undeclared in many exports; resampled as a value it became 0 dB, the brightest input, along the border. In dB, a
# two-band raster keeps 0 dB as a value in one polarisation alone (prepared data clipped to [-30, 0] dB hold it in
# VV), as the tiles of an LNB folder do (:func:`clean_pixels`); a one-band raster cannot tell, and its 0 is no data.
S1_SCENE_NODATA = 0.0
S1_MISSING_MEANING = ("S1 pixels without a backscatter value, counted per date (NaN, declared nodata, 0 in both "
                      "polarisations, or in a one-band or linear-power scene raster, a negative linear power, outside "
                      "the raster, or masked as out of range): missing radar")
MAX_BAD_SHARE = 0.05  # a file is refused when more than this share of its checked pixels is out of range
LAI_SNAP_TOLERANCE = 0.2  # SNAP writes network outputs in [-0.2, 0) as 0
LINEAR_SHARE = 0.5  # S1 is linear power, not dB, when more than this share of its finite values lies in [0, 1]


def _extreme(values: np.ndarray) -> float | None:
    """The value of ``values`` farthest from 0 (inf included), None where all are NaN."""
    known = values[~np.isnan(values)]
    return float(known.flat[np.argmax(np.abs(known))]) if known.size else None


def _range_error(kind: str, file, bad: int, checked: int, worst: float | None, valid_classes) -> LNBError:
    """The refusal of a file (``kind`` "lai" or "s1") with ``bad`` of its ``checked`` values out of range."""
    if kind == "s1":
        why = ("10*log10 of 0, an undeclared nodata: declare -inf as the raster's nodata or write NaN there, which "
               "lai reads as missing radar" if worst == -np.inf else "wrong units, or undeclared nodata?")
        return LNBError(file, f"has {_share(bad, checked)} of its backscatter values outside the plausible range "
                              f"[{S1_DB_RANGE[0]:g}, {S1_DB_RANGE[1]:g}] dB: values such as {worst:g} ({why})")
    low, high = LAI_RANGE
    return LNBError(file, f"has {_share(bad, checked)} of its usable pixels (SCL {list(valid_classes)}) outside the "
                          f"plausible LAI range [{low:g}, {high:g}]: values such as {worst:g} (wrong units, or "
                          "undeclared nodata?)")


@dataclass
class BadPixelTally:
    """Out-of-range pixels per file, summed over the windows a scene is read by, so that the 5 % rule
    (:data:`MAX_BAD_SHARE`) judges each file whole, as it judges a tile, whatever the window size."""

    counts: dict = field(default_factory=dict)  # (kind, file, date) -> [bad, checked, worst value or None]

    def add(self, kind: str, file, date: int, bad: int, checked: int, worst: float | None) -> None:
        """Count one window of ``file`` read as date ``date`` (a file read for several dates is judged per date)."""
        entry = self.counts.setdefault((kind, file, date), [0, 0, None])
        entry[0] += bad
        entry[1] += checked
        if worst is not None and (entry[2] is None or abs(worst) > abs(entry[2])):
            entry[2] = worst

    def check(self, valid_classes, most: int | None = None) -> None:
        """:class:`LNBError` naming the first file with more than :data:`MAX_BAD_SHARE` of its checked pixels out of
        range; with ``most`` (the pixels of a file) before all are read: of ``most``, which no later window changes."""
        for (kind, file, _), (bad, checked, worst) in self.counts.items():
            whole = checked if most is None else most * (2 if kind == "s1" else 1)  # S1: two polarisations
            if bad > MAX_BAD_SHARE * max(whole, 1):
                raise _range_error(kind, file, bad, checked, worst, valid_classes)


def clean_pixels(s1: np.ndarray, lai: np.ndarray, scl: np.ndarray, valid_classes, files,
                 tally: BadPixelTally | None = None, counted: tuple[slice, slice] = (slice(None), slice(None))
                 ) -> tuple[np.ndarray, PixelFixes]:
    """The one rule for pixel values, for folders, cubes, predictions and scenes; arrays time first.

    - SCL must hold classes 0..11 (checked before any cast); returned as uint8.
    - LAI is checked only where the SCL marks the pixel usable (``valid_classes``): elsewhere the model
      masks it anyway, so its values are kept as they are. On usable pixels, SNAP's convention: values in
      [-0.2, 0) become 0; values below -0.2, above ``LAI_RANGE``'s 15, or NaN become missing (NaN, SCL 0).
    - S1 in dB: NaN is missing radar; values outside ``S1_DB_RANGE`` (inf included) become NaN too, and so
      does a pixel of exactly 0 dB in both polarisations (a fill value: data clipped to [-30, 0] dB reach 0 in
      VV alone, VH stays about 10 dB lower), counted as a fix but not against the file; a file with most of its
      other values (over :data:`LINEAR_SHARE`) in [0, 1] is linear power and refused (dB: medians about -10 to -20).
    - A file is refused (:class:`LNBError` naming it) when more than :data:`MAX_BAD_SHARE` of its checked
      pixels are out of range: the units are wrong, not a few pixels (NaN and declared nodata are missing
      values, counted as fixes but not against the file). With a ``tally`` (a file read by windows)
      the pixels of ``counted`` (rows, columns: those no other window counts) are added to it instead, and
      :meth:`BadPixelTally.check` judges each file once all its windows are read.

    ``files``: per date, the (s1, lai, scl) file names that errors name. ``s1`` and ``lai`` are changed
    in place; returns (scl as uint8, :class:`PixelFixes`).
    """
    low, high = LAI_RANGE
    valid_lut = scl_lookup(valid_classes)
    scl_out = np.empty(scl.shape, np.uint8)
    fixes = PixelFixes(*(np.zeros(lai.shape, bool) for _ in range(3)))
    rows, cols = counted

    def judge(kind: str, file, date: int, bad: np.ndarray, checked: np.ndarray, values: np.ndarray) -> None:
        bad = bad[..., rows, cols]
        n_bad, n_checked = int(bad.sum()), int(checked[..., rows, cols].sum())
        worst = _extreme(values[..., rows, cols][bad]) if n_bad else None  # the example an error names
        if tally is not None:
            tally.add(kind, file, date, n_bad, n_checked, worst)
        elif n_bad > MAX_BAD_SHARE * max(n_checked, 1):
            raise _range_error(kind, file, n_bad, n_checked, worst, valid_classes)

    for k, (s1_file, lai_file, scl_file) in enumerate(files):
        if scl.dtype.kind == "f":  # a float raster read as SCL: classes are whole numbers (NaN: no data, class 0)
            fractional = np.isfinite(scl[k]) & (scl[k] != np.round(scl[k]))
            if fractional.any():
                raise LNBError(scl_file, f"holds fractional SCL value(s) such as {float(scl[k][fractional][0]):g}; "
                                         "expected classes 0..11 (is it the scene classification raster?)")
        bad_scl = (scl[k] < 0) | (scl[k] > SCL_MAX)
        if bad_scl.any():
            shown = [int(v) if float(v).is_integer() else float(v) for v in np.unique(scl[k][bad_scl])[:5]]
            raise LNBError(scl_file, f"holds SCL value(s) {shown} outside 0..11")
        scl_out[k] = scl[k]
        usable = valid_lut[scl_out[k]]
        values = lai[k]
        with np.errstate(invalid="ignore"):
            snapped = usable & (values >= low - LAI_SNAP_TOLERANCE) & (values < low)
            masked = usable & ~((values >= low - LAI_SNAP_TOLERANCE) & (values <= high))
        judge("lai", lai_file, k, masked & ~np.isnan(values), usable, values)  # NaN (nodata) is missing, not units
        values[snapped] = low
        values[masked] = np.nan
        scl_out[k][masked] = 0
        fixes.lai_snapped[k], fixes.lai_masked[k] = snapped, masked
        fill = (s1[k] == 0).all(axis=0)  # 0 dB in VV and VH at once: a fill value (a clip at 0 dB reaches VV alone)
        s1[k][:, fill] = np.nan
        present = ~np.isnan(s1[k])  # NaN: missing radar (swath edge, nodata)
        for band, pol in enumerate(POLARISATIONS):  # each band alone: VH linear beside VV in dB is half the values
            finite = s1[k][band][np.isfinite(s1[k][band])]
            in_unit = np.count_nonzero((finite >= 0) & (finite <= 1))
            if in_unit > LINEAR_SHARE * finite.size:  # most values, so that a few bright pixels do not hide it
                share = ("every backscatter value", f"max {finite.max():g}") if in_unit == finite.size else \
                    (f"{100 * in_unit / finite.size:.0f} % of its backscatter values", f"median {np.median(finite):g}")
                raise LNBError(s1_file, f"has {share[0]} of {pol} in [0, 1] ({share[1]}): linear power, not dB; "
                                        "convert with 10*log10 (or an undeclared nodata 0: declare it)")
        with np.errstate(invalid="ignore"):
            out = present & ~((s1[k] >= S1_DB_RANGE[0]) & (s1[k] <= S1_DB_RANGE[1]))
        judge("s1", s1_file, k, out, present, s1[k])
        s1[k][out] = np.nan
        fixes.s1_masked[k] = out.any(axis=0) | fill
    return scl_out, fixes
