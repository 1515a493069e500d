"""Metrics: pooled RMSE and R2 on masked pixels, bootstrap intervals and paired differences over triplets."""
import numpy as np
import pytest

from lai.metrics import pooled


def test_metrics_match_hand_computation():
    pred = np.array([[1.0, 2.0, 9.0], [3.0, 5.0, 0.0]])
    target = np.array([[1.5, 2.0, np.nan], [2.0, 4.0, 7.0]])
    mask = np.array([[True, True, False], [True, True, False]])
    # kept pairs: (1, 1.5), (2, 2), (3, 2), (5, 4)
    errs = np.array([-0.5, 0.0, 1.0, 1.0])
    t = np.array([1.5, 2.0, 2.0, 4.0])
    rmse = np.sqrt(np.mean(errs**2))
    r2 = 1 - np.sum(errs**2) / np.sum((t - t.mean()) ** 2)
    got = pooled(pred, target, mask)
    assert got["rmse"] == pytest.approx(rmse)
    assert got["rmse_norm"] == pytest.approx(rmse / 5)  # the paper's LAI/5, whatever encoding.lai_scale
    assert got["r2"] == pytest.approx(r2)
    assert got["n_pixels"] == 4


def test_scores_of_a_set_match_hand_computation_on_each_pixel_rule():
    """Scores: RMSE on pixels clear at t against the observation, the strict rule's on its own pixels, and against
    the truth on the clear and the clouded pixels, each on its own mask and reference."""
    from lai.metrics import Scores

    pred = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    target = np.array([[[2.0, 2.0], [3.0, 0.0]]])  # the observation
    truth = np.array([[[1.0, 1.0], [4.0, 6.0]]])
    clear = np.array([[[True, True], [True, False]]])
    strict = np.array([[[True, False], [False, True]]])  # its own rule: (1, 1) strict though not clear by the other
    s = Scores()
    s.update(pred, target, clear, strict, truth)
    got = s.result()
    assert got["rmse"] == pytest.approx(np.sqrt((1 + 0 + 0) / 3)) and got["n_pixels"] == 3
    assert got["rmse_strict"] == pytest.approx(np.sqrt((1 + 16) / 2)) and got["n_pixels_strict"] == 2
    assert got["truth_rmse_clear"] == pytest.approx(np.sqrt((0 + 1 + 1) / 3))
    assert got["truth_rmse_cloudy"] == pytest.approx(2.0) and got["cloudy_pixels"] == 1


def test_bootstrap_over_triplets_and_paired_differences():
    from lai.metrics import BOOTSTRAP_SAMPLES, bootstrap_intervals, paired_difference, resample_weights, rmse_r2, triplet_sums

    rng = np.random.default_rng(0)
    target = rng.uniform(0, 6, (60, 8, 8))
    mask = rng.random((60, 8, 8)) > 0.2
    good = target + rng.normal(0, 0.3, target.shape)
    bad = target + rng.normal(0, 0.6, target.shape)
    a, b = triplet_sums(good, target, mask), triplet_sums(bad, target, mask)
    assert rmse_r2(a.sum(0))[0] == pytest.approx(pooled(good, target, mask)["rmse"])
    ci = bootstrap_intervals(a)
    assert ci["rmse_lo"] < 0.3 < ci["rmse_hi"] and ci["r2_lo"] < pooled(good, target, mask)["r2"] < ci["r2_hi"]
    # the central 95 % of the RMSE and R2 over resampled triplets, by hand with the same resamples
    rmse, r2 = rmse_r2(resample_weights(len(a), BOOTSTRAP_SAMPLES, 0) @ a)
    assert (ci["rmse_lo"], ci["rmse_hi"]) == pytest.approx(tuple(np.quantile(rmse, [0.025, 0.975])))
    assert (ci["r2_lo"], ci["r2_hi"]) == pytest.approx(tuple(np.quantile(r2, [0.025, 0.975])))
    better = paired_difference(a, b)
    assert better["resolved"] and better["diff_hi"] < 0 and better["diff"] == pytest.approx(
        pooled(good, target, mask)["rmse"] - pooled(bad, target, mask)["rmse"])
    close = paired_difference(a, triplet_sums(good + rng.normal(0, 0.01, target.shape), target, mask))
    assert not close["resolved"] and close["diff_lo"] < 0 < close["diff_hi"]
    with pytest.raises(ValueError, match="same triplets"):
        paired_difference(a, b[:-1])


