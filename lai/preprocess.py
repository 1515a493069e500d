"""Scene rasters -> the LNB layout: pick triplets by date, put S1 on the S2 grid, cut named tiles.

A YAML manifest (read by :func:`lai.manifest.read_preprocess_manifest`) lists the acquisitions of one
place (relative paths are relative to it)::

    country: AUSTRIA            # the first two parts of every tile name
    area: WALDVIERTEL
    s2:                         # per S2 date: an LAI raster, or the L2A bands for the SNAP network
      - date: 2017-06-13
        lai: lai_0613.tif
        scl: scl_0613.tif       # optional: without it every pixel counts as clear (said in the summary)
      - date: 2017-06-18
        bands: {B03: b03.tif, B04: b04.tif, B05: b05.tif, B06: b06.tif, B07: b07.tif,
                B8A: b8a.tif, B11: b11.tif, B12: b12.tif}
        angles: {view_zenith: 5.0, sun_zenith: 30.0, relative_azimuth: 90.0}   # degrees, from MTD_TL.xml
        metadata: MTD_MSIL2A.xml   # optional: platform and quantification (or platform: S2A, processing_baseline: 05.09)
    s1:                         # per S1 date: VV and VH rasters (or one two-band raster as `file`)
      - {date: 2017-06-13, vv: vv_0613.tif, vh: vh_0613.tif}

Every S2 date takes the S1 acquisition nearest in time within ``max_s1_gap_days`` (dates without
one are listed, not used); consecutive usable S2 dates form the triplets t-2, t-1, t. S1 is
resampled onto the S2 grid with rasterio (bilinear in linear power, back to dB) when its CRS or
resolution differ, and only if ``reproject`` allows it; 20 m L2A bands are resampled to the
10 m grid of B03. The scene is cut into ``tile_size`` tiles (partial tiles at the right and
bottom edges are left out and counted), each written with its CRS and transform and named
``<COUNTRY>_<AREA>_<DateFrom>_<DateTo>-<IdxTime>-<n>-<Row>-<Col>.tiff`` (n: S2 dates before
t-2); ``image_series.csv`` lists the triplets and ``preprocess.json`` says how the folder was
made. L2A bands go through SNAP's network (:mod:`lai.snap`: the built-in 2_1, or SNAP 3_0 of the date's
platform from ``snap_auxdata``); its flags are written beside the LAI as ``s2-snap-flags/<tile>.tiff``
(uint8, bit k = :data:`lai.snap.FLAGS` [k]) and counted per date. Work goes tile by tile, so memory does not grow with the scene; on dask, one triplet of
dates per task.
"""
from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lai.config import EncodingConfig, PreprocessConfig
from lai.errors import SceneError
from lai.facts import POLARISATIONS
from lai.io import atomic_path, check_new_folder, memory_shortfall, output_lock
from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, TileName, crs_text, crs_units, write_series, write_tile
from lai.manifest import CLEAR_WITHOUT_SCL, Manifest, S1Date, S2Date, read_preprocess_manifest
from lai.pixels import (
    MAX_BAD_SHARE,
    PIXEL_FIX_NOTES,
    S1_MISSING_MEANING,
    S1_SCENE_NODATA,
    BadPixelTally,
    check_float32,
    check_polarisation,
    check_stored,
    clean_pixels,
    masked_as_missing,
    nodata_as_nan,
    polarisation_order,
)
from lai.snap import BANDS, BUILTIN, FLAGS, Network, check_reflectance, flag_counts, read_auxdata, snap_product

