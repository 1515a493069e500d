"""The noise floor: observed against true LAI at t on the scored pixels of each test set."""
from __future__ import annotations

import numpy as np
import pytest

from lai.config import SplitConfig
from lai.cube import build_cube, open_cube
from lai.errors import CubeError
from lai.noise import noise_floor
from lai.splits import TEST_SETS
from tests.helpers import make_lnb


def _direct_rmse(ds, name, classes):
    keep = ds["split"].values == name
    obs, truth, scl = ds["lai"].values[keep, 2], ds["lai_true"].values[keep], ds["scl"].values[keep, 2]
    mask = np.isin(scl, classes) & np.isfinite(obs)
    return float(np.sqrt(np.mean(np.square(obs[mask] - truth[mask])))), int(mask.sum())


def test_floor_per_set_under_both_rules(tiny_data):
    profile, _, cube = tiny_data
    table = noise_floor(cube, TEST_SETS, profile.encoding.valid_classes)
    assert list(table["set"]) == list(TEST_SETS)
    assert {"set", "floor_rmse", "floor_rmse_strict", "pixels", "pixels_strict", "shadow_share"} <= set(table.columns)
    ds = open_cube(cube)
    for row in table.itertuples():
        assert row.triplets == int((ds["split"].values == row.set).sum())
        if not row.triplets:
            continue
        rmse, pixels = _direct_rmse(ds, row.set, profile.encoding.valid_classes)
        strict, strict_pixels = _direct_rmse(ds, row.set, (4, 5, 6))
        assert (row.floor_rmse, row.pixels) == (pytest.approx(rmse, rel=1e-6), pixels)
        assert (row.floor_rmse_strict, row.pixels_strict) == (pytest.approx(strict, rel=1e-6), strict_pixels)
        assert 0 < row.floor_rmse and 0 <= row.shadow_share <= 1 and row.pixels_strict <= row.pixels


def test_floor_needs_the_true_lai(tmp_path):
    lnb = make_lnb(tmp_path / "lnb", n_triplets=3)
    build_cube(lnb, tmp_path / "cube.nc", SplitConfig(block_size=1), progress=False)
    with pytest.raises(CubeError, match=r"cube\.nc.*lai_true"):
        noise_floor(tmp_path / "cube.nc")
