"""LNB folder -> one labelled data cube on disk (netCDF4/HDF5), and back as xarray.

Schema (dims ``triplet``, ``time`` = t-2, t-1, t, ``pol`` = VV, VH, ``y``, ``x``; ``time`` and ``pol``
carry these labels as string coordinates, ``lai.facts.TIME_LABELS`` and ``POLARISATIONS``)::

    s1 (triplet, time, pol, y, x) float32 dB   lai (triplet, time, y, x) float32   (or float16: below)
    scl (triplet, time, y, x) uint8            lai_true (triplet, time, y, x) float32 (simulated data only)
    coords: name (triplet, time), country, area, grid_row, grid_col, csv_row (triplet),
            date (triplet, time) with date_estimated (time): t-1's date is estimated,
            clear_fraction, cloud_fraction (triplet, time), split (triplet),
            crs (triplet), transform (triplet, 6) where the TIFFs carry them.

The cube is written triplet by triplet (memory does not grow with the number
of triplets) into a hidden temporary file that is renamed into place only
when complete, so an interrupted build never leaves a file that looks valid.
Each triplet is one HDF5 chunk per variable: loading a sample is one read.
On dask (``dask={"workers": N}`` or ``{"scheduler": ADDRESS}``) the workers read and check
the TIFFs; this process stays the single writer, in CSV order, so the cube is the serial one.

``cube_float="float16"`` (the profile's ``cube_float``) stores s1, lai and lai_true as IEEE half floats: half the size, NaN kept,
rounding error at most 0.008 dB on backscatter (|dB| < 32; the speckle of 4.4 looks is ~2 dB)
and at most 0.001 LAI below 4, 0.002 below 8 (S2 retrieval noise: 0.05 + 8% of the LAI; training on
a GPU keeps its resident copy in float16 anyway). The loader decodes to float32. Read it with h5py/h5netcdf
(netCDF-C has no half-float type).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pandas as pd

from lai import __version__
from lai.config import EncodingConfig, SplitConfig, check_cube_float
from lai.errors import ConfigError, CubeError, shorten
from lai.facts import POLARISATIONS, SPLIT_LABELS, TIME_LABELS
from lai.io import ForeignOutputError, atomic_path, check_outside, check_replaceable, output_lock
from lai.lnb import (
    DAYS_SINCE,
    FIRST_DATE,
    GRID_INDEX_DTYPE,
    LAST_DATE,
    MASK_DIR,
    S1_DIR,
    S2_DIR,
    SERIES_CSV,
    TRUTH_DIR,
    LNBError,
    Skipped,
    estimate_middle_date,
    index_folder,
    iter_triplets,
    no_radar,
    no_usable_lai,
    read_outcome,
    usable_lai,
)
from lai.pixels import CLOUD_CLASSES, PIXEL_FIX_NOTES, SCL_MAX, pixel_fix_lines, scl_lookup
from lai.splits import assign_splits, regions_of, split_counts

# the cube's attribute (and build-settings key) holding cube_float: its on-disk name, kept so that cubes built
# earlier keep their fingerprints and are reused
CUBE_FLOAT_ATTR = "float_dtype"

def decoded(values: np.ndarray) -> np.ndarray:
    """Cube values as models and GeoTIFFs read them: float16 storage (``cube_float``) back to float32."""
    return values.astype(np.float32) if values.dtype == np.float16 else values


# CF attributes of the data variables (LAI is a ratio of areas: CF's canonical unit for it is "1")
CF_ATTRS = {
    "s1": {"long_name": "Sentinel-1 backscatter coefficient sigma0 (pol: VV, VH)", "units": "dB"},
    "lai": {"standard_name": "leaf_area_index", "long_name": "leaf area index observed from Sentinel-2",
            "units": "1", "comment": "m2 of leaf per m2 of ground; NaN where the product has no data"},
    "scl": {"long_name": "Sentinel-2 scene classification (Sen2Cor SCL)",
            "flag_values": np.arange(SCL_MAX + 1, dtype=np.uint8),
            "flag_meanings": "no_data saturated_or_defective dark_area cloud_shadow vegetation not_vegetated "
                             "water unclassified cloud_medium_probability cloud_high_probability thin_cirrus snow"},
    "lai_true": {"standard_name": "leaf_area_index", "long_name": "true leaf area index at t-2, t-1 and t (simulated data only)",
                 "units": "1"},
}
SCHEMA = "lai-cube"
SCHEMA_VERSION = 2  # 2: lai_true has the time dimension (1: the true LAI at t only)




@dataclass
class CubeSummary:
    path: str
    n_triplets: int
    height: int
    width: int
    has_truth: bool
    splits: dict[str, int]
    skipped: list[dict] = field(default_factory=list)
    fingerprint: str = ""
    reused: bool = False
    pixel_fixes: dict[str, int] = field(default_factory=dict)  # lai.pixels.clean_pixels' counts over the cube

    def __str__(self) -> str:
        lines = [
            f"cube {self.path}{' (reused)' if self.reused else ''}",
            f"  {self.n_triplets} triplets of {self.height}x{self.width} pixels, true LAI {'present' if self.has_truth else 'absent'}",
            "  splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()),
            f"  data fingerprint {self.fingerprint[:16]}",
        ]
        lines += pixel_fix_lines(self.pixel_fixes, "  ")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} bad triplet(s):")
            lines += [f"    CSV row {s['row'] + 1}: {s['file']}: {s['problem']}" for s in self.skipped]
        return "\n".join(lines)


# files GDAL reads beside a GeoTIFF (band names, nodata, georeferencing, mask): ".aux.xml" and ".msk" follow the
# whole name, world files its stem
SIDECARS = ("{name}.aux.xml", "{name}.msk", "{stem}.tfw", "{stem}.tifw", "{stem}.wld")


def source_key(source: Path) -> str | None:
    """What a cube is built from: the folder's resolved path, its CSV (hashed streaming) and the size and
    modification time of every file the CSV lists and of their GDAL sidecars (:data:`SIDECARS`). None when the
    CSV is not a readable file (no reuse then)."""
    csv_path = source / SERIES_CSV
    digest = hashlib.sha256(str(source.resolve()).encode())
    if not csv_path.is_file():  # a FIFO or a device would be read without end
        return None
    try:
        with open(csv_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        with open(csv_path, newline="", encoding="utf-8", errors="replace") as fh:
            names = sorted({cell.strip() for row in csv.reader(fh) for cell in row if cell.strip()})
    except OSError:
        return None
    layers = (S1_DIR, S2_DIR, MASK_DIR, TRUTH_DIR)
    sidecars = {layer: _sidecar_names(source / layer) for layer in layers}
    for name in names:
        stem = name.rsplit(".", 1)[0]
        extra = [f.format(name=name, stem=stem).lower() for f in SIDECARS]  # GDAL also finds ".TFW"
        for layer in layers:
            for file in [name, *(sidecars[layer][f] for f in extra if f in sidecars[layer])]:
                try:
                    st = os.stat(source / layer / file)
                    digest.update(f"{layer}/{file}:{st.st_size}:{st.st_mtime_ns}".encode())
                except (OSError, ValueError):  # absent (or not a valid file name): part of the key as such
                    digest.update(f"{layer}/{file}:-".encode())
    return digest.hexdigest()


def _sidecar_names(folder: Path) -> dict[str, str]:
    """The files of ``folder`` that may be GDAL sidecars (:data:`SIDECARS`), by lower-case name: one listing, so that
    the sidecars a folder lacks cost no stat each."""
    try:
        with os.scandir(folder) as entries:
            return {e.name.lower(): e.name for e in entries if e.name.lower().endswith((".xml", ".msk", ".tfw", ".tifw", ".wld"))}
    except OSError:
        return {}


def _existing_cube_attrs(path: Path) -> dict | None:
    """Attributes of ``path`` if it is a readable lai cube (of this schema version or an older one), else None."""
    try:
        return check_cube_file(path)
    except CubeError:
        try:
            with h5py.File(path, "r") as f:
                attrs = {k: _plain(v) for k, v in f.attrs.items()}
        except (OSError, KeyError, RuntimeError, ValueError):
            return None
        return attrs if attrs.get("schema") == SCHEMA else None


RUN_CUBE_MIN_CORES = 4  # below, `lai run` builds its cube in one process: a cluster's readers would compete with the writer
RUN_CUBE_MAX_WORKERS = 16


def run_cube_dask() -> dict | None:
    """How ``lai run`` builds its cube: on a local dask cluster that checks and reads the files (one worker per core
    but the writer's, at most :data:`RUN_CUBE_MAX_WORKERS`) where this process may use at least
    :data:`RUN_CUBE_MIN_CORES` cores, else in this process. The cube does not depend on it."""
    from lai.parallel import max_workers

    cores = max_workers()
    return {"workers": min(cores - 1, RUN_CUBE_MAX_WORKERS)} if cores >= RUN_CUBE_MIN_CORES else None


def build_cube(
    source: str | Path,
    out: str | Path,
    splits: SplitConfig | None = None,
    encoding: EncodingConfig | None = None,
    on_error: str = "raise",
    overwrite: bool = False,
    progress: bool = True,
    cube_float: str = "float32",
    dask: dict | None = None,
) -> CubeSummary:
    """Validate an LNB folder and write its cube to ``out`` (a ``.nc`` file).

    An existing cube built from the same folder (same path, CSV, and size and modification time of
    every listed file) with the same settings is reused. Another existing lai cube is replaced only
    with ``overwrite=True``; anything else (a folder, a file lai did not write, a path inside the
    LNB folder) is never replaced. The output is locked while it is written. ``cube_float``: float32
    (exact) or float16 (half the size, see the module docstring). ``dask``: ``{"workers": N}`` or
    ``{"scheduler": ADDRESS}`` reads the TIFFs on dask; the cube does not depend on it.
    """
    check_cube_float(cube_float)
    splits = splits or SplitConfig()
    encoding = encoding or EncodingConfig()
    source, out = Path(source), Path(out)
    check_replaceable(out)
    check_outside(out, source, "LNB folder", "the cube")
    build_config = json.dumps(
        {"splits": asdict(splits), "valid_classes": list(encoding.valid_classes), "on_error": on_error,
         **({CUBE_FLOAT_ATTR: cube_float} if cube_float != "float32" else {})}, sort_keys=True
    )
    with output_lock(out):
        key = source_key(source)
        if out.exists():
            attrs = _existing_cube_attrs(out)
            if attrs is None:
                raise ForeignOutputError(f"{out} exists and is not a readable lai cube; lai replaces only cubes it wrote: "
                                         "delete it yourself or choose another output")
            same_version = _schema_version(attrs) == SCHEMA_VERSION
            if same_version and key is not None and attrs.get("source_key") == key and attrs.get("build_config") == build_config:
                return _summary(out, open_cube(out), reused=True)
            if not overwrite:
                raise FileExistsError(f"{out} already exists and was not built from {source} as it is now with these "
                                      "settings; pass overwrite=True (`lai cube --overwrite`) to replace it")
        with _cluster(dask) as client:  # one cluster checks the headers and reads the files
            _write_cube(source, out, splits, encoding, on_error, progress,
                        {"source_key": key or "", "build_config": build_config}, np.dtype(cube_float), client)
    return _summary(out, open_cube(out))


def _cluster(dask: dict | None):
    """A dask client for ``dask`` (``{"workers": N}`` or ``{"scheduler": ADDRESS}``), or None to work in this process."""
    if not dask:
        return contextlib.nullcontext()
    from lai.parallel import dask_client

    return dask_client(**dask)


def _read_for_cube(trip, root: Path, shape: tuple[int, int], valid_classes, with_truth: bool, cube_float: np.dtype):
    """:func:`lai.lnb.read_outcome` with the floats already in the cube's float type (float16: half the
    bytes to send to the writer): a dask task."""
    data, error = read_outcome(root, trip, shape, valid_classes, with_truth)
    if data is None:
        return None, error
    floats = {k: getattr(data, k).astype(cube_float, copy=False) for k in ("s1", "lai", "truth")
              if getattr(data, k) is not None}
    return dataclasses.replace(data, **floats), None


@contextlib.contextmanager
def _checked_triplets(index, on_error: str, valid_classes, skipped: list, progress: bool, client,
                      cube_float: np.dtype):
    """(triplet, data) of the good triplets in CSV order: read here, or by the dask ``client``'s workers (a few ahead)."""
    if client is None:
        yield iter_triplets(index, on_error, valid_classes, skipped, progress, "build cube")
        return
    from lai.parallel import imap_ordered

    # the folder absolute: the workers of an existing cluster (--scheduler) run in folders of their own
    read = functools.partial(_read_for_cube, root=Path(index.root).resolve(), shape=(index.height, index.width),
                             valid_classes=tuple(valid_classes), with_truth=index.has_truth, cube_float=cube_float)
    with contextlib.closing(imap_ordered(read, index.triplets, client)) as outcomes:  # closing cancels what is left
        yield iter_triplets(index, on_error, valid_classes, skipped, progress, "build cube", outcomes)


