"""The maps `lai predict` writes: gap-filled LAI with honest bands, GeoTIFFs and a georeferenced NetCDF.

Per map (one triplet of ``--data``, or one ``--scene``)::

    <stem>.tif          float32, NaN nodata: band 1 ``lai``, the gap-filled product (the observed S2 LAI at t
                        where the SCL marks it usable, the model elsewhere); band 2 ``lai_model``, the model
                        everywhere; from a model that predicts its spread (``model.uncertainty``) band 3
                        ``lai_std``, the standard deviation of band 1 (lai.uncertainty); all in m2/m2
    <stem>_source.tif   uint8: 1 = observed, 0 = model, 2 = model without radar at t-2 or t-1 (the model reads
                        missing backscatter as its darkest value, -30 dB: less to trust), 255 = nodata (S1 at t
                        missing and nothing observed)

``predictions.nc`` (CF-1.8) holds every map of a ``--data`` prediction, one group per distinct grid
(CRS, transform, shape): ``/grid_001/lai (map, y, x)``, ``lai_model``, ``lai_std`` and ``source``, 1-D ``x``/``y``
cell-centre coordinates, each map's date ``time`` as its coordinate and a CF ``spatial_ref`` grid mapping
(``grid_mapping_name`` and parameters, ``crs_wkt`` in WKT, ``GeoTransform``), so
GDAL (``NETCDF:predictions.nc:/grid_001/lai``, one band per map: ``NETCDF_DIM_map`` its position, from 0 as the
group's variable ``map`` and the root's ``grid_index`` count, ``time`` its date) and xarray + rioxarray place each
map without lai; the groups' dimension ``map`` is not the root's ``triplet``, so ``xarray.open_datatree`` reads the
whole file. The root table ``name``, ``grid``, ``grid_index``
and ``time`` maps each triplet to its group and position. Tiles without a CRS get no grid mapping, without a
transform no ``x``/``y``. Every file says where its maps come from
(:class:`MapOrigin`: model, data, whether simulated, dates, how ``lai_std`` was calibrated): GeoTIFF tags, NetCDF
attributes.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lai.cube import CF_ATTRS
from lai.facts import EXTRA_ROWS, FINAL, ROWS
from lai.lnb import DAYS_SINCE, crs_units

NODATA = np.float32(np.nan)
UNITS = "m2/m2"
LAI_BANDS = {  # band name -> description, in band order; lai_std only from a model that predicts its spread
    "lai": "gap-filled LAI at t: the observed S2 LAI where usable, the model elsewhere",
    "lai_model": "LAI at t predicted by the model (from {inputs})",  # its row's inputs (lai.facts.RowSpec.inputs)
    "lai_std": "standard deviation of band lai: the model's spread where it fills (how it was calibrated: the "
               "map's tag lai_std; errors are heavy-tailed: where recalibrated, the central intervals' reach in "
               "lai_std is the tag lai_std_interval_half_width), the observation's error where observed (the tag "
               "lai_std_where_observed: an estimate from the training run's simulated data, or unknown: NaN)",
}
# band lai of a scene without SCL at t: nothing counts as observed
LAI_WITHOUT_SCL = "gap-filled LAI at t: no SCL at t, so nothing counts as observed: the model everywhere"
STD = "lai_std"
SOURCE_MODEL, SOURCE_OBSERVED, SOURCE_MODEL_PAST_RADAR_MISSING, SOURCE_NODATA = 0, 1, 2, 255
SOURCE_MEANINGS = {SOURCE_MODEL: "model", SOURCE_OBSERVED: "observed",
                   SOURCE_MODEL_PAST_RADAR_MISSING: "model_without_past_radar", SOURCE_NODATA: "nodata"}
# the source map's colour table (RGBA), so that a GIS shows its codes apart without styling: observed green, model
# orange, model without past radar red, nodata transparent
SOURCE_COLOURS = {SOURCE_OBSERVED: (26, 152, 80, 255), SOURCE_MODEL: (253, 174, 97, 255),
                  SOURCE_MODEL_PAST_RADAR_MISSING: (215, 48, 39, 255), SOURCE_NODATA: (0, 0, 0, 0)}
SOURCE_DESCRIPTION = ("source of band lai: 1 = observed S2 LAI, 0 = model, 2 = model without S1 at t-2 or t-1 (missing "
                      "radar, given to the model as the input 0: -30 dB under the default encoding), 255 = nodata")
# tag data_origin of maps whose input shows no sign of lai's simulator (no true LAI, no simulation.yaml; a scene's
# rasters never do): lai cannot tell real data from simulated tiles cut out without them
NOT_SIMULATED = "real, as far as lai can tell (the input holds no true LAI and no record of lai's simulator)"
GDAL_CACHE_MB = 64  # GDAL's block cache while writing a map (bounded: scenes can be large)


@dataclass(frozen=True)
class MapOrigin:
    """Where the maps of one prediction come from, written into each (GeoTIFF dataset tags, predictions.nc
    attributes), so that a map read outside lai still says it."""

    model: str  # the trained model's weights file (model.pt of its training stage)
    row: str  # the model's Table 1 row or variant
    data: str  # the input: LNB folder, cube or scene manifest
    simulated: bool  # the input is known to come from lai's simulator (the true LAI or simulation.yaml with it)
    lai_std: str | None = None  # what band lai_std is (lai.uncertainty.Calibration.describe); None without it
    lai_std_reach: str | None = None  # its central intervals' half-widths in lai_std (Calibration.summary)
    model_sha256: str | None = None  # the weights file's SHA-256: which model, wherever the file has gone since
    variant: str = ""  # the variant of the final model it is (lai.facts.EXTRA_ROWS; "" for a Table 1 row as trained)
    lai_std_observed: str | None = None  # what lai_std holds where observed (Calibration.summary's observation_sd)

    def tags(self, **dates: dt.date) -> dict[str, str]:
        """The tags of one map; ``dates``: e.g. ``t=..., t_minus_2=...`` (tags ``date_t``, ``date_t_minus_2``)."""
        from lai import __version__

        tags = {"lai_version": __version__, "model": self.model,
                **({"model_sha256": self.model_sha256} if self.model_sha256 else {}), "row": self.row,
                **({"variant": f"{self.variant} ({EXTRA_ROWS[self.variant].title})"} if self.variant else {}),
                "data": self.data,
                "data_origin": "simulated (lai's simulator: not an observation of the place its CRS names)"
                             if self.simulated else NOT_SIMULATED}
        if self.lai_std is not None:
            tags["lai_std"] = self.lai_std
        if self.lai_std_reach is not None:
            tags["lai_std_interval_half_width"] = self.lai_std_reach
        if self.lai_std_observed is not None:
            tags["lai_std_where_observed"] = self.lai_std_observed
        return {**tags, **{f"date_{k}": d.isoformat() for k, d in dates.items()}}


def gap_fill(model: np.ndarray, observed_lai: np.ndarray, observed: np.ndarray,
             past_radar_missing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(gap-filled LAI, source codes): the observation where ``observed`` (usable S2 at t), the model elsewhere;
    where the model fills a pixel of ``past_radar_missing`` (no S1 value at t-2 or t-1, which the model reads as
    -30 dB) its code says so."""
    observed = observed.astype(bool) & np.isfinite(observed_lai)
    lai = np.where(observed, observed_lai, model).astype(np.float32)
    filled = SOURCE_MODEL if past_radar_missing is None else \
        np.where(past_radar_missing, SOURCE_MODEL_PAST_RADAR_MISSING, SOURCE_MODEL)
    source = np.where(observed, SOURCE_OBSERVED, np.where(np.isfinite(model), filled, SOURCE_NODATA))
    return lai, source.astype(np.uint8)


