"""Predict LAI at t over a whole scene: sliding windows with overlap, smooth blending, windowed I/O.

A scene is described by a manifest in the format of ``lai preprocess`` (docs/manifest.md): its S2 dates
(LAI rasters or L2A bands, through SNAP's network as in preprocessing) and S1 dates (reprojected onto the
S2 grid when needed, as in preprocessing), plus an optional ``target`` date t; the triplet of usable dates
ending at t is mapped (default: the last one). The S2 dates share one grid, the map's; without ``scl`` every
pixel of that date counts as clear (class :data:`lai.manifest.CLEAR_WITHOUT_SCL`), and the summary says so.

Windows of ``window`` pixels step by ``window - overlap``; each prediction is weighted by a
linear ramp over the overlap (never zero) and the weighted mean is written, so window borders
leave no seam. Rows are written as soon as no later window touches them: memory grows with
the window and the scene's width, not with its area. The output is a tiled, compressed
GeoTIFF (Cloud Optimized GeoTIFF when GDAL has the COG driver) with the scene's CRS and
transform, with the bands of :mod:`lai.products`: ``lai`` (gap-filled), ``lai_model``, ``lai_std`` (from a model
that predicts its spread), and beside it
``<stem>_source.tif`` (1 observed, 0 model, 2 model without S1 at t-2 or t-1, 255 nodata:
:data:`lai.products.SOURCE_MEANINGS`). Without an SCL at t nothing counts as
observed: band ``lai`` is the model everywhere, and the summary says so. Many scenes
(:func:`predict_scenes`) go one per task on dask when asked, each worker loading the model once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lai.config import PreprocessConfig
from lai.encode import count_clipped, day_of_year
from lai.errors import SceneError
from lai.facts import SCENE_OVERLAP, SCENE_WINDOW
from lai.infer import Trained, clamp_lai, load_trained, predict_batch
from lai.io import atomic_new_files, atomic_path, check_new_folder, check_outside, memory_shortfall, output_lock
from lai.lnb import TRIPLET_BYTES_PER_PIXEL, crs_text
from lai.manifest import SHORT_FORM_GONE, load_manifest, read_preprocess_manifest
from lai.pixels import LAI_RANGE, PIXEL_FIX_NOTES, S1_MISSING_MEANING, BadPixelTally, clean_pixels
from lai.preprocess import TileGrid, check_inputs, s1_tile, s2_grid, s2_tile, snap_networks, usable_triplets
from lai.products import (
    GDAL_CACHE_MB,
    LAI_WITHOUT_SCL,
    SOURCE_MEANINGS,
    SOURCE_MODEL_PAST_RADAR_MISSING,
    SOURCE_OBSERVED,
    STD,
    describe,
    gap_fill,
    gap_fill_std,
    lai_profile,
    past_radar_missing,
    source_path,
    source_profile,
)
from lai.stage_folder import stage_folder_of


@dataclass(frozen=True)
class Grid:
    height: int
    width: int
    crs: str | None
    transform: tuple


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Window offsets along one axis covering ``size``; the last window ends at the edge."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    return starts + [size - window]


def ramp(length: int, overlap: int) -> np.ndarray:
    """Blending weight along one axis: linear from ~0 to 1 over ``overlap`` pixels at both ends."""
    i = np.arange(length) + 0.5
    return np.clip(np.minimum(i, length - i) / max(overlap, 1), 0, 1).astype(np.float32)


MIN_WINDOW = 32  # pixels: smaller windows see too little context, and their count (the time) grows as 1/window^2


GEOTIFF_SUFFIXES = (".tif", ".tiff")  # what --out of one scene may end with (its map is a GeoTIFF, COG when large)


def _check_window(window: int, overlap: int) -> None:
    """Windows of at least :data:`MIN_WINDOW` pixels, overlapping by at most half: a scene is then read about
    four times at most (a 1-pixel window or step would take hours on a Sentinel-2 tile)."""
    if window < MIN_WINDOW:
        raise SceneError(f"--window must be at least {MIN_WINDOW} pixels, got {window}")
    if not 0 <= overlap <= window // 2:
        raise SceneError(f"--overlap must lie in [0, window/2] = [0, {window // 2}] (each pixel is then predicted at most "
                         f"four times), got overlap {overlap} with window {window}")


@dataclass(frozen=True)
class SceneInputs:
    """One scene's dates t-2, t-1, t on one grid, and how to read a window of them through the pixel rule."""

    grid: Grid
    dates: list[dt.date]  # the S2 dates t-2, t-1, t
    s1_dates: list[dt.date]  # the S1 acquisition taken for each (the nearest within max_s1_gap_days)
    scl_at_t: bool
    without_scl: list[str]
    # (rasterio Window, valid SCL classes, BadPixelTally, (rows, cols) of the window it counts) -> (s1, lai, scl,
    # PixelFixes), time first: lai.pixels.clean_pixels, each file's share of out-of-range pixels judged whole
    read_window: Callable
    notes: dict  # what the summary adds (the SNAP network of dates given as L2A bands)