def test_paired_difference_pools_seeds_on_the_same_resamples():
    """Several seeds of a model: the difference is the mean of the seeds' RMSEs minus the other's, and each
    resample of the triplets applies to every seed (by hand with the same weights)."""
    from lai.metrics import paired_difference, resample_weights, rmse_r2, triplet_sums

    rng = np.random.default_rng(1)
    target = rng.uniform(0, 6, (40, 8, 8))
    mask = np.ones(target.shape, bool)
    seeds = np.stack([triplet_sums(target + rng.normal(0, s, target.shape), target, mask) for s in (0.3, 0.5)])
    other = triplet_sums(target + rng.normal(0, 0.45, target.shape), target, mask)
    got = paired_difference(seeds, other, samples=200, seed=3)
    mean = (rmse_r2(seeds[0].sum(0))[0] + rmse_r2(seeds[1].sum(0))[0]) / 2
    assert got["diff"] == pytest.approx(mean - rmse_r2(other.sum(0))[0])
    w = resample_weights(40, 200, 3)
    by_hand = (rmse_r2(w @ seeds[0])[0] + rmse_r2(w @ seeds[1])[0]) / 2 - rmse_r2(w @ other)[0]
    assert (got["diff_lo"], got["diff_hi"]) == pytest.approx(tuple(np.quantile(by_hand, [0.025, 0.975])))
    # one seed: the same as without the seed axis; seeds on different triplets are refused
    assert paired_difference(seeds[:1], other) == paired_difference(seeds[0], other)
    with pytest.raises(ValueError, match="same triplets"):
        paired_difference(seeds[:, :-1], other)


def test_ensemble_comparisons_turn_the_seeds_side_round():
    """The ensemble against its seeds (validation and test sets) says ensemble minus seeds, as every other line
    does, with the interval turned round; the other lines are :func:`lai.tables.comparisons` unchanged."""
    import pandas as pd

    from lai.metrics import SUMS, paired_difference, triplet_sums
    from lai.tables import comparisons, ensemble_comparisons

    rng = np.random.default_rng(4)
    sets = ("val", "non_cloudy", "cloudy", "unique")
    targets = {s: rng.uniform(0, 6, (30, 8, 8)) for s in sets}  # every model scored on the same pixels

    def frame(noise):
        rows = []
        for s in sets:
            target = targets[s]
            sums = triplet_sums(target + rng.normal(0, noise, target.shape), target, np.ones(target.shape, bool))
            rows.append(pd.DataFrame(sums, columns=list(SUMS)).assign(set=s, triplet=np.arange(30)))
        return pd.concat(rows, ignore_index=True)

    ensemble, seeds, other = frame(0.3), [frame(0.4), frame(0.45)], frame(0.6)
    table = ensemble_comparisons(ensemble, seeds, {"persistence": other[other["set"] != "val"]}, "final")
    vs_seeds = table[table["other"] == "final seeds"].set_index("set")
    assert list(vs_seeds.index) == list(sets) and (vs_seeds["verdict"] == "better").all()
    for s in sets:
        pick = [f[f["set"] == s][list(SUMS)].to_numpy() for f in (ensemble, *seeds)]
        turned = paired_difference(np.stack(pick[1:]), pick[0])
        row = vs_seeds.loc[s]
        assert (row["diff"], row["diff_lo"], row["diff_hi"]) == pytest.approx(
            (-turned["diff"], -turned["diff_hi"], -turned["diff_lo"]))
        assert row["rmse_model"] - row["rmse_other"] == pytest.approx(row["diff"]) and row["model"] == "final ensemble"
    rest = table[table["other"] == "persistence"].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, comparisons(ensemble, {"persistence": other[other["set"] != "val"]},
                                                    "final ensemble"), check_dtype=False)