def past_radar_missing(s1: np.ndarray) -> np.ndarray:
    """Pixels without a backscatter value (NaN) at t-2 or t-1 in either polarisation; ``s1`` (..., time, pol, y, x)."""
    return np.isnan(s1[..., :2, :, :, :]).any(axis=(-4, -3))


def gap_fill_std(model_sd: np.ndarray, source: np.ndarray, observation_sd: float | None) -> np.ndarray:
    """Band ``lai_std``: ``observation_sd`` (NaN where unknown) where the source is the observation, the model's
    deviation elsewhere (calibrated on pixels with radar at every date: where it was missing, code 2, its calibration
    was never measured), NaN at nodata."""
    obs = np.float32(np.nan if observation_sd is None else observation_sd)
    std = np.where(source == SOURCE_OBSERVED, obs, model_sd).astype(np.float32)
    std[source == SOURCE_NODATA] = NODATA
    return std


def bands(with_std: bool, row: str = FINAL) -> dict[str, str]:
    """The LAI map's bands (name -> description) of a model of Table 1 row ``row``, ``lai_std`` only ``with_std``."""
    return {k: v.format(inputs=ROWS[row].inputs) for k, v in LAI_BANDS.items() if with_std or k != STD}


def source_path(path: Path) -> Path:
    """The source map beside the LAI map ``path``: ``<stem>_source.tif``."""
    return path.with_name(f"{path.stem}_source.tif")


