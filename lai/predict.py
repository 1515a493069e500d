"""Apply a trained run to every triplet of an LNB folder or a cube: georeferenced LAI maps at t.

Output folder (written under a hidden temporary name and renamed into place when complete)::

    <out>/<stem of the t file>.tif         band 1 ``lai`` gap-filled (the observed S2 LAI at t where usable, the
                                           model elsewhere), band 2 ``lai_model``, band 3 ``lai_std`` from a model
                                           that predicts its spread; m2/m2, NaN nodata where
                                           nothing is observed and Sentinel-1 at t is missing; the tile's CRS
                                           and transform when it has them
    <out>/<stem of the t file>_source.tif  uint8: 1 observed, 0 model, 2 model without S1 at t-2 or t-1,
                                           255 nodata (lai.products.SOURCE_MEANINGS)
    <out>/predictions.nc                   the same maps, one group per grid, georeferenced (lai.products)
    <out>/summary.json              counts, including the dB values clipped to the training range and the predicted
                                    LAI clamped to the plausible range (lai.infer.clamp_lai)

Input rule shared with training: backscatter is clipped to ``encoding.db_range`` of the run
(:func:`lai.encode.normalise_db`); the summary counts the values this touched.
Tiles of any size are padded (edge values repeated) to the U-Net's multiple and cropped back. Each tile is predicted
inside a frame of up to ``context`` pixels (``lai predict --context``, default :data:`lai.facts.PREDICT_CONTEXT`) taken
from the tiles beside it (:class:`Neighbours`: the same three dates, one tile apart by their names and their
georeferencing), so that a mosaic of adjacent maps does not show the tile edges; a tile with none beside it is
predicted alone, as with ``context`` 0.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lai.config import ConfigError
from lai.cube import check_cube_file, check_valid_classes, decoded
from lai.encode import count_clipped, day_of_year
from lai.errors import CubeError, LNBError, shorten
from lai.facts import PREDICT_BATCH, PREDICT_CONTEXT
from lai.infer import Trained, clamp_lai, load_trained, predict_batch
from lai.io import atomic_path, check_new_folder, check_outside, output_lock
from lai.lnb import FIRST_DATE, TileName, same_grid
from lai.pixels import LAI_RANGE, PIXEL_FIX_NOTES
from lai.products import (
    SOURCE_MEANINGS,
    SOURCE_MODEL_PAST_RADAR_MISSING,
    SOURCE_OBSERVED,
    MapOrigin,
    PredictionsFile,
    gap_fill,
    gap_fill_std,
    past_radar_missing,
    write_map,
)
from lai.stage_folder import stage_folder_of

# --------------------------------------------------------------------------- inputs


@dataclass
class Sample:
    """One triplet to predict: arrays time first, the t file's name, dates and georeferencing."""

    name: str
    s1: np.ndarray  # (3, 2, H, W) dB
    lai: np.ndarray  # (3, H, W)
    scl: np.ndarray  # (3, H, W) uint8
    date_t: dt.date
    date_from: dt.date
    crs: str | None
    transform: tuple | None
    fixes: dict = field(default_factory=dict)  # lai.pixels.clean_pixels' counts (LNB folders; a cube was cleaned when built)

    @property
    def nbytes(self) -> int:
        return self.s1.nbytes + self.lai.nbytes + self.scl.nbytes


