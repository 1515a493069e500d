"""Triplets and maps as georeferenced xarray DataArrays: x/y pixel-centre coordinates and a CRS,
ready for rioxarray (``.rio.to_raster(path)`` writes a GeoTIFF with the right CRS and transform).
:func:`triplet_array` gives a variable of a cube triplet, :func:`prediction_array` a map that
``lai predict`` wrote (its predictions.nc).

The cube keeps each triplet's CRS (WKT or EPSG string) and affine transform (six numbers, GDAL's
``a, b, c, d, e, f`` as rasterio gives them); real LNB files may carry neither, and then there is
nothing to georeference: :func:`georeferenced` says so instead of inventing coordinates.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lai.cube import decoded
from lai.errors import CubeError
from lai.facts import POLARISATIONS, TIME_LABELS
from lai.products import LAI_BANDS, SOURCE_NODATA, STD


def georeferenced(values: np.ndarray, crs: str, transform, name: str, attrs: dict | None = None, where: str = ""):
    """(…, y, x) array -> DataArray with x/y coordinates of pixel centres, the CRS and the transform."""
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr
    from affine import Affine

    t = np.asarray(transform, float) if transform is not None else np.full(6, np.nan)
    if not crs or not np.isfinite(t).all():
        lacking = " or ".join(k for k, gone in (("CRS", not crs), ("transform", not np.isfinite(t).all())) if gone)
        raise CubeError(f"{where or name}: no georeferencing (the input GeoTIFFs carried no {lacking})")
    a, b, c, d, e, f = t
    if b or d:
        raise CubeError(f"{where or name}: rotated transform {tuple(t.tolist())} is not supported (x/y must follow the grid)")
    h, w = values.shape[-2:]
    dims = tuple(f"dim_{i}" for i in range(values.ndim - 2)) + ("y", "x")
    da = xr.DataArray(values, dims=dims, name=name, attrs=dict(attrs or {}),
                      coords={"y": f + e * (np.arange(h) + 0.5), "x": c + a * (np.arange(w) + 0.5)})
    return da.rio.write_crs(crs).rio.write_transform(Affine(a, b, c, d, e, f))


def triplet_array(cube: str | Path, index: int, variable: str = "lai", time: str = "t"):
    """One variable of one cube triplet as a georeferenced DataArray.

    ``variable``: ``lai``, ``scl``, ``s1`` (bands VV, VH) or ``lai_true`` (simulated data); ``time``: t-2,
    t-1 or t.
    """
    from lai.cube import open_cube

    if time not in TIME_LABELS:
        raise CubeError(f"time must be one of {', '.join(TIME_LABELS)}; got {time!r}")
    with open_cube(cube) as ds:
        if variable not in ds.data_vars:
            raise CubeError(f"{cube}: no variable {variable!r}; it has {', '.join(map(str, ds.data_vars))}")
        if not 0 <= index < ds.sizes["triplet"]:
            raise CubeError(f"{cube}: triplet index {index} out of range 0..{ds.sizes['triplet'] - 1}")
        var = ds[variable].isel(triplet=index)
        if "time" in var.dims:
            var = var.isel(time=TIME_LABELS.index(time))
        name = str(ds["name"].values[index][TIME_LABELS.index(time)])
        da = georeferenced(decoded(var.values), str(ds["crs"].values[index]), ds["transform"].values[index], variable,
                           dict(var.attrs), where=f"{cube} triplet {index} ({name})")
    if "dim_0" in da.dims and variable == "s1":
        da = da.rename(dim_0="band").assign_coords(band=list(POLARISATIONS))
    return da.assign_attrs(source_file=name)


PREDICTION_VARIABLES = (*LAI_BANDS, "source")  # of each grid group of predictions.nc (lai_std: a model with a spread)


def prediction_array(predictions: str | Path, index: int | str, variable: str = "lai"):
    """One map of ``lai predict --data`` output as a georeferenced DataArray.

    ``predictions``: its ``predictions.nc`` or the output folder holding it; ``index``: the triplet's
    position, or the name of its t file; ``variable``: ``lai`` (gap-filled LAI at t), ``lai_model`` (the
    model everywhere), ``lai_std`` (the standard deviation of ``lai``, from a model that predicts it) or ``source``
    (:data:`lai.products.SOURCE_MEANINGS`: 1 observed, 0 model, 2 model without S1 at t-2 or t-1, 255 nodata). The
    CRS and transform are those of
    the input triplet (the group's ``spatial_ref``), so ``.rio.to_raster(path)`` writes a GeoTIFF on the
    input's grid.
    """
    import h5py

    path = Path(predictions)
    path = path / "predictions.nc" if path.is_dir() else path
    if variable not in PREDICTION_VARIABLES:
        raise CubeError(f"variable must be one of {', '.join(PREDICTION_VARIABLES)}; got {variable!r}")
    if not path.is_file():
        raise CubeError(f"{path}: no such predictions file; `lai predict --data ... --out FOLDER` writes FOLDER/predictions.nc")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise CubeError(f"{path}: not a readable predictions file (truncated or not netCDF4/HDF5): {err}") from None
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
    with f:
        missing = [v for v in ("name", "grid", "grid_index") if v not in f]
        if missing:
            raise CubeError(f"{path}: variable(s) {', '.join(missing)} missing; expected the predictions.nc of `lai predict`")
        names = [text(n) for n in f["name"][:]]
        if isinstance(index, str):
            if index not in names:
                raise CubeError(f"{path}: no triplet whose t file is {index!r}")
            index = names.index(index)
        if not 0 <= index < len(names):
            raise CubeError(f"{path}: triplet index {index} out of range 0..{len(names) - 1}")
        group = f[text(f["grid"][index])]
        if variable not in group:
            raise CubeError(f"{path}: holds no {variable}" + (" (the model predicts no spread: model.uncertainty was off)"
                                                              if variable == STD else ""))
        values = group[variable][int(f["grid_index"][index])]
        attrs = {k: text(v) for k, v in group[variable].attrs.items()
                 if k in ("long_name", "standard_name", "units", "flag_meanings")}
        crs, transform = "", None
        if "spatial_ref" in group:
            ref = group["spatial_ref"].attrs
            crs = text(ref["crs_wkt"])
            c, a, b, f_, d, e = (float(v) for v in text(ref["GeoTransform"]).split())
            transform = (a, b, c, d, e, f_)
        da = georeferenced(values, crs, transform, variable, attrs, where=f"{path} triplet {index} ({names[index]})")
    da = da.rio.write_nodata(np.nan if variable != "source" else SOURCE_NODATA, encoded=False)
    return da.assign_attrs(source_file=names[index])