def open_scene(manifest: str | Path, cfg: PreprocessConfig | None = None) -> SceneInputs:
    """The scene of ``manifest`` (keys ``s2``, ``s1`` and optionally ``target``, docs/manifest.md)."""
    manifest = Path(manifest)
    raw = load_manifest(manifest, "scene manifest")
    if "dates" in raw and "s2" not in raw:
        raise SceneError(f"{manifest}: {SHORT_FORM_GONE}")
    if "s2" not in raw or "s1" not in raw:
        raise SceneError(f"{manifest}: expected keys s2 and s1 (the manifest format of docs/manifest.md); got "
                         f"{', '.join(map(str, raw)) or 'none'}")
    return _manifest_scene(manifest, cfg or PreprocessConfig())


def _manifest_scene(path: Path, cfg: PreprocessConfig) -> SceneInputs:
    cfg.validate()
    m = read_preprocess_manifest(path, for_scene=True)
    triplets, match, _ = usable_triplets(m, cfg.max_s1_gap_days)
    ends = {m.s2[t[2]].date: t for t in triplets}
    target = m.target or max(ends)  # a target that ends no triplet: refused by usable_triplets
    s2 = [m.s2[i] for i in ends[target]]
    s1 = [m.s1[match[i]] for i in ends[target]]
    scene = s2_grid(s2)
    networks = snap_networks(dataclasses.replace(m, s2=s2), cfg)
    check_inputs(s2, s1, scene, cfg)
    grid = Grid(scene.height, scene.width, crs_text(scene.crs), tuple(scene.transform)[:6])

    def read_window(win, valid_classes, tally, counted):
        from rasterio.windows import transform as window_transform

        g = TileGrid(scene.crs, window_transform(win, scene.transform), int(win.height), int(win.width))
        tiles = [s2_tile(d, g, cfg, networks.get(str(d.date))) for d in s2]
        s1_win = np.stack([s1_tile(d, g, cfg) for d in s1])
        files = [(a.files[0], d.raster, d.scl or f"(no SCL for {d.date}: every pixel taken as clear)")
                 for a, d in zip(s1, s2)]
        lai = np.stack([t[0] for t in tiles])
        scl, fixes = clean_pixels(s1_win, lai, np.stack([t[1] for t in tiles]), valid_classes, files, tally, counted)
        return s1_win, lai, scl, fixes

    return SceneInputs(grid, [d.date for d in s2], [d.date for d in s1], s2[2].scl is not None,
                       [str(d.date) for d in s2 if d.scl is None],
                       read_window, {"lai_from_snap": {date: n.name for date, n in networks.items()}} if networks else {})


def predict_scene(run: str | Path | Trained, manifest: str | Path, out: str | Path, window: int = SCENE_WINDOW,
                  overlap: int = SCENE_OVERLAP, device: str = "auto", progress: bool = True,
                  preprocess: PreprocessConfig | None = None) -> dict:
    """Write the LAI map at t of the scene in ``manifest`` to the new GeoTIFF ``out``, locked while written.

    ``preprocess``: how L2A bands and S1 on other grids are read (as ``lai preprocess`` does; default settings).
    """
    out = Path(out)
    if out.suffix.lower() not in GEOTIFF_SUFFIXES:
        raise SceneError(f"--out {out}: a scene's map is a GeoTIFF; name it with {' or '.join(GEOTIFF_SUFFIXES)}")
    if not isinstance(run, Trained):
        check_outside(out, stage_folder_of(run), "training run folder", "the map")
    with output_lock(out), output_lock(source_path(out)):  # the sidecar too: another --out may name it
        for path in (out, source_path(out)):
            if path.exists() or path.is_symlink():
                raise FileExistsError(f"--out {out}: {path} already exists; choose a new file name")
        return _predict_scene(run, manifest, out, window, overlap, device, progress, preprocess)