def _write_cube(source: Path, out: Path, splits: SplitConfig, encoding: EncodingConfig, on_error: str,
                progress: bool, extra_attrs: dict, cube_float: np.dtype, client=None) -> None:
    index = index_folder(source, on_error=on_error, progress=progress, client=client)
    h, w, n = index.height, index.width, len(index.triplets)
    skipped: list[Skipped] = list(index.skipped)
    meta_rows = []
    fixes: Counter = Counter()
    digest = hashlib.sha256()
    with atomic_path(out) as tmp, _h5_writer(tmp) as f, \
            _checked_triplets(index, on_error, encoding.valid_classes, skipped, progress, client, cube_float) as triplets:
        f.dimensions = {"triplet": None, "time": 3, "pol": 2, "y": h, "x": w, "affine": 6}
        f.resize_dimension("triplet", n)
        s1 = f.create_variable("s1", ("triplet", "time", "pol", "y", "x"), cube_float, chunks=(1, 3, 2, h, w))
        lai = f.create_variable("lai", ("triplet", "time", "y", "x"), cube_float, chunks=(1, 3, h, w))
        scl = f.create_variable("scl", ("triplet", "time", "y", "x"), np.uint8, chunks=(1, 3, h, w))
        truth = (
            f.create_variable("lai_true", ("triplet", "time", "y", "x"), cube_float, chunks=(1, 3, h, w))
            if index.has_truth else None
        )
        for var in (s1, lai, scl, truth):
            if var is not None:
                var.attrs.update(CF_ATTRS[var.name.strip("/")])
        valid_lut, cloud_lut = scl_lookup(encoding.valid_classes), scl_lookup(CLOUD_CLASSES)
        k, radar, optical = 0, False, False
        for trip, data in triplets:
            radar = radar or bool(np.isfinite(data.s1).any())
            optical = optical or usable_lai(data, valid_lut)
            stored = [a.astype(cube_float, copy=False) for a in (data.s1, data.lai)] + [data.scl]  # rounded here, as numpy does
            if truth is not None:
                stored.append(data.truth.astype(cube_float, copy=False))
                truth[k] = stored[3]
            s1[k], lai[k], scl[k] = stored[:3]
            for arr in stored:
                digest.update(np.ascontiguousarray(arr).tobytes())
            digest.update("|".join(trip.names).encode())
            meta_rows.append(_triplet_meta(trip, data, valid_lut, cloud_lut))
            fixes.update(data.fixes)
            k += 1
        if k == 0:
            raise LNBError(source / SERIES_CSV, f"no valid triplet left ({len(skipped)} skipped)")
        if not radar:
            raise no_radar(source, 3 * k)
        if not optical:
            raise no_usable_lai(source, 3 * k, encoding.valid_classes)
        f.resize_dimension("triplet", k)
        meta = pd.DataFrame(meta_rows)
        labels = assign_splits(meta, splits)
        _write_coords(f, meta, labels)
        f.attrs.update(
            {
                "Conventions": "CF-1.8",
                "title": "lai data cube: Sentinel-1 / Sentinel-2 LAI triplets (t-2, t-1, t)",
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "source": str(source.resolve()),
                **extra_attrs,
                "fingerprint": digest.hexdigest(),
                "has_truth": int(truth is not None),
                CUBE_FLOAT_ATTR: cube_float.name,
                "valid_classes": json.dumps(list(encoding.valid_classes)),
                "splits_config": json.dumps(asdict(splits)),
                "skipped": json.dumps([asdict(s) for s in skipped]),
                "pixel_fixes": json.dumps({**dict.fromkeys(PIXEL_FIX_NOTES, 0), **fixes}),
                "lai_version": __version__,
                "date_t1_note": "t-1 dates are estimated (file names carry only t-2 and t)",
            }
        )