def map_files(folder: Path) -> list[Path]:
    """The LAI maps of a ``lai predict --data`` output folder (not their source maps), sorted."""
    return sorted(p for p in Path(folder).glob("*.tif") if not p.name.endswith("_source.tif"))


def lai_profile(height: int, width: int, crs: str | None, transform: tuple | None, with_std: bool = False,
                **extra) -> dict:
    """Profile of a LAI map: the float32 bands of :func:`bands`, NaN nodata, deflate."""
    return _profile(height, width, crs, transform, count=len(bands(with_std)), dtype="float32", nodata=NODATA, **extra)


def source_profile(height: int, width: int, crs: str | None, transform: tuple | None, **extra) -> dict:
    """Profile of a source map: one uint8 band, 255 nodata."""
    return _profile(height, width, crs, transform, count=1, dtype="uint8", nodata=SOURCE_NODATA, **extra)


def _profile(height, width, crs, transform, **kw) -> dict:
    from affine import Affine

    profile = dict(driver="GTiff", height=height, width=width, compress="deflate", **kw)
    if crs:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = Affine(*transform[:6])
    return profile


def describe(dst, kind: str, tags: dict[str, str]) -> None:
    """Band names and units of an open LAI (``kind="lai"``) or source map (``"source"``), and its dataset ``tags``
    (:meth:`MapOrigin.tags`: tag ``row`` says which inputs band ``lai_model`` comes from)."""
    dst.update_tags(**tags)
    if kind == "lai":
        for i, (name, text) in enumerate(bands(dst.count > 2, tags["row"]).items(), 1):
            dst.set_band_description(i, name)
            dst.update_tags(i, long_name=text, units=UNITS)
        dst.units = (UNITS,) * dst.count
    else:
        dst.set_band_description(1, "source")
        dst.update_tags(1, long_name=SOURCE_DESCRIPTION, flag_values=" ".join(map(str, SOURCE_MEANINGS)),
                        flag_meanings=" ".join(SOURCE_MEANINGS.values()))
        dst.write_colormap(1, SOURCE_COLOURS)


def write_map(path: Path, lai: np.ndarray, model: np.ndarray, source: np.ndarray, crs, transform,
              std: np.ndarray | None, tags: dict[str, str]) -> None:
    """``path`` (the LAI bands, ``lai_std`` where ``std`` is given) and its source map, for one tile; ``tags``
    (:meth:`MapOrigin.tags`) on both."""
    import rasterio

    h, w = lai.shape
    with rasterio.open(path, "w", **lai_profile(h, w, crs, transform, with_std=std is not None)) as dst:
        dst.write(np.stack([lai, model] + ([std] if std is not None else [])))
        describe(dst, "lai", tags)
    with rasterio.open(source_path(path), "w", **source_profile(h, w, crs, transform)) as dst:
        dst.write(source, 1)
        describe(dst, "source", tags)