SUMMARY = "preprocess.json"  # written into the LNB folder: how it was made
SNAP_FLAGS_DIR = "s2-snap-flags"  # beside s2/: SNAP's flags of the tiles computed from L2A bands (not read by lai)
L2A_NODATA = 0  # the digital number of L2A's no-data pixels
SNAP_FLAG_NOTES = {
    "input_out_of_range": "reflectances outside the network's definition domain (LAI computed and kept, as SNAP does); "
                          "checked only with SNAP's auxdata (domain_checked): the built-in 2_1 lacks the domain",
    "output_thresholded_to_min": "LAI within the tolerance below the minimum, set to the minimum (0)",
    "output_thresholded_to_max": "LAI within the tolerance above the maximum, set to the maximum (8)",
    "output_too_low": "LAI below the minimum minus the tolerance (kept: the LNB reader masks it on usable pixels)",
    "output_too_high": "LAI above the maximum plus the tolerance (kept: the LNB reader masks what exceeds 15)",
}


def pick_triplets(s2: list[S2Date], s1: list[S1Date], max_gap_days: int) -> tuple[list[tuple[int, int, int]], dict[int, int], list[str]]:
    """Triplets of consecutive S2 dates that each have an S1 acquisition within ``max_gap_days``.

    Returns the triplets (indices into ``s2``), the S1 index matched to each usable S2 date, and
    the S2 dates left out for want of S1. Of two S1 dates equally near, the one the S2 date before did not take
    (so that consecutive dates do not share one radar image where another was as near), else the earlier.
    """
    match, unused = {}, []
    for i, d in enumerate(s2):
        gaps = [abs((a.date - d.date).days) for a in s1]
        best = min(gaps)
        if best <= max_gap_days:
            nearest = [j for j, gap in enumerate(gaps) if gap == best]
            match[i] = next((j for j in nearest if j != match.get(i - 1)), nearest[0])
        else:
            unused.append(f"{d.date} (nearest S1 {best} days away)")
    usable = sorted(match)
    return [tuple(usable[k:k + 3]) for k in range(len(usable) - 2)], match, unused


def usable_triplets(m: Manifest, max_gap_days: int) -> tuple[list[tuple[int, int, int]], dict[int, int], list[str]]:
    """:func:`pick_triplets` of the manifest ``m``; :class:`SceneError` naming it when there is none, or when its
    ``target`` (the date ``lai predict --scene`` maps; ``lai preprocess`` writes every triplet) ends none."""
    triplets, match, unused = pick_triplets(m.s2, m.s1, max_gap_days)
    if not triplets:
        raise SceneError(f"{m.path}: no three S2 dates with an S1 acquisition within {max_gap_days} day(s) "
                         f"each (left out: {', '.join(unused) or 'none'})")
    ends = sorted({m.s2[t[2]].date for t in triplets})
    if m.target is not None and m.target not in ends:
        raise SceneError(f"{m.path}: target {m.target} ends no triplet of S2 dates with S1; dates that do: "
                         f"{', '.join(map(str, ends))}")
    return triplets, match, unused


# --------------------------------------------------------------------------- rasters


@dataclass(frozen=True)
class TileGrid:
    crs: object
    transform: object
    height: int
    width: int


def _north_up(src, path: Path) -> None:
    """Refuse a geotransform that is not north-up (rotated, sheared, or mirrored: x growing westward or y
    northward): windows and tiles are cut along rows and columns of a north-up grid (a rotated or a south-up S1
    lost part of its values and misplaced the rest without a word)."""
    t = src.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise SceneError(f"{path}: rotated, sheared or mirrored geotransform ({t.a:g}, {t.b:g}, {t.c:g}, {t.d:g}, "
                         f"{t.e:g}, {t.f:g}); lai reads north-up rasters: warp it first (gdalwarp)")