@contextlib.contextmanager
def _h5_writer(path: Path):
    """An h5netcdf file open for writing, closed before its temporary file is removed.

    When the block fails (disk full, say) the file is still closed, and a second error from
    closing it is dropped so that the first one is what the user sees.
    """
    f = h5netcdf.File(path, "w", rdcc_nbytes=0)  # no chunk cache: a failing write (disk full) raises at once
    try:
        yield f
    except BaseException:
        # h5netcdf's close() would first flush into the failing file, and on a full disk that
        # crashes HDF5 at exit: close the HDF5 file itself and mark the wrapper closed
        with contextlib.suppress(Exception):
            f._h5file.close()
        f._closed = True
        raise
    f.close()


def _triplet_meta(trip, data, valid_lut, cloud_lut) -> dict:
    p = trip.target
    clear = (valid_lut[data.scl] & np.isfinite(data.lai)).mean(axis=(1, 2))
    cloud = cloud_lut[data.scl].mean(axis=(1, 2))
    dates = (p.date_from, estimate_middle_date(p.date_from, p.date_to), p.date_to)
    return {
        "csv_row": trip.row,
        "names": trip.names,
        "country": p.country,
        "area": p.area,
        "grid_row": p.row,
        "grid_col": p.col,
        "dates": [(d - FIRST_DATE).days for d in dates],
        **{f"clear_t{i}": float(c) for i, c in enumerate(clear)},
        **{f"cloud_t{i}": float(c) for i, c in enumerate(cloud)},
        "crs": data.crs or "",
        "transform": data.transform if data.transform is not None else (np.nan,) * 6,
    }


