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
import functools
import re
import struct
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lai.errors import LNBError  # re-exported: the folder reader's error
from lai.facts import VALID_CLASSES
from lai.io import memory_shortfall
from lai.pixels import check_float32, check_stored, clean_pixels, masked_as_missing, polarisation_order
from lai.records import NOT_A_FILE

REVISIT = 5  # days between Sentinel-2 acquisitions of a scene: the grid of the dates of t-2, t-1 and t

S1_DIR, S2_DIR, MASK_DIR, TRUTH_DIR = "s1", "s2", "s2-mask", "truth"
SERIES_CSV = "image_series.csv"
TIME_COLUMNS = ("0", "1", "2")  # t-2, t-1, t
GRID_INDEX_DTYPE = np.int32  # how the cube stores tile rows, columns and CSV rows


# dates a cube can store (integer days since FIRST_DATE; lai.cube checks a cube's dates against the same range)
FIRST_DATE, LAST_DATE = dt.date(1970, 1, 1), dt.date(2169, 12, 31)
DAYS_SINCE = f"days since {FIRST_DATE.isoformat()}"  # the CF units of every stored date (cube, predictions.nc)
DATE_RANGE_TEXT = f"lies outside {FIRST_DATE.year}-{LAST_DATE.year}, the dates a cube stores"


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
    fixes: dict = field(default_factory=dict)  # pixel counts of lai.pixels.clean_pixels' fixes


@dataclass
class FolderIndex:
    root: Path
    triplets: list[Triplet]
    skipped: list[Skipped] = field(default_factory=list)
    height: int = 0
    width: int = 0
    has_truth: bool = False


def estimate_middle_date(date_from: dt.date, date_to: dt.date) -> dt.date:
    """Estimate the t-1 date, which file names do not carry: the revisit-grid date nearest the middle."""
    half = (date_to - date_from).days / 2
    return date_from + dt.timedelta(days=REVISIT * round(half / REVISIT))


# --------------------------------------------------------------------------- CSV


def read_series(root: str | Path) -> list[Triplet]:
    """Parse ``image_series.csv`` and check each row's three names agree with each other."""
    return list(_parse_rows(*_series_table(root)))


