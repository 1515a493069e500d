"""The noise floor and the oracle bound of simulated test sets.

Floor: how far the observed S2 LAI at t is from the true LAI. A model scored against the
observation cannot go below it on average (its error includes the observation's own); a model
scored against the truth can. Oracle: the true LAI at t-1 used as the prediction of t, scored
against the observation at t: what a perfect copy of the past (no forecast of the change) scores.
Both are computed on the pixels a model is scored on (SCL at t in the valid classes); the floor
also under the strict rule (SCL 4-6: vegetation, bare soil, water) to show what cloud shadows
and dark areas add.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from lai.config import EncodingConfig
from lai.cube import check_cube_file
from lai.errors import CubeError
from lai.facts import EMPTY, N_PIXELS, TEST_SETS
from lai.metrics import SUMS, PooledMetrics, strict_clear, triplet_sums
from lai.pixels import CLOUD_SHADOW_CLASS, scl_lookup
from lai.splits import regions_of

CHUNK = 64  # triplets read at once
# the columns of noise_floor's table (notebook 04 adds the chosen model's beside them: lai.tables.floor_with_model)
FLOOR_COLUMNS = ("set", "triplets", "regions", "pixels", "floor_rmse", "floor_bias", "shadow_share", "pixels_strict",
                 "floor_rmse_strict", "oracle_rmse", "true_change_rmse", "note")


def noise_floor(cube_path: str | Path, sets=TEST_SETS, valid_classes=None) -> pd.DataFrame:
    """One row per set: RMSE of the observed LAI at t against the true LAI on the scored pixels.

    Columns: ``set``, ``triplets``, ``regions``, ``pixels``, ``floor_rmse`` and ``floor_bias``
    (mean observed minus true, LAI) under ``valid_classes``; ``shadow_share`` (share of the
    squared error on cloud-shadow pixels, SCL 3, if valid); ``pixels_strict`` and
    ``floor_rmse_strict`` under SCL 4-6; ``note`` ``"empty"`` (``lai.facts.EMPTY``) for a set without
    triplets (its floor is NaN). The oracle bound: ``oracle_rmse``, the true LAI at t-1 as the prediction
    against the observation at t on the same pixels, and ``true_change_rmse``, the true LAI at t-1 against
    the true LAI at t there. ``attrs["per_triplet"]``: the oracle's per-triplet sums (columns set, triplet
    = cube index, ``lai.metrics.SUMS``), for paired comparisons (:func:`lai.tables.comparisons`).
    Raises :class:`CubeError` if the cube has no true LAI (real data: floor and oracle are unknown there)
    or only the true LAI at t (cube schema 1). ``valid_classes`` None: the default encoding's rule.
    """
    path = Path(cube_path)
    valid_classes = EncodingConfig().valid_classes if valid_classes is None else valid_classes
    check_cube_file(path)
    valid = scl_lookup(valid_classes)
    rows, oracle_sums = [], []
    with h5py.File(path, "r") as f:
        if "lai_true" not in f:
            raise CubeError(f"{path}: has no lai_true variable; the noise floor needs simulated data with the true LAI")
        if f["lai_true"].ndim != 4:
            raise CubeError(f"{path}: lai_true holds the true LAI at t only; the oracle bound needs t-1 too: rebuild "
                            "the cube with `lai cube` from a simulation of this lai version")
        labels = f["split"][:].astype(str)
        region = regions_of(pd.DataFrame({k: f[k][:].astype(str) for k in ("country", "area")}))
        for name in sets:
            index = np.flatnonzero(labels == name)
            scored, strict_m, oracle, change = PooledMetrics(), PooledMetrics(), PooledMetrics(), PooledMetrics()
            error_sum = shadow_sse = 0.0
            for start in range(0, len(index), CHUNK):
                rows_ = index[start : start + CHUNK]
                obs = f["lai"][rows_, 2].astype(np.float64)
                scl = f["scl"][rows_, 2]
                true_all = f["lai_true"][rows_].astype(np.float64)
                truth, past = true_all[:, 2], true_all[:, 1]
                mask = valid[scl] & np.isfinite(obs)
                scored.update(obs, truth, mask)
                oracle.update(past, obs, mask)
                change.update(past, truth, mask)
                sums = triplet_sums(past, obs, mask)
                oracle_sums += [{"set": name, "triplet": int(i), **dict(zip(SUMS, one))} for i, one in zip(rows_, sums)]
                strict_m.update(obs, truth, strict_clear(scl, obs))
                error_sum += float((obs - truth)[mask].sum())
                shadow_sse += float(np.square(obs - truth)[mask & (scl == CLOUD_SHADOW_CLASS)].sum())
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
                "oracle_rmse": oracle.result()["rmse"],
                "true_change_rmse": change.result()["rmse"],
                "note": "" if len(index) else EMPTY,
            })
    table = pd.DataFrame(rows, columns=list(FLOOR_COLUMNS))
    table.attrs["per_triplet"] = pd.DataFrame(oracle_sums, columns=["set", "triplet", *SUMS])
    return table