class Inputs:
    """The triplets of an LNB folder or of a cube, in order, with their tile shape; :meth:`read` reads any one,
    keeping the last ones read (up to :data:`READ_CACHE_BYTES`) for the neighbours' context."""

    def __init__(self, path: str | Path, valid_classes, progress: bool = True):
        self.path = Path(path)
        self.valid_classes = valid_classes
        self._cache: OrderedDict[int, Sample] = OrderedDict()
        self._h5 = None
        if not self.path.exists():
            raise FileNotFoundError(f"--data {self.path} does not exist (expected an LNB folder or a cube .nc file)")
        if self.path.is_dir():
            from lai.lnb import index_folder

            self.kind = "lnb"
            self.index = index_folder(self.path, progress=progress)
            self.n, self.shape = len(self.index.triplets), (self.index.height, self.index.width)
            self.names = [t.names for t in self.index.triplets]
            from lai.simulate.write import SIMULATION_FILE

            # lai's simulator wrote the folder: the true LAI beside it, or its record (a copy without truth/)
            self.simulated = self.index.has_truth or (self.path / SIMULATION_FILE).is_file()
        else:
            import h5py

            check_valid_classes(self.path, check_cube_file(self.path), valid_classes)  # its LAI checked for these
            self.kind = "cube"
            with h5py.File(self.path, "r") as f:
                self.n, self.shape = f["lai"].shape[0], tuple(f["lai"].shape[-2:])
                self.simulated = "lai_true" in f
                crs = np.unique(f["crs"][:].astype(str)) if "crs" in f else []
                self.names = [tuple(row) for row in f["name"].asstr()[:]]
            _check_crs(self.path, crs)

    def __len__(self) -> int:
        return self.n

    def read(self, i: int) -> Sample:
        """Triplet ``i``."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        sample = self._read_lnb(i) if self.kind == "lnb" else self._read_cube(i)
        self._cache[i] = sample
        if len(self._cache) * sample.nbytes > READ_CACHE_BYTES:
            self._cache.popitem(last=False)
        return sample

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def _read_lnb(self, i: int) -> Sample:
        from lai.lnb import read_triplet

        trip = self.index.triplets[i]
        d = read_triplet(self.path, trip, self.shape, self.valid_classes)
        p = trip.target
        return Sample(trip.names[2], d.s1, d.lai, d.scl, p.date_to, p.date_from, d.crs, d.transform, d.fixes)

    def _read_cube(self, i: int) -> Sample:
        import h5py

        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        f = self._h5
        transform = f["transform"][i]
        t = tuple(transform) if np.isfinite(transform).all() else None
        days = f["date"][i]
        target, first = (FIRST_DATE + dt.timedelta(days=int(days[k])) for k in (2, 0))
        s1, lai = (decoded(f[v][i]) for v in ("s1", "lai"))
        return Sample(self.names[i][2], s1, lai, f["scl"][i], target, first, f["crs"].asstr()[i] or None, t)


READ_CACHE_BYTES = 512 * 2**20  # triplets kept after reading, for the tiles beside those still to predict


# --------------------------------------------------------------------------- neighbours' context

BESIDE = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]  # the 8 tile positions around a tile


class Neighbours:
    """Which triplets lie beside which. Named beside: file names equal but for Row and Col (the same region and three
    dates), Row and Col one apart. Used only where the georeferencing confirms it: the same CRS, and the transform
    of the tile shifted by one tile's pixels (:func:`shifted`); tiles without georeferencing are never joined."""

    def __init__(self, names: list[tuple[str, str, str]]):
        self.position: list[tuple | None] = []  # per triplet: (key, row, col), None where a name does not parse
        self.at: dict[tuple, int] = {}  # (key, row, col) -> triplet (the first, where two share a name)
        for i, trip in enumerate(names):
            try:
                parts = [TileName.parse(Path(name).name) for name in trip]
            except LNBError:  # a cube of other names: no neighbours by name
                self.position.append(None)
                continue
            key = tuple(dataclasses.replace(p, row=0, col=0) for p in parts)
            pos = (key, parts[2].row, parts[2].col)
            self.position.append(pos)
            self.at.setdefault(pos, i)

    def named(self, i: int) -> dict[tuple[int, int], int]:
        """(rows, cols) in tiles -> triplet, for the triplets named beside triplet ``i``."""
        if self.position[i] is None:
            return {}
        key, row, col = self.position[i]
        found = {(dy, dx): self.at.get((key, row + dy, col + dx)) for dy, dx in BESIDE}
        return {step: j for step, j in found.items() if j is not None}

    def counts(self, georef: list[tuple], shape: tuple[int, int]) -> tuple[int, int]:
        """(maps with a tile beside them, pairs of tiles named beside each other but not so placed) for the triplets'
        (CRS, transform) ``georef``, tiles of ``shape``."""
        with_any = off_grid = 0
        for i, tile in enumerate(georef):
            placed = {j: beside(tile, georef[j], step, shape) for step, j in self.named(i).items()}
            with_any += any(placed.values())
            off_grid += sum(not ok for j, ok in placed.items() if j > i)
        return with_any, off_grid