def _predict_scene(run: str | Path | Trained, manifest: str | Path, out: Path, window: int, overlap: int, device: str,
                   progress: bool, preprocess: PreprocessConfig | None) -> dict:
    """:func:`predict_scene` with ``out`` locked."""
    import rasterio
    from rasterio.windows import Window

    from lai.progress import tqdm

    _check_window(window, overlap)
    scene = open_scene(manifest, preprocess)
    grid = scene.grid
    trained = run if isinstance(run, Trained) else load_trained(run, device)
    doy_t, doy_from = day_of_year(scene.dates[2:]), day_of_year(scene.dates[:1])
    h, w = grid.height, grid.width
    # held at once: six accumulators of a window's height across the scene (below), one window's inputs
    too_big = memory_shortfall(6 * 4.0 * min(window, h) * w + TRIPLET_BYTES_PER_PIXEL * float(min(window, h)) * min(window, w))
    if too_big:
        raise SceneError(f"{manifest}: the scene is {h}x{w} pixels; predicting it by windows of {window} rows "
                         f"{too_big}; cut it into narrower scenes")
    ys, xs = window_starts(h, window, window - overlap), window_starts(w, window, window - overlap)
    wy, wx = ramp(min(window, h), overlap), ramp(min(window, w), overlap)
    weight = wy[:, None] * wx[None, :]
    tiling = dict(tiled=True, blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER")
    scl_at_t = scene.scl_at_t
    clipped = observed = clamped = s1_missing = modelled = no_past_radar = 0
    fixes: Counter = Counter(dict.fromkeys(PIXEL_FIX_NOTES, 0))
    tally = BadPixelTally()  # the 5 % rule per input file, over all its windows

    with atomic_new_files(out, source_path(out)) as (tmp, tmp_source), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        gtiff, source_gtiff = (t.with_name(t.name + ".gtiff") for t in (tmp, tmp_source))
        try:
            with_std = trained.predicts_spread
            with rasterio.open(gtiff, "w", **lai_profile(h, w, grid.crs, grid.transform, with_std, **tiling)) as dst, \
                    rasterio.open(source_gtiff, "w", **source_profile(h, w, grid.crs, grid.transform, **tiling)) as dst_source:
                steps = ("t_minus_2", "t_minus_1", "t")
                tags = trained.origin(manifest, simulated=False).tags(**dict(zip(steps, scene.dates)),
                                                                     **dict(zip((f"s1_{k}" for k in steps), scene.s1_dates)))
                describe(dst, "lai", tags)
                describe(dst_source, "source", tags)
                acc, acc_w, seen, flag, acc_var, gap = (np.zeros((0, w), np.float32) for _ in range(6))
                done = 0  # first row not yet written
                bar = tqdm(total=len(ys) * len(xs), desc="predict scene", unit="window", disable=not progress)
                for r, y0 in enumerate(ys):
                    wh = min(window, h)
                    grow = y0 + wh - done - acc.shape[0]
                    if grow > 0:
                        acc, acc_w, seen, flag, acc_var, gap = (np.vstack([a, np.zeros((grow, w), np.float32)])
                                                                for a in (acc, acc_w, seen, flag, acc_var, gap))
                    new_y = y0 if r == 0 else max(y0, ys[r - 1] + wh)  # rows no earlier window read
                    for c, x0 in enumerate(xs):
                        win = Window(x0, y0, min(window, w), wh)
                        new_x = x0 if c == 0 else max(x0, xs[c - 1] + win.width)
                        new = (slice(new_y - y0, None), slice(new_x - x0, None))  # each pixel counted once
                        s1, lai_in, scl, fixed = scene.read_window(win, trained.enc.valid_classes, tally, new)
                        clipped += count_clipped(s1[..., new[0], new[1]], trained.enc)
                        s1_missing += int(np.isnan(s1[..., new[0], new[1]]).any(axis=1).sum())
                        fixes.update(fixed.counts(*new))
                        lai, obs, sd = predict_batch(trained, s1[None], lai_in[None], scl[None], doy_t, doy_from)
                        rows = slice(y0 - done, y0 - done + wh)
                        cols = slice(x0, x0 + win.width)
                        acc[rows, cols] += np.nan_to_num(lai[0]) * weight
                        acc_w[rows, cols] += weight * np.isfinite(lai[0])
                        if sd is not None:  # overlapping windows: their variances blended like the means
                            acc_var[rows, cols] += np.nan_to_num(sd[0]) ** 2 * weight
                        flag[rows, cols] = obs[0] if scl_at_t else 0
                        seen[rows, cols] = lai_in[2]
                        if trained.reads_s1:  # the same pixels' radar in every window
                            gap[rows, cols] = past_radar_missing(s1)
                        bar.update()
                    final = (ys[r + 1] if r + 1 < len(ys) else h) - done
                    with np.errstate(invalid="ignore", divide="ignore"):
                        model = np.where(acc_w[:final] > 0, acc[:final] / acc_w[:final], np.nan).astype(np.float32)
                        model_sd = np.sqrt(np.where(acc_w[:final] > 0, acc_var[:final] / acc_w[:final], np.nan))
                    model, moved = clamp_lai(model)
                    clamped += moved
                    modelled += int(np.isfinite(model).sum())
                    lai_rows, source = gap_fill(model, seen[:final], flag[:final], gap[:final] > 0)
                    observed += int((source == SOURCE_OBSERVED).sum())
                    no_past_radar += int((source == SOURCE_MODEL_PAST_RADAR_MISSING).sum())
                    layers = [lai_rows, model]
                    if with_std:
                        layers.append(gap_fill_std(model_sd, source, trained.calibration.observation_sd))
                    dst.write(np.stack(layers), window=Window(0, done, w, final))
                    dst_source.write(source, 1, window=Window(0, done, w, final))
                    acc, acc_w, seen, flag, acc_var, gap = (a[final:] for a in (acc, acc_w, seen, flag, acc_var, gap))
                    done += final
                    tally.check(trained.enc.valid_classes, most=h * w)  # refused already, whatever the rest holds
                bar.close()
                # what the summary says, in the map too (a map passed on without the printed summary still says it)
                counts = {"window": window, "overlap": overlap, "dates_without_scl": scene.without_scl,
                          "s1_missing_pixels": s1_missing, "s1_values_clipped": clipped, "lai_clamped_pixels": clamped,
                          "model_without_past_radar_pixels": no_past_radar, "pixel_fixes": dict(fixes), **scene.notes}
                facts = {"observed_at_t": "yes" if scl_at_t else LAI_WITHOUT_SCL, **counts}
                facts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in facts.items()}
                dst.update_tags(**facts)
                dst_source.update_tags(**facts)
                if not scl_at_t:
                    dst.update_tags(1, long_name=LAI_WITHOUT_SCL)
            tally.check(trained.enc.valid_classes)
            if not modelled:  # e.g. S1 NaN or nodata everywhere: a map of NaN is not written as a result
                raise SceneError(f"{manifest}: no pixel of the map has a model value ({s1_missing} of {3 * h * w} S1 "
                                 "pixels of the three dates hold no backscatter value: NaN or nodata); check the S1 rasters")
            # overviews within the range of the pixels they cover (cubic overshoots); deviations by RMS
            _finish(gtiff, tmp, "AVERAGE", rms_band=STD if with_std else None)
            _finish(source_gtiff, tmp_source, "NEAREST")  # codes, not quantities
        finally:
            gtiff.unlink(missing_ok=True)
            source_gtiff.unlink(missing_ok=True)
    return {  # the map's tags (counts) and what they mean
        "manifest": str(manifest), "out": str(out), "height": h, "width": w, "crs": grid.crs,
        "windows": len(ys) * len(xs), **counts, "db_range": trained.enc.db_range, "lai_range": list(LAI_RANGE),
        "pixel_fixes_meaning": PIXEL_FIX_NOTES, "s1_missing_meaning": S1_MISSING_MEANING, "source_codes": SOURCE_MEANINGS,
        "model_fraction": modelled / (h * w), "observed_fraction": observed / (h * w), "source": str(source_path(out)),
        "bands": ("lai: the model everywhere (no SCL at t, nothing counts as observed); lai_model: the model"
                  if not scl_at_t else "lai: the observed S2 LAI at t where usable, the model elsewhere; lai_model: the model"),
        "dates": [str(d) for d in scene.dates], "s1_dates": [str(d) for d in scene.s1_dates],
        # the pixel size of the training triplets ([x, y] in their CRS's units; [] unknown), and whether the scene's differs
        "training_pixel_sizes": trained.pixel_sizes, "other_pixel_size": trained.other_pixel_size(tuple(grid.transform)),
        **({"lai_std": "band 3: the standard deviation of lai", "uncertainty": trained.calibration.summary()}
           if trained.predicts_spread else {}),
    }