def _series_table(root: str | Path) -> tuple[Path, pd.DataFrame]:
    """(path, table) of ``root``'s ``image_series.csv``, its columns checked; rows not parsed yet."""
    root = Path(root)
    check_folder(root)
    csv = root / SERIES_CSV
    if not csv.is_file():
        raise LNBError(csv, f"{NOT_A_FILE if csv.exists() else 'missing'}; expected a CSV with columns \"0\",\"1\",\"2\" "
                            "naming the t-2, t-1, t files")
    try:
        with warnings.catch_warnings():  # pandas would take the first column as the index, or drop the extra fields
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(csv, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.ParserWarning:
        raise LNBError(csv, "has rows with more fields than its header has columns (a trailing comma, or a column "
                            "without a name?); expected the columns the header names, \"0\",\"1\",\"2\" among them") from None
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


def _parse_rows(csv: Path, table: pd.DataFrame, skipped: list[Skipped] | None = None) -> Iterator[Triplet]:
    """The table's triplets one by one (a caller that stops at the first bad file never parses the rest). A bad row
    raises :class:`LNBError`, or with a ``skipped`` list is added to it and left out."""
    seen: dict[tuple, int] = {}
    targets: dict[str, int] = {}
    for i, values in enumerate(table[list(TIME_COLUMNS)].itertuples(index=False)):
        where = f"{csv} row {i + 1}"
        names = tuple(str(v).strip() for v in values)
        try:
            if any(not n for n in names):
                raise LNBError(where, "has an empty cell; each of columns \"0\",\"1\",\"2\" must name a file")
            if names in seen:
                raise LNBError(where, f"duplicates row {seen[names] + 1} (the same triplet twice)")
            if names[2] in targets:  # one map per t file: a second history of the same target would overwrite it
                raise LNBError(where, f"names the t file {names[2]} of row {targets[names[2]] + 1} again; expected one "
                                      "triplet per target (tile and date t)")
            parts = _check_triplet_names(where, names)
        except LNBError as err:
            if skipped is None:
                raise
            skipped.append(Skipped(i, err.file, err.problem))
            continue
        seen[names], targets[names[2]] = i, i
        yield Triplet(i, names, parts)


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
        raise LNBError(path, f"named in image_series.csv {NOT_A_FILE}" if path.exists() else
                       "file named in image_series.csv is missing")
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
    if src.driver != "GTiff":  # a VRT would read other files, which no check or cube key follows
        raise LNBError(path, f"is a {src.driver} file, not a GeoTIFF (GDAL driver GTiff), which an LNB folder is "
                             "expected to hold")
    if src.count != bands:
        raise LNBError(path, f"has {src.count} band(s); expected {what}")
    t = src.transform
    if t.b or t.d:  # x/y coordinates of a map (predictions.nc) follow rows and columns
        raise LNBError(path, f"has a rotated or sheared grid (geotransform {t.c:g}, {t.a:g}, {t.b:g}, {t.f:g}, {t.d:g}, "
                             f"{t.e:g}); expected a grid along its rows and columns: warp it first (gdalwarp)")
    if src.gcps[0] and t.is_identity:  # radar geometry: its pixels are not on the S2 grid
        raise LNBError(path, f"is georeferenced by {len(src.gcps[0])} ground control points only (slant or ground "
                             "range geometry?); expected a map grid, as the S2 tiles have: terrain-correct it onto theirs")
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
        raise LNBError(path, f"declares {bits} bits per sample (NBITS) for dtype {src.dtypes[0]} ({itembits} bits): a "
                             f"packed or half-float file, or a corrupt TIFF header; lai reads whole {itembits}-bit "
                             f"samples: convert it to plain {src.dtypes[0]}")
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


def read_tiff(path: Path, layer: str, shape: tuple[int, int] | None = None):
    """Read one TIFF of ``layer`` with header checks; return (array (bands, H, W), crs, transform). An S1 file's
    bands come back as VV, VH whatever their order in the file (:func:`lai.pixels.polarisation_order`)."""
    import warnings as _w

    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    with _open(path) as src, _w.catch_warnings():  # one open for the header's checks and the pixels
        _w.simplefilter("ignore", NotGeoreferencedWarning)
        height, width = _check_header(src, path, layer)
        if shape is not None and (height, width) != tuple(shape):
            raise LNBError(path, f"is {height}x{width} pixels; expected {shape[0]}x{shape[1]} like the rest of the dataset")
        _check_layout(src, path)
        bands = [i + 1 for i in polarisation_order(src.descriptions, path)] if layer == S1_DIR else None  # 1-based
        try:
            data = masked_as_missing(src.read(bands, masked=True))
        except (RasterioIOError, Exception) as err:  # truncated strips surface here
            raise LNBError(path, f"pixel data cannot be read (truncated or corrupt file?): {err}") from None
        check_float32(data, path)
        crs = crs_text(src.crs)
        transform = tuple(src.transform)[:6] if not src.transform.is_identity else None
    return data, crs, transform


def no_radar(folder: str | Path, files: int) -> LNBError:
    """The error of a dataset none of whose ``files`` S1 files holds a backscatter value (``lai validate`` and
    ``lai cube`` refuse it: NaN is missing radar, allowed per pixel, but S1 rows would train on nothing)."""
    return LNBError(Path(folder) / S1_DIR, f"none of the {files} S1 files of the valid triplets holds a backscatter "
                                           "value (all NaN or nodata): no radar in this dataset")


def no_usable_lai(folder: str | Path, files: int, valid_classes) -> LNBError:
    """The error of a dataset none of whose ``files`` S2 LAI files holds a usable pixel (a LAI value of an SCL class
    in ``valid_classes``): ``lai validate`` and ``lai cube`` refuse it, as training and scoring would find nothing."""
    return LNBError(Path(folder) / S2_DIR, f"none of the {files} S2 LAI files of the valid triplets holds a usable "
                                           f"pixel (a LAI value where the SCL class is one of {list(valid_classes)}): "
                                           "no optical data to train on or score in this dataset")


def usable_lai(data: TripletData, valid_lut: np.ndarray) -> bool:
    """Whether a triplet holds one usable S2 LAI pixel, at any date (``valid_lut``: :func:`lai.pixels.scl_lookup`)."""
    return bool((valid_lut[data.scl] & np.isfinite(data.lai)).any())


def read_triplet(
    root: str | Path,
    triplet: Triplet,
    shape: tuple[int, int] | None = None,
    valid_classes=VALID_CLASSES,
    with_truth: bool = False,
) -> TripletData:
    """Read and validate the nine TIFFs of one triplet (plus its three truth files if asked)."""
    root = Path(root)
    grids: dict[Path, tuple] = {}  # file -> (crs, transform)

    def tile(layer: str, name: str, size) -> np.ndarray:
        path = root / layer / name
        data, crs, transform = read_tiff(path, layer, size)
        grids[path] = (crs, transform)
        return data

    s1, lai, scl = [], [], []
    for name in triplet.names:
        s1.append(tile(S1_DIR, name, shape))
        shape = s1[-1].shape[1:]
        lai.append(tile(S2_DIR, name, shape)[0])
        scl.append(tile(MASK_DIR, name, shape)[0])
    truth = np.stack([tile(TRUTH_DIR, name, shape)[0] for name in triplet.names]) if with_truth else None
    crs, transform = common_grid(grids, root / S2_DIR / triplet.names[-1])
    s1, lai = np.stack(s1).astype(np.float32), np.stack(lai).astype(np.float32)
    files = [(root / S1_DIR / n, root / S2_DIR / n, root / MASK_DIR / n) for n in triplet.names]
    scl, fixes = clean_pixels(s1, lai, np.stack(scl), valid_classes, files)
    return TripletData(s1, lai, scl, truth, crs, transform, fixes.counts())


GRID_TOLERANCE = 1e-3  # of a pixel: two tiles whose origins and pixel sizes differ by less lie on one grid


def crs_text(crs) -> str | None:
    """A rasterio CRS as text that reads back as the same CRS: its short form (``EPSG:32633``) where that is
    exact, else its WKT. rasterio's ``to_string()`` gives an EPSG code that PROJ finds close enough, which can
    drop a datum shift (``+towgs84``): a map so labelled lies metres to tens of metres off its pixels."""
    if not crs:
        return None
    from rasterio.crs import CRS

    short = crs.to_string()
    return short if CRS.from_user_input(short) == crs else crs.to_wkt()


def crs_units(crs) -> str:
    """The unit of a rasterio CRS's coordinates: "m" for metres (CF's spelling), "degrees" for a geographic CRS."""
    if not crs.is_projected:
        return "degrees"
    return "m" if crs.linear_units in ("metre", "meter", "m") else crs.linear_units


def _same_crs(a: str | None, b: str | None) -> bool:
    if a == b or a is None or b is None:
        return a == b
    from rasterio.crs import CRS

    return CRS.from_user_input(a) == CRS.from_user_input(b)


def _same_transform(a: tuple | None, b: tuple | None) -> bool:
    if a is None or b is None:
        return a is b
    pixel = max(abs(b[0]), abs(b[4]), 1e-12)
    return all(abs(x - y) <= GRID_TOLERANCE * pixel for x, y in zip(a, b))


def same_grid(a: tuple, b: tuple) -> bool:
    """Whether two (CRS, transform) pairs place pixels alike: the same CRS and transforms within
    :data:`GRID_TOLERANCE` of a pixel (a pair without georeferencing only matches another without)."""
    return _same_crs(a[0], b[0]) and _same_transform(a[1], b[1])


def common_grid(grids: dict[Path, tuple], target: Path) -> tuple[str | None, tuple | None]:
    """The (CRS, transform) of a triplet's files, ``grids`` (file -> (crs, transform)), which its map takes:
    ``target``'s (the S2 LAI of t), or the first georeferenced file's. Files without any georeferencing pass (the
    layout fixes their size); :class:`LNBError` names a georeferenced file on another grid, which would place the
    map beside its pixels. Every file must lie on the target's grid (within :data:`GRID_TOLERANCE`); the file named
    is one off the grid that most files share (the target's on a tie), so that a lone odd file is the one named, the
    target too."""
    georef = {p: g for p, g in grids.items() if g != (None, None)}
    if not georef:
        return None, None
    ref = target if target in georef else next(iter(georef))
    on = lambda p, q: same_grid(georef[p], georef[q])  # noqa: E731
    if all(on(p, ref) for p in georef):
        return georef[ref]
    sharing = {q: sum(on(p, q) for p in georef) for q in georef}  # files on each file's grid, itself included
    shared = max(georef, key=lambda q: (sharing[q], q == ref))
    odd = next((p for p in georef if not on(p, shared)), None)
    if odd is None:  # every file lies within the tolerance of the shared one, not all of the target's
        shared, odd = ref, next(p for p in georef if not on(p, ref))
    (c, t), (crs, transform) = georef[odd], georef[shared]
    raise LNBError(odd, f"lies on another grid than {shared.parent.name}/{shared.name} and "
                        f"{sharing[shared] - 1} more of the triplet's {len(georef)} georeferenced "
                        f"files: CRS {c}, transform {t}; expected CRS {crs}, transform {transform} (the files of a "
                        "triplet must cover the same pixels)")


def read_outcome(root: str | Path, triplet: Triplet, shape: tuple[int, int], valid_classes,
                 with_truth: bool) -> tuple[TripletData | None, tuple[str, str] | None]:
    """:func:`read_triplet` as plain values: (data, None) for a good triplet, (None, (file, problem))
    for a bad one, so that a dask worker can return either."""
    try:
        return read_triplet(root, triplet, shape, valid_classes, with_truth), None
    except LNBError as err:
        return None, (err.file, err.problem)


def iter_triplets(index: FolderIndex, on_error: str = "raise", valid_classes=VALID_CLASSES,
                  skipped: list[Skipped] | None = None, progress: bool = True, desc: str = "check pixels",
                  outcomes=None):
    """Read and check every triplet of ``index``: yield (triplet, data).

    ``on_error="skip"`` appends bad triplets to ``skipped`` (the same problems ``"raise"`` raises).
    ``outcomes``: each triplet's :func:`read_outcome`, in order, when they are read elsewhere (dask
    workers); by default they are read here.
    """
    from lai.progress import tqdm

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


def _headers(root: Path, trips: list[Triplet]) -> list:
    """Per triplet, [(path, (height, width)), ...] of its files, or (file, problem) of its first bad header: a task
    that dask workers run on a chunk of triplets (the problem travels as plain values)."""
    out = []
    for trip in trips:
        try:
            out.append([(root / layer / name, read_header(root / layer / name, layer))
                        for name in trip.names for layer in (S1_DIR, S2_DIR, MASK_DIR)])
        except LNBError as err:
            out.append((err.file, err.problem))
    return out


HEADER_TASK_TRIPLETS = 32  # triplets per dask task of the header check (a triplet's nine headers take about 4 ms)


def check_folder(root: Path) -> None:
    """Raise an LNBError naming ``root`` unless it is a folder."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "LNB folder does not exist"
        raise LNBError(root, f"{what} (expected a folder with s1/, s2/, s2-mask/ and image_series.csv)")


def check_layout(root: Path) -> None:
    """Raise an LNBError naming what is missing unless ``root`` holds an LNB folder's three image folders (their
    files are checked by :func:`index_folder`): what a run checks before it claims its folder for that data."""
    check_folder(root)
    for sub in (S1_DIR, S2_DIR, MASK_DIR):
        if not (root / sub).is_dir():
            raise LNBError(root / sub, "folder is missing; an LNB folder holds s1/, s2/ and s2-mask/")


def index_folder(root: str | Path, on_error: str = "raise", progress: bool = True, client=None) -> FolderIndex:
    """Read the CSV and check every file's presence, band count, dtype and size (headers only), here or, given a
    dask ``client``, on its workers (in chunks of triplets; the same index).

    Pixel values are checked later, as each triplet is read.
    """
    from lai.progress import tqdm

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    root = Path(root)
    check_layout(root)
    csv, table = _series_table(root)
    triplets: list[Triplet] = []
    headers: list = []  # per triplet: [(path, (height, width)), ...] or the LNBError of a bad header
    bad_rows: list[Skipped] | None = [] if on_error == "skip" else None  # rows whose names are refused
    bar = tqdm(total=len(table), desc="check headers", unit="triplet", disable=not progress)
    if client is None:
        for trip in _parse_rows(csv, table, bad_rows):
            triplets.append(trip)
            headers.extend(_headers(root, [trip]))
            bar.update()
            if isinstance(headers[-1], tuple) and on_error == "raise":
                break  # the first bad file ends the check: no time spent on the rest of a large, broken CSV
    else:
        from lai.parallel import map_ordered

        triplets = list(_parse_rows(csv, table, bad_rows))
        chunks = [triplets[i:i + HEADER_TASK_TRIPLETS] for i in range(0, len(triplets), HEADER_TASK_TRIPLETS)]
        done = map_ordered(functools.partial(_headers, Path(root).resolve()), chunks, client,  # absolute: see cube.py
                           on_done=lambda i, _: bar.update(len(chunks[i])))
        headers = [h for chunk in done for h in chunk]
    bar.close()
    headers = [LNBError(*h) if isinstance(h, tuple) else h for h in headers]
    first_bad = next((h for h in headers if isinstance(h, LNBError)), None)
    if first_bad is not None and on_error == "raise":
        raise first_bad
    # the size most files have is the reference, so an odd file is named even when it comes first
    sizes = Counter(hw for h in headers if not isinstance(h, LNBError) for _, hw in h)
    shape = sizes.most_common(1)[0][0] if sizes else None
    good, skipped = [], list(bad_rows or [])
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
    skipped.sort(key=lambda s: s.row)
    if not good:
        raise LNBError(root / SERIES_CSV, f"no valid triplet left ({len(skipped)} skipped)")
    # real data hold no truth/ folder: no file looked up; a simulated one every file
    truths = {name: (root / TRUTH_DIR / name).is_file() for t in good for name in t.names} \
        if (root / TRUTH_DIR).is_dir() else {}
    has_truth = bool(truths) and all(truths.values())
    if any(truths.values()) and not has_truth:  # partly there: a file lost, not real data (which holds none)
        missing = [name for name, there in truths.items() if not there]
        raise LNBError(root / TRUTH_DIR / missing[0],
                       f"is missing: {TRUTH_DIR}/ holds the true LAI of {len(truths) - len(missing)} of the {len(truths)} "
                       f"S2 files the triplets name ({len(missing)} missing); restore them, or move {TRUTH_DIR}/ away "
                       "to use the folder without its truth (as real data)")
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