def _open_georeferenced(path: Path):
    """``path`` opened with rasterio; a raster without a CRS is a :class:`SceneError` naming it (rasterio's
    NotGeoreferencedWarning silenced: the error says it in one line)."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        src = rasterio.open(path)
    if src.crs is None:
        src.close()
        raise SceneError(f"{path}: raster has no CRS; scenes need georeferenced rasters")
    return src


def grid_of(path: Path) -> TileGrid:
    """CRS, transform and size of a georeferenced, north-up raster."""
    with _open_georeferenced(path) as src:
        _north_up(src, path)
        return TileGrid(src.crs, src.transform, src.height, src.width)


def s2_grid(dates: list[S2Date]) -> TileGrid:
    """The one grid of S2 dates (B03's for bands); :class:`SceneError` naming the first raster on another."""
    grid = grid_of(dates[0].raster)
    for d in dates[1:]:
        if (other := grid_of(d.raster)) != grid:
            raise SceneError(f"{d.raster}: S2 grid ({_describe(other)}) differs from that of {dates[0].date}, "
                             f"{dates[0].raster} ({_describe(grid)}); every S2 date of a scene must share one grid")
    return grid


def _describe(grid: TileGrid) -> str:
    t = grid.transform
    return (f"CRS {crs_text(grid.crs)}, {grid.height}x{grid.width} pixels of {t.a:g} {crs_units(grid.crs)} from "
            f"({t.c:.17g}, {t.f:.17g})")


def _same_grid(src, grid: TileGrid) -> bool:
    """Same CRS and pixel size, with pixel corners aligned: a window read needs no resampling."""
    if src.crs != grid.crs or not np.allclose(src.res, (abs(grid.transform.a), abs(grid.transform.e))):
        return False
    col, row = ~src.transform * (grid.transform.c, grid.transform.f)
    return abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6


MAX_SOURCE_RATIO = 16  # a raster on another grid may need at most this many source pixels per target pixel ...
MIN_SOURCE_PIXELS = 2**22  # ... or this many, whichever is more: a finer raster is resampled by the user first
CHECK_PIXELS = 2**20  # target pixels per read of the up-front check that each S1 date holds a value (:func:`check_inputs`)
_KINDS = {"f": "float", "iuf": "integer or float"}


def _scene_bounds(src, grid: TileGrid, path: Path) -> tuple[float, float, float, float]:
    """``grid``'s bounds in the CRS of ``src`` (left, bottom, right, top); :class:`SceneError` when they do not
    transform (coordinates outside the CRS's domain: a mislabelled CRS)."""
    from rasterio.warp import transform_bounds

    right, bottom = grid.transform * (grid.width, grid.height)
    try:
        bounds = transform_bounds(grid.crs, src.crs, grid.transform.c, bottom, right, grid.transform.f)
    except Exception:  # noqa: BLE001 - PROJ's errors vary with the CRS; all mean the same here
        bounds = (math.nan,) * 4
    if not all(math.isfinite(b) for b in bounds):
        raise SceneError(f"{path}: the S2 scene's bounds in {grid.crs} do not transform into this raster's CRS "
                         f"({src.crs}): is one of them mislabelled (coordinates of another CRS)?")
    return bounds


def _source_window(src, grid: TileGrid, path: Path):
    """The window of ``src`` that resampling onto ``grid`` reads (2 pixels margin for the kernel), its size checked
    against a budget before anything is read (a raster at 2 cm took gigabytes for a 400 m scene)."""
    from rasterio.windows import Window, from_bounds

    win = from_bounds(*_scene_bounds(src, grid, path), transform=src.transform)
    col, row = math.floor(win.col_off) - 2, math.floor(win.row_off) - 2
    win = Window(col, row, math.ceil(win.col_off + win.width) + 2 - col, math.ceil(win.row_off + win.height) + 2 - row)
    nbytes = 4.0 * win.width * win.height * src.count  # float32, read then converted in place
    if win.width * win.height > max(MAX_SOURCE_RATIO * grid.width * grid.height, MIN_SOURCE_PIXELS) \
            or memory_shortfall(3 * nbytes):
        raise SceneError(f"{path}: reading it onto the S2 grid needs {win.height}x{win.width} of its pixels of "
                         f"{src.res[0]:g} ({nbytes / 1e9:.3g} GB) for {grid.height}x{grid.width} pixels of "
                         f"{abs(grid.transform.a):g}, more than lai reads at once; resample it first (gdalwarp -tr)")
    return win


def _read_missing(src, win) -> np.ndarray:
    """Window ``win`` of ``src`` as float32, NaN where GDAL masks it or it lies outside the raster (values beyond
    float32 refused, :func:`lai.pixels.check_float32`)."""
    from rasterio.errors import RasterioIOError

    try:
        raw = src.read(window=win, boundless=True, masked=True)
    except RasterioIOError as err:  # an input's fault: not blamed on the output being written
        raise SceneError(f"{src.name}: pixel data cannot be read (truncated or corrupt file?): {err}") from None
    data = check_float32(raw, src.name)
    with np.errstate(over="ignore"):  # only masked pixels (a declared nodata) can lie beyond float32 now
        return masked_as_missing(data.astype(np.float32))


def read_on_grid(path: Path, grid: TileGrid, resampling: str, linear_db: bool = False, allow: bool = True,
                 what: str = "raster", nodata: float | None = None, bands: int | None = None,
                 kinds: str = "iuf", joint_nodata: bool = False) -> np.ndarray:
    """All bands of ``path`` on ``grid`` (bands, H, W) float32: a window read when aligned, else resampled.

    ``linear_db``: the values are dB, resampled in linear power and returned in dB. Missing (NaN in the result,
    left out of the resampling kernel): what GDAL masks (a declared nodata value, a mask band or alpha), what lies
    outside the raster, and ``nodata`` if given (``joint_nodata``: only where every band holds it, before any
    resampling). ``bands``: how many bands the raster must have; ``kinds``: the
    numpy dtype kinds it may have (:func:`lai.pixels.check_stored`, the folder reader's check; a :class:`SceneError`
    or :class:`lai.errors.LNBError` naming it otherwise).
    """
    from rasterio.warp import Resampling, reproject
    from rasterio.windows import Window

    with _open_georeferenced(path) as src:
        if bands is not None and src.count != bands:
            raise SceneError(f"{path}: {what} raster has {src.count} bands; expected {bands}")
        _north_up(src, path)
        check_stored(src, path, kinds, f"{_KINDS[kinds]} {what} values")
        if _same_grid(src, grid):
            col, row = (round(v) for v in ~src.transform * (grid.transform.c, grid.transform.f))
            return nodata_as_nan(_read_missing(src, Window(col, row, grid.width, grid.height)), nodata, joint_nodata)
        if not allow:
            raise SceneError(f"{path}: {what} is on another grid ({src.crs}, {src.res[0]:g} {crs_units(src.crs)}) than "
                             f"the S2 scene ({grid.crs}, {abs(grid.transform.a):g} {crs_units(grid.crs)}) and "
                             "reprojection is not allowed (reproject: false)")
        win = _source_window(src, grid, path)
        data = nodata_as_nan(_read_missing(src, win), nodata, joint_nodata)
        if linear_db:
            data = 10 ** (data / 10)
        out = np.full((src.count, grid.height, grid.width), np.nan, np.float32)
        reproject(data, out, src_transform=src.window_transform(win), src_crs=src.crs, src_nodata=np.nan,
                  dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan, resampling=Resampling[resampling])
        if linear_db:
            with np.errstate(divide="ignore", invalid="ignore"):
                out = 10 * np.log10(out)
        return out


def s1_tile(d: S1Date, grid: TileGrid, cfg: PreprocessConfig) -> np.ndarray:
    """VV, VH (2, H, W) in dB on ``grid``; with ``s1_units: linear``, a raster whose values are mostly negative
    (dB, not linear power: every value would become NaN) is refused by name."""
    one_file = len(d.files) == 1  # a two-band VV/VH raster, else one raster each
    # an exact 0 is no data (a GRD export's undeclared border); in dB, a two-band raster's 0 in one band alone is a
    # value (data clipped to [-30, 0] dB reach it in VV), as in an LNB tile
    layers = [read_on_grid(f, grid, "bilinear", linear_db=cfg.s1_units == "db", allow=cfg.reproject,
                           what="S1 (VV, VH)" if one_file else f"S1 {pol}", bands=2 if one_file else 1,
                           nodata=S1_SCENE_NODATA, joint_nodata=one_file and cfg.s1_units == "db")
              for f, pol in zip(d.files, ("VV", "VH"))]
    if cfg.s1_units == "linear":  # small negative powers (thermal noise removed over water) are missing radar
        for f, layer in zip(d.files, layers):
            with np.errstate(invalid="ignore"):
                db_like, finite = int((layer < LINEAR_FLOOR).sum()), int(np.isfinite(layer).sum())
            if db_like > MAX_BAD_SHARE * finite:
                raise SceneError(f"{f}: {db_like} of its {finite} values on the S2 grid{_where(grid)} are below "
                                 f"{LINEAR_FLOOR:g}: dB, not linear power (drop --s1-units linear)")
    if not one_file:  # each file's band named by its description, where it names one, as in a two-band raster
        for f, pol in zip(d.files, POLARISATIONS):
            check_polarisation(_descriptions(str(f), *_stamp(f)), Path(f), pol)
    s1 = np.concatenate(layers)[list(s1_band_order(d.files[0])) if one_file else slice(None)]
    if cfg.s1_units == "linear":
        with np.errstate(divide="ignore", invalid="ignore"):
            s1 = 10 * np.log10(s1)
    return s1


LINEAR_FLOOR = -1.0  # S1 in linear power lies above it (negative only by noise removal, a few 0.001); dB below


def _where(grid: TileGrid) -> str:
    """`` (the part from x, y)`` of the scene: the upper-left corner of a tile or window, in its CRS's units."""
    return f" (the part from x {grid.transform.c:.10g}, y {grid.transform.f:.10g})"


def s1_band_order(path: Path) -> tuple[int, int]:
    """The band indices of VV and VH in a two-band S1 raster (:func:`lai.pixels.polarisation_order`). Read once per
    file (every tile and window of a scene asks)."""
    return polarisation_order(_descriptions(str(path), *_stamp(path)), Path(path))


def _stamp(path: Path) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=256)
def _descriptions(path: str, mtime_ns: int, size: int) -> tuple:
    """The band descriptions of the file as it is (``mtime_ns`` and ``size``: a file written again is read again)."""
    import rasterio

    with rasterio.open(path) as src:
        return src.descriptions