def _write_coords(f, meta: pd.DataFrame, labels) -> None:
    string = h5py.string_dtype()

    def put(name, dims, dtype, values, **attrs):
        var = f.create_variable(name, dims, dtype)
        var[...] = values
        var.attrs.update(attrs)

    put("time", ("time",), string, np.array(TIME_LABELS, dtype=object), long_name="time step of the triplet")
    put("pol", ("pol",), string, np.array(POLARISATIONS, dtype=object), long_name="Sentinel-1 polarisation")
    put("name", ("triplet", "time"), string, np.array(meta["names"].tolist(), dtype=object))
    for col in ("country", "area", "crs"):
        put(col, ("triplet",), string, meta[col].to_numpy(dtype=object))
    put("split", ("triplet",), string, np.asarray(labels, dtype=object))
    for col in ("grid_row", "grid_col", "csv_row"):
        put(col, ("triplet",), GRID_INDEX_DTYPE, meta[col].to_numpy(GRID_INDEX_DTYPE))
    put("date", ("triplet", "time"), np.int32, np.array(meta["dates"].tolist(), np.int32),
        units=DAYS_SINCE, calendar="proleptic_gregorian")
    put("date_estimated", ("time",), np.uint8, np.array([0, 1, 0], np.uint8),
        description="1 where the date is estimated: t-1 is not in the file names")
    put("clear_fraction", ("triplet", "time"), np.float32, meta[[f"clear_t{i}" for i in range(3)]].to_numpy(np.float32))
    put("cloud_fraction", ("triplet", "time"), np.float32, meta[[f"cloud_t{i}" for i in range(3)]].to_numpy(np.float32))
    put("transform", ("triplet", "affine"), np.float64, np.array(meta["transform"].tolist(), np.float64))


