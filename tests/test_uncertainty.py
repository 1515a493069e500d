"""Per-pixel uncertainty: coverage and recalibration on cases with known answers, a spread head that leaves the
mean's training alone, and the calibrated deviation in the maps."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
import rasterio
import torch

from lai.config import ModelConfig, TrainConfig
from lai.encode import EncodingConfig, encode_batch, mask_channels
from lai.errors import RunFolderError
from lai.facts import LOG_VAR, TEST_SETS, VAL
from lai.lnb import MASK_DIR, index_folder
from lai.loader import CubeSplit
from lai.loss import total_loss
from lai.model import LAIModel
from lai.uncertainty import (
    LEVELS,
    NOMINAL,
    POOLED,
    STRATA,
    TRANSFER_COLUMNS,
    Calibration,
    at_level,
    calibration_intervals,
    calibration_rows,
    coverage,
    fit_calibration,
    level_factors,
    read_calibration,
    region_transfer,
    reliability,
    strata,
    z_of,
)
from tests.helpers import make_lnb, raw_batch

ENC = EncodingConfig()


def test_coverage_of_a_gaussian_with_known_variance():
    rng = np.random.default_rng(0)
    sd = rng.uniform(0.2, 2.0, 400_000)
    err = rng.normal(0, sd)
    assert z_of(0.95) == pytest.approx(1.959964, abs=1e-5) and z_of(0.68) == pytest.approx(0.994458, abs=1e-5)
    for level in (0.5, 0.68, 0.95, 0.99):
        assert coverage(err, sd, level) == pytest.approx(level, abs=0.003)
    half = 2 * NormalDist().cdf(z_of(0.95) / 2) - 1  # sd halved: the 95 % interval reaches 0.98 true sd, P = 0.673
    assert coverage(err, sd / 2, 0.95) == pytest.approx(half, abs=0.003)
    curve = reliability("x", err, sd)
    assert [r["nominal"] for r in curve] == list(LEVELS)  # every level of the diagram
    assert all(abs(r["observed"] - r["nominal"]) < 0.005 for r in curve)


def test_recalibration_recovers_a_factor_per_stratum_and_pools_small_ones():
    rng = np.random.default_rng(1)
    n = 180_000
    past, clear = rng.integers(0, 3, n), rng.random(n) < 0.5
    stratum = strata(past, clear)
    true_factor = np.array([3.0, 2.0, 1.5, 1.2, 1.0, 0.5])
    sd = rng.uniform(0.1, 1.0, n)
    err = rng.normal(0, sd * true_factor[stratum])
    stratum_small = stratum.copy()
    stratum_small[stratum == 0] = 1
    stratum_small[np.flatnonzero(stratum == 0)[:100]] = 0  # 100 pixels: below MIN_PIXELS, takes the pooled factor
    cal = fit_calibration(sd, err, stratum, "truth")
    for i, name in enumerate(STRATA):  # a Gaussian error: the same factor at every level
        assert cal.factors[name] == pytest.approx([true_factor[i]] * len(cal.levels), rel=0.03), name
    calibrated = cal.deviations(sd, past, clear)
    for i in range(len(STRATA)):
        for level in NOMINAL:
            assert coverage(err[stratum == i], calibrated[level][stratum == i], level) == pytest.approx(level, abs=0.01)
    small = fit_calibration(sd, err, stratum_small, "truth")
    assert STRATA[0] not in small.factors
    assert small.factor_array(0.95)[0] == pytest.approx(np.interp(0.95, small.levels, small.factors[POOLED]))
    std = cal.std(sd, past, clear)
    for i, name in enumerate(STRATA):  # a Gaussian error: the standard deviation's factor is the intervals'
        assert cal.sd_factors[name] == pytest.approx(true_factor[i], rel=0.03), name
    rows = calibration_rows("cloudy", err, sd, calibrated, std, clear, "truth")
    assert [(r["pixels"], r["sd"]) for r in rows] == [("clear at t", "raw"), ("clear at t", "recalibrated"),
                                                      ("clouded at t", "raw"), ("clouded at t", "recalibrated")]
    assert rows[1]["coverage_95"] == pytest.approx(0.95, abs=0.01) and rows[1]["spearman"] > 0.3
    assert rows[0]["mean_sd"] == pytest.approx(sd[clear].mean()) and rows[1]["mean_sd"] == pytest.approx(std[clear].mean())


def test_a_spread_exactly_as_large_as_the_error_reads_one_on_its_root_mean_square():
    """Errors drawn from N(0, sigma^2) with sigma varying (log-normal): the root mean square of sigma over the RMSE is
    1, the mean sigma over the RMSE (the issue's measure) mean/rms of sigma, about 0.88 here, below 1 by Jensen."""
    rng = np.random.default_rng(8)
    sd = rng.lognormal(0, 0.5, (200, 16, 16))
    err = rng.normal(0, 1, sd.shape) * sd
    everywhere = np.ones(sd.shape, bool)
    row = calibration_rows("cloudy", err, sd, {lv: sd for lv in NOMINAL}, sd, everywhere, "truth")[0]
    assert row["rms_sd_ratio"] == pytest.approx(1.0, abs=0.01)
    assert row["sd_ratio"] == pytest.approx(sd.mean() / np.sqrt(np.mean(sd ** 2)), abs=0.01) and row["sd_ratio"] < 0.9
    assert row["rms_sd_ratio_lo"] < 1.0 < row["rms_sd_ratio_hi"] and row["sd_ratio_hi"] < 0.9
    assert row["coverage_68"] == pytest.approx(0.68, abs=0.01) and row["coverage_95"] == pytest.approx(0.95, abs=0.01)


def test_coverage_intervals_resample_triplets_not_pixels():
    """Half of 400 triplets wholly inside their intervals, half wholly outside: the coverage is 0.5 and its interval
    over triplets that of a proportion of 400 (about 0.5 +- 1.96 x 0.025), not of 400 x 64 pixels; the spread's
    ratio to the RMSE is exact where every triplet has the same ratio."""
    rng = np.random.default_rng(3)
    sd = rng.uniform(0.5, 1.5, (400, 8, 8))
    inside = np.repeat(np.arange(400) % 2 == 0, 64).reshape(sd.shape)
    err = np.where(inside, 0.0, 10.0 * sd)
    everywhere = np.ones(sd.shape, bool)
    bounds = calibration_intervals(err, sd, sd, everywhere)
    for level in NOMINAL:
        lo, hi = bounds[f"coverage_{round(100 * level)}_lo"], bounds[f"coverage_{round(100 * level)}_hi"]
        assert lo == pytest.approx(0.5 - 1.96 * 0.025, abs=0.01) and hi == pytest.approx(0.5 + 1.96 * 0.025, abs=0.01)
    err = np.where(rng.random(sd.shape) < 0.5, 1.0, -1.0) * 2.0 * sd  # |err| = 2 sd at every pixel
    ratio = sd.mean() / np.sqrt(np.mean(err ** 2))
    bounds = calibration_intervals(err, sd, sd, everywhere)
    assert bounds["sd_ratio_lo"] < ratio < bounds["sd_ratio_hi"] and bounds["sd_ratio_hi"] - bounds["sd_ratio_lo"] < 0.01
    rows = calibration_rows("cloudy", err, sd, {lv: sd for lv in NOMINAL}, sd, everywhere, "truth")
    assert rows[0]["sd_ratio"] == pytest.approx(ratio) and rows[0]["coverage_95_lo"] == rows[0]["coverage_95_hi"] == 0.0
    flat = calibration_intervals(err.ravel(), sd.ravel(), sd.ravel(), everywhere.ravel())  # no triplet axis
    assert set(flat) == set(bounds) and all(np.isnan(v) for v in flat.values())


def test_coverage_intervals_cover_the_true_coverage_about_as_often_as_they_claim():
    """Triplets whose errors have their own scale (log-normal): over 200 draws of 120 triplets, the 95 % intervals
    hold the true coverage and ratio in about 95 % of the draws (percentile bootstrap: measured 92-93 %); intervals
    over pixels, ignoring that a triplet's pixels share its scale, would hold it far less often."""
    from scipy.stats import norm

    rng = np.random.default_rng(5)
    scales = rng.lognormal(0, 0.4, 2_000_000)  # the population: the truth the intervals should hold
    truth = {f"coverage_{round(100 * lv)}": float(np.mean(2 * norm.cdf(z_of(lv) / scales) - 1)) for lv in NOMINAL}
    truth["sd_ratio"] = float(1 / np.sqrt(np.mean(scales ** 2)))  # predicted sd 1 everywhere
    held = dict.fromkeys(truth, 0)
    draws = 200
    for k in range(draws):
        err = rng.normal(0, 1, (120, 8, 8)) * rng.lognormal(0, 0.4, 120)[:, None, None]
        sd = np.ones_like(err)
        bounds = calibration_intervals(err, sd, sd, np.ones(err.shape, bool), samples=1000, seed=k)
        for name, value in truth.items():
            held[name] += bounds[f"{name}_lo"] <= value <= bounds[f"{name}_hi"]
    for name, count in held.items():
        assert 0.88 <= count / draws <= 0.99, (name, count / draws)


def test_heavy_tails_get_a_factor_per_level_that_one_factor_cannot_give():
    """5 % of the errors 6x wider: one factor fitted at 68 % leaves the 95 % intervals short; per level, both hold."""
    rng = np.random.default_rng(2)
    sd = rng.uniform(0.1, 1.0, 200_000)
    heavy = rng.normal(0, sd * np.where(rng.random(sd.size) < 0.05, 6.0, 1.0))
    factors = dict(zip(NOMINAL, level_factors(heavy / sd, NOMINAL)))
    assert factors[0.95] > 1.1 * factors[0.68]  # the tails reach further than a Gaussian's
    assert coverage(heavy, factors[0.68] * sd, 0.95) < 0.935  # the one-sigma factor alone: 95 % intervals too short
    for level in NOMINAL:
        assert coverage(heavy, factors[level] * sd, level) == pytest.approx(level, abs=0.005)
    cal = fit_calibration(sd, heavy, np.zeros(sd.size, np.int8), "truth")
    past, clear = np.zeros(sd.size, np.int8), np.zeros(sd.size, bool)
    assert at_level(cal.deviations(sd, past, clear), 0.95) == pytest.approx(factors[0.95] * sd, rel=1e-3)
    assert at_level(sd, 0.95) is sd
    # the standard deviation: its root mean square is the errors' (a Gaussian's 68 % factor would be far smaller)
    std = cal.std(sd, past, clear)
    assert np.sqrt(np.mean(std ** 2)) == pytest.approx(np.sqrt(np.mean(heavy ** 2)), rel=1e-4)
    assert cal.sd_factors[STRATA[0]] > 1.3 * factors[0.68]
    assert coverage(heavy, std, 0.68) > 0.75  # so plus or minus std holds more than 68 %: intervals need their factors
    reach = cal.summary()["interval_half_width"]
    assert "95 %" in reach and "1.96 for a Gaussian" in reach
    half_widths = json.loads(reach[reach.index("{"):])
    assert half_widths["68 %"][STRATA[0]] == pytest.approx(z_of(0.68) * factors[0.68] / cal.sd_factors[STRATA[0]], rel=1e-2)
    reach68, reach95 = half_widths["68 %"][STRATA[0]], half_widths["95 %"][STRATA[0]]
    assert reach68 < 0.8 and reach95 / reach68 > 1.1 * z_of(0.95) / z_of(0.68)  # narrow core, long tails
    # the calibration table: each level's coverage from that level's own deviation
    rows = calibration_rows("cloudy", heavy, sd, cal.deviations(sd, past, clear), std, clear, "truth")
    recalibrated = next(r for r in rows if r["pixels"] == "clouded at t" and r["sd"] == "recalibrated")
    assert recalibrated["coverage_68"] == pytest.approx(0.68, abs=0.005)
    assert recalibrated["coverage_95"] == pytest.approx(0.95, abs=0.005)


def test_region_transfer_fits_on_the_other_regions_only():
    """Errors N(0, 1) in region A and N(0, 2²) in region B, the raw sd 1: held out, B is covered by A's factors
    (at 68 %: P(|Z| < 0.994 / 2)) and A, by B's twice as wide ones, almost wholly; alike in either form."""
    rng = np.random.default_rng(0)
    n, side = 40, 32
    regions = np.array(["A"] * (n // 2) + ["B"] * (n // 2))
    err = (rng.standard_normal((n, side, side)) * np.where(regions == "A", 1.0, 2.0)[:, None, None]).astype(np.float32)
    sd, past = np.ones((n, side, side), np.float32), np.full((n, side, side), 2, np.int8)
    clear = np.ones((n, side, side), bool)
    clear[:, :, : side // 2] = False
    inside = {lv: 2 * NormalDist().cdf(z_of(lv) / 2) - 1 for lv in NOMINAL}
    for form in ("levels", "gaussian"):
        rows = {(r["held_out"], r["pixels"]): r for r in region_transfer(sd, err, strata(past, clear), clear, regions,
                                                                         "truth", form)}
        assert len(rows) == 4 and all(list(r) == list(TRANSFER_COLUMNS) for r in rows.values())
        for at_t in ("clear at t", "clouded at t"):
            a, b = rows[("A", at_t)], rows[("B", at_t)]
            assert a["n_pixels"] == b["n_pixels"] == n // 2 * side * side // 2 and a["triplets"] == n // 2
            for lv in NOMINAL:
                assert b[f"coverage_{round(100 * lv)}"] == pytest.approx(inside[lv], abs=0.02), (form, at_t, lv)
            assert a["coverage_68"] > 0.95 and a["coverage_95"] > 0.99
    assert region_transfer(sd, err, strata(past, clear), clear, np.array(["A"] * n), "truth") == []  # one region
    # heavy tails alike in both regions (5 % of the errors 6x wider): a factor per level carries the 95 % interval
    # over; the Gaussian form (the standard deviation's factor, which the tails inflate, plus or minus 1.96 of it)
    # covers more than 95 %: the forms differ
    tails = (rng.standard_normal((n, side, side)) * np.where(rng.random((n, side, side)) < 0.05, 6.0, 1.0))
    covered = {form: [r["coverage_95"] for r in region_transfer(sd, tails.astype(np.float32), strata(past, clear), clear,
                                                                   regions, "truth", form)] for form in ("levels", "gaussian")}
    assert all(c == pytest.approx(0.95, abs=0.01) for c in covered["levels"])
    assert all(c > 0.96 for c in covered["gaussian"]), covered
    with pytest.raises(ValueError, match="form must be"):
        region_transfer(sd, err, strata(past, clear), clear, regions, "truth", "student")


def test_calibration_file_round_trips_and_a_bad_one_is_named(tmp_path):
    cal = Calibration({STRATA[0]: [1.5, 1.7], POOLED: [1.1, 1.2]}, 0.3, "truth", "cube.nc:val", [0.68, 0.95],
                      {STRATA[0]: 1.9, POOLED: 1.4})
    cal.write(tmp_path)
    assert read_calibration(tmp_path) == cal
    assert read_calibration(tmp_path / "nowhere").against == "none"  # no file: the identity
    # a file of one factor per stratum (before the factors were fitted per level): that factor at every level
    (tmp_path / "calibration.json").write_text(json.dumps({"factors": {STRATA[0]: 1.5, POOLED: 1.1}, "against": "truth"}))
    old = read_calibration(tmp_path)
    assert old.factor_array(0.68)[0] == pytest.approx(1.5) and old.factor_array(0.95)[1] == pytest.approx(1.1)
    # and without sd_factors (before 2026-12-03), lai_std stays what it was then: the 68 % deviation, and says so
    assert old.sd_fitted == "68 %" and old.sd_factor_array()[0] == pytest.approx(1.5)
    assert "68 % deviation" in old.summary()["model_sd"] and "root mean square" in cal.summary()["model_sd"]
    # each problem named by its field (one catch-all sentence cut the file's text short before the field)
    for bad, against, message in (
            ({STRATA[0]: -1, POOLED: 1.0}, "truth", rf"factors\.{STRATA[0]} -1 must lie in \[0\.001, 1000\]"),
            ({STRATA[0]: [1.0], POOLED: 1.0}, "truth", rf"factors\.{STRATA[0]} holds 1 factor\(s\) for 12 level\(s\)"),
            ({"cloudy": 1.0, POOLED: 1.0}, "truth", r"factors names unknown strata cloudy"),
            ({}, "truth", r"factors lacks 'pooled'"), ({STRATA[0]: 1.0}, "truth", r"factors lacks 'pooled'"),
            ({POOLED: 1.0}, ["truth"] * 1000, r"against is \[.*; expected one of truth, observation"),  # fitted how?
            ({POOLED: 1.0}, "none", r"against is \"none\"; expected one of truth, observation"),
            ({POOLED: 1.0}, {"sd_factors": {POOLED: float("nan")}}, r"sd_factors\.pooled is nan, not a finite number"),
            ({POOLED: 1.0}, {"sd_factors": {STRATA[0]: 1.0}}, r"sd_factors lacks 'pooled'"),  # no pooled sd factor
            ({POOLED: 1e30}, "truth", r"factors\.pooled 1e\+30 must lie in"),  # implausible
            ({POOLED: [1.0, 1e-5]}, {"levels": [0.68, 0.95]}, r"factors\.pooled \[1\.0, 1e-05\] must lie in"),
            ({POOLED: 1.0}, {"sd_factors": {POOLED: 1e30}}, r"sd_factors\.pooled 1e\+30 must lie in"),
            ({POOLED: [1.0, 1.0]}, {"levels": [0.5, 0.5]}, r"levels must increase strictly within \(0, 1\)"),
            ({POOLED: True}, "truth", r"factors\.pooled is true, not a number"),
            ({POOLED: "0.1"}, "truth", r"factors\.pooled is \"0\.1\", not a number"),
            ({POOLED: 1.0}, {"observation_sd": -0.1}, r"observation_sd -0\.1 must lie in \[0, 15\]"),  # negative lai_std
            ({POOLED: 1.0}, {"observation_sd": 1e300}, r"observation_sd 1e\+300 must lie in \[0, 15\]")):  # inf lai_std
        extra = against if isinstance(against, dict) else {}
        against = "truth" if extra else against
        (tmp_path / "calibration.json").write_text(json.dumps({"factors": bad, "against": against, **extra}))
        with pytest.raises(RunFolderError, match=rf"calibration\.json: (.*; )?{message}.*delete it to predict uncalibrated") as e:
            read_calibration(tmp_path)
        assert len(str(e.value)) < 600


def test_calibration_file_that_is_no_json_file_is_refused(tmp_path):
    """Nesting deeper than Python recurses, a FIFO, a link to a device and a folder: one error naming the file."""
    path = tmp_path / "calibration.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RunFolderError, match="calibration.json is not readable JSON .nested too deeply.; delete it"):
        read_calibration(tmp_path)
    for make in (os.mkfifo, lambda p: p.symlink_to("/dev/zero"), Path.mkdir):
        path.unlink() if not path.is_dir() else path.rmdir()
        make(path)
        with pytest.raises(RunFolderError, match="calibration.json is not a regular file"):
            read_calibration(tmp_path)


def _train(uncertainty: bool, steps: int = 3) -> LAIModel:
    torch.manual_seed(0)
    cfg = ModelConfig(row="final", preset="small", encoder_widths=[4, 8], decoder_widths=[8, 16], uncertainty=uncertainty)
    model = LAIModel(cfg, mask_channels(ENC))
    from lai.checkpoint import TrainingState

    opt = TrainingState.start(model, TrainConfig()).optimizer
    for step in range(steps):
        x = encode_batch(raw_batch(4, 32, seed=step), ENC)
        loss, parts = total_loss(model(x), x, TrainConfig())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_spread_head_leaves_the_mean_training_unchanged():
    """Same seed, same batches: every weight but the spread head's is bit-identical with and without it, and the
    spread head did learn (its weights moved)."""
    plain, spread = _train(False), _train(True)
    mean_weights = plain.state_dict()
    with_head = spread.state_dict()
    assert set(with_head) - set(mean_weights) == {k for k in with_head if k.startswith("spread_head.")} != set()
    for k, v in mean_weights.items():
        assert torch.equal(v, with_head[k]), k
    torch.manual_seed(0)
    fresh = LAIModel(spread.cfg, mask_channels(ENC))
    assert not torch.equal(fresh.spread_head[0].weight, spread.spread_head[0].weight)
    x = encode_batch(raw_batch(2, 32, seed=9), ENC)
    out = spread(x)
    assert out[LOG_VAR].shape == out["dec"].shape and LAIModel.spread(out).min() > 0


def test_training_stages_with_and_without_the_spread_head_give_the_same_lai(tiny_data, tmp_path):
    """The whole training loop (initial biases, loaders, augmentation, schedule, best epoch): the final model's
    weights other than the spread head's are bit-identical with model.uncertainty on and off."""
    from lai.config import load_profile
    from lai.train import train_rows

    _, _, cube = tiny_data
    models = {}
    for flag in (False, True):
        p = load_profile("tiny", ["train.epochs=2", "train.max_batches_per_epoch=3", f"model.uncertainty={str(flag).lower()}"])
        train_rows(p, cube, tmp_path / str(flag), ["final"], progress=False)
        models[flag] = torch.load(tmp_path / str(flag) / "final" / "model.pt", weights_only=True)["model"]
    assert any(k.startswith("spread_head.") for k in models[True])
    for k, v in models[False].items():
        assert torch.equal(v, models[True][k]), k


def test_calibrated_spread_in_the_maps(tiny_data, tiny_run, tmp_path):
    """calibrate_run writes calibration.json and one table row per set, pixels and version; lai predict then writes
    band lai_std: the observation's error where observed, the model's calibrated deviation elsewhere."""
    from lai.evaluate import calibrate_run
    from lai.predict import predict_folder

    run = tmp_path / "final"
    shutil.copytree(tiny_run, run)
    result = calibrate_run(run, tiny_data[2], device="cpu")
    cal = read_calibration(run)
    assert cal.against == "truth" and cal.observation_sd > 0 and POOLED in cal.factors
    present = [s for s in TEST_SETS if s in set(result.table["set"])]
    assert len(result.table) == 4 * len(present) and result.table["coverage_95"].between(0, 1).all()
    assert set(result.reliability["sd"]) == {"raw", "recalibrated"}
    regions = CubeSplit(tiny_data[2], VAL).regions()
    assert len(result.transfer) == (2 * len(set(regions)) if len(set(regions)) > 1 else 0)
    assert list(result.transfer.columns) == list(TRANSFER_COLUMNS)  # a header also without rows
    lnb = make_lnb(tmp_path / "lnb", n_triplets=2, size=32)
    summary = predict_folder(run, lnb, tmp_path / "out", progress=False)
    assert "recalibrated" in summary["uncertainty"]["model_sd"]
    raw = predict_folder(tiny_run, lnb, tmp_path / "raw", progress=False)  # the same model, never calibrated
    assert "NOT recalibrated" in raw["uncertainty"]["model_sd"]
    tif = sorted((tmp_path / "out").glob("*[0-9].tif"))[0]
    with rasterio.open(tif) as src:
        assert src.descriptions == ("lai", "lai_model", "lai_std") and src.units == ("m2/m2",) * 3
        std = src.read(3)
    with rasterio.open(tmp_path / "raw" / tif.name) as src:
        raw_sd = src.read(3)  # the spread head's deviation where the model fills
    with rasterio.open(tif.with_name(tif.stem + "_source.tif")) as src:
        source = src.read(1)
    np.testing.assert_allclose(std[source == 1], cal.observation_sd, rtol=1e-6)
    assert (std[source == 0] > 0).all() and np.isfinite(std).all()
    # where the model fills: its raw deviation times the factor of the pixel's stratum (clear past dates, clouded at t)
    names = next(t.names for t in index_folder(lnb, progress=False).triplets if Path(t.names[2]).stem == tif.stem)
    past_clear = np.zeros(std.shape, int)
    for name in names[:2]:
        with rasterio.open(lnb / MASK_DIR / name) as src:
            past_clear += np.isin(src.read(1), EncodingConfig().valid_classes)
    model = source == 0
    assert model.any() and len(set(past_clear[model])) > 1  # pixels of more than one stratum
    np.testing.assert_allclose(std[model], cal.std(raw_sd, past_clear, np.zeros_like(model))[model], rtol=1e-6)
    assert not np.allclose(std[model], raw_sd[model], rtol=1e-3)  # the factors are not all 1


def test_the_observations_error_is_measured_on_the_pixels_clear_at_t_only():
    """What maps put in band lai_std where they keep the observation: its RMSE against the truth where it is clear;
    under clouds the observed LAI is cloud, not an observation (without the mask it was about 3x too large)."""
    from lai.evaluate import _observation_sd

    truth = np.full((2, 4, 4), 3.0)
    target = truth + np.where(np.arange(16).reshape(4, 4) % 2, 0.3, -0.3)  # +-0.3 where clear
    clear = np.ones(truth.shape, bool)
    clear[:, :2] = False
    target[:, :2] = 0.1  # clouded at t: the observation is far off, and not used
    target[0, 3, 3] = np.nan  # no observation there
    assert _observation_sd({"target": target, "truth": truth, "clear": clear}) == pytest.approx(0.3)
    assert _observation_sd({"target": target, "clear": clear}) is None  # real data: no truth


def test_coverage_intervals_count_only_the_selected_pixels():
    """The clear-at-t and clouded-at-t rows each select part of a tile: inside the selection no error lies within its
    interval, outside every one does; the coverage and its bounds are those of the selection (0), not of the tile."""
    sd = np.ones((50, 4, 4))
    sel = np.zeros(sd.shape, bool)
    sel[:, :2] = True
    err = np.where(sel, 50.0, 0.1)
    bounds = calibration_intervals(err, sd, sd, sel)
    for level in NOMINAL:
        assert bounds[f"coverage_{round(100 * level)}_lo"] == bounds[f"coverage_{round(100 * level)}_hi"] == 0.0
    assert bounds["rms_sd_ratio_lo"] == pytest.approx(0.02) and bounds["sd_ratio_hi"] == pytest.approx(0.02)
    # fewer than lai.facts.MIN_SCORED_TRIPLETS triplets holding a selected pixel: no interval (a zero-width one was
    # printed from three triplets), as Table 1 gives none
    few = sel.copy()
    few[9:] = False
    assert all(np.isnan(v) for v in calibration_intervals(err, sd, sd, few).values())
    few[9] = sel[9]
    assert not any(np.isnan(v) for v in calibration_intervals(err, sd, sd, few).values())


def test_each_stratum_index_carries_its_own_name():
    """strata() indexes STRATA: the factors are stored and read by name, so the name at a pixel's index must say its
    clear past dates and whether t is clear (else a clear stratum's factor reaches the clouded pixels)."""
    past, clear = np.array([0, 1, 2, 0, 1, 2]), np.array([False, False, False, True, True, True])
    assert [STRATA[i] for i in strata(past, clear)] == [
        "0 past clear, clouded at t", "1 past clear, clouded at t", "2 past clear, clouded at t",
        "0 past clear, clear at t", "1 past clear, clear at t", "2 past clear, clear at t"]


def test_a_stratum_of_exactly_min_pixels_has_its_own_factors():
    """Strata with fewer than MIN_PIXELS validation pixels take the pooled factors; MIN_PIXELS is enough."""
    from lai.uncertainty import MIN_PIXELS

    stratum = np.repeat(np.array([0, 1], np.int8), [MIN_PIXELS, MIN_PIXELS - 1])
    sd, err = np.ones(stratum.size), np.where(stratum == 0, 2.0, 0.5)
    cal = fit_calibration(sd, err, stratum, "truth")
    assert STRATA[0] in cal.factors and STRATA[0] in cal.sd_factors and cal.sd_factors[STRATA[0]] == pytest.approx(2.0)
    assert STRATA[1] not in cal.factors and STRATA[1] not in cal.sd_factors


def test_an_error_on_the_edge_of_its_interval_is_inside():
    """The central interval is closed: |err| equal to z times the deviation is covered, a zero error with a zero
    deviation too."""
    sd = np.array([1.0, 2.0, 0.0])
    for level in NOMINAL:
        assert coverage(np.array([z_of(level), -2.0 * z_of(level), 0.0]), sd, level) == 1.0


def test_calibration_rows_take_each_number_from_its_own_deviation_and_pixels():
    """Known answers on 60 triplets of 2x2 pixels: pixel (0, 1) has no reference (NaN error), pixel (1, 1) is clouded
    at t. |err| = a in [1, 2); the raw sd is 1 / a (rank correlation with |err| exactly -1), the recalibrated standard
    deviation a³ (exactly +1: a rank, not a linear, correlation); each level's interval its own deviation: 100 at
    68 % (everything inside), 0.01 at 95 % (nothing inside)."""
    rng = np.random.default_rng(11)
    a = 1.0 + rng.random((60, 2, 2))
    err = np.where(rng.random(a.shape) < 0.5, -a, a)
    err[:, 0, 1] = np.nan
    clear = np.ones(a.shape, bool)
    clear[:, 1, 1] = False
    deviations = {0.68: np.full(a.shape, 100.0), 0.95: np.full(a.shape, 0.01)}
    rows = {(r["pixels"], r["sd"]): r for r in calibration_rows("cloudy", err, 1 / a, deviations, a ** 3, clear, "truth")}
    used = a[:, [0, 1], [0, 0]]  # the clear pixels with an error: (0, 0) and (1, 0) of each triplet
    rmse = np.sqrt(np.mean(used ** 2))
    raw, recal = rows[("clear at t", "raw")], rows[("clear at t", "recalibrated")]
    for row in (raw, recal):
        assert row["n_pixels"] == 120 and row["rmse"] == pytest.approx(rmse)
    assert raw["spearman"] == pytest.approx(-1.0) and recal["spearman"] == pytest.approx(1.0)
    assert raw["mean_sd"] == pytest.approx(np.mean(1 / used)) and recal["mean_sd"] == pytest.approx(np.mean(used ** 3))
    assert recal["rms_sd_ratio"] == pytest.approx(np.sqrt(np.mean(used ** 6)) / rmse)
    assert raw["rms_sd_ratio"] == pytest.approx(np.sqrt(np.mean(used ** -2.0)) / rmse)
    assert raw["coverage_68"] == pytest.approx(np.mean(used <= z_of(0.68) / used))  # |err| <= z / a
    assert recal["coverage_68"] == 1.0 and recal["coverage_95"] == 0.0
    assert recal["coverage_68_lo"] == recal["coverage_68_hi"] == 1.0
    assert recal["coverage_95_lo"] == recal["coverage_95_hi"] == 0.0
    clouded = rows[("clouded at t", "recalibrated")]
    assert clouded["n_pixels"] == 60 and clouded["rmse"] == pytest.approx(np.sqrt(np.mean(a[:, 1, 1] ** 2)))


def test_reliability_counts_only_pixels_with_a_deviation():
    """A pixel without a deviation (NaN) is left out, not counted as outside its interval: 2 of 3, not 2 of 4."""
    err, sd = np.array([0.1, 0.1, 0.1, 5.0]), np.array([1.0, np.nan, 1.0, 1.0])
    assert [r["observed"] for r in reliability("x", err, sd)] == pytest.approx([2 / 3] * len(LEVELS))


def test_the_error_is_the_prediction_minus_the_truth_or_the_observation_where_clear():
    """Simulated data: prediction minus the true LAI everywhere; real data: minus the observation where clear at t
    only (under a cloud the observed LAI is the cloud's), NaN elsewhere."""
    from lai.evaluate import _error

    pred = {"pred": np.array([[1.0, 2.0, 4.0]]), "target": np.array([[1.5, 9.0, 3.0]]),
            "clear": np.array([[True, False, True]])}
    err, against = _error({**pred, "truth": np.array([[0.5, 2.5, 4.0]])})
    assert against == "truth" and err.tolist() == [[0.5, -0.5, 0.0]]
    err, against = _error(pred)
    assert against == "observation" and err[0, 0] == -0.5 and np.isnan(err[0, 1]) and err[0, 2] == 1.0


def test_calibrate_run_fits_on_validation_and_applies_those_factors_to_each_test_set(tiny_data, tiny_run, tmp_path,
                                                                                      monkeypatch):
    """Recomputed from the model's predictions: the standard deviation's factors are those of the validation split
    (per stratum: root mean square of prediction - truth over that of the raw sd; every stratum its own, MIN_PIXELS
    lowered to 1), each test set's recalibrated row uses them (not factors refitted on the test set), and the example
    map is the triplet with most pixels clouded at t, its reference the true LAI, its sd each pixel's stratum's."""
    import lai.uncertainty
    from lai.evaluate import calibrate_run, predict
    from lai.facts import CLOUDY
    from lai.infer import load_trained

    monkeypatch.setattr(lai.uncertainty, "MIN_PIXELS", 1)
    cube = tiny_data[2]
    run = tmp_path / "final"
    shutil.copytree(tiny_run, run)
    result = calibrate_run(run, cube, device="cpu")
    cal, trained = result.calibration, load_trained(tiny_run, "cpu")

    def by_hand(name: str):
        p = predict(trained, CubeSplit(cube, name))
        err = p["pred"].astype(np.float64) - p["truth"]
        return p, err, p["clear"].astype(int) * 3 + p["past_clear"]  # stratum: 3 if clear at t, plus past clear dates

    p, err, stratum = by_hand(VAL)
    ok = np.isfinite(err) & (p["sd"] > 0)
    sd = p["sd"].astype(np.float64)
    seen = 0
    for i, name in enumerate(STRATA):
        sel = ok & (stratum == i)
        if sel.any():
            seen += 1
            assert cal.sd_factors[name] == pytest.approx(np.sqrt(np.mean(err[sel] ** 2) / np.mean(sd[sel] ** 2)), rel=1e-4)
    assert seen > 1 and len(set(cal.sd_factors.values())) > 2  # factors that differ between strata
    sd_factor = np.array([cal.sd_factors.get(s, cal.sd_factors[POOLED]) for s in STRATA])
    f95 = np.array([cal.factors.get(s, cal.factors[POOLED])[cal.levels.index(0.95)] for s in STRATA])
    table = result.table.set_index(["set", "pixels", "sd"])
    for name in TEST_SETS:
        if not len(CubeSplit(cube, name)):
            continue
        p, err, stratum = by_hand(name)
        for where, at in (("clear at t", p["clear"]), ("clouded at t", ~p["clear"])):
            sel = at & np.isfinite(err)
            row = table.loc[(name, where, "recalibrated")]
            deviation = (p["sd"] * f95[stratum].astype(np.float32))[sel]
            assert row["coverage_95"] == pytest.approx(np.mean(np.abs(err[sel]) <= z_of(0.95) * deviation), abs=1e-9)
            assert row["mean_sd"] == pytest.approx(np.mean((p["sd"] * sd_factor[stratum])[sel]), rel=1e-4)
        if name == CLOUDY:
            k = int(np.argmax((~p["clear"]).sum(axis=(1, 2))))
            example = result.example
            assert example["triplet"] == int(CubeSplit(cube, name).index[k])
            np.testing.assert_allclose(example["reference"], p["truth"][k], atol=1e-5)
            np.testing.assert_allclose(example["sd"], p["sd"][k] * sd_factor[stratum[k]], rtol=1e-5)
    assert result.example