@functools.lru_cache(maxsize=2)
def _worker_model(run: str, device: str) -> Trained:
    """The model of ``run``, loaded once per worker process (torch on one thread: one worker per core)."""
    import torch

    torch.set_num_threads(1)
    return load_trained(run, device)


def _predict_scene_task(manifest: Path, run: str, out_dir: Path, window: int, overlap: int, device: str,
                        preprocess: PreprocessConfig | None) -> dict:
    return predict_scene(_worker_model(run, device), manifest, out_dir / f"{manifest.stem}.tif", window, overlap,
                         device, progress=False, preprocess=preprocess)


def predict_scenes(run: str | Path, manifests: list, out: str | Path, window: int = SCENE_WINDOW, overlap: int = SCENE_OVERLAP,
                   device: str = "auto", progress: bool = True, dask: dict | None = None,
                   preprocess: PreprocessConfig | None = None) -> list[dict]:
    """LAI maps of many scenes into the new folder ``out``, one ``<manifest name>.tif`` each.

    ``dask``: ``{"workers": N}`` or ``{"scheduler": ADDRESS}`` predicts one scene per task; each worker
    loads the model once. The maps do not depend on it. Returns the scenes' summaries in input order.
    """
    from lai.progress import tqdm

    manifests, out = [Path(m) for m in manifests], Path(out)
    stems = [m.stem for m in manifests]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise SceneError(f"scene manifests share the name(s) {', '.join(twice)}: each map is named after its "
                         "manifest (<name>.tif), so rename them")
    maps = {f"{s}.tif": m for s, m in zip(stems, manifests)}
    for stem, m in zip(stems, manifests):
        sidecar = source_path(Path(f"{stem}.tif")).name
        if sidecar in maps:
            raise SceneError(f"scene manifests {m} and {maps[sidecar]}: the source map of the first ({sidecar}) would be "
                             "the map of the second; rename one of them")
    _check_window(window, overlap)
    check_outside(out, stage_folder_of(run), "training run folder", "the maps")
    for m in manifests:
        open_scene(m, preprocess)  # every manifest checked before any work starts
    with output_lock(out):
        check_new_folder(out)
        with atomic_path(out) as tmp:
            Path(tmp).mkdir()
            # paths absolute: the workers of an existing cluster (--scheduler) run in folders of their own
            task = functools.partial(_predict_scene_task, run=str(Path(run).resolve()), out_dir=Path(tmp).resolve(),
                                     window=window, overlap=overlap, device=device, preprocess=preprocess)
            with tqdm(total=len(manifests), desc="predict scenes", unit="scene", disable=not progress) as bar:
                if dask:
                    from lai.parallel import dask_client, map_ordered

                    with dask_client(**dask) as client:
                        summaries = map_ordered(task, [m.resolve() for m in manifests], client,
                                                on_done=lambda i, _: bar.update())
                else:
                    trained = load_trained(run, device)
                    summaries = []
                    for m in manifests:
                        summaries.append(predict_scene(trained, m, Path(tmp) / f"{m.stem}.tif", window, overlap, device,
                                                       progress=progress, preprocess=preprocess))
                        bar.update()
    for summary in summaries:
        for key in ("out", "source"):
            summary[key] = str(out / Path(summary[key]).name)
    return summaries


