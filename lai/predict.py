"""Apply a trained run to every triplet of an LNB folder or a cube: georeferenced LAI maps at t.

Output folder (written under a hidden temporary name and renamed into place when complete)::

    <out>/<stem of the t file>.tif  band 1 float32 LAI (m2/m2) predicted at t, nodata NaN where
                                    Sentinel-1 at t is missing; band 2 the flag, 1 = observed
                                    (S2 clear at t), 0 = filled by the model (stored as float32
                                    0/1: a GeoTIFF has one data type for all bands); the tile's CRS and
                                    transform when it has them
    <out>/predictions.nc            the same maps for all triplets (CF-1.8 attributes)
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lai.config import ConfigError
from lai.cube import CF_ATTRS, EPOCH, check_cube_file, decoded
from lai.encode import count_clipped
from lai.errors import LNBError
from lai.infer import NODATA, Trained, clamp_lai, day_of_year, geotiff_profile, load_trained, predict_batch
from lai.io import atomic_path, check_new_folder, check_outside, output_lock
from lai.lnb import LAI_RANGE

FLAG_MEANINGS = "filled_by_model observed_clear_s2"


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
        else:
            import h5py

            check_cube_file(self.path)
            self.kind = "cube"
            with h5py.File(self.path, "r") as f:
                self.n, self.shape = f["lai"].shape[0], tuple(f["lai"].shape[-2:])

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Sample]:
        return self._lnb() if self.kind == "lnb" else self._cube()

    def _lnb(self) -> Iterator[Sample]:
        from lai.lnb import read_triplet

        for trip in self.index.triplets:
            d = read_triplet(self.path, trip, self.shape, self.valid_classes)
            p = trip.target
            yield Sample(trip.names[2], d.s1, d.lai, d.scl, p.date_to, p.date_from, d.crs, d.transform)

    def _cube(self) -> Iterator[Sample]:
        import h5py

        with h5py.File(self.path, "r") as f:
            names = f["name"][:, 2].astype(str)
            dates = f["date"][:]
            crs = f["crs"][:].astype(str)
            transform = f["transform"][:]
            for i in range(self.n):
                t = tuple(transform[i]) if np.isfinite(transform[i]).all() else None
                target, first = (EPOCH + dt.timedelta(days=int(dates[i, k])) for k in (2, 0))
                s1, lai = (decoded(f[v][i]) for v in ("s1", "lai"))
                yield Sample(names[i], s1, lai, f["scl"][i], target, first, crs[i] or None, t)


# --------------------------------------------------------------------------- outputs


def write_map(path: Path, lai: np.ndarray, observed: np.ndarray, crs, transform) -> None:
    """One GeoTIFF: band 1 LAI float32, band 2 the flag (stored as float32 0/1 in a one-dtype file)."""
    import rasterio

    with rasterio.open(path, "w", **geotiff_profile(*lai.shape, crs, transform)) as dst:
        dst.write(lai, 1)
        dst.write(observed.astype(np.float32), 2)
        dst.set_band_description(1, "LAI at t (m2/m2)")
        dst.set_band_description(2, "1 = observed (S2 clear at t), 0 = filled by the model")


def _netcdf(path: Path, n: int, shape: tuple[int, int], meta: dict):
    import h5netcdf
    import h5py

    f = h5netcdf.File(path, "w")
    f.dimensions = {"triplet": n, "y": shape[0], "x": shape[1], "affine": 6}
    lai = f.create_variable("lai", ("triplet", "y", "x"), np.float32, chunks=(1, *shape), fillvalue=NODATA,
                            compression="gzip")
    lai.attrs.update({**CF_ATTRS["lai"], "long_name": "leaf area index at t predicted by the model",
                      "comment": "m2 of leaf per m2 of ground; NaN where Sentinel-1 at t is missing"})
    flag = f.create_variable("observed", ("triplet", "y", "x"), np.uint8, chunks=(1, *shape), compression="gzip")
    flag.attrs.update(long_name="S2 clear at t", flag_values=np.array([0, 1], np.uint8), flag_meanings=FLAG_MEANINGS)
    f.create_variable("name", ("triplet",), h5py.string_dtype()).attrs["long_name"] = "input file name of t"
    time = f.create_variable("time", ("triplet",), np.int32)
    time.attrs.update(standard_name="time", units="days since 1970-01-01", calendar="proleptic_gregorian")
    f.create_variable("crs_wkt", ("triplet",), h5py.string_dtype()).attrs["long_name"] = "CRS of the tile (empty if none)"
    f.create_variable("transform", ("triplet", "affine"), np.float64, fillvalue=np.nan).attrs["long_name"] = (
        "affine transform a, b, c, d, e, f of the tile (NaN if none)")
    f.attrs.update(Conventions="CF-1.8", title="LAI at t from Sentinel-1 and Sentinel-2 time series", **meta)
    return f


def predict_folder(run: str | Path, data: str | Path, out: str | Path, batch_size: int = 8, device: str = "auto",
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
    with output_lock(out):
        check_new_folder(out)
        return _predict_folder(run, data, out, batch_size, device, progress)


def _predict_folder(run, data, out: Path, batch_size: int, device: str, progress: bool) -> dict:
    """:func:`predict_folder` with ``out`` locked."""
    from tqdm.auto import tqdm

    from lai import __version__

    trained = load_trained(run, device)
    inputs = Inputs(data, trained.enc.valid_classes, progress)
    meta = dict(run=str(Path(run).resolve()), data=str(Path(data).resolve()), row=trained.row, lai_version=__version__,
                db_range=json.dumps(trained.enc.db_range))
    totals = dict(s1_values=0, clipped=0, pixels=0, observed=0, nodata=0, lai_clamped=0)
    names: list[str] = []
    with atomic_path(out) as tmp:
        tmp.mkdir()
        with _netcdf(tmp / "predictions.nc", len(inputs), inputs.shape, meta) as nc:
            batch: list[Sample] = []
            bar = tqdm(total=len(inputs), desc="predict", unit="triplet", disable=not progress)
            for k, sample in enumerate(inputs):
                batch.append(sample)
                if len(batch) == batch_size or k == len(inputs) - 1:
                    _write_batch(trained, batch, tmp, nc, len(names), totals)
                    names += [s.name for s in batch]
                    bar.update(len(batch))
                    batch = []
            bar.close()
        summary = {
            "run": meta["run"], "data": meta["data"], "data_kind": inputs.kind, "row": trained.row,
            "triplets": len(names), "tile": list(inputs.shape),
            "padded_to": [-(-s // trained.factor) * trained.factor for s in inputs.shape],
            "db_range": trained.enc.db_range, "s1_values_clipped": totals["clipped"],
            "s1_values_clipped_fraction": totals["clipped"] / max(totals["s1_values"], 1),
            "observed_fraction": totals["observed"] / max(totals["pixels"], 1),
            "nodata_pixels": totals["nodata"], "lai_clamped_pixels": totals["lai_clamped"],
            "lai_range": list(LAI_RANGE), "out": str(out),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_batch(trained: Trained, batch: list[Sample], folder: Path, nc, start: int, totals: dict) -> None:
    stack = lambda key: np.stack([getattr(s, key) for s in batch])  # noqa: E731
    s1 = stack("s1")
    lai, observed = predict_batch(trained, s1, stack("lai"), stack("scl"),
                                  np.array([day_of_year(s.date_t) for s in batch]),
                                  np.array([day_of_year(s.date_from) for s in batch]))
    lai, clamped = clamp_lai(lai)
    totals["lai_clamped"] += clamped
    totals["s1_values"] += int(np.isfinite(s1).sum())
    totals["clipped"] += count_clipped(s1, trained.enc)
    totals["pixels"] += observed.size
    totals["observed"] += int(observed.sum())
    totals["nodata"] += int(np.isnan(lai).sum())
    for k, s in enumerate(batch):
        tif = folder / (Path(s.name).stem + ".tif")
        if tif.exists():
            raise LNBError(s.name, f"two triplets share the t file stem {tif.stem}; output names would collide")
        write_map(tif, lai[k], observed[k], s.crs, s.transform)
        i = start + k
        nc["lai"][i], nc["observed"][i], nc["name"][i] = lai[k], observed[k], s.name
        nc["time"][i] = (s.date_t - EPOCH).days
        nc["crs_wkt"][i] = s.crs or ""
        if s.transform is not None:
            nc["transform"][i] = s.transform

