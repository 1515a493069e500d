"""The YAML manifests that name scene rasters: loading, file paths and dates read once, two formats.

* The preprocessing manifest (``lai preprocess``, :func:`read_preprocess_manifest`): a place's
  ``country`` and ``area`` and its ``s2`` and ``s1`` acquisitions (see :mod:`lai.preprocess`).
* The scene manifest (``lai predict-scene``, :func:`read_scene_manifest`): the three ``dates``
  t-2, t-1, t of one scene (see :mod:`lai.scene`).

In both, relative paths are relative to the manifest's folder and every named file must exist; a date
without ``scl`` counts as clear (SCL class :data:`CLEAR_WITHOUT_SCL`). Every problem raises
:class:`SceneError` naming the manifest and the key.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from lai.errors import LNBError, SceneError, shorten
from lai.io import read_yaml_mapping
from lai.lnb import TileName
from lai.snap import BANDS, Angles

CLEAR_WITHOUT_SCL = 4  # SCL class written for dates without a mask: "vegetation", a class the encoding counts as clear


# --------------------------------------------------------------------------- shared parts


def load_manifest(path: Path, what: str) -> dict:
    """A YAML manifest as a mapping; :class:`SceneError` naming the file otherwise."""
    return read_yaml_mapping(path, what, error=SceneError)


def manifest_file(manifest: Path, value, where: str) -> Path:
    """A file named in a manifest (relative to the manifest's folder), which must exist."""
    f = Path(value) if Path(value).is_absolute() else manifest.parent / value
    if not f.is_file():
        raise SceneError(f"{where}: file {f} does not exist")
    return f


def manifest_date(value, label: str) -> dt.date:
    """A date (YAML date or ``YYYY-MM-DD`` text); :class:`SceneError` starting with ``label`` otherwise."""
    if isinstance(value, dt.datetime):
        raise SceneError(f"{label} {shorten(value, 40)!r} is a date and time; expected a YYYY-MM-DD date")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise SceneError(f"{label} {shorten(value, 40)!r} is not a YYYY-MM-DD date") from None


# --------------------------------------------------------------------------- preprocessing manifest


@dataclass(frozen=True)
class S2Date:
    date: dt.date
    lai: Path | None
    bands: dict[str, Path] | None
    angles: Angles | None
    scl: Path | None


@dataclass(frozen=True)
class S1Date:
    date: dt.date
    files: tuple[Path, ...]  # (vv, vh) or one two-band file


@dataclass
class Manifest:
    country: str
    area: str
    s2: list[S2Date]
    s1: list[S1Date]
    path: Path = field(default=Path("."))


def read_preprocess_manifest(path: str | Path) -> Manifest:
    """Parse a preprocessing manifest, checking that every named file exists."""
    path = Path(path)
    raw = load_manifest(path, "preprocessing manifest")
    for key in ("country", "area", "s2", "s1"):
        if not raw.get(key):
            raise SceneError(f"{path}: key {key!r} is missing or empty")

    def file(value, where):
        return manifest_file(path, value, where)

    s2 = []
    for k, e in enumerate(raw["s2"]):
        where = f"{path}: s2[{k}]"
        if not isinstance(e, dict) or "date" not in e or ("lai" in e) == ("bands" in e):
            raise SceneError(f"{where} must hold date and either lai or bands (+ angles)")
        bands = angles = None
        if "bands" in e:
            missing = [b for b in BANDS if b not in (e["bands"] or {})]
            if missing:
                raise SceneError(f"{where}.bands lacks {missing}; the SNAP network needs {', '.join(BANDS)}")
            bands = {b: file(e["bands"][b], f"{where}.bands.{b}") for b in BANDS}
            try:
                angles = Angles(**e.get("angles", {}))
                angles.check()
            except (TypeError, ValueError) as err:
                raise SceneError(f"{where}.angles: expected view_zenith, sun_zenith, relative_azimuth in degrees ({err})") from None
        s2.append(S2Date(manifest_date(e["date"], f"{where}.date:"), file(e["lai"], f"{where}.lai") if "lai" in e else None,
                         bands, angles, file(e["scl"], f"{where}.scl") if e.get("scl") else None))
    s1 = []
    for k, e in enumerate(raw["s1"]):
        where = f"{path}: s1[{k}]"
        if not isinstance(e, dict) or "date" not in e or not ({"vv", "vh"} <= set(e) or "file" in e):
            raise SceneError(f"{where} must hold date and vv + vh (or one two-band file)")
        files = (file(e["file"], f"{where}.file"),) if "file" in e else (file(e["vv"], f"{where}.vv"), file(e["vh"], f"{where}.vh"))
        s1.append(S1Date(manifest_date(e["date"], f"{where}.date:"), files))
    try:
        TileName.parse(TileName(str(raw["country"]), str(raw["area"]), s2[0].date, s2[0].date, 0, 0, 0, 0).format())
    except LNBError:
        raise SceneError(f"{path}: country {raw['country']!r} and area {raw['area']!r} must be letters and digits "
                         "(the area may also hold _): they become the first parts of every tile name") from None
    return Manifest(str(raw["country"]), str(raw["area"]), sorted(s2, key=lambda d: d.date), sorted(s1, key=lambda d: d.date), path)


# --------------------------------------------------------------------------- scene manifest


@dataclass(frozen=True)
class SceneDate:
    date: dt.date
    s1: Path
    lai: Path
    scl: Path | None


def read_scene_manifest(path: str | Path) -> list[SceneDate]:
    """Parse and check a scene manifest (three dates in order, files present)."""
    path = Path(path)
    raw = load_manifest(path, "scene manifest")
    dates = raw.get("dates")
    if not isinstance(dates, list) or len(dates) != 3:
        raise SceneError(f"{path}: expected a key 'dates' listing exactly three entries (t-2, t-1, t)")
    out = []
    for k, entry in enumerate(dates):
        where = f"{path}: dates[{k}]"
        if not isinstance(entry, dict) or not {"date", "s1", "lai"} <= set(entry):
            raise SceneError(f"{where} must hold date, s1, lai (and optionally scl)")
        date = manifest_date(entry["date"], f"{where}.date")
        files = {key: manifest_file(path, entry[key], f"{where}.{key}") for key in ("s1", "lai", "scl")
                 if entry.get(key) is not None}
        out.append(SceneDate(date, files["s1"], files["lai"], files.get("scl")))
    if not out[0].date < out[1].date < out[2].date:
        raise SceneError(f"{path}: dates must increase (t-2 < t-1 < t), got {[str(d.date) for d in out]}")
    return out