def _parts(scene: TileGrid) -> Iterator[TileGrid]:
    """``scene`` in parts of at most :data:`CHECK_PIXELS` pixels, row by row."""
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    side = math.isqrt(CHECK_PIXELS)
    for y0 in range(0, scene.height, side):
        for x0 in range(0, scene.width, side):
            win = Window(x0, y0, min(side, scene.width - x0), min(side, scene.height - y0))
            yield TileGrid(scene.crs, window_transform(win, scene.transform), int(win.height), int(win.width))


def check_inputs(s2: list[S2Date], s1: list[S1Date], scene: TileGrid, cfg: PreprocessConfig) -> None:
    """Refuse, before any tile or map is computed, a raster read onto ``scene`` that covers none of it (an SCL, an
    L2A band or an S1 raster in another place or CRS), and an S1 date without a backscatter value on it (all NaN or
    nodata). The S1 dates are read in parts (:func:`_parts`) up to the first value: one part for usable data, the
    whole scene only when it holds no radar, which is then refused at once rather than after every tile."""
    rasters = [(what, path) for d in s2 for what, path in
               ([("SCL", d.scl)] if d.scl is not None else []) + [(f"S2 {b}", f) for b, f in (d.bands or {}).items()]]
    for what, path in rasters + [(f"S1 of {a.date}", f) for a in s1 for f in a.files]:
        with _open_georeferenced(path) as src:
            left, bottom, right, top = _scene_bounds(src, scene, path)
            if left >= src.bounds.right or right <= src.bounds.left or bottom >= src.bounds.top or top <= src.bounds.bottom:
                crs = f" (its CRS {src.crs}, the scene's {scene.crs})" if src.crs != scene.crs else ""
                raise SceneError(f"{path}: {what} covers none of the S2 scene{crs}")
    for a in s1:
        if not any(np.isfinite(s1_tile(a, part, cfg)).all(axis=0).any() for part in _parts(scene)):
            raise SceneError(f"{', '.join(map(str, a.files))}: S1 of {a.date} holds no backscatter value on the S2 scene "
                             f"({scene.height}x{scene.width} pixels): all NaN or nodata; check the S1 rasters")


