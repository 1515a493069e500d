"""Read, validate and write the paper's folder layout ("LNB": Leaf Nothing Behind).

::

    <root>/s1/<name>.tiff       2 bands float: VV, VH backscatter in dB
    <root>/s2/<name>.tiff       1 band float: LAI
    <root>/s2-mask/<name>.tiff  1 band uint8: Sen2Cor scene classification (SCL 0..11)
    <root>/image_series.csv     columns "0", "1", "2" = file names at t-2, t-1, t
    <root>/truth/<name>.tiff    optional (simulator only): true LAI of each S2 file, named after it

Every problem raises :class:`LNBError`, whose message names the file (or CSV
row) and what was expected. With ``on_error="skip"`` a bad triplet is instead
recorded as a :class:`Skipped` entry and reported, never dropped silently. The simulator and
preprocessing write the layout with :func:`write_tile` and :func:`write_series`.
"""
from __future__ import annotations

import datetime as dt
import re
import struct
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lai.facts import S1_DB_RANGE
from lai.io import memory_shortfall

S1_DIR, S2_DIR, MASK_DIR, TRUTH_DIR = "s1", "s2", "s2-mask", "truth"
SERIES_CSV = "image_series.csv"
TIME_COLUMNS = ("0", "1", "2")  # t-2, t-1, t
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
LAI_RANGE = (0.0, 15.0)  # plausible LAI (m2/m2)
GRID_INDEX_DTYPE = np.int32  # how the cube stores tile rows, columns and CSV rows


from lai.errors import LNBError  # noqa: E402 - re-exported


def scl_lookup(classes) -> np.ndarray:
    """A table over every byte value, True at the SCL classes ``classes``: ``scl_lookup(classes)[scl]`` is the mask of
    the pixels whose SCL class is one of them (``scl``: integers 0..255)."""
    lut = np.zeros(256, bool)
    lut[list(classes)] = True
    return lut


# dates a cube can store: its time coordinate is datetime64[ns] (pandas.Timestamp.min .. max)
FIRST_DATE, LAST_DATE = dt.date(1678, 1, 1), dt.date(2261, 12, 31)
DATE_RANGE_TEXT = f"lies outside {FIRST_DATE.year}-{LAST_DATE.year}, the dates a cube stores (datetime64[ns])"


def storable_date(date: dt.date) -> bool:
    """Whether the cube's time coordinate can hold ``date`` (:data:`FIRST_DATE` .. :data:`LAST_DATE`)."""
    return FIRST_DATE <= date <= LAST_DATE


@dataclass(frozen=True)
class TileName:
    """All parts of ``<COUNTRY>_<AREA>_<DateFrom>_<DateTo>-<IdxTime>-<n>-<Row>-<Col>.tiff``."""

    country: str
    area: str
    date_from: dt.date
    date_to: dt.date
    time_index: int
    n: int
    row: int
    col: int

    _PATTERN = re.compile(
        r"^(?P<country>[A-Za-z0-9]+)_(?P<area>[A-Za-z0-9_]+?)_(?P<date_from>\d{4}-\d{2}-\d{2})_"
        r"(?P<date_to>\d{4}-\d{2}-\d{2})-(?P<time_index>\d+)-(?P<n>\d+)-(?P<row>\d+)-(?P<col>\d+)\.tiff?$"
    )

    @classmethod
    def parse(cls, name: str) -> TileName:
        match = cls._PATTERN.match(str(name))
        if not match:
            raise LNBError(
                name,
                "file name does not parse; expected <COUNTRY>_<AREA>_<YYYY-MM-DD>_<YYYY-MM-DD>-<IdxTime>-<n>-<Row>-<Col>.tiff",
            )
        g = match.groupdict()
        try:
            dates = dt.date.fromisoformat(g["date_from"]), dt.date.fromisoformat(g["date_to"])
        except ValueError as err:
            raise LNBError(name, f"file name holds an impossible date ({err})") from None
        for date in dates:
            if not storable_date(date):
                raise LNBError(name, f"file name holds the date {date.isoformat()}, which {DATE_RANGE_TEXT}")
        if int(g["time_index"]) > 2:
            raise LNBError(name, f"IdxTime must be 0, 1 or 2 (t-2, t-1, t), got {g['time_index']}")
        limit = np.iinfo(GRID_INDEX_DTYPE).max
        for key in ("n", "row", "col"):
            if int(g[key]) > limit:
                raise LNBError(name, f"{key} {g[key]} exceeds {limit}, the largest index the cube stores ({np.dtype(GRID_INDEX_DTYPE)})")
        return cls(g["country"], g["area"], *dates, *(int(g[k]) for k in ("time_index", "n", "row", "col")))

    def format(self) -> str:
        return (
            f"{self.country}_{self.area}_{self.date_from.isoformat()}_{self.date_to.isoformat()}"
            f"-{self.time_index}-{self.n}-{self.row}-{self.col}.tiff"
        )

    @property
    def region(self) -> str:
        return f"{self.country}_{self.area}"