def beside(tile: tuple, other: tuple, step: tuple[int, int], shape: tuple[int, int]) -> bool:
    """Whether ``other``'s (CRS, transform) places it one tile ``step`` (rows, cols in tiles of ``shape``) from
    ``tile``'s; never for tiles without georeferencing."""
    crs, transform = tile
    if crs is None or transform is None:
        return False
    return same_grid(other, (crs, shifted(transform, step[0] * shape[0], step[1] * shape[1])))


def shifted(transform: tuple, rows: int, cols: int) -> tuple:
    """An affine transform ``(a, b, c, d, e, f)`` moved by ``rows`` and ``cols`` pixels."""
    a, b, c, d, e, f = transform[:6]
    return (a, b, c + a * cols + b * rows, d, e, f + d * cols + e * rows)


@dataclass
class Framed:
    """What the model sees of a tile: its arrays in a frame of the pixels beside it, ``top`` and ``left`` the tile's
    first row and column in the frame (0 and the tile itself where nothing lies beside it)."""

    s1: np.ndarray
    lai: np.ndarray
    scl: np.ndarray
    top: int = 0
    left: int = 0


def in_context(tile: Sample, around: dict[tuple[int, int], Sample], pixels: int) -> Framed:
    """``tile`` framed by up to ``pixels`` pixels of the tiles ``around`` it ((rows, cols) in tiles -> sample): the frame
    reaches out on the sides where a tile lies (the tile alone where none does); a corner of it that no tile covers
    (two sides' tiles there, not the diagonal one) takes the nearest pixel of what is there."""
    h, w = tile.lai.shape[-2:]
    reach = lambda axis, side: pixels if any(step[axis] == side for step in around) else 0  # noqa: E731
    top, bottom, left, right = reach(0, -1), reach(0, 1), reach(1, -1), reach(1, 1)
    size = (h + top + bottom, w + left + right)
    filled = np.zeros(size, bool)
    frames = {key: np.zeros(getattr(tile, key).shape[:-2] + size, getattr(tile, key).dtype) for key in ("s1", "lai", "scl")}
    for (dy, dx), sample in {(0, 0): tile, **around}.items():
        y0, x0 = top + dy * h, left + dx * w  # the sample's first pixel in the frame
        ys, xs = slice(max(y0, 0), min(y0 + h, size[0])), slice(max(x0, 0), min(x0 + w, size[1]))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            continue
        inner = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
        for key, frame in frames.items():
            frame[..., ys, xs] = getattr(sample, key)[(..., *inner)]
        filled[ys, xs] = True
    if not filled.all():
        from scipy.ndimage import distance_transform_edt

        nearest = distance_transform_edt(~filled, return_distances=False, return_indices=True)
        frames = {key: frame[..., nearest[0], nearest[1]] for key, frame in frames.items()}
    return Framed(**frames, top=top, left=left)


def framed_tile(inputs: Inputs, neighbours: Neighbours, k: int, context: int) -> tuple[Sample, Framed]:
    """Triplet ``k`` of ``inputs``, and what the model sees of it: its tile in a frame of ``context`` pixels of the
    tiles placed beside it (:func:`in_context`)."""
    sample = inputs.read(k)
    tile = (sample.crs, sample.transform)
    if not context or None in tile:  # a tile without georeferencing is never joined: its neighbours are not read
        return sample, Framed(sample.s1, sample.lai, sample.scl)
    named = {step: inputs.read(j) for step, j in neighbours.named(k).items()}
    around = {step: other for step, other in named.items() if beside(tile, (other.crs, other.transform), step, inputs.shape)}
    return sample, in_context(sample, around, context)


