"""lai: Leaf Area Index at t from Sentinel-1 (t-2, t-1, t) and Sentinel-2 LAI (t-2, t-1) with U-Nets.

Data flow, one module per step:
``lnb`` / ``simulate`` -> ``cube`` (+ ``splits``) -> ``loader`` -> ``model`` + ``loss``
-> ``train`` -> ``evaluate`` (+ ``metrics``, ``baselines``) -> ``figures`` -> ``report``,
driven by ``pipeline`` (papermill notebooks) and ``cli``.
"""
import os as _os

__version__ = "0.1.0"

# GDAL lists a raster's whole folder on every open, looking for sidecar files; an LNB folder holds thousands of
# files per layer, so that listing took half of each open (the quick profile's cube: 104 s -> 67 s without it,
# benchmarks/gdal_open.py). TRUE skips the listing but still finds sidecars (.aux.xml, .tfw) by name, unlike
# EMPTY_DIR; a setting of the user's own wins.
_os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "TRUE")