# --------------------------------------------------------------------------- predictions.nc


def crs_wkt(crs: str | None) -> str:
    """WKT of a CRS given in any form rasterio reads (``EPSG:32633``, WKT); empty without one."""
    if not crs:
        return ""
    from rasterio.crs import CRS

    return CRS.from_user_input(crs).to_wkt()


@dataclass
class _Grid:
    group: object
    size: int = 0


class PredictionsFile:
    """``predictions.nc`` written map by map: :meth:`add` puts each map in the group of its grid."""

    def __init__(self, path: Path, n: int, attrs: dict, with_std: bool = False, row: str = FINAL):
        import h5netcdf
        import h5py

        self.bands = bands(with_std, row)
        self.f = h5netcdf.File(path, "w")
        self.f.dimensions = {"triplet": n}
        self.grids: dict[tuple, _Grid] = {}
        self.k = 0
        string = h5py.string_dtype()
        self.f.create_variable("name", ("triplet",), string).attrs["long_name"] = "input file name of t"
        self.f.create_variable("grid", ("triplet",), string).attrs["long_name"] = "group holding the triplet's maps"
        self.f.create_variable("grid_index", ("triplet",), np.int32).attrs["long_name"] = (
            f"position of the triplet along its group's dimension {MAP_DIM}")
        _time(self.f)
        self.f.attrs.update(Conventions="CF-1.8", title="LAI at t from Sentinel-1 and Sentinel-2 time series", **attrs)

    def add(self, name: str, days: tuple[int, int], lai: np.ndarray, model: np.ndarray, source: np.ndarray, crs,
            transform, std: np.ndarray | None = None) -> None:
        """One map (``days``: its dates t and t-2 as days since 1970-01-01; ``std`` in a file made ``with_std``)."""
        key = (crs_wkt(crs), tuple(transform) if transform is not None else None, lai.shape)
        if key not in self.grids:
            self.grids[key] = _Grid(self._new_group(f"grid_{len(self.grids) + 1:03d}", *key))
        grid = self.grids[key]
        g, i = grid.group, grid.size
        g.resize_dimension(MAP_DIM, i + 1)
        g["lai"][i], g["lai_model"][i], g["source"][i] = lai, model, source
        g[MAP_DIM][i], g["time"][i], g[FIRST_DATE][i] = i, *days
        if STD in self.bands:
            g[STD][i] = std
        self.f["name"][self.k], self.f["grid"][self.k], self.f["grid_index"][self.k] = name, g.name.strip("/"), i
        self.f["time"][self.k], self.f[FIRST_DATE][self.k] = days
        grid.size += 1
        self.k += 1

    def _new_group(self, name: str, wkt: str, transform, shape):
        h, w = shape
        g = self.f.create_group(name)
        g.dimensions = {MAP_DIM: None, "y": h, "x": w}
        # the maps' positions, 0-based as the root's grid_index counts them (without this coordinate variable GDAL
        # numbers its bands' NETCDF_DIM_map from 1)
        g.create_variable(MAP_DIM, (MAP_DIM,), np.int32).attrs["long_name"] = (
            "position of the map along this group's maps (the root's grid_index)")
        _time(g, MAP_DIM)
        mapping = {}
        if transform is not None:  # cell centres, also without a CRS (then in the tile's own units, unnamed)
            from rasterio.crs import CRS

            a, b, c, d, e, f = transform[:6]
            crs = CRS.from_wkt(wkt) if wkt else None
            for axis, n, start, step in (("x", w, c, a), ("y", h, f, e)):
                var = g.create_variable(axis, (axis,), np.float64, data=start + step * (np.arange(n) + 0.5))
                var.attrs.update(_axis_attrs(axis, crs))
        if wkt and transform is not None:
            ref = g.create_variable("spatial_ref", (), np.int32)
            ref.attrs.update(cf_grid_mapping(wkt))
            ref.attrs.update(crs_wkt=wkt, spatial_ref=wkt, GeoTransform=" ".join(f"{v:.17g}" for v in (c, a, b, f, d, e)))
            mapping = {"grid_mapping": "spatial_ref"}
        mapping["coordinates"] = f"time {FIRST_DATE}"  # each map's dates (xarray keeps them with a slice)
        for band, text in self.bands.items():
            var = g.create_variable(band, (MAP_DIM, "y", "x"), np.float32, chunks=(1, h, w), fillvalue=NODATA,
                                    compression="gzip")
            standard = CF_ATTRS["lai"]["standard_name"] + (" standard_error" if band == STD else "")
            var.attrs.update(standard_name=standard, long_name=text, units=UNITS, **mapping)
        # CF: the variables that qualify band lai (its standard error, where each pixel comes from)
        g["lai"].attrs["ancillary_variables"] = " ".join(([STD] if STD in self.bands else []) + ["source"])
        var = g.create_variable("source", (MAP_DIM, "y", "x"), np.uint8, chunks=(1, h, w), fillvalue=SOURCE_NODATA,
                                compression="gzip")
        var.attrs.update(long_name=SOURCE_DESCRIPTION, flag_values=np.array(list(SOURCE_MEANINGS), np.uint8),
                         flag_meanings=" ".join(SOURCE_MEANINGS.values()), **mapping)
        return g

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def cf_grid_mapping(wkt: str) -> dict:
    """CF grid-mapping attributes of a CRS (``grid_mapping_name`` and its parameters, pyproj's translation); only
    ``crs_wkt`` where CF has no name for the projection."""
    import warnings

    from pyproj import CRS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyproj warns about what CF cannot express; crs_wkt still holds it
        return {k: v for k, v in CRS.from_wkt(wkt).to_cf().items() if v is not None}