REQUIRED_VARIABLES = ("s1", "lai", "scl", "split", "date")  # what the loader reads
# per-triplet variables and their number of dimensions: the first is the triplet, the second (but transform's) time
TRIPLET_NDIM = {"s1": 5, "lai": 4, "scl": 4, "lai_true": 4, "name": 2, "date": 2, "clear_fraction": 2, "cloud_fraction": 2,
                "transform": 2, "country": 1, "area": 1, "crs": 1, "split": 1, "grid_row": 1, "grid_col": 1, "csv_row": 1}
COORDS = ("name", "country", "area", "crs", "split", "grid_row", "grid_col", "csv_row", "date",
          "date_estimated", "clear_fraction", "cloud_fraction", "transform")


def _plain(value):
    """HDF5 attribute -> plain Python value (bytes decoded, 1-element arrays unwrapped)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    return value.decode() if isinstance(value, bytes) else value


def _schema_version(attrs: dict) -> int | None:
    """The cube attribute schema_version as an integer; None where it is absent or not an integer."""
    value = attrs.get("schema_version")
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None


def _shape_problem(f: h5py.File) -> str | None:
    """What is wrong with the shapes of a cube's per-triplet variables (:data:`TRIPLET_NDIM`), or None: each has its
    number of dimensions, the first as long as ``lai``'s, the second (but transform's) the three dates."""
    triplets = (getattr(f["lai"], "shape", None) or (None,))[0]
    for name, ndim in TRIPLET_NDIM.items():
        if name not in f:
            continue
        shape, dated = getattr(f[name], "shape", None), ndim > 1 and name != "transform"
        if shape is None or len(shape) != ndim or shape[0] != triplets or (dated and shape[1] != len(TIME_LABELS)):
            return (f"variable {name} has shape {shape}; expected {ndim} dimension(s): {triplets} triplets"
                    + (f", {len(TIME_LABELS)} dates" if dated else ""))
    tile = tuple(f["lai"].shape[-2:])
    for name in IMAGE_VARIABLES:
        if name in f and tuple(f[name].shape[-2:]) != tile:
            return f"variable {name} has shape {f[name].shape}; expected tiles of {tile[0]}x{tile[1]} pixels, as lai's"
    if "s1" in f and f["s1"].shape[2] != len(POLARISATIONS):
        return (f"variable s1 has shape {f['s1'].shape}; expected {len(POLARISATIONS)} polarisations "
                f"({', '.join(POLARISATIONS)}) in its third dimension")
    return None


IMAGE_VARIABLES = ("s1", "lai", "scl", "lai_true")  # (triplet, time, [pol,] y, x): one tile size


NAME_BYTES = 256 * 2**20  # a cube's triplet names: the paper profile's 9,640 triplets take about 2 MB


def _name_problem(f: h5py.File) -> str | None:
    """What is wrong with a cube's triplet names (variable ``name``: the file names predictions are written under), or
    None: each is a plain file name, not empty, not hidden, without path separators or control characters, and all
    of them fit :data:`NAME_BYTES` (they are read at once, here and by :func:`cube_identity`)."""
    if "name" not in f:
        return None
    names = f["name"]
    nbytes = names.size * max(names.dtype.itemsize, 64)  # variable-length strings: about 64 bytes each
    if nbytes > NAME_BYTES:
        return (f"its {names.size:,} triplet names take about {nbytes / 2**20:,.0f} MiB, more than the "
                f"{NAME_BYTES // 2**20} MiB of any cube lai writes")
    for k, row in enumerate(names[:]):
        for n in row:
            try:
                text = n.decode() if isinstance(n, bytes) else str(n)
            except UnicodeDecodeError:
                return f"triplet {k}'s name {shorten(repr(n), 100)} is not UTF-8 text"
            if not text or text.startswith(".") or "/" in text or "\\" in text or not text.isprintable():
                return (f"triplet {k} is named {shorten(repr(text), 100)}; expected a file name (not empty, not starting "
                        "with '.', without path separators or control characters)")
    return None


DAY_RANGE = (0, (LAST_DATE - FIRST_DATE).days + 1)  # the cube's dates, days since 1970-01-01 (the folder reader's)


def _date_problem(f: h5py.File) -> str | None:
    """What is wrong with a cube's dates (variable ``date``: integer days since 1970-01-01 within :data:`DAY_RANGE`),
    or None."""
    date = f["date"]
    if date.dtype.kind not in "iu":
        return f"variable date has dtype {date.dtype}; expected integer days since 1970-01-01"
    values = date[:]
    if values.size and (values.min() < DAY_RANGE[0] or values.max() >= DAY_RANGE[1]):
        bad = values.min() if values.min() < DAY_RANGE[0] else values.max()
        return (f"variable date holds day {bad}, outside {DAY_RANGE[0]}..{DAY_RANGE[1] - 1} "
                f"({FIRST_DATE.year} to {LAST_DATE.year})")
    return None


def check_cube_file(path: str | Path) -> dict:
    """Raise :class:`CubeError` unless ``path`` is a complete cube of this schema, its per-triplet variables of
    consistent shapes and its triplet names plain file names; return its attributes."""
    path = Path(path)
    if path.is_dir():
        raise CubeError(f"{path} is a folder, not a cube file (an LNB folder? build its cube with `lai cube`)")
    if not path.is_file():
        raise CubeError(f"{path}: cube file does not exist; build it with `lai cube`" if not path.exists() else
                        f"{path} is not a regular file (a device or pipe?), not a cube")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            missing = [v for v in REQUIRED_VARIABLES if v not in f]
            shapes = None if missing else _shape_problem(f) or _name_problem(f) or _date_problem(f)
    except PermissionError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as err:  # h5py raises all of these on damaged files
        raise CubeError(f"{path}: not a readable cube (truncated or not netCDF4/HDF5): {err}") from None
    if attrs.get("schema") != SCHEMA:
        raise CubeError(f"{path}: attribute schema is {attrs.get('schema')!r}; expected {SCHEMA!r} (not a lai cube)")
    if _schema_version(attrs) != SCHEMA_VERSION:
        raise CubeError(
            f"{path}: written by cube schema version {shorten(attrs.get('schema_version'), 40)}; this lai reads "
            f"version {SCHEMA_VERSION}. Rebuild it with `lai cube`"
        )
    if missing:
        raise CubeError(f"{path}: incomplete cube, variable(s) {', '.join(missing)} missing; rebuild it with `lai cube`")
    if shapes:
        raise CubeError(f"{path}: not a consistent cube: {shapes}; rebuild it with `lai cube`")
    return attrs


def check_valid_classes(path: str | Path, attrs: dict, valid_classes) -> None:
    """Refuse ``valid_classes`` (``encoding.valid_classes`` of a training or a model) that count as usable an SCL class
    the cube ``path`` (its attributes ``attrs``, :func:`check_cube_file`'s) was not built with: the LAI of those
    pixels was never range-checked, nor counted in the splits' clear shares. Fewer classes (e.g. the strict rule
    [4, 5, 6] on a cube of [2..6]) are fine."""
    built = attrs.get("valid_classes")
    if built is None:  # a cube before the attribute: nothing to compare with
        return
    built = json.loads(built) if isinstance(built, str) else [int(c) for c in built]
    extra = sorted(set(int(c) for c in valid_classes) - set(built))
    if extra:
        raise ConfigError(f"{path}: built with the SCL classes {built} usable; encoding.valid_classes "
                          f"{list(valid_classes)} adds {extra}, whose LAI the cube never checked: build the cube with "
                          f"these classes (`lai cube ... --set encoding.valid_classes=...`) or use a subset of {built}")


def cube_identity(path: str | Path) -> dict[str, str]:
    """What a result computed from a cube depends on: its data fingerprint, and a fingerprint of its
    split labels (with the triplet names), so that a model is never reused or scored on other splits."""
    attrs = check_cube_file(path)
    if not isinstance(attrs.get("fingerprint"), str) or not attrs["fingerprint"]:
        raise CubeError(f"{path}: incomplete cube, attribute fingerprint missing; rebuild it with `lai cube`")
    with h5py.File(path, "r") as f:
        labels = f["split"][:].astype(str)
        names = f["name"][:, 2].astype(str) if "name" in f else np.arange(len(labels)).astype(str)
    digest = hashlib.sha256("\n".join(f"{n}\t{s}" for n, s in zip(names, labels)).encode())
    return {"fingerprint": str(attrs["fingerprint"]), "splits": digest.hexdigest()}


def open_cube(path: str | Path):
    """Open a cube lazily as an ``xarray.Dataset`` (after checking its schema)."""
    import xarray as xr

    check_cube_file(path)
    try:  # a variable lai did not write has no dimension
        ds = xr.open_dataset(path, engine="h5netcdf", phony_dims="access")
    except (OSError, KeyError, RuntimeError, ValueError) as err:  # damage the checks above do not read
        raise CubeError(f"{path}: not a readable cube (damaged: {shorten(str(err), 200)}); rebuild it with `lai cube`") from None
    return ds.set_coords([c for c in COORDS if c in ds.variables])


def _summary(path, ds, reused: bool = False) -> CubeSummary:
    return CubeSummary(
        path=str(path),
        n_triplets=ds.sizes["triplet"],
        height=ds.sizes["y"],
        width=ds.sizes["x"],
        has_truth="lai_true" in ds,
        splits=split_counts(ds["split"].values),
        skipped=_json_attr(path, ds, "skipped", list),
        fingerprint=ds.attrs.get("fingerprint", ""),
        reused=reused,
        pixel_fixes=_json_attr(path, ds, "pixel_fixes", dict),
    )


def _json_attr(path, ds, name: str, kind: type):
    """The cube attribute ``name``: JSON of a ``kind`` (list or dict) as lai writes it, empty where absent."""
    try:
        value = json.loads(ds.attrs[name]) if name in ds.attrs else kind()
    except (TypeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, kind):
        raise CubeError(f"{path}: attribute {name} is {shorten(repr(ds.attrs.get(name)), 40)}, not the JSON "
                        f"{kind.__name__} lai writes; rebuild the cube (`lai cube --overwrite`)")
    return value


def describe(ds) -> pd.DataFrame:
    """Per-split table: triplets, areas, mean clear fraction of past dates and of t; a label lai does not write
    (``trian``, an edited cube) gets its row after lai's, not left out."""
    df = pd.DataFrame(
        {
            "split": ds["split"].values.astype(str),
            "region": regions_of(pd.DataFrame({k: ds[k].values.astype(str) for k in ("country", "area")})),
            "clear_past": ds["clear_fraction"].values[:, :2].mean(axis=1),
            "clear_t": ds["clear_fraction"].values[:, 2],
            "cloud_past": ds["cloud_fraction"].values[:, :2].mean(axis=1),
        }
    )
    return df.groupby("split").agg(
        triplets=("region", "size"),
        regions=("region", "nunique"),
        clear_past=("clear_past", "mean"),
        cloud_past=("cloud_past", "mean"),
        clear_t=("clear_t", "mean"),
    ).reindex([*SPLIT_LABELS, *sorted(set(df["split"]) - set(SPLIT_LABELS))]).dropna(how="all")
