"""Benchmark helpers that feed lai its inputs keep up with lai (the benchmarks themselves are run by hand; one
wrote a manifest form lai no longer reads and failed unseen). No timing here: figures live in benchmarks/."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scene_memory_writes_a_scene_lai_predicts(tmp_path, capsys):
    scene_memory = _benchmark("scene_memory")
    manifest = scene_memory.write_scene(tmp_path, 96)
    scene_memory.child(str(manifest), 64, 16)  # what each measured process runs, on a small scene
    measured = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert measured["peak_mib"] >= measured["before_mib"] > 0 and measured["seconds"] > 0


def test_a_measured_child_reports_its_own_peak_not_its_parents():
    """memory.py and scene_memory.py measure each step in a child process: ``ru_maxrss`` is inherited through exec
    (the child reported the parent's peak: the cube build row of 2026-12-05), VmHWM is the child's own."""
    import resource
    import subprocess
    import sys

    big = np.ones(64 * 2**20 // 8 * 6)  # 384 MiB, touched: this process's peak is at least that
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del big
    code = f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); from _common import peak_rss_mib; print(peak_rss_mib())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert parent >= 384 and 0 < child < parent - 200, (parent, child)


def test_test_time_augmentation_averages_over_what_training_draws():
    """The symmetries the benchmark averages over (lai.augment.drawn_symmetries) are exactly those lai.augment draws
    for the tile's shape, and each prediction goes back to the tile's order."""
    from lai.augment import augment, drawn_symmetries, symmetry_orders

    tta = _benchmark("test_time_augmentation")
    assert tta.drawn_symmetries is drawn_symmetries
    for height, width in ((5, 5), (4, 6)):
        orders = symmetry_orders(height, width)
        picked = drawn_symmetries(height, width)
        assert len(picked) == (8 if height == width else 4)
        x = torch.arange(height * width, dtype=torch.float32).reshape(1, height, width).expand(200, -1, -1)
        drawn = augment({"lai": x}, torch.Generator().manual_seed(0))["lai"].flatten(-2)
        found = {next(i for i in range(8) if torch.equal(sample, x[0].flatten()[orders[i]])) for sample in drawn}
        assert found == set(picked)
        for i in picked:
            assert torch.equal(x[0].flatten()[orders[i]][orders[i].argsort()], x[0].flatten())


def test_data_scaling_plot_draws_one_run_and_refuses_two(tmp_path, monkeypatch):
    """The learning-curve figure draws the committed data-scaling JSONs of one run, and refuses JSONs of two
    cubes (their test sets differ, so their points do not compare)."""
    plot = _benchmark("plot_data_scaling")
    results = BENCHMARKS / "results"
    jsons = [results / "data-scaling-standard-2026-12-05.json", results / "data-scaling-standard-subset-seed1-2026-12-05.json"]
    drawn, save = [], plot.save

    def keep(fig, out):  # the figure kept for the checks below, then saved as usual
        drawn.append(fig)
        return save(fig, out)

    monkeypatch.setattr(plot, "save", keep)
    reports = plot.load(jsons)
    out = plot.plot(reports, tmp_path / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every data point's comparison is a point with its interval in its panel (the run's own model once, from the
    # first JSON); each JSON a validation curve, and the run's own model one point
    from matplotlib.container import ErrorbarContainer

    axes, own = drawn[0].axes, plot.run_model_name(reports[0]["full_train_triplets"])
    for ax, (test_set, other) in zip(axes, plot.PANELS):
        rows = [r for k, rep in enumerate(reports) for r in rep["comparisons"] if r["set"] == test_set
                and r["other"] == other and (r["model"] != own or k == 0)]
        points = [c.lines[0].get_ydata() for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(rows) > 0 and sorted(y for ys in points for y in ys) == sorted(r["diff"] for r in rows)
    curves = [line.get_ydata() for line in axes[-1].get_lines()]
    assert sorted(map(len, curves)) == sorted([1] + [len(rep["points"]) for rep in reports])
    other = json.loads(jsons[1].read_text()) | {"cube": "/elsewhere/cube.nc"}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="different cubes"):
        plot.load([jsons[0], tmp_path / "other.json"])
    pooled = results / "data-scaling-standard-4000-pooled-2026-12-05.json"  # pool_scaling.py's, found by the same glob
    with pytest.raises(SystemExit, match=r"not written by benchmarks/data_scaling\.py.*pooled.*pool_scaling\.py"):
        plot.load([jsons[0], pooled])


def test_data_scaling_extends_training_with_scenes_of_another_seed(tiny_data, tmp_path):
    """--extra appends scenes simulated with another simulate.seed as training triplets (nested, names prefixed,
    the run's own triplets and splits untouched), and refuses a cube that could repeat the run's scenes."""
    import dataclasses

    import h5py
    import numpy as np

    from lai.cube import build_cube
    from lai.facts import TRAIN
    from lai.simulate import simulate

    scaling = _benchmark("data_scaling")
    profile, _, cube = tiny_data
    sim = dataclasses.replace(profile.simulate, seed=1, train_triplets=16, unique_triplets=0)
    simulate(sim, tmp_path / "lnb", progress=False)
    extra = tmp_path / "extra.nc"
    build_cube(tmp_path / "lnb", extra, profile.splits, profile.encoding, progress=False)
    scaling.check_extra(cube, extra)
    with pytest.raises(SystemExit, match="simulate.seed=0 like the run's cube"):
        scaling.check_extra(cube, cube)
    small, large = tmp_path / "small.nc", tmp_path / "large.nc"
    scaling.extended_cube(cube, extra, small, 4, seed=0)
    scaling.extended_cube(cube, extra, large, 10, seed=0)
    with pytest.raises(SystemExit, match="17 more training triplets asked"):
        scaling.extended_cube(cube, extra, tmp_path / "too_many.nc", 17, seed=0)
    with h5py.File(cube) as f, h5py.File(extra) as e, h5py.File(small) as s, h5py.File(large) as g:
        n = len(f["split"])
        np.testing.assert_array_equal(g["split"][:n], f["split"][:])
        np.testing.assert_array_equal(g["lai"][:n], f["lai"][:])
        assert (g["split"][n:].astype(str) == TRAIN).all() and len(g["split"]) == n + 10
        names = [row[0].decode() for row in g["name"][n:]]
        assert all(name.startswith(scaling.EXTRA_PREFIX) for name in names)
        picked = [next(i for i in range(len(e["name"])) if e["name"][i][0].decode() == name.removeprefix(scaling.EXTRA_PREFIX))
                  for name in names]
        for k, i in enumerate(picked):  # every appended array is the extra cube's triplet of that name
            for var in ("s1", "lai", "scl", "lai_true", "date", "transform"):
                np.testing.assert_array_equal(g[var][n + k], e[var][i])
        assert set(s["name"][n:, 0].tolist()) <= set(g["name"][n:, 0].tolist())  # nested: the 4 are among the 10


def test_pool_scaling_pools_trainings_of_one_size_like_seeds(tmp_path):
    """Points pooled as seeds: the RMSE is the mean of theirs, one point twice gives that point's own comparison;
    points of two sizes, or without scores, are refused."""
    import h5py
    import numpy as np
    import pandas as pd

    from lai.facts import TABLE, TEST_SETS
    from lai.metrics import SUMS

    pool = _benchmark("pool_scaling")
    rng = np.random.default_rng(0)

    def per_triplet(scale: float) -> pd.DataFrame:  # 12 triplets of each test set, sums of 100 pixels
        rows = [{"set": s, "triplet": 100 * k + i, "sse": scale * rng.uniform(20, 40), "sum_t": 300.0, "sum_tt": 1000.0,
                 "n": 100.0} for k, s in enumerate(TEST_SETS) for i in range(12)]
        return pd.DataFrame(rows)[["set", "triplet", *SUMS]]

    run = tmp_path / "run"
    (run / "tables").mkdir(parents=True)
    cube = tmp_path / "cube.nc"
    with h5py.File(cube, "w") as f:
        f["split"] = np.array([b"train"] * 5 + [b"val"] * 3, dtype=object)
    (run / "data.json").write_text(json.dumps({"cube": str(cube)}))
    base = pd.concat([per_triplet(1.2).assign(baseline=b) for b in pool.COMPARED_BASELINES])
    base.to_csv(run / "tables" / f"{TABLE.baselines_per_triplet}.csv", index=False)
    per_triplet(0.9).to_csv(run / "tables" / f"{TABLE.oracle_per_triplet}.csv", index=False)
    points = []
    for name, scale in (("train4000-seed0-extra1", 1.0), ("train4000-seed0-extra2-train.seed-1", 1.1),
                        ("train1600-seed0", 1.0), ("train4000-seed1-extra1", 1.0), ("runs", 1.0)):
        (tmp_path / name / "runs" / "final").mkdir(parents=True)
        per_triplet(scale).to_csv(tmp_path / name / pool.FINAL_SCORES, index=False)
        points.append(tmp_path / name)
    (run / pool.FINAL_SCORES).parent.mkdir(parents=True)
    per_triplet(1.0).to_csv(run / pool.FINAL_SCORES, index=False)

    table, n = pool.pooled(run, points[:2])
    assert n == 4000 and set(table["point"]) == {"", points[0].name, points[1].name}
    pooled, alone = table[(table["point"] == "") & ~table["trainings_resampled"]], [table[table["point"] == p.name] for p in points[:2]]
    drawn = table[table["trainings_resampled"]]  # the two-stage lines: the same differences, the trainings drawn too
    assert (pooled["seeds"] == 2).all() and pool.run_model_name(5) in set(pooled["other"])
    np.testing.assert_allclose(pooled["rmse_model"].to_numpy(), (alone[0]["rmse_model"].to_numpy() + alone[1]["rmse_model"].to_numpy()) / 2)
    np.testing.assert_allclose(drawn["diff"].to_numpy(), pooled["diff"].to_numpy())
    assert ((drawn["diff_hi"] - drawn["diff_lo"]).to_numpy() > (pooled["diff_hi"] - pooled["diff_lo"]).to_numpy()).all()
    twice, _ = pool.pooled(run, [points[0], points[0]])
    once = twice[twice["point"] == ""]
    for column in ("rmse_model", "diff", "diff_lo", "diff_hi"):  # one point twice is that point alone, drawn or not
        for resampled in (False, True):
            np.testing.assert_allclose(once[once["trainings_resampled"] == resampled][column].to_numpy(), alone[0][column].to_numpy())
    with pytest.raises(SystemExit, match=r"different numbers of triplets \(\[1600, 4000\]\)"):
        pool.pooled(run, [points[0], points[2]])
    with pytest.raises(SystemExit, match="not a point folder"):
        pool.pooled(run, [points[0], points[4]])
    (points[3] / pool.FINAL_SCORES).unlink()
    with pytest.raises(SystemExit, match="no scores of a trained point"):
        pool.pooled(run, [points[0], points[3]])


def test_calibration_strata_classes_validation_triplets_by_the_test_sets_thresholds():
    """Non-cloudy-like where t-2 and t-1 are clear enough on average (the split's threshold), else cloudy-like where
    cloudy enough, else neither; t itself plays no part."""
    from lai.config import SplitConfig

    classes = _benchmark("calibration_strata").triplet_classes
    cfg = SplitConfig(clear_past_threshold=0.9, cloudy_past_threshold=0.5)
    clear = np.array([[0.95, 0.9, 0.0], [1.0, 0.7, 1.0], [0.2, 0.4, 1.0], [0.5, 0.5, 0.0]], np.float32)
    cloud = np.array([[0.05, 0.1, 1.0], [0.0, 0.3, 0.0], [0.8, 0.3, 0.0], [0.4, 0.5, 1.0]], np.float32)
    assert classes(clear, cloud, np.arange(4), cfg).tolist() == [0, 2, 1, 2]
    assert classes(clear, cloud, np.array([2, 0]), cfg).tolist() == [1, 0]


def test_past_pattern_stack_recovers_known_weights_per_pattern_and_cross_fits_on_the_other_half():
    stack = _benchmark("past_pattern_stack")
    rng = np.random.default_rng(0)
    shape = (8, 6, 6)
    a, b, p = (rng.normal(3, 1, shape) for _ in range(3))
    pattern = rng.choice(list(stack.PATTERNS), shape).astype(np.int8)
    truth = {0: (0.2, 0.3, 0.5), 1: (0.0, 0.1, 0.9), 2: (0.7, 0.3, 0.0), stack.NONE: (0.4, 0.6, 0.0)}
    target = np.zeros(shape)
    for k, (wa, wb, wp) in truth.items():
        target[pattern == k] = (wa * a + wb * b + wp * p)[pattern == k]
    components = {"final": a, "final_gated": b, stack.PERSISTENCE: p}
    weights = stack.fit_weights(components, pattern, target, np.ones(shape, bool))
    for k, expected in truth.items():
        assert np.allclose([weights[k][n] for n in components], expected, atol=1e-9), (k, weights[k])
    assert np.allclose(stack.stacked(components, pattern, weights), target, atol=1e-5)
    base = {"clear": np.ones(shape, bool), "target": target.astype(np.float32), "pattern": pattern}
    assert np.allclose(stack.cross_fitted(components, base), target, atol=1e-5)  # exact weights from either half
    base["target"][::2] += 10.0  # the even triplets' targets off: only weights fitted on them are
    off = stack.cross_fitted(components, base)
    assert np.allclose(off[::2], target[::2], atol=1e-5)  # scored by the odd triplets' (exact) weights
    assert not np.allclose(off[1::2], target[1::2], atol=0.5)  # scored by the even triplets' (off) weights


def test_oracle_headroom_features_are_the_cubes_pixels_in_one_order(tiny_data):
    """Every column of both feature kinds lines up with the targets pixel by pixel: the true past is the cube's true
    LAI of t-2 and t-1, the observed past its clear LAI (missing where clouded), its context lai.model.past_context's."""
    import h5py

    from lai.config import EncodingConfig
    from lai.pixels import scl_lookup

    headroom = _benchmark("oracle_headroom")
    _, _, cube = tiny_data
    enc = EncodingConfig()
    with h5py.File(cube, "r") as f:
        rows = np.arange(min(3, f["lai"].shape[0]))
        x = headroom.features(f, rows, enc)
        truth, obs, scl = f["lai_true"][rows], f["lai"][rows], f["scl"][rows]
    n_pixels = truth[:, 0].size
    assert x["true_past"].shape[0] == x["observed_past"].shape[0] == x["obs"].shape[0] == n_pixels
    np.testing.assert_array_equal(x["true_past"][:, 0], truth[:, 0].reshape(-1))
    np.testing.assert_array_equal(x["oracle"], truth[:, 1].reshape(-1))
    clear = scl_lookup(enc.valid_classes)[scl] & np.isfinite(obs)
    np.testing.assert_array_equal(x["clear"], clear[:, 2].reshape(-1))
    observed_t1 = x["observed_past"][:, 1]
    assert np.isnan(observed_t1[~clear[:, 1].reshape(-1)]).all()
    np.testing.assert_array_equal(observed_t1[clear[:, 1].reshape(-1)], obs[:, 1][clear[:, 1]])
    assert x["observed_past"].shape[1] == 2 + 4 * len(headroom.CONTEXT_SIGMAS) + 6 + 6 + 4


def test_calibration_strata_context_cells_take_the_tiles_clear_past_share_and_fall_back_to_the_pixel_stratum():
    from lai.uncertainty import LEVELS, STRATA, Calibration, strata

    bench = _benchmark("calibration_strata")
    past = np.zeros((2, 4, 4), np.int8)
    past[1] = 2  # tile 0: no clear past (share 0, class 0); tile 1: all clear (share 1, class 2)
    past[1, 0, 0] = 1
    clear = np.ones((2, 4, 4), bool)
    p = {"past_clear": past, "clear": clear, "sd": np.ones((2, 4, 4), np.float32)}
    cells = bench.context_cells(p)
    per = len(bench.CONTEXT_EDGES) + 1
    assert (cells // per == strata(past, clear)).all()
    assert (cells[0] % per == 0).all() and (cells[1] % per == 2).all()  # 31 of 32 halves clear: share 0.97
    fitted = int(cells[1, 1, 1])  # 2 past clear, clear at t, in a clear tile: the one cell with its own factors
    pixel = Calibration({name: [3.0] * len(LEVELS) for name in (*STRATA, "pooled")}, levels=list(LEVELS))
    dev = bench.context_deviation(p, {fitted: [2.0] * len(LEVELS)}, pixel, 0.68)
    assert np.allclose(dev[cells == fitted], 2.0) and np.allclose(dev[cells != fitted], 3.0)


def test_cpu_step_counts_a_steps_flops_in_proportion_to_the_tile_area(monkeypatch):
    """The roofline's FLOPs per sample (forward, loss, backward): every layer works per pixel, so a tile twice
    as wide costs four times as much (the date's small MLP apart)."""
    from types import SimpleNamespace

    from lai.config import EncodingConfig

    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports its neighbour _common as run from there
    step = _benchmark("cpu_step").step_gflop
    small, large = (step(SimpleNamespace(preset="small", row="final", batch=2, tile=t), EncodingConfig()) for t in (16, 32))
    assert 0 < small and large / small == pytest.approx(4, rel=0.01)



def test_stable_pixels_smooths_the_two_date_mean_over_the_pixels_clear_on_both_dates():
    """On a flat field (the two-date mean 2 everywhere) the smoothed mean is the plain one, on the pixels and in the
    order of lai.tables.past_estimator_errors; a gradient is blurred only by its neighbours clear in the past."""
    import xarray as xr

    from lai.tables import past_estimator_errors

    stable_pixels = _benchmark("stable_pixels")
    true = np.full((1, 3, 4, 4), 2.0, np.float32)  # the cube's dtype
    obs = true.copy()
    obs[0, 0] += 0.2
    obs[0, 1] -= 0.2
    scl = np.full((1, 3, 4, 4), 4, np.uint8)
    scl[0, 0, 0, 0] = 3  # a shadow at t-2: not clear in the past, not used by the blur
    obs[0, :2, 0, 0] = 50.0  # would show in its neighbours if the blur read it
    ds = xr.Dataset({"lai_true": (("triplet", "time", "y", "x"), true), "lai": (("triplet", "time", "y", "x"), obs),
                     "scl": (("triplet", "time", "y", "x"), scl)})
    predictions = [xr.Dataset({"lai_pred": (("triplet", "y", "x"), true[:, 2]),
                               "clear_t": (("triplet", "y", "x"), np.ones((1, 4, 4), bool))}, coords={"triplet": [0]})]
    plain = past_estimator_errors(ds, predictions)
    smoothed = stable_pixels.smoothed_errors(ds, predictions[0])
    assert smoothed.shape == plain["two_date_mean"].shape == (15,)
    np.testing.assert_allclose(smoothed, plain["two_date_mean"], atol=1e-6)
    obs[0, :2, :, 2:] += 1.0  # a step in the past observations: the pixels beside it are pulled toward the other side
    assert stable_pixels.smoothed_errors(ds.assign(lai=(("triplet", "time", "y", "x"), obs)), predictions[0]).max() > 0.01


def test_tile_context_seam_ratio_sees_a_step_between_tiles_and_none_inside():
    """Two maps cut from one smooth field: identical to it, the jump across their shared edge is the field's (ratio
    1); each map offset by its own constant (a seam), the ratio across the edge grows while the middle lines' stays."""
    tile_context = _benchmark("tile_context")
    field = np.add.outer(np.arange(8.0), np.arange(16.0)) * 0.1  # a ramp, 8 x 16 pixels
    truth = np.stack([field[:, :8], field[:, 8:]])
    seams = [(0, 1, "x")]
    same = tile_context.seam_ratio(truth.copy(), truth, seams)
    assert same["seam_ratio"] == pytest.approx(1.0) and same["middle_line_ratio"] == pytest.approx(1.0)
    stepped = tile_context.seam_ratio(truth + np.array([0.0, 0.5])[:, None, None], truth, seams)
    assert stepped["seam_ratio"] == pytest.approx(0.6 / 0.1) and stepped["middle_line_ratio"] == pytest.approx(1.0)
    band = tile_context.border_band((8, 8), 2, seams, 2)
    assert band[0, :, 6:].all() and band[1, :, :2].all() and band.sum() == 2 * 8 * 2
