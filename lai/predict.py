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
Tiles of any size are padded (edge values repeated) to the U-Net's multiple and cropped back.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lai.config import ConfigError
from lai.cube import check_cube_file, check_valid_classes, decoded
from lai.encode import count_clipped, day_of_year
from lai.errors import CubeError, LNBError, shorten
from lai.facts import PREDICT_BATCH
from lai.infer import Trained, clamp_lai, load_trained, predict_batch
from lai.io import atomic_path, check_new_folder, check_outside, output_lock
from lai.lnb import FIRST_DATE
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


class Inputs:
    """The triplets of an LNB folder or of a cube, in order, with their tile shape."""

    def __init__(self, path: str | Path, valid_classes, progress: bool = True):
        self.path = Path(path)
        self.valid_classes = valid_classes
        if not self.path.exists():
            raise FileNotFoundError(f"--data {self.path} does not exist (expected an LNB folder or a cube .nc file)")
        if self.path.is_dir():
            from lai.lnb import index_folder

            self.kind = "lnb"
            self.index = index_folder(self.path, progress=progress)
            self.n, self.shape = len(self.index.triplets), (self.index.height, self.index.width)
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
            _check_crs(self.path, crs)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Sample]:
        return self._lnb() if self.kind == "lnb" else self._cube()

    def _lnb(self) -> Iterator[Sample]:
        from lai.lnb import read_triplet

        for trip in self.index.triplets:
            d = read_triplet(self.path, trip, self.shape, self.valid_classes)
            p = trip.target
            yield Sample(trip.names[2], d.s1, d.lai, d.scl, p.date_to, p.date_from, d.crs, d.transform, d.fixes)

    def _cube(self) -> Iterator[Sample]:
        import h5py

        with h5py.File(self.path, "r") as f:
            names = f["name"][:, 2].astype(str)
            dates = f["date"][:]
            crs = f["crs"][:].astype(str)
            transform = f["transform"][:]
            for i in range(self.n):
                t = tuple(transform[i]) if np.isfinite(transform[i]).all() else None
                target, first = (FIRST_DATE + dt.timedelta(days=int(dates[i, k])) for k in (2, 0))
                s1, lai = (decoded(f[v][i]) for v in ("s1", "lai"))
                yield Sample(names[i], s1, lai, f["scl"][i], target, first, crs[i] or None, t)


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
                   progress: bool = True) -> dict:
    """Predict LAI at t for every triplet of ``data`` (LNB folder or cube) with the run in ``run``.

    ``out`` must be a new folder outside ``data``; it is locked while written, and the leftovers of an
    interrupted earlier prediction into it are removed.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    out = Path(out)
    if Path(data).is_dir():
        check_outside(out, data, "LNB folder", "the maps")
    trained = load_trained(run, device)  # a folder without a trained model is named before any output check
    check_outside(out, stage_folder_of(run), "training run folder", "the maps")
    with output_lock(out):
        check_new_folder(out)
        return _predict_folder(trained, run, data, out, batch_size, progress)


def _predict_folder(trained: Trained, run, data, out: Path, batch_size: int, progress: bool) -> dict:
    """:func:`predict_folder` with ``out`` locked."""
    from lai.progress import tqdm

    inputs = Inputs(data, trained.enc.valid_classes, progress)
    origin = trained.origin(data, inputs.simulated)
    meta = {**origin.tags(), "run": str(Path(run).resolve()), "db_range": json.dumps(trained.enc.db_range)}
    totals = dict(s1_values=0, clipped=0, pixels=0, observed=0, nodata=0, lai_clamped=0, past_radar_missing=0)
    without_crs: list[str] = []  # triplets whose rasters carry no CRS: maps a GIS cannot place
    other_pixels: list[str] = []  # triplets whose pixel size is none the model was trained on
    fixes = dict.fromkeys(PIXEL_FIX_NOTES, 0)
    names: list[str] = []
    with atomic_path(out) as tmp:
        tmp.mkdir()
        with PredictionsFile(tmp / "predictions.nc", len(inputs), meta, trained.predicts_spread, trained.row) as nc:
            batch: list[Sample] = []
            bar = tqdm(total=len(inputs), desc="predict", unit="triplet", disable=not progress)
            for k, sample in enumerate(inputs):
                batch.append(sample)
                fixes.update({key: fixes[key] + n for key, n in sample.fixes.items()})
                if len(batch) == batch_size or k == len(inputs) - 1:
                    _write_batch(trained, batch, tmp, nc, totals, origin)
                    without_crs += [s.name for s in batch if s.crs is None]
                    other_pixels += [s.name for s in batch if trained.other_pixel_size(s.transform)]
                    names += [s.name for s in batch]
                    bar.update(len(batch))
                    batch = []
            bar.close()
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
            "lai_range": list(LAI_RANGE), "pixel_fixes": fixes,
            "pixel_fixes_meaning": PIXEL_FIX_NOTES if inputs.kind == "lnb" else "inputs read from a cube, cleaned when it was built",
            "out": str(out),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_batch(trained: Trained, batch: list[Sample], folder: Path, nc: PredictionsFile, totals: dict,
                 origin: MapOrigin) -> None:
    stack = lambda key: np.stack([getattr(s, key) for s in batch])  # noqa: E731
    s1, lai_in = stack("s1"), stack("lai")
    model, observed, model_sd = predict_batch(trained, s1, lai_in, stack("scl"),
                                              day_of_year([s.date_t for s in batch]),
                                              day_of_year([s.date_from for s in batch]))
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
    for k, s in enumerate(batch):
        tif = folder / (Path(s.name).stem + ".tif")
        if tif.exists():
            raise LNBError(s.name, f"two triplets share the t file stem {tif.stem}; output names would collide")
        write_map(tif, lai[k], model[k], source[k], s.crs, s.transform, None if std is None else std[k],
                  origin.tags(t=s.date_t, t_minus_2=s.date_from))
        nc.add(s.name, ((s.date_t - FIRST_DATE).days, (s.date_from - FIRST_DATE).days), lai[k], model[k], source[k], s.crs, s.transform,
               None if std is None else std[k])