def s2_tile(d: S2Date, grid: TileGrid, cfg: PreprocessConfig, network: Network | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """LAI (H, W), SCL (H, W) as read (float: checked by :func:`lai.pixels.clean_pixels` before any cast) on ``grid``,
    and SNAP's flags (H, W) when the LAI comes from L2A bands through ``network`` (NaN LAI where any band is no-data)."""
    flags = None
    if d.lai is not None:
        lai = read_on_grid(d.lai, grid, "bilinear", what="S2 LAI", bands=1, kinds="f")[0]
    else:
        dn = np.concatenate([read_on_grid(d.bands[b], grid, "bilinear", what=f"S2 {b}", nodata=L2A_NODATA, bands=1)
                             for b in BANDS])
        nodata = ~np.isfinite(dn).all(axis=0)
        scale, offsets = ((d.reflectance.scale, d.reflectance.offsets) if d.reflectance is not None
                          else (cfg.reflectance_scale, (cfg.reflectance_offset,) * len(BANDS)))
        if d.reflectance is None and cfg.reflectance_offset == 0 and cfg.reflectance_scale == 1e-4:
            _check_no_offset(dn[:, ~nodata], d)
        refl = dn * scale + np.asarray(offsets, np.float32)[:, None, None]
        try:
            check_reflectance(refl[:, ~nodata], scale, f"{d.bands['B03']} and the other bands of {d.date}")
        except ValueError as err:
            raise SceneError(str(err)) from None
        lai, flags = snap_product(refl, d.angles, network or BUILTIN)
        lai[nodata], flags[nodata] = np.nan, 0
    scl = (read_on_grid(d.scl, grid, "nearest", what="SCL", bands=1)[0] if d.scl is not None
           else np.full(lai.shape, CLEAR_WITHOUT_SCL, np.float32))
    scl[np.isnan(scl)] = 0  # outside a float SCL raster: no data (class 0), as outside an integer one
    return lai.astype(np.float32), scl, flags


OFFSET_DN = 1000  # BOA_ADD_OFFSET of L2A products from processing baseline 04.00 on (January 2022): DN = 10000 x
# reflectance + 1000; before it dark pixels (water, shadow, the blue band of vegetation) lie far below 1000


def _check_no_offset(dn: np.ndarray, d: S2Date) -> None:
    """Refuse L2A bands read without an offset whose digital numbers look offset: 99 % of them at least
    :data:`OFFSET_DN` in every band. Read as before 04.00, they give reflectance 0.1 too high and LAI about half."""
    if dn.size and min(np.percentile(band, 1) for band in dn) >= OFFSET_DN:
        raise SceneError(f"{d.bands['B03']} and the other bands of {d.date}: 99 % of their digital numbers are at least "
                         f"{OFFSET_DN} in every band, as in L2A products from processing baseline 04.00 on (reflectance "
                         "offset -0.1), which the manifest does not say: give the date's metadata (MTD_MSIL2A.xml) or "
                         "processing_baseline (05.09, say; 03.01 for an older product over snow or cloud), or "
                         "--reflectance-offset -0.1")


def snap_networks(m: Manifest, cfg: PreprocessConfig) -> dict[str, Network]:
    """The network of each S2 date given as bands, by date: SNAP 3_0 of its platform from ``cfg.snap_auxdata``, else
    the built-in 2_1. Read before any tile is written, so a missing platform or network is refused first."""
    out, loaded = {}, {}
    for k, d in enumerate(m.s2):
        if d.bands is None:
            continue
        if cfg.snap_auxdata is None:
            out[str(d.date)] = BUILTIN
            continue
        if d.platform is None:
            raise SceneError(f"{m.path}: s2[{k}] ({d.date}) needs platform (S2A or S2B) or metadata to choose SNAP's network "
                             "(--snap-auxdata given)")
        if d.platform not in loaded:
            try:
                loaded[d.platform] = read_auxdata(cfg.snap_auxdata, d.platform)
            except (OSError, ValueError) as err:
                raise SceneError(f"s2[{k}] ({d.date}, {d.platform}): {err}") from None
        out[str(d.date)] = loaded[d.platform]
    return out


def _preprocess_triplet(trip: tuple[int, int, int], m: Manifest, match: dict, scene: TileGrid, cfg: PreprocessConfig,
                        networks: dict[str, Network], tmp: Path, bar=None) -> tuple[list, tuple[dict, dict, dict]]:
    """Write every tile position of one triplet of S2 dates; return its CSV rows, SNAP's flag counts and the pixel
    fixes, per (S2 date, tile row, tile column): a date shared by several triplets is counted once by the caller;
    and the out-of-range pixels per file (:class:`lai.pixels.BadPixelTally` counts), which the caller judges whole."""
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    size = cfg.tile_size
    dates = [m.s2[i] for i in trip]
    series, flagged, fixes, judged = [], {}, {}, {}
    valid = EncodingConfig().valid_classes  # the reference rule, as `lai validate` checks a folder
    for r in range(scene.height // size):
        for c in range(scene.width // size):
            win = Window(c * size, r * size, size, size)
            grid = TileGrid(scene.crs, window_transform(win, scene.transform), size, size)
            names = [TileName(m.country, m.area, dates[0].date, dates[2].date, k, trip[0], r, c).format() for k in range(3)]
            for i, name in zip(trip, names):
                d = m.s2[i]
                lai, scl, flags = s2_tile(d, grid, cfg, networks.get(str(d.date)))
                s1 = s1_tile(m.s1[match[i]], grid, cfg)
                # the reader's rule on the scene's files (out-of-range pixels made missing; a file with too many of
                # them refused by name once all its tiles are read, before the folder is kept)
                source = (m.s1[match[i]].files[0], d.raster, d.scl or f"(no SCL: class {CLEAR_WITHOUT_SCL})")
                tally = BadPixelTally()  # out-of-range pixels counted: the caller judges each scene file whole
                scl, fixed = clean_pixels(s1[None], lai[None], scl[None], valid, [source], tally)
                judged[(str(d.date), r, c)] = tally.counts
                if flags is not None:
                    flagged[(str(d.date), r, c)] = flag_counts(flags)
                    write_tile(tmp / SNAP_FLAGS_DIR / name, flags, grid.crs, grid.transform)
                fixes[(str(d.date), r, c)] = {**fixed.counts(), "s1_missing": int(np.isnan(s1).any(axis=0).sum())}
                write_tile(tmp / S1_DIR / name, s1, grid.crs, grid.transform)
                write_tile(tmp / S2_DIR / name, lai, grid.crs, grid.transform)
                write_tile(tmp / MASK_DIR / name, scl[0], grid.crs, grid.transform)
            series.append(names)
            if bar is not None:
                bar.update()
    return series, (flagged, fixes, judged)


def preprocess(manifest: str | Path, out: str | Path, cfg: PreprocessConfig | None = None, progress: bool = True,
               dask: dict | None = None) -> dict:
    """Write the LNB folder ``out`` from the scenes in ``manifest``; return a summary.

    ``dask``: ``{"workers": N}`` or ``{"scheduler": ADDRESS}`` writes one triplet of dates per task on
    dask.distributed (workers must see ``out``'s file system); the folder does not depend on it.
    """
    from lai.progress import tqdm

    cfg = cfg or PreprocessConfig()
    cfg.validate()
    out = Path(out)
    check_new_folder(out)
    m = read_preprocess_manifest(manifest)
    triplets, match, unused = usable_triplets(m, cfg.max_s1_gap_days)
    scene = s2_grid(m.s2)
    networks = snap_networks(m, cfg)
    size = cfg.tile_size
    rows, cols = scene.height // size, scene.width // size
    if not rows or not cols:
        raise SceneError(f"{manifest}: scene of {scene.height}x{scene.width} pixels is smaller than one tile "
                         f"(preprocess.tile_size {size})")
    used = sorted({i for trip in triplets for i in trip})
    check_inputs([m.s2[i] for i in used], [m.s1[j] for j in sorted({match[i] for i in used})], scene, cfg)
    with output_lock(out), atomic_path(out) as tmp:  # a second writer refused, an earlier one's leftovers removed
        for sub in (S1_DIR, S2_DIR, MASK_DIR) + ((SNAP_FLAGS_DIR,) if networks else ()):
            (tmp / sub).mkdir(parents=True)
        with tqdm(total=len(triplets) * rows * cols, desc="preprocess", unit="tile", disable=not progress) as bar:
            task = functools.partial(_preprocess_triplet, m=m, match=match, scene=scene, cfg=cfg, networks=networks,
                                     tmp=Path(tmp).resolve())  # absolute: workers of a --scheduler run elsewhere
            if dask:
                from lai.parallel import dask_client, map_ordered

                with dask_client(**dask) as client:
                    done = map_ordered(task, triplets, client, on_done=lambda i, _: bar.update(rows * cols))
            else:
                done = [task(trip, bar=bar) for trip in triplets]
        tally = BadPixelTally()  # the 5 % rule on each scene file whole (each date's tile once), as --scene judges it
        for counts in {key: n for _, (_, _, part) in done for key, n in part.items()}.values():
            for (kind, file, date), (bad, checked, worst) in counts.items():
                tally.add(kind, file, date, bad, checked, worst)
        tally.check(EncodingConfig().valid_classes)
        series = [names for part, _ in done for names in part]
        flagged = {key: n for _, (part, _, _) in done for key, n in part.items()}  # each date's tile once
        snap = {str(d.date): {"network": networks[str(d.date)].name, "platform": d.platform,
                              "domain_checked": networks[str(d.date)].domain_minmax is not None,
                              "reflectance": (d.reflectance.source if d.reflectance else
                                              f"--reflectance-scale {cfg.reflectance_scale:g} --reflectance-offset "
                                              f"{cfg.reflectance_offset:g}"),
                              "flags": {f: sum(n[f] for key, n in flagged.items() if key[0] == str(d.date))
                                        for f in FLAGS}}
                for d in m.s2 if str(d.date) in networks and any(key[0] == str(d.date) for key in flagged)}
        per_tile = {key: n for _, (_, part, _) in done for key, n in part.items()}
        fixes = {kind: sum(n[kind] for n in per_tile.values()) for kind in PIXEL_FIX_NOTES}
        write_series(tmp, series)
        taken = {match[i] for i in used}  # the S1 dates the triplets' S2 dates read
        summary = {
            "manifest": str(manifest), "out": str(out), "triplets": len(series), "tiles_per_date": rows * cols,
            "tile_size": size, "crs": crs_text(scene.crs),
            "partial_tiles_left_out": (-(-scene.height // size)) * (-(-scene.width // size)) - rows * cols,
            "s2_dates_without_s1": unused,
            "s1_date_of_s2_date": {str(m.s2[i].date): str(m.s1[match[i]].date) for i in used},
            "s1_dates_unused": [str(d.date) for j, d in enumerate(m.s1) if j not in taken],
            "s2_dates_without_scl": [str(d.date) for d in m.s2 if d.scl is None],
            "scl_written_without_mask": CLEAR_WITHOUT_SCL,
            "lai_from_snap": snap, "snap_flags_meaning": SNAP_FLAG_NOTES,
            "pixel_fixes": fixes, "pixel_fixes_meaning": PIXEL_FIX_NOTES,
            "s1_missing_pixels": sum(n["s1_missing"] for n in per_tile.values()),
            "s1_missing_meaning": S1_MISSING_MEANING,
            "config": asdict(cfg),
        }
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2))
    return summary