def test_a_comparison_on_other_pixels_of_the_same_triplets_is_refused():
    """Pairing checks the pixels (their count and targets' sum per triplet), not only the triplet ids."""
    import pandas as pd

    from lai.metrics import SUMS, triplet_sums
    from lai.tables import comparisons

    rng = np.random.default_rng(5)
    target = rng.uniform(0, 6, (20, 8, 8))
    mask = np.ones(target.shape, bool)

    def frame(valid):
        sums = triplet_sums(target + rng.normal(0, 0.3, target.shape), target, valid)
        return pd.DataFrame(sums, columns=list(SUMS)).assign(set="non_cloudy", triplet=np.arange(20))

    assert comparisons(frame(mask), {"persistence": frame(mask)}, "final", sets=("non_cloudy",))["verdict"].iloc[0]
    fewer = mask.copy()
    fewer[7, 0, 0] = False  # one pixel of triplet 7 left out
    with pytest.raises(ValueError, match="final and persistence were scored on different pixels of non_cloudy triplet 7"):
        comparisons(frame(mask), {"persistence": frame(fewer)}, "final", sets=("non_cloudy",))


def test_drawing_the_trainings_too_widens_the_interval_by_their_spread():
    """Trainings that differ (e.g. trained on other data) leave the fixed-training interval narrow; the two-stage
    bootstrap draws them too. Trainings that agree give the same interval either way."""
    rng = np.random.default_rng(6)
    target = rng.uniform(0, 6, (60, 8, 8))
    mask = np.ones(target.shape, bool)
    from lai.metrics import paired_difference, triplet_sums

    def sums(noise):
        return triplet_sums(target + rng.normal(0, noise, target.shape), target, mask)

    other = sums(0.5)
    apart = np.stack([sums(n) for n in (0.35, 0.45, 0.5, 0.6)])  # trainings that differ by more than triplets show
    alike = np.stack([sums(0.45)] * 4)  # four copies of one training: drawing them changes nothing
    fixed, drawn = paired_difference(apart, other), paired_difference(apart, other, resample_trainings=True)
    assert fixed["diff"] == drawn["diff"]
    assert (drawn["diff_hi"] - drawn["diff_lo"]) > 2 * (fixed["diff_hi"] - fixed["diff_lo"])
    fixed, drawn = paired_difference(alike, other), paired_difference(alike, other, resample_trainings=True)
    assert (drawn["diff_lo"], drawn["diff_hi"]) == pytest.approx((fixed["diff_lo"], fixed["diff_hi"]))
    assert paired_difference(apart[:1], other, resample_trainings=True) == paired_difference(apart[:1], other)
    for seeds in (2, 3):  # the standard and paper profiles' three seeds are drawn too
        fixed = paired_difference(apart[:seeds], other)
        drawn = paired_difference(apart[:seeds], other, resample_trainings=True)
        assert (drawn["diff_hi"] - drawn["diff_lo"]) > 1.5 * (fixed["diff_hi"] - fixed["diff_lo"]), seeds
    # a run's comparisons draw the seeds by default, and say so
    import pandas as pd

    from lai.metrics import SUMS
    from lai.tables import comparisons

    def frame(s):
        return pd.DataFrame(s, columns=list(SUMS)).assign(set="non_cloudy", triplet=range(len(s)))

    seeds = comparisons([frame(s) for s in apart], {"persistence": frame(other)}, sets=("non_cloudy",)).iloc[0]
    two_stage = paired_difference(apart, other, resample_trainings=True)
    assert bool(seeds["trainings_resampled"])
    assert [seeds["diff_lo"], seeds["diff_hi"]] == [two_stage["diff_lo"], two_stage["diff_hi"]]
    one = comparisons(frame(apart[0]), {"persistence": frame(other)}, sets=("non_cloudy",)).iloc[0]
    assert not bool(one["trainings_resampled"])
    broken = apart.copy()
    broken[2, 17, 0] = np.nan  # one NaN prediction on a scored pixel of seed 2, triplet 17: no "not resolved"
    with pytest.raises(ValueError, match="final has a prediction that is not a finite number on a scored pixel of "
                                         "non_cloudy triplet 17"):
        comparisons([frame(s) for s in broken], {"persistence": frame(other)}, sets=("non_cloudy",))