def _check_crs(cube: Path, names) -> None:
    """:class:`CubeError` naming ``cube`` and the CRS where one of its ``names`` (the CRS of its triplets, empty
    for none) is not a CRS rasterio reads: its maps could not be placed."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    for name in names:
        if name:
            try:
                CRS.from_user_input(name)
            except CRSError as err:
                raise CubeError(f"{cube}: a triplet's CRS {shorten(name, 80)!r} is not one GDAL knows ({err}); "
                                "rebuild the cube with `lai cube`") from None


def predict_folder(run: str | Path, data: str | Path, out: str | Path, batch_size: int = PREDICT_BATCH, device: str = "auto",
                   progress: bool = True, context: int | None = None) -> dict:
    """Predict LAI at t for every triplet of ``data`` (LNB folder or cube) with the run in ``run``.

    ``out`` must be a new folder outside ``data``; it is locked while written, and the leftovers of an
    interrupted earlier prediction into it are removed. ``context``: pixels of the tiles beside each tile that frame
    it while it is predicted (0: each tile alone; at most the tiles' size; None: :data:`lai.facts.PREDICT_CONTEXT`,
    or the tiles' size where they are smaller).
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1 (triplets per model call), got {batch_size}")
    if context is not None and context < 0:
        raise ConfigError(f"--context {context}: the pixels of the neighbouring tiles around each tile; expected 0 or more")
    out = Path(out)
    if Path(data).is_dir():
        check_outside(out, data, "LNB folder", "the maps")
    trained = load_trained(run, device)  # a folder without a trained model is named before any output check
    check_outside(out, stage_folder_of(run), "training run folder", "the maps")
    with output_lock(out):
        check_new_folder(out)
        return _predict_folder(trained, run, data, out, batch_size, progress, context)


def _predict_folder(trained: Trained, run, data, out: Path, batch_size: int, progress: bool, context: int | None) -> dict:
    """:func:`predict_folder` with ``out`` locked."""
    from lai.progress import tqdm

    inputs = Inputs(data, trained.enc.valid_classes, progress)
    if context is None:
        context = min(PREDICT_CONTEXT, *inputs.shape)
    elif context > min(inputs.shape):
        raise ConfigError(f"--context {context}: at most the tiles' size, {inputs.shape[0]}x{inputs.shape[1]} pixels in "
                          f"{data} (the frame comes from the tiles beside each one)")
    neighbours = Neighbours(inputs.names)
    origin = trained.origin(data, inputs.simulated)
    meta = {**origin.tags(), "run": str(Path(run).resolve()), "db_range": json.dumps(trained.enc.db_range)}
    totals = dict(s1_values=0, clipped=0, pixels=0, observed=0, nodata=0, lai_clamped=0, past_radar_missing=0)
    without_crs: list[str] = []  # triplets whose rasters carry no CRS: maps a GIS cannot place
    other_pixels: list[str] = []  # triplets whose pixel size is none the model was trained on
    georef: list[tuple] = []  # per triplet: (CRS, transform)
    fixes = dict.fromkeys(PIXEL_FIX_NOTES, 0)
    names: list[str] = []
    with atomic_path(out) as tmp:
        tmp.mkdir()
        with PredictionsFile(tmp / "predictions.nc", len(inputs), meta, trained.predicts_spread, trained.row) as nc:
            batch: list[tuple[Sample, Framed]] = []  # (tile, what the model sees)
            bar = tqdm(total=len(inputs), desc="predict", unit="triplet", disable=not progress)
            try:
                for k in range(len(inputs)):
                    sample, framed = framed_tile(inputs, neighbours, k, context)
                    georef.append((sample.crs, sample.transform))
                    batch.append((sample, framed))
                    fixes.update({key: fixes[key] + n for key, n in sample.fixes.items()})
                    if len(batch) == batch_size or k == len(inputs) - 1:
                        _write_batch(trained, batch, tmp, nc, totals, origin)
                        tiles = [s for s, _ in batch]
                        without_crs += [s.name for s in tiles if s.crs is None]
                        other_pixels += [s.name for s in tiles if trained.other_pixel_size(s.transform)]
                        names += [s.name for s in tiles]
                        bar.update(len(batch))
                        batch = []
                bar.close()
            finally:
                inputs.close()
        with_neighbours, off_grid = neighbours.counts(georef, inputs.shape)
        if not totals["s1_values"]:  # as lai validate and predict --scene refuse it: every map the past LAI only
            raise LNBError(data, f"none of its {len(names)} triplets holds a backscatter value (S1 all NaN or nodata): "
                                 "no radar to predict from")
        summary = {
            "run": meta["run"], "data": meta["data"], "data_kind": inputs.kind, "data_origin": meta["data_origin"],
            "row": trained.row,
            "triplets": len(names), "tile": list(inputs.shape),
            "padded_to": [-(-s // trained.factor) * trained.factor for s in inputs.shape],
            "db_range": trained.enc.db_range, "s1_values_clipped": totals["clipped"],
            "s1_values_clipped_fraction": totals["clipped"] / max(totals["s1_values"], 1),
            "observed_fraction": totals["observed"] / max(totals["pixels"], 1),
            "bands": "lai: the observed S2 LAI at t where usable, the model elsewhere; lai_model: the model everywhere"
                     + ("; lai_std: the standard deviation of lai" if trained.predicts_spread else ""),
            "source_codes": SOURCE_MEANINGS,
            **({"uncertainty": trained.calibration.summary()} if trained.predicts_spread else {}),
            "nodata_pixels": totals["nodata"], "model_without_past_radar_pixels": totals["past_radar_missing"],
            "lai_clamped_pixels": totals["lai_clamped"],
            "maps_without_crs": without_crs,
            "training_pixel_sizes": trained.pixel_sizes,  # [x, y] in the training triplets' CRS units; [] unknown
            "maps_of_other_pixel_size": other_pixels,
            # neighbours: tiles of the same three dates, one tile apart by their names and their georeferencing
            "context": context, "maps_with_neighbours": with_neighbours, "neighbours_off_grid": off_grid,
            "lai_range": list(LAI_RANGE), "pixel_fixes": fixes,
            "pixel_fixes_meaning": PIXEL_FIX_NOTES if inputs.kind == "lnb" else "inputs read from a cube, cleaned when it was built",
            "out": str(out),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_batch(trained: Trained, batch: list[tuple[Sample, Framed]], folder: Path, nc: PredictionsFile, totals: dict,
                 origin: MapOrigin) -> None:
    tiles = [tile for tile, _ in batch]
    s1, lai_in = np.stack([s.s1 for s in tiles]), np.stack([s.lai for s in tiles])
    doy_t, doy_from = day_of_year([s.date_t for s in tiles]), day_of_year([s.date_from for s in tiles])
    h, w = lai_in.shape[-2:]
    model, observed = np.empty((len(tiles), h, w), np.float32), np.empty((len(tiles), h, w), np.uint8)
    model_sd = np.empty_like(model) if trained.predicts_spread else None
    shapes: dict[tuple, list[int]] = {}
    for k, (_, framed) in enumerate(batch):
        shapes.setdefault(framed.lai.shape[-2:], []).append(k)
    for ks in shapes.values():  # frames of one shape in one call, each cropped back to its tile
        frames = [batch[k][1] for k in ks]
        m, o, sd = predict_batch(trained, *(np.stack([getattr(f, key) for f in frames]) for key in ("s1", "lai", "scl")),
                                 doy_t[ks], doy_from[ks])
        for i, (k, f) in enumerate(zip(ks, frames)):
            crop = (i, slice(f.top, f.top + h), slice(f.left, f.left + w))
            model[k], observed[k] = m[crop], o[crop]
            if model_sd is not None:
                model_sd[k] = sd[crop]
    model, clamped = clamp_lai(model)
    lai, source = gap_fill(model, lai_in[:, 2], observed, past_radar_missing(s1) if trained.reads_s1 else None)
    std = None if model_sd is None else gap_fill_std(model_sd, source, trained.calibration.observation_sd)
    totals["lai_clamped"] += clamped
    totals["s1_values"] += int(np.isfinite(s1).sum())
    totals["clipped"] += count_clipped(s1, trained.enc)
    totals["pixels"] += observed.size
    totals["observed"] += int((source == SOURCE_OBSERVED).sum())
    totals["past_radar_missing"] += int((source == SOURCE_MODEL_PAST_RADAR_MISSING).sum())
    totals["nodata"] += int(np.isnan(lai).sum())
    for k, s in enumerate(tiles):
        tif = folder / (Path(s.name).stem + ".tif")
        if tif.exists():
            raise LNBError(s.name, f"two triplets share the t file stem {tif.stem}; output names would collide")
        write_map(tif, lai[k], model[k], source[k], s.crs, s.transform, None if std is None else std[k],
                  origin.tags(t=s.date_t, t_minus_2=s.date_from))
        nc.add(s.name, ((s.date_t - FIRST_DATE).days, (s.date_from - FIRST_DATE).days), lai[k], model[k], source[k], s.crs, s.transform,
               None if std is None else std[k])