def _time(group, dim: str = "triplet") -> None:
    """Each map's date t (``time``) and its first input date (``date_t_minus_2``), days since 1970-01-01, along
    ``dim``."""
    for name, what in (("time", "date t"), (FIRST_DATE, "date t-2, the first input date")):
        var = group.create_variable(name, (dim,), np.int32)
        var.attrs.update(long_name=what, units=DAYS_SINCE, calendar="proleptic_gregorian")
    group["time"].attrs["standard_name"] = "time"


FIRST_DATE = "date_t_minus_2"  # the variable of predictions.nc, named as the GeoTIFF tag (MapOrigin.tags)
# the dimension of a grid group of predictions.nc along which its maps lie; not the root's "triplet", whose size
# differs (xarray's DataTree asks a group's dimensions to match its parent's of the same name)
MAP_DIM = "map"
UDUNITS_LENGTH = {"metre": "m", "meter": "m", "m": "m", "foot": "ft", "US survey foot": "US_survey_foot"}


def cf_length_units(crs) -> str:
    """A projected CRS's coordinate unit as UDUNITS spells it (CF): ``m``, ``ft``, ``US_survey_foot``, else the
    unit's length in metres (``0.2011684 m``, which UDUNITS reads)."""
    from rasterio.errors import CRSError

    try:
        name, factor = crs.linear_units_factor
    except CRSError:  # a unit PROJ cannot measure: its name, as the CRS gives it
        return crs_units(crs)
    return UDUNITS_LENGTH.get(name, f"{factor:.15g} m")


def _axis_attrs(axis: str, crs) -> dict:
    if crs is None:  # a transform without a CRS: positions in units nobody named
        return {"long_name": f"{axis} of the cell centre (no CRS)", "axis": axis.upper()}
    if crs.is_projected:
        return {"standard_name": f"projection_{axis}_coordinate", "long_name": f"{axis} of the cell centre",
                "units": cf_length_units(crs), "axis": axis.upper()}
    name, units = ("longitude", "degrees_east") if axis == "x" else ("latitude", "degrees_north")
    return {"standard_name": name, "long_name": f"{name} of the cell centre", "units": units, "axis": axis.upper()}