@dataclass(frozen=True)
class Triplet:
    """One CSV row: three file names (t-2, t-1, t) and their parsed parts."""

    row: int  # 0-based data row of the CSV
    names: tuple[str, str, str]
    parts: tuple[TileName, TileName, TileName]

    @property
    def target(self) -> TileName:
        return self.parts[2]


@dataclass
class Skipped:
    """A triplet left out under ``on_error="skip"``, with the reason."""

    row: int
    file: str
    problem: str


@dataclass
class TripletData:
    """Arrays of one triplet, time first: s1 (3, 2, H, W), lai (3, H, W), scl (3, H, W)."""

    s1: np.ndarray
    lai: np.ndarray
    scl: np.ndarray
    truth: np.ndarray | None = None  # true LAI at t-2, t-1, t (3, H, W), simulator only
    crs: str | None = None
    transform: tuple | None = None
    fixes: dict = field(default_factory=dict)  # pixel counts of lai.lnb.clean_pixels' fixes


@dataclass
class FolderIndex:
    root: Path
    triplets: list[Triplet]
    skipped: list[Skipped] = field(default_factory=list)
    height: int = 0
    width: int = 0
    has_truth: bool = False


def estimate_middle_date(date_from: dt.date, date_to: dt.date, revisit_days: int = 5) -> dt.date:
    """Estimate the t-1 date, which file names do not carry: the revisit-grid date nearest the middle."""
    half = (date_to - date_from).days / 2
    return date_from + dt.timedelta(days=revisit_days * round(half / revisit_days))


# --------------------------------------------------------------------------- CSV


def read_series(root: str | Path) -> list[Triplet]:
    """Parse ``image_series.csv`` and check each row's three names agree with each other."""
    return list(_parse_rows(*_series_table(root)))