COG_BLOCK = 512  # the COG driver's tile size: it makes overviews halving the map until it fits one tile


def overview_factors(height: int, width: int, block: int = COG_BLOCK) -> list[int]:
    """The overview levels the COG driver makes for a ``height`` x ``width`` map: 2, 4, ... until a level fits ``block``."""
    factors, size = [], max(height, width)
    while size > block:
        size = -(-size // 2)
        factors.append(2 * factors[-1] if factors else 2)
    return factors


def _finish(gtiff: Path, target: Path, resampling: str, rms_band: str | None = None) -> None:
    """Copy the tiled GeoTIFF as a COG where GDAL has that driver, its overviews resampled by ``resampling``
    (a GDAL name; the COG driver's default, cubic, puts LAI below 0 and above its pixels' range), else keep it as is.

    ``rms_band``: the description of a band of standard deviations (``lai_std``), whose overviews are the root mean
    square of the pixels they cover (the typical deviation there: their average would understate it) instead.
    """
    import rasterio
    from rasterio.shutil import copy as rio_copy

    with rasterio.Env() as env:
        has_cog = "COG" in env.drivers()
    if not has_cog:
        gtiff.rename(target)
        return
    with rasterio.open(gtiff) as src:
        band = src.descriptions.index(rms_band) + 1 if rms_band and rms_band in src.descriptions else None
        factors = overview_factors(src.height, src.width)
    if band is None or not factors:
        rio_copy(gtiff, target, driver="COG", compress="DEFLATE", resampling=resampling)
        return
    rms, vrt = gtiff.with_name(gtiff.name + ".rms"), gtiff.with_name(gtiff.name + ".vrt")
    try:
        _with_overviews(gtiff, target, resampling, band, factors, rms, vrt)
    finally:
        rms.unlink(missing_ok=True)
        vrt.unlink(missing_ok=True)


def _with_overviews(gtiff: Path, target: Path, resampling: str, band: int, factors: list[int], rms: Path,
                    vrt: Path) -> None:
    """:func:`_finish` for a map with a band of deviations: the overviews are made beforehand, ``resampling`` in
    ``gtiff`` itself and RMS in ``rms`` (that band alone), and a VRT of the two, holding every tag, description,
    unit and nodata of ``gtiff``, is copied as the COG, which takes the overviews as they are."""
    from xml.sax.saxutils import escape

    import rasterio
    from rasterio.dtypes import dtype_rev, typename_fwd
    from rasterio.enums import Resampling
    from rasterio.shutil import copy as rio_copy

    with rasterio.open(gtiff, "r+") as src:
        src.build_overviews(factors, Resampling[resampling.lower()])
        profile = {**src.profile, "count": 1}
        with rasterio.open(rms, "w", **profile) as dst:
            for _, window in src.block_windows(band):
                dst.write(src.read(band, window=window), 1, window=window)
            dst.build_overviews(factors, Resampling.rms)
        h, w = src.height, src.width

        def source(i: int) -> str:
            path, b = (rms, 1) if i == band else (gtiff, i)
            return (f'<VRTRasterBand dataType="{typename_fwd[dtype_rev[src.dtypes[i - 1]]]}" band="{i}"><SimpleSource>'
                    f'<SourceFilename relativeToVRT="1">{escape(path.name)}</SourceFilename><SourceBand>{b}</SourceBand>'
                    f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><DstRect xOff="0" yOff="0" xSize="{w}" '
                    f'ySize="{h}"/></SimpleSource></VRTRasterBand>')

        grid = "".join((f"<SRS>{escape(src.crs.to_wkt())}</SRS>" if src.crs else "",
                        f"<GeoTransform>{', '.join(repr(v) for v in src.transform.to_gdal())}</GeoTransform>"))
        vrt.write_text(f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">{grid}'
                       f'{"".join(source(i) for i in range(1, src.count + 1))}</VRTDataset>')
        with rasterio.open(vrt, "r+") as dst:
            dst.nodata = src.nodata
            dst.update_tags(**src.tags())
            dst.units = src.units
            for i in range(1, src.count + 1):
                dst.set_band_description(i, src.descriptions[i - 1] or "")
                dst.update_tags(i, **src.tags(i))
    rio_copy(vrt, target, driver="COG", compress="DEFLATE")
