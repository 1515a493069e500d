"""The noise floor of simulated test sets: how far the observed S2 LAI at t is from the true LAI.

A model scored against the observation cannot go below this floor on average (its error
includes the observation's own); a model scored against the truth can. Computed on the
pixels a model is scored on (SCL at t in the valid classes), and under the strict rule
(SCL 4-6: vegetation, bare soil, water) to show what cloud shadows and dark areas add.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from lai.config import EncodingConfig
from lai.cube import check_cube_file
from lai.errors import CubeError
from lai.facts import EMPTY, N_PIXELS, STRICT_VALID_CLASSES, TEST_SETS
from lai.lnb import scl_lookup
from lai.metrics import PooledMetrics

SHADOW_CLASS = 3
CHUNK = 64  # triplets read at once


def noise_floor(cube_path: str | Path, sets=TEST_SETS, valid_classes=None) -> pd.DataFrame:
    """One row per set: RMSE of the observed LAI at t against the true LAI on the scored pixels.

    Columns: ``set``, ``triplets``, ``regions``, ``pixels``, ``floor_rmse`` and ``floor_bias``
    (mean observed minus true, LAI) under ``valid_classes``; ``shadow_share`` (share of the
    squared error on cloud-shadow pixels, SCL 3, if valid); ``pixels_strict`` and
    ``floor_rmse_strict`` under SCL 4-6; ``note`` ``"empty"`` (``lai.facts.EMPTY``) for a set without
    triplets (its floor is NaN). Raises :class:`CubeError` if the cube has no true LAI
    (real data: the floor is unknown there). ``valid_classes`` None: the default encoding's rule.
    """
    path = Path(cube_path)
    valid_classes = EncodingConfig().valid_classes if valid_classes is None else valid_classes
    check_cube_file(path)
    valid, strict = scl_lookup(valid_classes), scl_lookup(STRICT_VALID_CLASSES)
    rows = []
    with h5py.File(path, "r") as f:
        if "lai_true" not in f:
            raise CubeError(f"{path}: has no lai_true variable; the noise floor needs simulated data with the true LAI")
        labels = f["split"][:].astype(str)
        region = np.char.add(np.char.add(f["country"][:].astype(str), "_"), f["area"][:].astype(str))
        for name in sets:
            index = np.flatnonzero(labels == name)
            scored, strict_m = PooledMetrics(), PooledMetrics()
            error_sum = shadow_sse = 0.0
            for start in range(0, len(index), CHUNK):
                rows_ = index[start : start + CHUNK]
                obs = f["lai"][rows_, 2].astype(np.float64)
                scl = f["scl"][rows_, 2]
                truth = f["lai_true"][rows_].astype(np.float64)
                mask = valid[scl] & np.isfinite(obs)
                scored.update(obs, truth, mask)
                strict_m.update(obs, truth, strict[scl] & np.isfinite(obs))
                error_sum += float((obs - truth)[mask].sum())
                shadow_sse += float(np.square(obs - truth)[mask & (scl == SHADOW_CLASS)].sum())
            result, strict_result = scored.result(), strict_m.result()
            rows.append({
                "set": name,
                "triplets": len(index),
                "regions": len(set(region[index])),
                "pixels": result[N_PIXELS],
                "floor_rmse": result["rmse"],
                "floor_bias": error_sum / result[N_PIXELS] if result[N_PIXELS] else np.nan,
                "shadow_share": shadow_sse / scored.sse if scored.sse > 0 else np.nan,
                "pixels_strict": strict_result[N_PIXELS],
                "floor_rmse_strict": strict_result["rmse"],
                "note": "" if len(index) else EMPTY,
            })
    return pd.DataFrame(rows)
