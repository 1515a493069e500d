"""The noise floor: observed against true LAI at t on the scored pixels of each test set."""
from __future__ import annotations

import numpy as np
import pytest

from lai.config import SplitConfig
from lai.cube import build_cube, open_cube
from lai.errors import CubeError
from lai.facts import MIN_SCORED_TRIPLETS
from lai.metrics import SUMS
from lai.noise import noise_floor
from lai.splits import TEST_SETS
from lai.tables import floor_with_model
from tests.helpers import make_lnb


def _direct_rmse(ds, name, classes):
    keep = ds["split"].values == name
    obs, truth, scl = ds["lai"].values[keep, 2], ds["lai_true"].values[keep, 2], ds["scl"].values[keep, 2]
    mask = np.isin(scl, classes) & np.isfinite(obs)
    return float(np.sqrt(np.mean(np.square(obs[mask] - truth[mask])))), int(mask.sum())


def _direct_bias(ds, name, classes):
    """Mean observed minus true LAI (negative: the observation too low, as under shadows the SCL missed)."""
    keep = ds["split"].values == name
    obs, truth, scl = ds["lai"].values[keep, 2], ds["lai_true"].values[keep, 2], ds["scl"].values[keep, 2]
    mask = np.isin(scl, classes) & np.isfinite(obs)
    return float(np.mean(obs[mask] - truth[mask]))


def _direct_oracle(ds, name, classes):
    keep = ds["split"].values == name
    obs, past, scl = ds["lai"].values[keep, 2], ds["lai_true"].values[keep, 1], ds["scl"].values[keep, 2]
    mask = np.isin(scl, classes) & np.isfinite(obs)
    return float(np.sqrt(np.mean(np.square(obs[mask] - past[mask]))))


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
        assert row.floor_bias == pytest.approx(_direct_bias(ds, row.set, profile.encoding.valid_classes), rel=1e-5)
        assert (row.floor_rmse_strict, row.pixels_strict) == (pytest.approx(strict, rel=1e-6), strict_pixels)
        assert 0 < row.floor_rmse and 0 <= row.shadow_share <= 1 and row.pixels_strict <= row.pixels
        assert row.oracle_rmse == pytest.approx(_direct_oracle(ds, row.set, profile.encoding.valid_classes), rel=1e-6)
    per = table.attrs["per_triplet"]
    assert list(per.columns) == ["set", "triplet", *SUMS]
    for row in table.itertuples():
        part = per[per["set"] == row.set]
        assert sorted(part["triplet"]) == list(np.flatnonzero(ds["split"].values == row.set))
        if len(part):  # the pooled oracle RMSE follows from its per-triplet sums
            assert np.sqrt(part["sse"].sum() / part["n"].sum()) == pytest.approx(row.oracle_rmse, rel=1e-9)


def test_final_model_beside_floor_and_oracle(tiny_data):
    """floor_with_model: the ratios and a paired difference to the oracle that is 0 when the model is the oracle,
    and negative (better) for a model that is exactly right."""
    profile, _, cube = tiny_data
    floor = noise_floor(cube, TEST_SETS, profile.encoding.valid_classes)
    oracle = floor.attrs["per_triplet"]
    same = floor_with_model(floor, oracle, oracle)
    filled = same[same["triplets"] > 0]
    assert len(filled) and np.allclose(filled["model_oracle_ratio"], 1) and np.allclose(filled["oracle_diff"], 0)
    assert np.allclose(filled["model_floor_ratio"], filled["oracle_rmse"] / filled["floor_rmse"])
    assert (same.loc[same["triplets"] == 0, "oracle_verdict"] == "empty").all()
    perfect = oracle.assign(sse=0.0)
    better = floor_with_model(same, perfect, oracle)
    scored = oracle[oracle["n"] > 0].groupby("set").size().reindex(better["set"]).fillna(0).to_numpy()
    enough, few = scored >= MIN_SCORED_TRIPLETS, (scored > 0) & (scored < MIN_SCORED_TRIPLETS)
    assert enough.any() and (better.loc[enough, "oracle_verdict"] == "better").all()
    # too few triplets hold a scored pixel for an interval: no verdict however large the difference
    assert (better.loc[few, "oracle_verdict"] == "not resolved").all() and better.loc[few, "oracle_diff_lo"].isna().all()
    assert list(better.columns) == list(same.columns)  # recomputed, not appended twice
    # a model with four times the oracle's squared errors on every triplet: twice its RMSE, so the ratio to the oracle is
    # 2 (model over oracle, not oracle over model) and to the floor twice the oracle's
    doubled = floor_with_model(same, oracle.assign(sse=4 * oracle["sse"]), oracle)
    filled = doubled[doubled["triplets"] > 0]
    assert np.allclose(filled["model_oracle_ratio"], 2) and np.allclose(filled["model_rmse"], 2 * filled["oracle_rmse"])
    assert np.allclose(filled["model_floor_ratio"], 2 * filled["oracle_rmse"] / filled["floor_rmse"])


def test_floor_needs_the_true_lai(tmp_path):
    lnb = make_lnb(tmp_path / "lnb", n_triplets=3)
    build_cube(lnb, tmp_path / "cube.nc", SplitConfig(block_size=1), progress=False)
    with pytest.raises(CubeError, match=r"cube\.nc.*lai_true"):
        noise_floor(tmp_path / "cube.nc")
