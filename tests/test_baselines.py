"""Baselines: temporal rules on hand-made arrays, pixel models on a hand-written cube, and the
whole evaluation on the tiny simulated cube."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from lai.baselines import (
    FEATURE_NAMES,
    evaluate_baselines,
    extrapolation,
    feature_names,
    fit_pixel_models,
    persistence,
    pixel_features,
    pixel_targets,
    predict_baselines,
    rf_importances,
    sample_training_pixels,
    split_dates,
)
from lai.config import BaselineConfig, EncodingConfig
from lai.cube import SCHEMA_VERSION
from lai.facts import BASELINES, PAPER_LAI_SCALE, TEST_SETS

ENC = EncodingConfig()
CLEAR, CLOUD = 4, 9


def _raw(lai, scl, n=None):
    lai = np.asarray(lai, np.float32)
    n, _, h, w = lai.shape
    return {
        "s1": np.full((n, 3, 2, h, w), -12.0, np.float32),
        "lai": lai,
        "scl": np.asarray(scl, np.uint8),
        "doy_target": np.full(n, 180),
        "doy_from": np.full(n, 160),
    }


def test_persistence_rules():
    nan = np.nan
    # sample 0, pixels: (0,0) all clear; (0,1) cloudy at t-1 by SCL; (1,0) NaN LAI at t-1; (1,1) no clear past
    lai0 = [[[1.0, 2.0], [3.0, 4.0]], [[1.5, 7.0], [nan, 9.0]], [[0.0, 0.0], [0.0, 0.0]]]
    scl0 = [[[CLEAR, CLEAR], [CLEAR, CLOUD]], [[CLEAR, CLOUD], [CLEAR, CLOUD]], [[CLEAR] * 2] * 2]
    # sample 1: nothing clear in the past -> the fallback
    lai1 = [[[5.0] * 2] * 2] * 3
    scl1 = [[[CLOUD] * 2] * 2, [[CLOUD] * 2] * 2, [[CLEAR] * 2] * 2]
    raw = _raw([lai0, lai1], [scl0, scl1])
    out = persistence(raw, ENC, fallback=2.25)
    tile_mean = np.mean([1.0, 2.0, 3.0, 1.5])  # clear past pixels of sample 0, both dates pooled
    np.testing.assert_allclose(out[0], [[1.5, 2.0], [3.0, tile_mean]], rtol=1e-6)
    np.testing.assert_allclose(out[1], 2.25)
    assert out.shape == (2, 2, 2) and out.dtype == np.float32
    # without a fallback: the batch's mean clear past LAI
    np.testing.assert_allclose(persistence(raw, ENC)[1], tile_mean, rtol=1e-6)


def test_extrapolation_rules():
    # pixels: both clear (rising), both clear (falling below 0), both clear (beyond 10), t-1 cloudy
    lai = [[[[1.0, 5.0, 1.0, 3.0]], [[2.0, 1.0, 8.0, 6.0]], [[0.0] * 4]]]
    scl = [[[[CLEAR] * 4], [[CLEAR, CLEAR, CLEAR, CLOUD]], [[CLEAR] * 4]]]
    raw = _raw(lai, scl)
    out = extrapolation(raw, ENC, np.array([[0, 10, 15]]))  # half a past gap ahead
    np.testing.assert_allclose(out[0, 0], [2.5, 0.0, 10.0, 3.0])
    out = extrapolation(raw, ENC, np.array([[0, 10, 20]]))
    np.testing.assert_allclose(out[0, 0], [3.0, 0.0, 10.0, 3.0])
    # coinciding past dates: no slope, persistence
    out = extrapolation(raw, ENC, np.array([[10, 10, 20]]))
    np.testing.assert_allclose(out[0, 0], [2.0, 1.0, 8.0, 3.0])


def test_features_follow_encoding():
    rng = np.random.default_rng(0)
    raw = _raw(rng.uniform(0, 5, (2, 3, 4, 4)), rng.integers(0, 12, (2, 3, 4, 4)))
    raw["lai"][0, 0, 0, 0] = np.nan
    x = pixel_features(raw, ENC)
    assert x.shape == (2 * 16, len(FEATURE_NAMES)) and np.isfinite(x).all()
    assert x[0, FEATURE_NAMES.index("LAI_t-2")] == 0.0
    np.testing.assert_allclose(x[5, FEATURE_NAMES.index("LAI_t-1")], raw["lai"][0, 1, 1, 1] / 5, rtol=1e-6)
    np.testing.assert_allclose(x[:, FEATURE_NAMES.index("VV_t")], -12 / 30 + 1, rtol=1e-6)
    onehot = x[:, [FEATURE_NAMES.index(f"SCL{k}_t-1") for k in range(12)]]
    np.testing.assert_array_equal(onehot.argmax(1), raw["scl"][:, 1].reshape(-1))
    ref = EncodingConfig(mask_encoding="reference", seasonality="triangular")
    assert pixel_features(raw, ref).shape == (32, len(feature_names(ref))) == (32, 22)
    target, clear = pixel_targets(raw, ENC)
    assert target.shape == clear.shape == (32,) and not target[~clear].any()


# --------------------------------------------------------------------------- a hand-written cube


def _write_cube(path, raw, labels, dates):
    """Minimal file with what CubeSplit and the baselines read (not a simulator: fixed arrays)."""
    n = len(labels)
    clear = (raw["scl"] == CLEAR) & np.isfinite(raw["lai"])
    with h5py.File(path, "w") as f:
        f.attrs.update(schema="lai-cube", schema_version=SCHEMA_VERSION)
        f["s1"], f["lai"], f["scl"] = raw["s1"], raw["lai"], raw["scl"]
        f["split"] = np.asarray(labels, dtype=object).astype(h5py.string_dtype())
        f["date"] = np.asarray(dates, np.int32)
        f["clear_fraction"] = clear.mean(axis=(2, 3)).astype(np.float32)
    assert n == len(raw["lai"])


@pytest.fixture(scope="module")
def linear_cube(tmp_path_factory):
    """LAI(t) = 0.8 LAI(t-1) + 0.05 VV(t) + 1 where clear at t; a quarter of the pixels cloudy at t."""
    rng = np.random.default_rng(1)
    n, h, w = 46, 16, 16
    s1 = np.clip(rng.normal(-12, 3, (n, 3, 2, h, w)), *ENC.db_range).astype(np.float32)  # the encoding clips outside
    lai = rng.uniform(0, 6, (n, 3, h, w)).astype(np.float32)
    scl = np.full((n, 3, h, w), CLEAR, np.uint8)
    lai[:, 2] = 0.8 * lai[:, 1] + 0.05 * s1[:, 2, 0] + 1.0
    cloudy = rng.random((n, h, w)) < 0.25
    scl[:, 2][cloudy] = CLOUD
    lai[:, 2][cloudy] = np.nan
    raw = {"s1": s1, "lai": lai, "scl": scl}
    labels = ["train"] * 30 + ["non_cloudy"] * 6 + ["unique"] * 10  # no "cloudy" triplet; unique: enough for intervals
    start = np.arange(n) * 7 + 19000
    dates = np.stack([start, start + 10, start + 20], axis=1)
    path = tmp_path_factory.mktemp("linear") / "cube.nc"
    _write_cube(path, raw, labels, dates)
    return path


def test_sampling_respects_cap_and_clear(linear_cube):
    cfg = BaselineConfig(max_train_pixels=3000, seed=3)
    x, y = sample_training_pixels(linear_cube, cfg, ENC, batch_size=7, progress=False)
    assert len(x) == len(y) == 3000  # 30 * 256 * 0.75 ~ 5760 clear pixels available
    # every sampled pixel is clear at t: its target follows the relation, none is the masked 0
    lai_tm1 = x[:, FEATURE_NAMES.index("LAI_t-1")] * 5
    vv_t = (x[:, FEATURE_NAMES.index("VV_t")] - 1) * 30
    np.testing.assert_allclose(y * 5, 0.8 * lai_tm1 + 0.05 * vv_t + 1, atol=1e-4)
    x2, y2 = sample_training_pixels(linear_cube, cfg, ENC, batch_size=7, progress=False)
    np.testing.assert_array_equal(y, y2)  # seeded


def test_mlr_recovers_linear_relation_and_rf_beats_constant(linear_cube):
    cfg = BaselineConfig(max_train_pixels=4000, rf_trees=10, rf_max_depth=8, seed=0)
    models = fit_pixel_models(linear_cube, cfg, ENC, progress=False)
    with h5py.File(linear_cube, "r") as f:  # persistence's fallback (no clear past): the training mean, in LAI
        train = f["split"][:].astype(str) == "train"
        clear = np.isin(f["scl"][:, 2], ENC.valid_classes)[train] & np.isfinite(f["lai"][:, 2][train])
        assert models.train_mean == pytest.approx(float(f["lai"][:, 2][train][clear].mean()), rel=0.05)
    coef = dict(zip(FEATURE_NAMES, models["MLR"].coef_))
    assert coef["LAI_t-1"] == pytest.approx(0.8, abs=1e-3)
    assert coef["VV_t"] == pytest.approx(0.05 * 30 / 5, abs=1e-3)
    imp = rf_importances(models, FEATURE_NAMES)
    assert list(imp.columns) == ["feature", "importance"] and imp["feature"].iloc[0] == "LAI_t-1"

    table = evaluate_baselines(linear_cube, cfg, ENC, progress=False, models=models, batch_size=4)
    assert len(table) == 4 * 3 and set(table["baseline"]) == set(BASELINES)
    by = table.set_index(["baseline", "set"])
    assert by.loc[("MLR", "non_cloudy"), "rmse"] < 1e-3 and by.loc[("MLR", "non_cloudy"), "r2"] > 0.9999
    assert (by.xs("cloudy", level="set")["triplets"] == 0).all()
    assert by.xs("cloudy", level="set")["rmse"].isna().all()
    # RF against a constant predictor (the training mean): R2 of the constant is <= ~0
    for name in ("non_cloudy", "unique"):
        assert by.loc[("RF", name), "r2"] > 0.8
        assert by.loc[("RF", name), "n_pixels"] > 0
    assert "truth_rmse_cloudy" not in table  # no lai_true in this cube


def test_batchwise_scores_match_evaluate_scores(linear_cube):
    from lai.evaluate import scores
    from lai.loader import CubeSplit

    cfg = BaselineConfig(max_train_pixels=2000, rf_trees=3, rf_max_depth=4)
    models = fit_pixel_models(linear_cube, cfg, ENC, progress=False)
    table = evaluate_baselines(linear_cube, cfg, ENC, sets=["unique"], progress=False, models=models, batch_size=3)
    split = CubeSplit(linear_cube, "unique")
    raw = split.read(np.arange(len(split)))
    preds = predict_baselines(raw, models, ENC, split_dates(split), models.train_mean)
    clear = (raw["scl"][:, 2] == CLEAR) & np.isfinite(raw["lai"][:, 2])
    strict = np.isin(raw["scl"][:, 2], (4, 5, 6)) & np.isfinite(raw["lai"][:, 2])
    per_triplet = table.attrs["per_triplet"]
    for b, pred in preds.items():
        score = scores({"pred": pred, "target": raw["lai"][:, 2], "clear": clear, "strict": strict})
        ref = score.result()
        row = table[table["baseline"] == b].iloc[0]
        for k in ("rmse", "rmse_norm", "r2", "rmse_lo", "rmse_hi", "r2_lo", "r2_hi", "rmse_strict"):
            assert row[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-5, nan_ok=True)  # float32; no interval: NaN both
        assert row["n_pixels"] == ref["n_pixels"] and row["rmse_lo"] < row["rmse"] < row["rmse_hi"]
        mine = per_triplet[per_triplet["baseline"] == b]
        np.testing.assert_allclose(mine[["sse", "sum_t", "sum_tt", "n"]].to_numpy(), score.triplet_sums, rtol=1e-5, atol=1e-6)
        assert list(mine["triplet"]) == list(split.index)


# --------------------------------------------------------------------------- tiny simulated cube


def test_evaluate_baselines_on_tiny_cube(tiny_data):
    p, _, path = tiny_data  # session fixture of tests/conftest.py
    table = evaluate_baselines(path, p.baselines, p.encoding, progress=False)
    assert len(table) == len(BASELINES) * len(TEST_SETS)
    assert set(zip(table["baseline"], table["set"])) == {(b, s) for b in BASELINES for s in TEST_SETS}
    filled = table[table["n_pixels"] > 0]
    assert len(filled) > 0
    for col in ("rmse", "rmse_norm", "r2"):
        assert np.isfinite(filled[col]).all(), col
    np.testing.assert_allclose(filled["rmse_norm"], filled["rmse"] / PAPER_LAI_SCALE)  # the paper's unit, LAI/5
    # simulated data: each baseline is also scored against the true LAI where clouds hide the observation at t
    has_cloud = filled[filled["cloudy_pixels"] > 0]
    assert len(has_cloud) > 0 and np.isfinite(has_cloud["truth_rmse_cloudy"]).all()
    assert 0 < table.attrs["train_pixels"] <= p.baselines.max_train_pixels
    assert set(table.attrs["rf_importances"]) == set(feature_names(p.encoding))


def test_baselines_without_lai_history_lose_what_the_history_explains(linear_cube):
    """On LAI(t) = 0.8 LAI(t-1) + ..., MLR without the history cannot recover the relation; with it, it does."""
    cfg = BaselineConfig(max_train_pixels=3000, rf_trees=3, rf_max_depth=4)
    table = evaluate_baselines(linear_cube, cfg, ENC, sets=["unique"], progress=False, extras=True)
    r2 = table.set_index("baseline")["r2"]
    assert set(r2.index) == set(BASELINES) | {"MLR_no_history", "RF_no_history"}
    assert r2["MLR"] > 0.99 and r2["MLR_no_history"] < 0.5
    assert set(table.attrs["per_triplet"]["baseline"]) == set(r2.index)
    models = fit_pixel_models(linear_cube, cfg, ENC, progress=False, extras=True)
    assert models["RF_no_history"].n_features_in_ == len(feature_names(ENC)) - 2