def test_table1_wide_and_the_extras_table_take_each_number_from_its_own_column():
    """Sentinel values in every column: the paper layout shows ours beside the paper's, never one for the other; a
    baseline "without the LAI history" row carries that baseline's numbers, not the full one's."""
    import pandas as pd

    from lai.facts import EXTRA_BASELINES, ROWS, SET_TITLES, TEST_SETS, model_title
    from lai.metrics import SUMS
    from lai.tables import extras_table, table1_wide

    long = pd.DataFrame([{"row": r, "set": s, "input": spec.label, "architecture": spec.architecture,
                          "rmse_norm": 0.1 + i, "paper_rmse": 0.2 + i, "r2": 0.3 + i, "paper_r2": 0.4 + i}
                         for i, (r, spec) in enumerate(ROWS.items()) for s in TEST_SETS])
    wide = table1_wide(long)
    for i, spec in enumerate(ROWS.values()):
        title = SET_TITLES[TEST_SETS[0]]
        line = wide.loc[model_title(spec.label, spec.architecture)]
        assert [line[(title, c)] for c in ("RMSE", "RMSE paper", "R2", "R2 paper")] == pytest.approx(
            [0.1 + i, 0.2 + i, 0.3 + i, 0.4 + i])
    name, base = next(iter(EXTRA_BASELINES.items()))
    baselines = pd.DataFrame([{"baseline": b, "set": s, "triplets": 2, "rmse": rmse}
                              for b, rmse in ((base, 0.5), (name, 0.9)) for s in TEST_SETS])
    sums = pd.DataFrame([{"set": s, "triplet": k, **dict(zip(SUMS, (1.0 + k, 3.0, 5.0, 4.0)))}
                         for s in TEST_SETS for k in range(2)])
    table = extras_table({}, baselines, sums, {name: sums})
    assert list(table["name"].unique()) == [name] and (table["rmse"] == 0.9).all()


def test_too_few_scored_triplets_give_no_interval_and_no_verdict():
    """One triplet with clear pixels among empty ones gave an interval of zero width, "resolved" (a real-data run
    whose held-out area was clouded); below lai.facts.MIN_SCORED_TRIPLETS there is no interval and no verdict."""
    from lai.facts import MIN_SCORED_TRIPLETS
    from lai.metrics import bootstrap_intervals, paired_difference, scored_triplets, triplet_sums

    rng = np.random.default_rng(3)
    target = rng.uniform(0, 6, (30, 8, 8))
    good, bad = target + rng.normal(0, 0.3, target.shape), target + rng.normal(0, 1.5, target.shape)
    for scored in (1, MIN_SCORED_TRIPLETS - 1, MIN_SCORED_TRIPLETS):
        mask = np.zeros(target.shape, bool)
        mask[:scored] = True  # the others hold no scored pixel
        a, b = triplet_sums(good, target, mask), triplet_sums(bad, target, mask)
        assert scored_triplets(a) == scored == scored_triplets(np.stack([a, a]))
        diff, ci = paired_difference(a, b), bootstrap_intervals(a)
        assert diff["scored_triplets"] == scored and diff["diff"] < -0.5  # the point difference is still given
        if scored < MIN_SCORED_TRIPLETS:
            assert not diff["resolved"] and np.isnan([diff["diff_lo"], diff["diff_hi"], ci["rmse_lo"]]).all()
        else:
            assert diff["resolved"] and diff["diff_lo"] < diff["diff_hi"] < 0 and ci["rmse_lo"] < ci["rmse_hi"]
    assert scored_triplets(np.zeros((0, 4))) == 0