def _series_table(root: str | Path) -> tuple[Path, pd.DataFrame]:
    """(path, table) of ``root``'s ``image_series.csv``, its columns checked; rows not parsed yet."""
    root = Path(root)
    if not root.is_dir():
        raise LNBError(root, "LNB folder does not exist (expected a folder with s1/, s2/, s2-mask/ and image_series.csv)")
    csv = root / SERIES_CSV
    if not csv.is_file():
        raise LNBError(csv, "missing; expected a CSV with columns \"0\",\"1\",\"2\" naming the t-2, t-1, t files")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise LNBError(csv, "is empty; expected a header with columns \"0\",\"1\",\"2\" and one triplet per row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise LNBError(csv, f"is malformed ({err})") from None
    missing = [c for c in TIME_COLUMNS if c not in table.columns]
    if missing:
        raise LNBError(csv, f"lacks column(s) {missing}; expected columns \"0\",\"1\",\"2\", found {list(table.columns)}")
    if table.empty:
        raise LNBError(csv, "has a header but no triplet rows")
    return csv, table


def _parse_rows(csv: Path, table: pd.DataFrame) -> Iterator[Triplet]:
    """The table's triplets one by one (a caller that stops at the first bad file never parses the rest)."""
    seen: dict[tuple, int] = {}
    for i, values in enumerate(table[list(TIME_COLUMNS)].itertuples(index=False)):
        where = f"{csv} row {i + 1}"
        names = tuple(str(v).strip() for v in values)
        if any(not n for n in names):
            raise LNBError(where, "has an empty cell; each of columns \"0\",\"1\",\"2\" must name a file")
        if names in seen:
            raise LNBError(where, f"duplicates row {seen[names] + 1} (the same triplet twice)")
        seen[names] = i
        yield Triplet(i, names, _check_triplet_names(where, names))


def _check_triplet_names(where: str, names: tuple[str, ...]) -> tuple[TileName, TileName, TileName]:
    parts = []
    for col, name in zip(TIME_COLUMNS, names):
        try:
            parts.append(TileName.parse(name))
        except LNBError as err:
            raise LNBError(f"{where}, column \"{col}\" ({name})", err.problem) from None
    for k, p in enumerate(parts):
        if p.time_index != k:
            raise LNBError(f"{where} ({names[k]})", f"IdxTime is {p.time_index} but the file sits in column \"{k}\"")
    first = parts[0]
    for name, p in zip(names[1:], parts[1:]):
        if (p.date_from, p.date_to) != (first.date_from, first.date_to):
            raise LNBError(
                f"{where} ({name})",
                f"window dates {p.date_from}_{p.date_to} disagree with {first.date_from}_{first.date_to} of {names[0]}",
            )
        if (p.country, p.area, p.row, p.col) != (first.country, first.area, first.row, first.col):
            raise LNBError(f"{where} ({name})", f"tile {p.region} row {p.row} col {p.col} differs from {names[0]}")
    if first.date_from > first.date_to:
        raise LNBError(f"{where} ({names[0]})", f"window dates reversed: DateFrom {first.date_from} is after DateTo {first.date_to}")
    return tuple(parts)  # type: ignore[return-value]


# --------------------------------------------------------------------------- TIFFs

# (folder, band count, dtype kinds accepted, description)
_LAYERS = {
    S1_DIR: (2, "f", "2 bands (VV, VH) of float dB"),
    S2_DIR: (1, "f", "1 band of float LAI"),
    MASK_DIR: (1, "u", "1 band of uint8 SCL classes"),
    TRUTH_DIR: (1, "f", "1 band of float true LAI"),
}
# memory a triplet takes per pixel while read and cleaned: S1 6 x 4 bytes, LAI and true LAI 3 x 4 each, SCL 3,
# with room for the reader's masks and working copies (checked against the memory available before reading)
TRIPLET_BYTES_PER_PIXEL = 128


def _open(path: Path):
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    if not path.is_file():
        raise LNBError(path, "file named in image_series.csv is missing")
    open(path, "rb").close()  # an unreadable file raises PermissionError naming it (GDAL would say "not a TIFF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as err:
        raise LNBError(path, f"cannot be read as a GeoTIFF (truncated or not a TIFF?): {err}") from None


def read_header(path: Path, layer: str) -> tuple[int, int]:
    """Check band count and dtype without reading pixels; return (height, width)."""
    with _open(path) as src:
        return _check_header(src, path, layer)


def _check_header(src, path: Path, layer: str) -> tuple[int, int]:
    """:func:`read_header`'s checks on an open dataset ``src`` of ``path``."""
    bands, kind, what = _LAYERS[layer]
    if src.count != bands:
        raise LNBError(path, f"has {src.count} band(s); expected {what}")
    check_stored(src, path, kind, what)
    if layer == MASK_DIR and np.dtype(src.dtypes[0]) != np.uint8:
        raise LNBError(path, f"has dtype {src.dtypes[0]}; expected {what}")
    too_big = memory_shortfall(float(src.height) * src.width * TRIPLET_BYTES_PER_PIXEL)
    if too_big:
        raise LNBError(path, f"is {src.height}x{src.width} pixels: one triplet of that size {too_big}; "
                             "cut the scene into tiles (lai preprocess) or predict it by windows (lai predict --scene)")
    return src.height, src.width


def _check_layout(src, path: Path) -> None:
    """Catch TIFF corruptions that GDAL reads without complaint, as different but plausible pixels.

    A damaged bits-per-sample tag, or pixel blocks (strips or tiles) whose offsets point into the
    file header, the image directory (IFD), another block or past the end of the file.
    """
    bits = src.tags(1, ns="IMAGE_STRUCTURE").get("NBITS")
    itembits = 8 * np.dtype(src.dtypes[0]).itemsize
    if bits is not None and int(bits) != itembits:
        raise LNBError(path, f"declares {bits} bits per sample for dtype {src.dtypes[0]} ({itembits} bits): corrupt TIFF header")
    if src.driver != "GTiff":
        return
    with open(path, "rb") as fh:
        head = fh.read(16)
        order = "<" if head[:2] == b"II" else ">"
        big = struct.unpack(order + "H", head[2:4])[0] == 43  # BigTIFF
        ifd = struct.unpack(order + ("Q" if big else "I"), head[8:16] if big else head[4:8])[0]
        fh.seek(ifd)
        raw = fh.read(8 if big else 2)
    entries = struct.unpack(order + ("Q" if big else "H"), raw)[0] if len(raw) == (8 if big else 2) else 0
    reserved = [(0, 16 if big else 8), (ifd, ifd + (8 + 20 * entries + 8 if big else 2 + 12 * entries + 4))]
    size = path.stat().st_size
    (bh, bw), height, width = src.block_shapes[0], src.height, src.width
    separate = src.tags(ns="IMAGE_STRUCTURE").get("INTERLEAVE") == "BAND"
    blocks = []
    for band in src.indexes if separate else src.indexes[:1]:
        for by in range(-(-height // bh)):
            for bx in range(-(-width // bw)):
                offset = src.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=band)
                length = src.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=band)
                if offset and length and int(length):
                    blocks.append((int(offset), int(offset) + int(length)))
    blocks.sort()
    for k, (start, end) in enumerate(blocks):
        if end > size:
            raise LNBError(path, f"is truncated: pixel block at bytes {start}..{end} lies past the end of the file ({size} bytes)")
        if any(start < r_end and end > r_start for r_start, r_end in reserved) or (k and start < blocks[k - 1][1]):
            raise LNBError(path, f"pixel block at bytes {start}..{end} overlaps the TIFF header, its directory or "
                                 "another block: corrupt TIFF")


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


def nodata_as_nan(data: np.ndarray, nodata) -> np.ndarray:
    """Float ``data`` with its declared ``nodata`` value made NaN (missing data, not a value), in place."""
    if nodata is not None and data.dtype.kind == "f":
        data[data == nodata] = np.nan
    return data


def read_tiff(path: Path, layer: str, shape: tuple[int, int] | None = None):
    """Read one TIFF of ``layer`` with header checks; return (array (bands, H, W), crs, transform)."""
    import warnings as _w

    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    with _open(path) as src, _w.catch_warnings():  # one open for the header's checks and the pixels
        _w.simplefilter("ignore", NotGeoreferencedWarning)
        height, width = _check_header(src, path, layer)
        if shape is not None and (height, width) != tuple(shape):
            raise LNBError(path, f"is {height}x{width} pixels; expected {shape[0]}x{shape[1]} like the rest of the dataset")
        _check_layout(src, path)
        try:
            data = masked_as_missing(src.read(masked=True))
        except (RasterioIOError, Exception) as err:  # truncated strips surface here
            raise LNBError(path, f"pixel data cannot be read (truncated or corrupt file?): {err}") from None
        crs = src.crs.to_string() if src.crs else None
        transform = tuple(src.transform)[:6] if not src.transform.is_identity else None
    return data, crs, transform


def _share(n: int, of: int) -> str:
    return f"{n} of {of} pixel(s), {100 * n / max(of, 1):.1f} %"


@dataclass
class PixelFixes:
    """What :func:`clean_pixels` changed, as masks over (time, y, x): count them where wanted."""

    lai_snapped: np.ndarray  # usable LAI in [-0.2, 0) set to 0 (SNAP's convention)
    lai_masked: np.ndarray  # usable LAI outside [-0.2, 15] or NaN: set to NaN and SCL 0 (no data)
    s1_masked: np.ndarray  # backscatter outside the dB range or inf (either polarisation): set to NaN

    def counts(self, rows: slice = slice(None), cols: slice = slice(None)) -> dict[str, int]:
        """Pixel counts of each fix (summed over the dates), within ``rows`` x ``cols``."""
        return {k: int(getattr(self, k)[:, rows, cols].sum()) for k in ("lai_snapped", "lai_masked", "s1_masked")}


PIXEL_FIX_NOTES = {
    "lai_snapped": "usable S2 LAI pixels in [-0.2, 0) set to 0 (SNAP's convention)",
    "lai_masked": "usable S2 LAI pixels outside [-0.2, 15] or NaN, treated as missing (SCL 0)",
    "s1_masked": "S1 pixels with a backscatter value outside the plausible dB range (or inf), treated as missing",
}


def pixel_fix_lines(counts: dict[str, int], indent: str = "") -> list[str]:
    """One line per non-zero count of :func:`clean_pixels`' fixes."""
    return [f"{indent}{counts[k]} {PIXEL_FIX_NOTES[k]}" for k in PIXEL_FIX_NOTES if counts.get(k)]


def no_radar(folder: str | Path, files: int) -> LNBError:
    """The error of a dataset none of whose ``files`` S1 files holds a backscatter value (``lai validate`` and
    ``lai cube`` refuse it: NaN is missing radar, allowed per pixel, but S1 rows would train on nothing)."""
    return LNBError(Path(folder) / S1_DIR, f"none of the {files} S1 files of the valid triplets holds a backscatter "
                                           "value (all NaN or nodata): no radar in this dataset")


MAX_BAD_SHARE = 0.05  # a file is refused when more than this share of its checked pixels is out of range
LAI_SNAP_TOLERANCE = 0.2  # SNAP writes network outputs in [-0.2, 0) as 0
LINEAR_SHARE = 0.5  # S1 is linear power, not dB, when more than this share of its finite values lies in [0, 1]


def clean_pixels(s1: np.ndarray, lai: np.ndarray, scl: np.ndarray, valid_classes, files,
                 max_bad_share: float = MAX_BAD_SHARE) -> tuple[np.ndarray, PixelFixes]:
    """The one rule for pixel values, for folders, cubes, predictions and scenes; arrays time first.

    - SCL must hold classes 0..11 (checked before any cast); returned as uint8.
    - LAI is checked only where the SCL marks the pixel usable (``valid_classes``): elsewhere the model
      masks it anyway, so its values are kept as they are. On usable pixels, SNAP's convention: values in
      [-0.2, 0) become 0; values below -0.2, above ``LAI_RANGE``'s 15, or NaN become missing (NaN, SCL 0).
    - S1 in dB: NaN is missing radar; values outside ``S1_DB_RANGE`` (inf included) become NaN too; a
      file with most values (over :data:`LINEAR_SHARE`) in [0, 1] is linear power and refused (dB: medians
      about -10 to -20).
    - A file is refused (:class:`LNBError` naming it) when more than ``max_bad_share`` of its checked
      pixels are out of range: the units are wrong, not a few pixels.

    ``files``: per date, the (s1, lai, scl) file names that errors name. ``s1`` and ``lai`` are changed
    in place; returns (scl as uint8, :class:`PixelFixes`).
    """
    low, high = LAI_RANGE
    valid_lut = scl_lookup(valid_classes)
    scl_out = np.empty(scl.shape, np.uint8)
    fixes = PixelFixes(*(np.zeros(lai.shape, bool) for _ in range(3)))
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
        if masked.sum() > max_bad_share * max(int(usable.sum()), 1):
            worst = values[masked & np.isfinite(values)]
            example = f"values such as {worst.flat[np.argmax(np.abs(worst))]:g}" if worst.size else "NaN/inf (nodata or masked)"
            raise LNBError(lai_file, f"has {_share(int(masked.sum()), int(usable.sum()))} of its usable pixels "
                                     f"(SCL {list(valid_classes)}) outside the plausible LAI range [{low:g}, {high:g}]: "
                                     f"{example} (wrong units, or undeclared nodata?)")
        values[snapped] = low
        values[masked] = np.nan
        scl_out[k][masked] = 0
        fixes.lai_snapped[k], fixes.lai_masked[k] = snapped, masked
        present = ~np.isnan(s1[k])  # NaN: missing radar (swath edge, nodata)
        finite = s1[k][np.isfinite(s1[k])]
        in_unit = np.count_nonzero((finite >= 0) & (finite <= 1))
        if in_unit > LINEAR_SHARE * finite.size:  # most values, so that a few bright pixels do not hide it
            share = ("every backscatter value", f"max {finite.max():g}") if in_unit == finite.size else \
                (f"{100 * in_unit / finite.size:.0f} % of its backscatter values", f"median {np.median(finite):g}")
            raise LNBError(s1_file, f"has {share[0]} in [0, 1] ({share[1]}): linear power, not dB; convert with "
                                    "10*log10 (or an undeclared nodata 0: declare it)")
        with np.errstate(invalid="ignore"):
            out = present & ~((s1[k] >= S1_DB_RANGE[0]) & (s1[k] <= S1_DB_RANGE[1]))
        if out.sum() > max_bad_share * max(int(present.sum()), 1):
            worst = s1[k][out]
            raise LNBError(s1_file, f"has {_share(int(out.sum()), int(present.sum()))} of its backscatter values outside "
                                    f"the plausible range [{S1_DB_RANGE[0]:g}, {S1_DB_RANGE[1]:g}] dB: values such as "
                                    f"{worst.flat[np.argmax(np.abs(worst))]:g} (wrong units, or undeclared nodata?)")
        s1[k][out] = np.nan
        fixes.s1_masked[k] = out.any(axis=0)
    return scl_out, fixes


def read_triplet(
    root: str | Path,
    triplet: Triplet,
    shape: tuple[int, int] | None = None,
    valid_classes=(2, 3, 4, 5, 6),
    with_truth: bool = False,
) -> TripletData:
    """Read and validate the nine TIFFs of one triplet (plus its three truth files if asked)."""
    root = Path(root)
    s1, lai, scl = [], [], []
    crs = transform = None
    for name in triplet.names:
        a, a_crs, a_transform = read_tiff(root / S1_DIR / name, S1_DIR, shape)
        crs, transform = crs or a_crs, transform or a_transform
        shape = a.shape[1:]
        s1.append(a)
        lai.append(read_tiff(root / S2_DIR / name, S2_DIR, shape)[0][0])
        scl.append(read_tiff(root / MASK_DIR / name, MASK_DIR, shape)[0][0])
    s1, lai = np.stack(s1).astype(np.float32), np.stack(lai).astype(np.float32)
    files = [(root / S1_DIR / n, root / S2_DIR / n, root / MASK_DIR / n) for n in triplet.names]
    scl, fixes = clean_pixels(s1, lai, np.stack(scl), valid_classes, files)
    truth = np.stack([read_tiff(root / TRUTH_DIR / name, TRUTH_DIR, shape)[0][0] for name in triplet.names]) if with_truth else None
    return TripletData(s1, lai, scl, truth, crs, transform, fixes.counts())


def read_outcome(root: str | Path, triplet: Triplet, shape: tuple[int, int], valid_classes,
                 with_truth: bool) -> tuple[TripletData | None, tuple[str, str] | None]:
    """:func:`read_triplet` as plain values: (data, None) for a good triplet, (None, (file, problem))
    for a bad one, so that a dask worker can return either."""
    try:
        return read_triplet(root, triplet, shape, valid_classes, with_truth), None
    except LNBError as err:
        return None, (err.file, err.problem)


def iter_triplets(index: FolderIndex, on_error: str = "raise", valid_classes=(2, 3, 4, 5, 6),
                  skipped: list[Skipped] | None = None, progress: bool = True, desc: str = "check pixels",
                  outcomes=None):
    """Read and check every triplet of ``index``: yield (triplet, data).

    ``on_error="skip"`` appends bad triplets to ``skipped`` (the same problems ``"raise"`` raises).
    ``outcomes``: each triplet's :func:`read_outcome`, in order, when they are read elsewhere (dask
    workers); by default they are read here.
    """
    from tqdm.auto import tqdm

    if outcomes is None:
        shape = (index.height, index.width)
        outcomes = (read_outcome(index.root, trip, shape, valid_classes, index.has_truth) for trip in index.triplets)
    for trip, (data, error) in tqdm(zip(index.triplets, outcomes), total=len(index.triplets), desc=desc,
                                    unit="triplet", disable=not progress):
        if error is not None:
            if on_error == "raise":
                raise LNBError(*error)
            skipped.append(Skipped(trip.row, *error))
            continue
        yield trip, data


def index_folder(root: str | Path, on_error: str = "raise", progress: bool = True) -> FolderIndex:
    """Read the CSV and check every file's presence, band count, dtype and size (headers only).

    Pixel values are checked later, as each triplet is read.
    """
    from tqdm.auto import tqdm

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    root = Path(root)
    for sub in (S1_DIR, S2_DIR, MASK_DIR):
        if not (root / sub).is_dir():
            raise LNBError(root / sub, "folder is missing; an LNB folder holds s1/, s2/ and s2-mask/")
    csv, table = _series_table(root)
    triplets: list[Triplet] = []
    headers: list = []  # per triplet: [(path, (height, width)), ...] or the LNBError of a bad header
    for trip in tqdm(_parse_rows(csv, table), total=len(table), desc="check headers", unit="triplet", disable=not progress):
        triplets.append(trip)
        try:
            headers.append([(root / layer / name, read_header(root / layer / name, layer))
                            for name in trip.names for layer in (S1_DIR, S2_DIR, MASK_DIR)])
        except LNBError as err:
            if on_error == "raise":
                raise  # the first bad file ends the check: no time spent on the rest of a large, broken CSV
            headers.append(err)
    # the size most files have is the reference, so an odd file is named even when it comes first
    sizes = Counter(hw for h in headers if not isinstance(h, LNBError) for _, hw in h)
    shape = sizes.most_common(1)[0][0] if sizes else None
    good, skipped = [], []
    for trip, header in zip(triplets, headers):
        try:
            if isinstance(header, LNBError):
                raise header
            for path, hw in header:
                if hw != shape:
                    raise LNBError(path, f"is {hw[0]}x{hw[1]} pixels; expected {shape[0]}x{shape[1]} like the rest of the dataset")
            good.append(trip)
        except LNBError as err:
            if on_error == "raise":
                raise
            skipped.append(Skipped(trip.row, err.file, err.problem))
    if not good:
        raise LNBError(root / SERIES_CSV, f"no valid triplet left ({len(skipped)} skipped)")
    has_truth = all((root / TRUTH_DIR / name).is_file() for t in good for name in t.names)
    return FolderIndex(root, good, skipped, shape[0], shape[1], has_truth)


# --------------------------------------------------------------------------- writing


def write_tile(path: str | Path, data: np.ndarray, crs, transform) -> None:
    """Write one tile, (bands, H, W) or (H, W), as an uncompressed, pixel-interleaved GeoTIFF (no timestamps)."""
    import rasterio

    data = data[None] if data.ndim == 2 else data
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=crs, transform=transform, interleave="pixel",
    ) as dst:
        dst.write(data)


def write_series(root: str | Path, rows) -> Path:
    """Write ``image_series.csv`` into ``root``: the header :data:`TIME_COLUMNS`, then one row of
    three file names (t-2, t-1, t) per triplet."""
    path = Path(root) / SERIES_CSV
    path.write_text("\n".join([",".join(TIME_COLUMNS)] + [",".join(names) for names in rows]) + "\n")
    return path
