"""Real Sentinel-1/2 example patches shipped by the PyPI package ``bigearthnet-common``.

Six places, one date each: co-registered S1 (VV, VH in dB) and S2 L2A bands (uint16 digital
numbers, reflectance x 10^4), 120x120 pixels at 10 m in UTM. One date cannot make a time
series: :func:`write_manifest` repeats it three times, so these patches test formats and
georeferencing end to end, not the science.

The patches carry no angles: the sun zenith is computed from the acquisition time and the
patch centre (solar declination and hour angle, no equation of time: about 1 degree off);
view zenith (:data:`VIEW_ZENITH`) and relative azimuth (:data:`RELATIVE_AZIMUTH`) take
documented typical values.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from lai.manifest import REPEATED_DATES
from lai.snap import BANDS, Angles

REFLECTANCE_SCALE = 1e-4  # the patches' S2 digital numbers are reflectance x 10^4
VIEW_ZENITH = 5.0  # degrees; Sentinel-2 views within about 0..12 degrees of nadir
RELATIVE_AZIMUTH = 90.0  # degrees; cos = 0, the neutral value of the network's azimuth input
S2_FOLDER, S1_FOLDER = "BigEarthNet-S2-Example", "BigEarthNet-S1-Example"  # each archive's one folder
ARCHIVES = (f"{S2_FOLDER}.tar.bz2", f"{S1_FOLDER}.tar.bz2")


@dataclass(frozen=True)
class Patch:
    name: str  # the S2 patch name, e.g. S2A_MSIL2A_20170613T101031_87_48
    s2_time: dt.datetime  # UTC
    s1_date: dt.date
    bands: dict[str, Path]
    vv: Path
    vh: Path
    angles: Angles

    def band(self, name: str) -> Path:
        """The S2 band ``name`` (e.g. "B08", which the LAI network does not read) of the patch."""
        return next(iter(self.bands.values())).with_name(f"{self.name}_{name}.tif")


def patch_summary(name: str, lnb: Path, db_range) -> dict:
    """What ``lai preprocess`` (the built-in SNAP network) made of a patch, one row of notebook 00's table
    (tables/preprocessing_snap_lai.csv): its triplets and CRS, the LAI at t's 1st, 50th and 99th percentiles, the
    SNAP flags' counts (outputs set to the network's bounds, outputs beyond its tolerance) and the VV values outside
    ``db_range`` (encoding.db_range: what the model clips)."""
    import numpy as np

    from lai.lnb import index_folder, read_triplet
    from lai.preprocess import SUMMARY
    from lai.snap import BUILTIN, FLAGS

    summary = json.loads((lnb / SUMMARY).read_text())
    d = read_triplet(lnb, index_folder(lnb, progress=False).triplets[0])
    flags = {f: sum(date["flags"][f] for date in summary["lai_from_snap"].values()) for f in FLAGS}
    tolerance, low, high = BUILTIN.extreme
    (db_low, db_high), vv = db_range, d.s1[2, 0]
    return {"patch": name, "triplets": summary["triplets"], "crs": d.crs,
            "LAI p1": np.nanpercentile(d.lai[2], 1), "LAI p50": np.nanmedian(d.lai[2]),
            "LAI p99": np.nanpercentile(d.lai[2], 99),
            f"LAI set to {low:g} or {high:g}": flags["output_thresholded_to_min"] + flags["output_thresholded_to_max"],
            f"LAI beyond [{low - tolerance:g}, {high + tolerance:g}]": flags["output_too_low"] + flags["output_too_high"],
            f"VV < {db_low:g} or > {db_high:g} dB": int(((vv < db_low) | (vv > db_high)).sum())}


def archive_folder() -> Path:
    """Where ``bigearthnet-common`` keeps its example archives."""
    try:
        import bigearthnet_common
    except ImportError:
        raise ImportError("the real example patches come with bigearthnet-common, a development dependency of lai: "
                          "pip install -e '.[dev]' (make setup installs it)") from None

    folder = Path(bigearthnet_common.__file__).parent
    missing = [a for a in ARCHIVES if not (folder / a).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: bigearthnet-common lacks its example archive(s) {missing}")
    return folder


def sun_zenith(when: dt.datetime, lat: float, lon: float) -> float:
    """Approximate sun zenith angle (degrees) at UTC time ``when``, latitude and longitude in degrees."""
    doy = when.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (doy - 81) / 365)
    solar_hours = when.hour + when.minute / 60 + lon / 15
    hour_angle = math.radians(15 * (solar_hours - 12))
    phi = math.radians(lat)
    cos_z = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos_z))))


def _centre_lonlat(path: Path) -> tuple[float, float]:
    import rasterio
    from rasterio.warp import transform

    with rasterio.open(path) as src:
        x, y = src.xy(src.height // 2, src.width // 2)
        lon, lat = transform(src.crs, "EPSG:4326", [x], [y])
    return lon[0], lat[0]


EXTRACTED = "patches.json"  # written last into an extraction: the patches' names (it is complete and lai's)


def extract(target: str | Path) -> list[Patch]:
    """Unpack the example archives into the new folder ``target`` (whole or not at all: the file
    :data:`EXTRACTED` inside says it is complete) and pair each S2 patch with its S1 patch."""
    from lai.io import atomic_path

    target = Path(target)
    folder = archive_folder()
    with atomic_path(target) as tmp:
        for archive in ARCHIVES:
            with tarfile.open(folder / archive) as tar:
                tar.extractall(tmp, filter="data")
        (tmp / EXTRACTED).write_text(json.dumps(sorted(p.name for p in (tmp / S2_FOLDER).iterdir())))
    return patches(target)


def patches(target: str | Path) -> list[Patch]:
    """The patches unpacked into ``target`` (:func:`extract`), each S2 patch with its S1 patch."""
    target = Path(target)
    found = []
    for meta in sorted(target.glob(f"{S1_FOLDER}/*/*_labels_metadata.json")):
        info = json.loads(meta.read_text())
        s2_name = info["corresponding_s2_patch"]
        s2_dir = target / S2_FOLDER / s2_name
        s2_info = json.loads((s2_dir / f"{s2_name}_labels_metadata.json").read_text())
        when = dt.datetime.fromisoformat(s2_info["acquisition_date"])
        s1_stem = meta.name.replace("_labels_metadata.json", "")
        bands = {b: s2_dir / f"{s2_name}_{b}.tif" for b in BANDS}
        lon, lat = _centre_lonlat(bands["B03"])
        found.append(Patch(s2_name, when, dt.date.fromisoformat(info["acquisition_time"][:10]), bands,
                             meta.parent / f"{s1_stem}_VV.tif", meta.parent / f"{s1_stem}_VH.tif",
                             Angles(VIEW_ZENITH, sun_zenith(when, lat, lon), RELATIVE_AZIMUTH)))
    return found


def write_manifest(patch: Patch, path: str | Path, country: str = "BIGEARTHNET") -> Path:
    """A preprocessing manifest for one patch, its single S2 date repeated as t-2, t-1 and t."""
    import yaml

    area = "P" + re.sub(r"\W", "", patch.name.rsplit("_", 2)[-2] + "X" + patch.name.rsplit("_", 1)[-1])
    s2 = {"date": patch.s2_time.date().isoformat(), "platform": patch.name[:3],  # S2A_MSIL2A_...: the platform
          "bands": {b: str(f) for b, f in patch.bands.items()},
          "angles": {"view_zenith": patch.angles.view_zenith, "sun_zenith": round(patch.angles.sun_zenith, 2),
                     "relative_azimuth": patch.angles.relative_azimuth}}
    manifest = {"country": country, "area": area, REPEATED_DATES: True, "s2": [s2] * 3,
                "s1": [{"date": patch.s1_date.isoformat(), "vv": str(patch.vv), "vh": str(patch.vh)}]}
    path = Path(path)
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path