def test_evaluate_run_scores_its_saved_predictions_on_each_rule_and_triplet(tiny_data, tiny_run, tmp_path):
    """metrics.csv and per_tile.csv recomputed from predictions/<set>.nc and the cube: the RMSE on the pixels clear at
    t against the observation at t, the strict rule's on SCL 4-6 at t (not at t-1) with an observation, and each
    triplet's RMSE on its own pixels clear at t."""
    import shutil

    import h5py
    import pandas as pd
    import xarray as xr

    from lai.evaluate import evaluate_run

    cube = tiny_data[2]
    run = tmp_path / "final"
    shutil.copytree(tiny_run, run)
    metrics = evaluate_run(run, cube, device="cpu").set_index("set")
    tiles = pd.read_csv(run / "per_tile.csv")
    with h5py.File(cube, "r") as f:
        lai, scl = f["lai"][:, 2].astype(np.float64), f["scl"][:, 1:]
    checked = 0
    for name in metrics.index:
        path = run / "predictions" / f"{name}.nc"
        if not path.exists():
            continue
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            pred, clear, idx = ds["lai_pred"].values.astype(np.float64), ds["clear_t"].values.astype(bool), ds["triplet"].values
        obs, strict = lai[idx], np.isin(scl[idx, 1], (4, 5, 6)) & np.isfinite(lai[idx])
        assert (strict != np.isin(scl[idx, 0], (4, 5, 6)) & np.isfinite(obs)).any()  # t-1 would score other pixels
        row = metrics.loc[name]
        assert row["rmse"] == pytest.approx(np.sqrt(np.mean((pred - obs)[clear] ** 2)), rel=1e-5)
        assert row["n_pixels"] == clear.sum() and row["n_pixels_strict"] == strict.sum()
        assert row["rmse_strict"] == pytest.approx(np.sqrt(np.mean((pred - obs)[strict] ** 2)), rel=1e-5)
        per = tiles[tiles["set"] == name].set_index("triplet").loc[idx]
        with np.errstate(invalid="ignore"):
            by_triplet = np.sqrt(np.where(clear, (pred - obs) ** 2, 0).sum((1, 2)) / clear.sum((1, 2)))
        np.testing.assert_allclose(per["rmse"].to_numpy(), by_triplet, rtol=1e-5)
        assert (per["n_pixels"].to_numpy() == clear.sum((1, 2))).all()
        checked += 1
    assert checked >= 2


def test_the_spread_over_seeds_of_each_set_by_hand():
    """Two seeds scoring RMSE 1.0 and 2.0 (R2 0.5 and 0.7) on the cloudy set: mean 1.5, sample standard deviation
    0.7071 (ddof 1), min 1, max 2; the validation split is no test set and left out."""
    import pandas as pd

    from lai.tables import seed_spread

    runs = {f"final_seed{k}": pd.DataFrame({"set": ["cloudy", "val"], "rmse": [rmse, 9.0], "r2": [r2, 0.0],
                                             "triplets": [5, 5]}) for k, (rmse, r2) in enumerate(((1.0, 0.5), (2.0, 0.7)))}
    got = seed_spread(runs).set_index("set")
    assert list(got.index) == ["cloudy"]
    row = got.loc["cloudy"]
    assert row["seeds"] == 2 and (row["rmse_mean"], row["rmse_min"], row["rmse_max"]) == pytest.approx((1.5, 1.0, 2.0))
    assert row["rmse_std"] == pytest.approx(np.sqrt(0.5)) and row["r2_std"] == pytest.approx(np.sqrt(0.02))
    assert row["r2_mean"] == pytest.approx(0.6) and row["note"] == ""
