"""The YAML manifest that names scene rasters (docs/manifest.md): loading, file paths and dates read once.

One format serves ``lai preprocess`` and ``lai predict --scene`` (:func:`read_preprocess_manifest`): a
place's ``country`` and ``area`` (tile names; optional for a scene), its ``s2`` and ``s1`` acquisitions
(see :mod:`lai.preprocess`) and, for a scene, the ``target`` date to map. An S2 date given as L2A bands
may name its ``platform`` (S2A..S2D), its ``processing_baseline`` (04.00 on: reflectance offset -0.1) or
the product's ``metadata`` (MTD_MSIL2A.xml, which gives all three). The short form of earlier versions
(a key ``dates`` listing t-2, t-1, t) is refused with the way to rewrite it (:data:`SHORT_FORM_GONE`).

Relative paths are relative to the manifest's folder and every named file must exist; a date
without ``scl`` counts as clear (SCL class :data:`CLEAR_WITHOUT_SCL`). Every problem raises
:class:`SceneError` naming the manifest and the key.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from lai.errors import LNBError, SceneError, shorten
from lai.lnb import DATE_RANGE_TEXT, TileName, storable_date
from lai.records import NOT_A_FILE, read_yaml_mapping
from lai.snap import BANDS, PLATFORMS, Angles

CLEAR_WITHOUT_SCL = 4  # SCL class written for dates without a mask: "vegetation", a class the encoding counts as clear


# --------------------------------------------------------------------------- shared parts


def load_manifest(path: Path, what: str) -> dict:
    """A YAML manifest as a mapping; :class:`SceneError` naming the file otherwise."""
    return read_yaml_mapping(path, what, error=SceneError)


def manifest_file(manifest: Path, value, where: str) -> Path:
    """A file named in a manifest (relative to the manifest's folder), which must exist and be a regular file."""
    if not isinstance(value, str) or not value:
        got = "null" if value is None else f"{type(value).__name__} {shorten(value, 60)!r}"
        raise SceneError(f"{where}: expected a file name, got {got}")
    f = Path(value) if Path(value).is_absolute() else manifest.parent.resolve() / value  # absolute: dask workers
    try:
        found = f.is_file()
    except OSError as e:  # a name too long for the file system, say
        raise SceneError(f"{where}: file {shorten(f, 200)} cannot be looked up ({e.strerror or e})") from None
    if not found:
        raise SceneError(f"{where}: file {shorten(f, 200)} {NOT_A_FILE if f.exists() else 'does not exist'}")
    return f


def manifest_date(value, label: str) -> dt.date:
    """A date (YAML date or ``YYYY-MM-DD`` text) a cube can store; :class:`SceneError` starting with ``label`` otherwise."""
    if isinstance(value, dt.datetime):
        raise SceneError(f"{label} {shorten(value, 40)!r} is a date and time; expected a YYYY-MM-DD date")
    if isinstance(value, dt.date):
        return _storable(value, label)
    try:  # only YYYY-MM-DD: Python also reads 20190601, 2019-W22-6 and even 20190601.5 as ISO dates
        if not _ISO_DAY.fullmatch(str(value)):
            raise ValueError
        date = dt.date.fromisoformat(str(value))
    except ValueError:
        raise SceneError(f"{label} {shorten(value, 40)!r} is not a YYYY-MM-DD date") from None
    return _storable(date, label)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _storable(date: dt.date, label: str) -> dt.date:
    if not storable_date(date):
        raise SceneError(f"{label} {date.isoformat()} {DATE_RANGE_TEXT}")
    return date


def check_keys(entry: dict, allowed: tuple[str, ...], where: str) -> None:
    """Refuse a key a manifest does not know (a typo such as ``sc1`` would otherwise be ignored without a word)."""
    unknown = [str(k) for k in entry if k not in allowed]
    if unknown:
        raise SceneError(f"{where}: unknown key(s) {shorten(', '.join(unknown), 80)}; expected {', '.join(allowed)}")


def check_unique_dates(entries: list, key: str, where: str, repeats_allowed: bool = False) -> None:
    """Each date once: two acquisitions of one sensor on the same date would leave one of them unread, and the same
    entry repeated would make triplets whose target is also their input (t-1 a copy of t), unless the manifest says
    so (``repeats_allowed``: its key ``repeated_dates``, for a format test of one real acquisition)."""
    seen: dict = {}
    for k, e in enumerate(entries):
        if e.date in seen:
            if entries[seen[e.date]] != e:
                raise SceneError(f"{where}: {key}[{k}].date {e.date.isoformat()} repeats {key}[{seen[e.date]}].date "
                                 "with other rasters; give each date once")
            if not repeats_allowed:
                raise SceneError(f"{where}: {key}[{k}] repeats {key}[{seen[e.date]}] ({e.date.isoformat()}): one "
                                 "acquisition read as two dates, so a triplet's t-1 would be a copy of its t; give each "
                                 f"date once (or, for a format test that means it, set {REPEATED_DATES}: true)")
        seen.setdefault(e.date, k)


# --------------------------------------------------------------------------- preprocessing manifest


@dataclass(frozen=True)
class Reflectance:
    """L2A digital number -> surface reflectance: ``dn * scale + offset`` (offset per band of :data:`lai.snap.BANDS`)."""

    scale: float
    offsets: tuple[float, ...]
    source: str  # where the figures come from, for the summary


@dataclass(frozen=True)
class S2Date:
    date: dt.date
    lai: Path | None
    bands: dict[str, Path] | None
    angles: Angles | None
    scl: Path | None
    platform: str | None = None  # S2A..S2D, when the manifest or the metadata names it
    reflectance: Reflectance | None = None  # None: the command's --reflectance-scale and --reflectance-offset

    @property
    def raster(self) -> Path:
        """The file that gives this date's grid and names it in errors: the LAI raster, or band B03."""
        return self.lai if self.lai is not None else self.bands["B03"]


L2A_BAND_IDS = {"B03": 2, "B04": 3, "B05": 4, "B06": 5, "B07": 6, "B8A": 8, "B11": 11, "B12": 12}  # MTD band_id
BASELINE_WITH_OFFSET = 4.0  # processing baseline 04.00 (January 2022) added BOA_ADD_OFFSET = -1000
MAX_METADATA_BYTES = 10_000_000


def baseline_reflectance(value, where: str) -> Reflectance:
    """The L2A quantification of a processing baseline (``"05.09"`` or 5.09): offset -0.1 from 04.00 on."""
    try:
        baseline = float(str(value))
    except ValueError:
        baseline = math.nan
    if not (math.isfinite(baseline) and 0 < baseline < 100):
        raise SceneError(f"{where}: processing_baseline {shorten(value, 20)!r} is not a baseline such as 05.09")
    offset = -0.1 if baseline >= BASELINE_WITH_OFFSET else 0.0
    return Reflectance(1e-4, (offset,) * len(BANDS), f"processing baseline {baseline:05.2f}")


def read_l2a_metadata(path: Path, where: str) -> tuple[str, Reflectance]:
    """Platform and reflectance quantification from an L2A product's MTD_MSIL2A.xml (SceneError naming it)."""
    import xml.etree.ElementTree as ET

    if path.stat().st_size > MAX_METADATA_BYTES:
        raise SceneError(f"{where}: {path} is over {MAX_METADATA_BYTES // 1_000_000} MB, not an MTD_MSIL2A.xml")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise SceneError(f"{where}: {path} is not XML ({err}); expected the product's MTD_MSIL2A.xml") from None
    texts, offsets = {}, {}  # one walk over the tree: every element's text by tag, the offsets by band
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        texts[tag] = (el.text or "").strip()
        if tag == "BOA_ADD_OFFSET":
            offsets[el.get("band_id")] = texts[tag]  # an empty element: "", not a number (below)
    match = re.fullmatch(r"Sentinel-(2[A-D])", texts.get("SPACECRAFT_NAME", ""))
    quantification = texts.get("BOA_QUANTIFICATION_VALUE")
    if not match or not quantification:
        raise SceneError(f"{where}: {path} lacks SPACECRAFT_NAME (Sentinel-2A..2D) or BOA_QUANTIFICATION_VALUE; "
                         "expected an L2A product's MTD_MSIL2A.xml")
    try:
        q = float(quantification)
        dn_offsets = [float(offsets.get(str(L2A_BAND_IDS[b]), 0)) for b in BANDS]
    except ValueError:
        raise SceneError(f"{where}: {path}: BOA_QUANTIFICATION_VALUE or a BOA_ADD_OFFSET is not a number (or empty)") from None
    if not (math.isfinite(q) and q > 0) or not all(math.isfinite(o) for o in dn_offsets):
        raise SceneError(f"{where}: {path}: BOA_QUANTIFICATION_VALUE must be positive and the offsets finite")
    baseline = texts.get("PROCESSING_BASELINE", "?")
    return "S" + match.group(1), Reflectance(1 / q, tuple(o / q for o in dn_offsets), f"{path.name} (baseline {baseline})")


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
    target: dt.date | None = None  # lai predict --scene: the date t to map (default: the last one a triplet ends on)


REPEATED_DATES = "repeated_dates"  # top-level key: an entry may be repeated (one acquisition read as several dates)
MANIFEST_KEYS = ("country", "area", "s2", "s1", "target", REPEATED_DATES)
S2_KEYS = ("date", "lai", "bands", "angles", "scl", "platform", "processing_baseline", "metadata")
S1_KEYS = ("date", "file", "vv", "vh")


def read_preprocess_manifest(path: str | Path, for_scene: bool = False) -> Manifest:
    """Parse a preprocessing manifest, checking that every named file exists.

    ``for_scene``: read for ``lai predict --scene``, where ``country`` and ``area`` (tile names) are optional.
    """
    path = Path(path)
    raw = load_manifest(path, "scene manifest" if for_scene else "preprocessing manifest")
    if for_scene:
        raw = {"country": "SCENE", "area": "SCENE", **raw}
    check_keys(raw, MANIFEST_KEYS, str(path))
    for key in ("country", "area", "s2", "s1"):
        if not raw.get(key):
            raise SceneError(f"{path}: key {key!r} is missing or empty")
    for key in ("s2", "s1"):
        if not isinstance(raw[key], list):
            raise SceneError(f"{path}: key {key!r} must list dates (a YAML list), got {type(raw[key]).__name__}")

    def file(value, where):
        return manifest_file(path, value, where)

    s2 = []
    for k, e in enumerate(raw["s2"]):
        where = f"{path}: s2[{k}]"
        if not isinstance(e, dict) or "date" not in e or ("lai" in e) == ("bands" in e):
            raise SceneError(f"{where} must hold date and either lai or bands (+ angles)")
        check_keys(e, S2_KEYS, where)
        bands = angles = platform = reflectance = None
        if "bands" in e:
            if not isinstance(e["bands"], dict):
                raise SceneError(f"{where}.bands: expected a mapping of band name to file ({', '.join(BANDS)}), got "
                                 f"{type(e['bands']).__name__}")
            check_keys(e["bands"], BANDS, f"{where}.bands")  # a B02, or b04 beside B04, would be ignored
            missing = [b for b in BANDS if b not in e["bands"]]
            if missing:
                raise SceneError(f"{where}.bands lacks {missing}; the SNAP network needs {', '.join(BANDS)}")
            bands = {b: file(e["bands"][b], f"{where}.bands.{b}") for b in BANDS}
            try:
                angles = Angles(**e.get("angles", {}))
                angles.check()
            except (TypeError, ValueError) as err:
                raise SceneError(f"{where}.angles: expected view_zenith, sun_zenith, relative_azimuth in degrees ({err})") from None
            if e.get("metadata") is not None and e.get("processing_baseline") is not None:
                raise SceneError(f"{where}: give metadata or processing_baseline, not both (the metadata holds the baseline)")
            if e.get("metadata") is not None:
                platform, reflectance = read_l2a_metadata(file(e["metadata"], f"{where}.metadata"), f"{where}.metadata")
            if e.get("processing_baseline") is not None:
                reflectance = baseline_reflectance(e["processing_baseline"], where)
            if e.get("platform") is not None:
                named = str(e["platform"]).upper()
                if named not in PLATFORMS:
                    raise SceneError(f"{where}.platform: {shorten(e['platform'], 20)!r} is not one of {', '.join(PLATFORMS)}")
                if platform is not None and named != platform:
                    raise SceneError(f"{where}.platform: {named}, but its metadata says {platform}")
                platform = named
        elif any(e.get(k) is not None for k in ("platform", "processing_baseline", "metadata")):
            raise SceneError(f"{where}: platform, processing_baseline and metadata belong to dates given as L2A bands")
        s2.append(S2Date(manifest_date(e["date"], f"{where}.date:"), file(e["lai"], f"{where}.lai") if "lai" in e else None,
                         bands, angles, file(e["scl"], f"{where}.scl") if "scl" in e else None, platform, reflectance))  # null: refused
    s1 = []
    for k, e in enumerate(raw["s1"]):
        where = f"{path}: s1[{k}]"
        if not isinstance(e, dict) or "date" not in e or not ({"vv", "vh"} <= set(e) or "file" in e):
            raise SceneError(f"{where} must hold date and vv + vh (or one two-band file)")
        check_keys(e, S1_KEYS, where)
        if "file" in e and ("vv" in e or "vh" in e):
            raise SceneError(f"{where}: give file (one two-band raster) or vv and vh, not both")
        files = (file(e["file"], f"{where}.file"),) if "file" in e else (file(e["vv"], f"{where}.vv"), file(e["vh"], f"{where}.vh"))
        s1.append(S1Date(manifest_date(e["date"], f"{where}.date:"), files))
    repeats = raw.get(REPEATED_DATES, False)
    if not isinstance(repeats, bool):
        raise SceneError(f"{path}: {REPEATED_DATES} must be true or false, got {shorten(str(repeats), 20)!r}")
    check_unique_dates(s2, "s2", str(path), repeats)
    check_unique_dates(s1, "s1", str(path), repeats)
    try:
        TileName.parse(TileName(str(raw["country"]), str(raw["area"]), s2[0].date, s2[0].date, 0, 0, 0, 0).format())
    except LNBError:
        raise SceneError(f"{path}: country {raw['country']!r} and area {raw['area']!r} must be ASCII letters and digits "
                         "(the area may also hold _): they become the first parts of every tile name") from None
    target = manifest_date(raw["target"], f"{path}: target") if raw.get("target") is not None else None
    return Manifest(str(raw["country"]), str(raw["area"]), sorted(s2, key=lambda d: d.date), sorted(s1, key=lambda d: d.date),
                    path, target)


SHORT_FORM_GONE = ("the short form (a key 'dates' listing t-2, t-1, t) is no longer read: list each date under "
                   "s2 (date, lai, scl) and under s1 (date, and file: the two-band VV/VH raster, or vv and vh), "
                   "as docs/manifest.md shows")
