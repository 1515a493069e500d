"""Figures and the PDF report on a fake run folder built from small synthetic artefacts.

Nothing here trains a model or simulates data with lai.simulate: a small xarray
cube with the cube's variable names, prediction datasets, CSV tables and a
provenance record are written by hand, as the pipeline's notebooks would.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from lai import facts, figures
from lai.config import EncodingConfig, Profile
from lai.facts import PAPER_TABLE1, REPORT_DATA_FILE, ROWS
from lai.report.text import plain
from lai.tables import table1, with_floor

GIT_REV = "0123456789abcdef0123456789abcdef01234567"
SPLITS = ("train", "val", "non_cloudy", "cloudy", "unique", "buffer")


# --------------------------------------------------------------------------- synthetic artefacts


def _smooth(rng, n, size, scale=6):
    """Smooth random fields (n, size, size) in 0..1, made of a few Gaussian blobs."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size))
    for k in range(n):
        for _ in range(4):
            cy, cx = rng.uniform(0, size, 2)
            out[k] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / scale) ** 2))
    return out / out.max(axis=(1, 2), keepdims=True)


def make_cube(n: int = 24, size: int = 32, seed: int = 0, empty_splits=("buffer",), truth: bool = True) -> xr.Dataset:
    """A small cube in lai's schema: s1 (dB), lai, scl, lai_true and the coordinates, with clouds."""
    rng = np.random.default_rng(seed)
    base = 0.5 + 5.0 * _smooth(rng, n, size)
    season = rng.uniform(0.7, 1.1, (n, 3))
    lai = (base[:, None] * season[:, :, None, None] + rng.normal(0, 0.2, (n, 3, size, size))).clip(0, 8)
    s1 = np.empty((n, 3, 2, size, size))
    s1[:, :, 0] = -16 + 1.0 * lai + rng.normal(0, 1.5, lai.shape)
    s1[:, :, 1] = -24 + 1.6 * lai + rng.normal(0, 1.5, lai.shape)
    scl = np.full((n, 3, size, size), 4, np.uint8)
    scl[_smooth(rng, n * 3, size, 3).reshape(n, 3, size, size) < 0.15] = 5
    cloud_amount = rng.uniform(0, 1, (n, 3)) ** 2
    clouds = _smooth(rng, n * 3, size, 4).reshape(n, 3, size, size)
    for i in range(n):
        for t in range(3):
            cov = clouds[i, t] > 1 - cloud_amount[i, t]
            scl[i, t][cov] = rng.choice([8, 9, 10], p=[0.3, 0.6, 0.1])
            shadow = np.roll(cov, 3, axis=1) & ~cov
            scl[i, t][shadow] = 3
    scl[0, 1, :3, :] = 0  # a strip of no data
    lai[0, 1, :3, :] = np.nan
    split_names = [s for s in SPLITS if s not in empty_splits]
    split = np.array([split_names[i % len(split_names)] for i in range(n)], dtype=object)
    # the cloudy split: cloudy past dates, partly cloudy target
    cloudy = split == "cloudy"
    scl[cloudy, :2][:, :, : size // 2] = 9
    start = np.datetime64("2019-01-05") + (np.arange(n) * 23) % 700
    dates = np.stack([start, start + 9, start + 18], axis=1).astype("datetime64[ns]")
    valid = np.isin(scl, [2, 3, 4, 5, 6]) & np.isfinite(lai)
    ds = xr.Dataset(
        {
            "s1": (("triplet", "time", "pol", "y", "x"), s1.astype(np.float32)),
            "lai": (("triplet", "time", "y", "x"), lai.astype(np.float32)),
            "scl": (("triplet", "time", "y", "x"), scl),
        },
        coords={
            "split": ("triplet", split.astype(str)),
            "country": ("triplet", np.where(split == "unique", "CZECHIA", "SPAIN")),
            "area": ("triplet", np.where(split == "unique", "VYSOCINA", "BADAJOZ")),
            "date": (("triplet", "time"), dates),
            "date_estimated": ("time", np.array([0, 1, 0], np.uint8)),
            "clear_fraction": (("triplet", "time"), valid.mean(axis=(2, 3)).astype(np.float32)),
            "cloud_fraction": (("triplet", "time"), np.isin(scl, [8, 9, 10]).mean(axis=(2, 3)).astype(np.float32)),
        },
        attrs={"fingerprint": "f" * 64},
    )
    if truth:
        ds["lai_true"] = (("triplet", "time", "y", "x"), (base[:, None] * season[:, :, None, None]).astype(np.float32))
    return ds


def make_predictions(ds: xr.Dataset, seed: int = 1) -> dict[str, xr.Dataset]:
    """Prediction datasets per test set, as lai.evaluate saves them (an empty set included)."""
    rng = np.random.default_rng(seed)
    split = ds["split"].values.astype(str)
    out = {}
    for name in ("non_cloudy", "cloudy", "unique"):
        idx = np.flatnonzero(split == name)
        ref = ds["lai_true"].values[idx, 2] if "lai_true" in ds else ds["lai"].values[idx, 2]
        noise = 0.3 if name == "non_cloudy" else 0.7
        pred = np.nan_to_num(ref) + rng.normal(0, noise, ref.shape)
        scl_t = ds["scl"].values[idx, 2]
        clear = np.isin(scl_t, [2, 3, 4, 5, 6]) & np.isfinite(ds["lai"].values[idx, 2])
        out[name] = xr.Dataset(
            {"lai_pred": (("triplet", "y", "x"), pred.astype(np.float32)),
             "clear_t": (("triplet", "y", "x"), clear.astype(np.uint8))},
            coords={"triplet": idx}, attrs={"split": name},
        )
    return out


def make_tables(rng=None) -> dict[str, pd.DataFrame]:
    rng = rng or np.random.default_rng(2)
    metrics = []
    for row, per_set in PAPER_TABLE1.items():
        for s, (rmse_norm, r2) in per_set.items():
            if row == "s1" and s == "unique":
                continue  # a missing value must show as a dash
            ours = rmse_norm * rng.uniform(0.8, 1.3)
            metrics.append({"row": row, "set": s, "rmse": ours * 5, "rmse_lo": ours * 4.5, "rmse_hi": ours * 5.5,
                            "rmse_norm": ours, "r2": r2 - 0.05, "r2_lo": r2 - 0.1, "r2_hi": r2,
                            "n_pixels": int(rng.integers(1000, 90000)), "rmse_strict": ours * 4.8,
                            "truth_rmse_clear": ours * 4})
    floor = pd.DataFrame({"set": ["non_cloudy", "cloudy", "unique"], "floor_rmse": [0.42, 0.32, 0.38],
                          "pixels": 1000, "floor_rmse_strict": [0.3, 0.25, 0.28], "pixels_strict": 800,
                          "oracle_rmse": [0.61, 0.55, 0.58], "true_change_rmse": [0.44, 0.41, 0.43],
                          "model_rmse": [0.6, 0.5, 0.7], "model_floor_ratio": [1.43, 1.56, 1.84],
                          "model_oracle_ratio": [0.98, 0.91, 1.21], "oracle_diff": [-0.01, -0.05, 0.12],
                          "oracle_diff_lo": [-0.04, -0.08, 0.05], "oracle_diff_hi": [-0.00015, -0.02, 0.2],
                          "oracle_verdict": ["better", "better", "worse"]})
    t1 = table1(pd.DataFrame(metrics), floor)
    baselines = []
    for b, r2s in (("MLR", (0.45, 0.2, 0.3)), ("RF", (0.55, 0.25, 0.35)), ("persistence", (0.93, -0.4, 0.8)),
                   ("extrapolation", (0.7, -2.7, 0.5))):
        for s, r2 in zip(("non_cloudy", "cloudy", "unique"), r2s):
            baselines.append({"baseline": b, "set": s, "triplets": 4, "rmse": (1 - r2) ** 0.5 * 1.2,
                              "rmse_norm": (1 - r2) ** 0.5 * 1.2 / 5, "r2": r2, "n_pixels": 4000,
                              "truth_rmse_cloudy": 1.1 + rng.uniform(0, 0.5), "cloudy_pixels": 300,
                              "truth_rmse_clear": (1 - r2) ** 0.5})
    final = t1[t1["row"] == "final"][["set", "rmse", "rmse_norm", "r2", "n_pixels"]].assign(triplets=4,
                                                                                           truth_rmse_cloudy=0.9)
    splits = pd.DataFrame({"split": list(SPLITS[:5]), "triplets": [40, 5, 4, 4, 4], "regions": [4, 3, 2, 2, 2],
                           "clear_past": [0.8, 0.8, 0.97, 0.3, 0.8], "cloud_past": [0.15, 0.1, 0.01, 0.65, 0.12],
                           "clear_t": [0.8, 0.85, 0.9, 0.7, 0.8]})
    training = pd.DataFrame({"row": ["s1", "s1_masks", "s1_masks_seas", "s2_masks", "s2_masks_seas", "final"],
                             "epochs": [3] * 6, "seconds": [12.3, 13.1, 14.0, 9.5, 9.9, 30.2],
                             "samples_per_s": [55.2, 54.1, 52.3, 70.1, 69.0, 31.4],
                             "val_rmse": [1.2, 0.9, 0.85, 0.6, 0.55, 0.5]})
    training = training.assign(best_epoch=[3, 3, 2, 1, 2, 3], best_val_rmse=training["val_rmse"], max_epochs=40,
                               stopped_epoch=3, flat_epochs=[0, 0, 1, 2, 1, 0],
                               converged=[False, False, True, True, True, False])
    comparisons = pd.DataFrame([{"set": s, "model": "final", "other": o, "triplets": 4, "rmse_model": 0.6,
                                 "rmse_other": 0.6 - d, "diff": d, "diff_lo": d - 0.05, "diff_hi": d + 0.05,
                                 "resolved": abs(d) > 0.05, "verdict": v}
                                for s in ("non_cloudy", "cloudy", "unique")
                                for o, d, v in (("persistence", -0.2, "better"), ("MLR", 0.01, "not resolved"),
                                                ("RF", 0.1, "worse"), ("s2_masks_seas", 0.0, "not resolved"))])
    seeds = pd.DataFrame({"set": ["non_cloudy", "cloudy", "unique"], "seeds": 1, "rmse_mean": [0.6, 0.7, 0.8],
                          "rmse_std": np.nan, "rmse_min": [0.6, 0.7, 0.8], "rmse_max": [0.6, 0.7, 0.8],
                          "r2_mean": [0.8, 0.6, 0.7], "r2_std": np.nan})
    extras = pd.DataFrame([{"name": "final_residual", "title": "Final, residual_x", "kind": "model", "set": s,
                            "rmse": 0.7, "rmse_lo": 0.6, "rmse_hi": 0.8, "r2": 0.8, "r2_lo": 0.7, "r2_hi": 0.9,
                            "diff": d, "diff_lo": d - 0.1, "diff_hi": d + 0.1, "verdict": "not resolved"}
                           for s, d in (("non_cloudy", -0.05), ("cloudy", np.nan))])
    calibration, reliability = make_calibration()
    return {"table1": t1, "baselines": with_floor(pd.DataFrame(baselines), floor), "final_metrics": final, "extras": extras,
            "splits": splits, "training": training, "noise_floor": floor, "comparisons": comparisons, "seeds": seeds,
            "calibration": calibration, "reliability": reliability,
            "calibration_transfer": pd.DataFrame([
                {"held_out": r, "triplets": 10, "pixels": w, "against": "truth", "n_pixels": n, "coverage_68": c68,
                 "coverage_95": c95}
                for r, w, n, c68, c95 in (("A_X", "clear at t", 900, 0.796, 0.995), ("A_X", "clouded at t", 100, 0.73, 0.971),
                                          ("B_Y", "clear at t", 800, 0.595, 0.89), ("B_Y", "clouded at t", 0, np.nan, np.nan))]),
            "large_errors": pd.DataFrame({"set": ["non_cloudy", "cloudy"], "pixels": [1000, 800], "large": [20, 30],
                                          "large_share": [0.02, 0.0375], "no_clear_past_share": [0.0, 0.672],
                                          "pred_mean": [3.5, 2.49], "obs_mean": [4.77, 4.72], "under_share": [0.9, 0.8],
                                          "top_share": [0.25, 0.22],
                                          "top_triplets": ["1 2", "7"]}),
            "preprocessing_snap_lai": pd.DataFrame([{"patch": "S2A_patch_7_8", "triplets": 1, "LAI p50": 1.25,
                                                     "LAI clipped to [0, 8]": 40}]),
            "oracle_gap": pd.DataFrame([{"set": s, "change": c, "pixels": n, "share": n / 1000, "model_rmse": m,
                                         "oracle_rmse": o, "model_mse_part": n / 1000 * m**2, "oracle_mse_part": n / 1000 * o**2,
                                         "change_slope": 0.21 if c == "all" else np.nan, "seeds": 1}
                                        for s in ("non_cloudy", "cloudy", "unique")
                                        for c, n, m, o in (("< 0.1", 675, 0.222, 0.038), ("0.1-0.3", 152, 0.315, 0.186),
                                                           ("0.3-0.6", 100, 0.437, 0.44), ("≥ 0.6", 73, 0.956, 1.052),
                                                           ("all", 1000, 0.366, 0.325))]),
            "past_estimators": pd.DataFrame([{"set": s, "change": c, "pixels": n, "share": n / 1000, "model_rmse": m,
                                              "last_observation_rmse": last, "two_date_mean_rmse": two, "oracle_rmse": o,
                                              "stability_known_rmse": known, "seeds": 1}
                                             for s in ("non_cloudy", "cloudy", "unique")
                                             for c, n, m, last, two, o, known in (
                                                 ("< 0.1", 670, 0.215, 0.226, 0.170, 0.038, 0.170),
                                                 ("0.1-0.3", 150, 0.303, 0.328, 0.380, 0.187, 0.303),
                                                 ("0.3-0.6", 100, 0.431, 0.516, 0.698, 0.440, 0.431),
                                                 ("≥ 0.6", 80, 0.960, 1.120, 1.292, 1.049, 0.960),
                                                 ("all", 1000, 0.367, 0.417, 0.468, 0.332, 0.351))])}


def make_calibration() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration and reliability tables of a spread too narrow by 1.5 (raw) and recalibrated, per test set."""
    from lai.uncertainty import NOMINAL, calibration_rows, reliability

    rng = np.random.default_rng(0)
    sd = rng.uniform(0.2, 1.0, (40, 10, 10))  # 40 triplets of 10x10 pixels: intervals over resampled triplets
    err = rng.normal(0, 1.5 * sd)
    clear = rng.random(sd.shape) < 0.6
    rows, curves = [], []
    for s in ("non_cloudy", "cloudy", "unique"):
        rows += calibration_rows(s, err, sd, {lv: 1.5 * sd for lv in NOMINAL}, 1.5 * sd, clear, "truth")
        curves += [{**r, "sd": v} for v, x in (("raw", sd), ("recalibrated", 1.5 * sd)) for r in reliability(s, err, x)]
    return pd.DataFrame(rows), pd.DataFrame(curves)


def uncertainty_example() -> dict:
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 5, (16, 16))
    return {"set": "cloudy", "triplet": 3, "pred": pred, "sd": rng.uniform(0.2, 1, (16, 16)),
            "clear": rng.random((16, 16)) < 0.5, "reference": pred + rng.normal(0, 0.5, (16, 16)), "against": "truth"}


def make_histories(epochs: int = 6) -> dict[str, pd.DataFrame]:
    out = {}
    for k, row in enumerate(ROWS):  # every training stage, as notebook 03 trains them
        e = np.arange(epochs)
        lr = np.where(e < epochs // 3, 1e-3, np.where(e < 2 * epochs // 3, 2e-4, 4e-5))
        out[row] = pd.DataFrame({"epoch": e, "lr": lr, "train_loss": 0.05 / (1 + e) * (1 + k),
                                 "val_mse": 0.04 / (1 + e), "val_rmse": 1.0 / (1 + 0.3 * e) - 0.1 * k,
                                 "seconds": 2.0, "samples_per_s": 50.0})
    return out


def render_figures(folder: Path, dpi: int = 60) -> Path:
    """Every figure of a run (``facts.FIGURE_NAMES``) from the synthetic cube, written to ``folder``."""
    ds = make_cube()
    preds = make_predictions(ds)
    tabs = make_tables()
    p, t, m = figures.prediction_arrays(ds, preds)
    makers = {
        "sample_maps": lambda: figures.sample_maps(ds, [0, 5]),
        "cloud_statistics": lambda: figures.cloud_statistics(ds),
        "seasonality_encoding": lambda: figures.seasonality_encoding(EncodingConfig(), ds),
        "s1_vs_lai": lambda: figures.s1_vs_lai(ds, n_pixels=5000),
        "learning_curves": lambda: figures.learning_curves(make_histories()),
        "density": lambda: figures.density(p, t, m),
        "error_by_set": lambda: figures.error_by_set(tabs["table1"], tabs["baselines"]),
        "table1_comparison": lambda: figures.table1_comparison(tabs["table1"]),
        "truth_vs_prediction_maps": lambda: figures.truth_vs_prediction_maps(ds, preds, n=4),
        "reliability": lambda: figures.reliability_diagram(tabs["reliability"]),
        "uncertainty_map": lambda: figures.uncertainty_map(uncertainty_example()),
        "preprocessing_patch": lambda: figures.real_patch("patch", *np.random.default_rng(0).uniform(0, 1, (5, 16, 16))),
    }
    assert set(makers) == set(facts.FIGURE_NAMES)
    for name, make in makers.items():
        figures.save(make(), folder / f"{name}.png", dpi=dpi)
    return folder


def build_fake_run(root: Path, figure_dir: Path | None = None, with_figures=facts.FIGURE_NAMES,
                   kind: str = "simulated", run_name: str = "quick_test #1") -> Path:
    """A run folder as the notebooks leave it (figures copied from ``figure_dir``), with a folder name
    and data paths that need escaping in Typst."""
    run = root / run_name
    (run / "tables").mkdir(parents=True)
    (run / "figures").mkdir()
    profile = Profile(name="quick_test")
    (run / "profile.yaml").write_text(yaml.safe_dump(profile.to_dict(), sort_keys=False))
    (run / "provenance.json").write_text(json.dumps({
        "lai_version": "0.1.0", "git_revision": GIT_REV, "git_dirty": True, "python": "3.11.2",
        "packages": {"torch": "2.13.0", "numpy": "2.1.0", "typst": "0.15.2", "xarray": "2025.1"},
        "device": "CPU (2 cores)", "data_fingerprint": "f" * 64, "started": "2025-01-01T10:00:00",
        "finished": "2025-01-01T10:20:00"}))
    (run / "data.json").write_text(json.dumps({
        "kind": kind, "source": "/data/sim_lnb#2/my_folder", "cube": "/data/cube_*abc*.nc", "triplets": 24,
        "tile_size": 32, "splits": {"train": 40, "val": 5, "non_cloudy": 4, "cloudy": 4, "unique": 4, "buffer": 0},
        "split_sampling": "blocks", "has_truth": kind == "simulated", "skipped": []}))
    for name, frame in make_tables().items():
        frame.to_csv(run / "tables" / f"{name}.csv", index=False)
    for name in with_figures if figure_dir is not None else ():
        shutil.copy(figure_dir / f"{name}.png", run / "figures" / f"{name}.png")
    return run


# --------------------------------------------------------------------------- figures


@pytest.fixture(scope="module")
def cube():
    return make_cube()


@pytest.fixture(scope="module")
def figure_dir(tmp_path_factory):
    return render_figures(tmp_path_factory.mktemp("figures"))


def test_figures_are_complete_pngs_written_atomically(figure_dir):
    for name in facts.FIGURE_NAMES:
        data = (figure_dir / f"{name}.png").read_bytes()
        # a PNG from its signature to its closing IEND chunk (a file cut short keeps the first and lacks the second)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", name
    assert not list(figure_dir.glob(".*partial*"))


def test_figure_variants(tmp_path, cube):
    """Triangular seasonality, a single epoch per stage, real data (no lai_true), small blocks."""
    real = cube.drop_vars("lai_true")
    preds = make_predictions(real)
    for k, fig in enumerate((
        figures.seasonality_encoding("triangular", cube),
        figures.learning_curves(make_histories(1)),
        figures.truth_vs_prediction_maps(real, preds, n=2),
        figures.s1_vs_lai(cube, n_pixels=500, block=4, max_triplets=5),
    )):
        assert len(fig.axes) >= 2
        figures.save(fig, tmp_path / f"v{k}.png", dpi=30)


def test_map_triplets_alternate_partly_cloudy_and_clear_and_take_overcast_last():
    """Within a set the maps' triplets alternate between tiles partly cloudy at t (first) and clear at t; tiles
    overcast at t come only when no other is left (lai.figures.maps.choose_triplets)."""
    cloudy_share = {10: 0.5, 11: 0.5, 20: 0.0, 21: 0.0, 30: 1.0, 31: 1.0}  # triplet -> share of pixels clouded at t
    clear = np.stack([np.where(np.arange(100).reshape(10, 10) < 100 * share, 0, 1) for share in cloudy_share.values()])
    sets = {"non_cloudy": xr.Dataset({"clear_t": (("triplet", "y", "x"), clear.astype(np.uint8))},
                                     coords={"triplet": list(cloudy_share)}, attrs={"split": "non_cloudy"})}
    kind = lambda picked: sorted(cloudy_share[i] for i in picked)  # noqa: E731
    assert kind(figures.choose_triplets(sets, n=1)) == [0.5]  # partly cloudy first
    assert kind(figures.choose_triplets(sets, n=2)) == [0.0, 0.5]  # then clear
    assert kind(figures.choose_triplets(sets, n=4)) == [0.0, 0.0, 0.5, 0.5]  # no overcast while others are left
    assert kind(figures.choose_triplets(sets, n=5)) == [0.0, 0.0, 0.5, 0.5, 1.0]


def test_truth_vs_prediction_maps_includes_cloudy_targets(cube):
    preds = make_predictions(cube)
    chosen = figures.choose_triplets(preds, n=4)
    cloudy_at_t = [i for i in chosen for p in preds.values() if i in p["triplet"].values
                   and 0.05 <= 1 - p["clear_t"].sel(triplet=i).values.mean() <= 0.8]
    assert chosen and cloudy_at_t


def test_figures_cope_with_empty_data(tmp_path, cube):
    empty = cube.isel(triplet=slice(0, 0))
    preds = make_predictions(cube)
    preds["cloudy"] = preds["cloudy"].isel(triplet=slice(0, 0))  # a test set with no triplet
    p, t, m = figures.prediction_arrays(cube, preds)
    empty_t1 = make_tables()["table1"].assign(rmse=np.nan, rmse_norm=np.nan, r2=np.nan)
    for k, fig in enumerate((
        figures.sample_maps(cube, []),
        figures.cloud_statistics(empty),
        figures.seasonality_encoding(EncodingConfig(), empty),
        figures.s1_vs_lai(empty),
        figures.learning_curves({}),
        figures.truth_vs_prediction_maps(cube, {"cloudy": preds["cloudy"]}),
        figures.density(p, t, m),
        figures.error_by_set(empty_t1, None),
        figures.table1_comparison(empty_t1),
    )):
        assert fig.axes
        figures.save(fig, tmp_path / f"empty{k}.png", dpi=40)


# --------------------------------------------------------------------------- report


def _pdf_text(path: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture(scope="module")
def report(tmp_path_factory, figure_dir):
    from lai.report import write_report

    run = build_fake_run(tmp_path_factory.mktemp("runs"), figure_dir)
    return run, write_report(run)


def test_report_has_the_key_sections(report):
    from lai.report import SECTIONS

    run, pdf = report
    assert pdf == run / "report.pdf" and pdf.is_file()
    pages, flat = _pdf_text(pdf)
    assert pages >= 6
    for needle in ("Table 1", "MLR", "RF", "persistence", "extrapolation", "simulated", "Provenance", GIT_REV,
                   "0.163", "0.930", "0.0445", "0.0166", "/data/sim_lnb#2/my_folder", "/data/cube_*abc*.nc",
                   "quick_test #1",
                   "tile blocks", "Training", "Reading", "What this run shows", "Noise floor", "not converged",
                   "is not resolved against MLR", "loses to RF", "beats persistence", "one seed", "Final, residual_x",
                   "Beyond the paper", "see their table", "Real patches: a format test", "S2A_patch_7_8", "checkerboard",
                   "0.42", "[0.", "Per-pixel uncertainty", "Cloudy: 3.8% of the clear pixels", "67% with no clear past date",
                   "80% of them too low", "saturates", "A horizontal streak in a panel is one such triplet", "recalibrated", "lai_std", "Reliability of σ",
                   "Over resampled triplets (95 % intervals), the coverage differs from its nominal level at 68 % in",
                   # each RMSE beside the oracle's measured against the same reference (the observation; the truth)
                   "Against the observation at t: noise floor 0.420 LAI, oracle bound 0.610 LAI, final U-Net 0.600 LAI",
                   "the oracle (true LAI at t-1) 0.440"):
        assert needle in flat, needle
    assert "not available" not in flat  # every figure was there
    assert "Empty test sets" not in flat and "Suspicious" not in flat
    for defect in ("goal", "missed by", "Non cloudy", "Grey LAI: missing"):  # goals are the README's; one spelling per set
        assert defect not in flat, defect
    data = json.loads((run / "report.json").read_text())  # what the template printed, for the user to inspect
    assert set(SECTIONS) <= set(data) and data["kind"] == "simulated"
    from lai.facts import EXTRA_ROWS  # the rows beyond the paper named from their one owner, not the template

    assert "Extra rows, never part of Table 1: " + EXTRA_ROWS["final_cloudy_weight"].title[:30] in flat
    for row in EXTRA_ROWS.values():
        assert row.title in data["extras_rows"]
    assert "MLR and RF without the LAI history (Sentinel-1, masks and seasonality only)" in flat
    assert not list(run.glob(".*partial*")) and not list(run.glob(".*.lock"))


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_the_configuration_stays_on_one_page(tmp_path, figure_dir, profile):
    """A built-in profile is printed whole on one page (the quick one once spilled its last two lines onto a page
    of their own)."""
    from pypdf import PdfReader

    from lai.config import load_profile
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir)
    (run / "profile.yaml").write_text(yaml.safe_dump(load_profile(profile).to_dict(), sort_keys=False))
    provenance = json.loads((run / "provenance.json").read_text())  # a real run's 13 packages, as the quick run had
    provenance["packages"] = {f"package{k}": "1.0" for k in range(13)}
    (run / "provenance.json").write_text(json.dumps(provenance))
    pdf = write_report(run)
    pages = [page.extract_text() for page in PdfReader(str(pdf)).pages]
    start = next(i for i, text in enumerate(pages) if "Configuration (profile.yaml)" in text)
    first_key, *_, last_key = yaml.safe_load((run / "profile.yaml").read_text())
    assert f"{first_key}:" in pages[start] and f"{last_key}:" in pages[start]
    assert start == len(pages) - 1  # the configuration closes the report: no page after it


def test_missing_artefacts_give_notes(tmp_path, figure_dir):
    """What a run did not write (a figure, a table, a record) is said plainly; the rest renders."""
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir, with_figures=("learning_curves",), kind="real")
    for name in ("tables/baselines.csv", "tables/extras.csv", "provenance.json"):
        (run / name).unlink()
    _, flat = _pdf_text(write_report(run))
    assert "Figure density: not available" in flat and "figures/density.png was not produced by this run" in flat
    assert "Figure learning_curves" not in flat
    assert "Baseline table: not available" in flat and "Provenance: not available" in flat
    assert "were not run in this profile" in flat and "Real data" in flat and "Noise floor" not in flat
    assert "True LAI available no" in flat


def test_a_folder_with_tables_only(tmp_path):
    """Without data.json, profile.yaml and provenance.json the kind of data is unknown, and the report says so."""
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir=None)
    for name in ("data.json", "profile.yaml", "provenance.json"):
        (run / name).unlink()
    _, flat = _pdf_text(write_report(run))
    for note in ("data of unknown kind", "Data description: not available", "Configuration: not available",
                 "Provenance: not available", "Figure sample_maps: not available"):
        assert note in flat, note
    assert "Noise floor" not in flat and "Each stage trains with Adam" not in flat



def test_a_published_report_renders_again_from_its_json_with_the_current_template(tmp_path, report, monkeypatch):
    """A folder that keeps report.json and figures but not the run (reports/reference) gets the same report, and a
    wording changed in the template, without the run; a folder without report.json is refused."""
    import shutil

    import lai.report as report_mod

    run, pdf = report
    published = tmp_path / "published"
    shutil.copytree(run, published, ignore=shutil.ignore_patterns("tables", "data.json", "profile.yaml"))
    assert _pdf_text(report_mod.render(published)) == _pdf_text(pdf)
    template = report_mod.template_source().replace(b"Four baselines put the U-Nets", b"Four baselines place the U-Nets")
    assert template != report_mod.template_source()
    monkeypatch.setattr(report_mod, "template_source", lambda: template)
    text = _pdf_text(report_mod.render(published))[1]
    assert "Four baselines place the U-Nets" in text and "Four baselines put" not in text
    older = json.loads((published / REPORT_DATA_FILE).read_text())  # lai before extras_rows: renders without it
    del older["extras_rows"]
    (published / REPORT_DATA_FILE).write_text(json.dumps(older))
    text = _pdf_text(report_mod.render(published))[1]
    assert "Extra rows, never part of Table 1." in text and "without the LAI history (Sentinel-1" not in text
    (published / REPORT_DATA_FILE).unlink()
    with pytest.raises(report_mod.ReportError, match=r"holds no report\.json: nothing to render"):
        report_mod.render(published)

def test_a_run_folder_with_no_results_gets_no_report(tmp_path):
    """Notebook 05 on a folder just started (profile.yaml only, e.g. a mistyped run_dir) wrote a report of nothing
    ("None triplets of NonexNone pixels") that read as one of a run: refused, nothing written."""
    from lai.report import ReportError, write_report
    from lai.run_folder import RunContext

    run = RunContext.open(tmp_path / "new", "tiny").run_dir
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    with pytest.raises(ReportError, match=rf"^run folder {run} holds no results yet \(no data\.json, no tables\): run "
                                          r"notebooks 01-04 in it first \(or `lai run`\)"):
        write_report(run)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def _edit_table(run: Path, name: str, **first_row) -> None:
    """Set cells of the first row of tables/<name>.csv (as text)."""
    path = run / "tables" / f"{name}.csv"
    frame = pd.read_csv(path).astype(object)
    for col, value in first_row.items():
        frame.loc[0, col] = value
    frame.to_csv(path, index=False)


def _blank_png(path: Path, width: int, height: int) -> None:
    from PIL import Image

    Image.new("1", (width, height)).save(path)  # one bit per pixel: a few kB on disk


@pytest.mark.parametrize("what, spoil, message", [
    ("a table without the columns read", lambda run: (run / "tables" / "table1.csv").write_text("foo,bar\n1,2\n"),
     r"table1\.csv lacks the column\(s\) row, set"),
    ("an unreadable figure", lambda run: (run / "figures" / "density.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
     r"density\.png is not a readable PNG image"),
    ("a broken record", lambda run: (run / "provenance.json").write_text("{not json"),
     r"provenance\.json is not readable JSON"),
    ("a record of another type", lambda run: (run / "data.json").write_text("[1, 2]"),
     r"data\.json holds a JSON list, expected an object"),
    ("a broken profile", lambda run: (run / "profile.yaml").write_text("train: [1, 2\n"),
     r"run profile .*profile\.yaml is not valid YAML: expected ',' or '\]'"),
    ("a profile of another type", lambda run: (run / "profile.yaml").write_text("- train\n"),
     r"run profile .*profile\.yaml holds a list; expected a mapping of sections"),
    ("an unknown verdict", lambda run: pd.read_csv(run / "tables" / "comparisons.csv").assign(verdict="maybe").to_csv(
        run / "tables" / "comparisons.csv", index=False), r"comparisons\.csv: verdict 'maybe' against persistence"),
    ("split counts as a list", lambda run: (run / "data.json").write_text(json.dumps({"kind": "simulated", "splits": [1, 2]})),
     r"data\.json: 'splits' must map each split to its number of triplets \(a whole number .*\), got \[1, 2\]"),
    ("negative and absurd split counts", lambda run: (run / "data.json").write_text(
        json.dumps({"kind": "simulated", "splits": {"train": -5, "cloudy": 1e308}})),
     r"data\.json: 'splits' must map each split to its number of triplets \(a whole number from 0 to 1e\+12\)"),
    ("an unknown chosen model", lambda run: (run / "tables" / "selection.csv").write_text(
        "model,title,best_val_rmse,best_epoch,chosen\nfinal,x,1,1,False\n../../etc,y,0.5,1,True\n"),
     r"selection\.csv: column model, row 2 holds '\.\./\.\./etc'; expected one of final, final_cloudy_weight"),
    ("seeds in words", lambda run: _edit_table(run, "seeds", seeds="three"),
     r"seeds\.csv: column seeds, row 1 holds 'three'; expected a whole number from 0 to 1e\+12"),
    ("a share in words", lambda run: _edit_table(run, "large_errors", large_share="x"),
     r"large_errors\.csv: column large_share, row 1 holds 'x'; expected a finite number or nothing"),
    ("a coverage interval in words", lambda run: _edit_table(run, "calibration", coverage_95_lo="x"),
     r"calibration\.csv: column coverage_95_lo, row 1 holds 'x'; expected a finite number or nothing"),
    ("an infinite interval", lambda run: _edit_table(run, "comparisons", diff_hi="inf"),
     r"comparisons\.csv: column diff_hi, row 1 holds inf; expected a finite number or nothing"),
    ("a figure declaring 8000x8000 pixels", lambda run: _blank_png(run / "figures" / "density.png", 8000, 8000),
     r"density\.png declares 8000x8000 pixels, more than the 40,000,000"),
])
def test_malformed_artefact_fails_naming_the_file(tmp_path, figure_dir, what, spoil, message):
    """A present but malformed artefact is an error naming it, not a 'not available' box."""
    from lai.report import ReportError, write_report

    run = build_fake_run(tmp_path, figure_dir, with_figures=("density",))
    spoil(run)
    with pytest.raises(ReportError, match=message):
        write_report(run)
    assert not (run / "report.pdf").exists()


def test_a_calibration_table_without_intervals_still_reports(tmp_path, figure_dir):
    """tables/calibration.csv written before the intervals (no ``_lo``, ``_hi`` columns): the values alone, and no
    sentence about intervals the table does not hold."""
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir)
    path = run / "tables" / "calibration.csv"
    table = pd.read_csv(path)
    table.drop(columns=[c for c in table if c.endswith(("_lo", "_hi"))]).to_csv(path, index=False)
    _, flat = _pdf_text(write_report(run))
    assert "Per-pixel uncertainty" in flat and "Over resampled triplets" not in flat
    assert f"{table['coverage_95'].iloc[1]:.3f}" in flat


def test_the_uncertainty_verdict_says_how_far_the_calibration_carries_over_to_another_region(report):
    """tables/calibration_transfer.csv: the range of the held-out regions' coverages, a region without pixels of a
    kind (NaN) left out; a run folder without the table (lai before 2026-12-07) says nothing of it."""
    run, pdf = report
    transfer = _texts(json.loads((run / "report.json").read_text())["uncertainty"]["transfer"])
    assert transfer == ("How far these factors carry over to another area: fitted on validation less one of its 2 "
                        "regions, the intervals cover 0.595 to 0.796 (68 %) and 0.890 to 0.995 (95 %) of that "
                        "region's pixels clear or clouded at t (tables/calibration_transfer.csv): a test set of other "
                        "scenes may land anywhere in about that range.")
    assert "0.595 to 0.796 (68 %)" in _pdf_text(pdf)[1]


def test_a_run_without_the_calibration_transfer_table_reports_without_its_sentence(tmp_path, figure_dir):
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir)
    (run / "tables" / "calibration_transfer.csv").unlink()
    write_report(run)
    uncertainty = json.loads((run / "report.json").read_text())["uncertainty"]
    assert uncertainty["transfer"] is None and _texts(uncertainty["verdict"]).startswith("Recalibrated")


def test_a_broken_section_fails(tmp_path, monkeypatch):
    """A bug in a section's builder, or data the template does not expect, fails the report."""
    import lai.report as report_mod

    run = build_fake_run(tmp_path, figure_dir=None)

    def bug(run):
        raise KeyError("rmse")

    monkeypatch.setitem(report_mod.SECTIONS, "baselines", bug)
    with pytest.raises(KeyError, match="rmse"):
        report_mod.write_report(run)
    monkeypatch.setitem(report_mod.SECTIONS, "baselines", lambda run: {"table": None})  # keys missing
    with pytest.raises(report_mod.ReportError, match="paper_mlr_r2"):
        report_mod.write_report(run)
    assert not (run / "report.pdf").exists()


def _empty_sets(run: Path, empty: tuple[str, ...], lines: bool) -> None:
    """Make the test sets ``empty`` of a fake run hold no triplets: with ``lines``, tables keep a line of
    NaN metrics for them (``triplets`` 0, comparisons with the verdict "empty"); without, they lose them."""
    data = json.loads((run / "data.json").read_text())
    data["splits"].update({s: 0 for s in empty})
    (run / "data.json").write_text(json.dumps(data))
    for name, frame in make_tables().items():
        if "set" not in frame or name == "noise_floor":
            pass
        elif lines or name == "table1":  # lai.tables.table1 keeps a line per row and set
            numbers = [c for c in frame.columns if c.startswith(("rmse", "r2", "n_pixels", "truth", "floor_ratio", "diff"))]
            frame.loc[frame["set"].isin(empty), numbers] = np.nan
            frame.loc[frame["set"].isin(empty), [c for c in ("triplets",) if c in frame]] = 0
            if "verdict" in frame:
                frame.loc[frame["set"].isin(empty), "verdict"] = "empty"
        else:
            frame = frame[~frame["set"].isin(empty)]
            if name == "comparisons" and not len(frame):
                frame = pd.DataFrame()  # a comparisons table of nothing: no columns at all
        frame.to_csv(run / "tables" / f"{name}.csv", index=False)


@pytest.mark.parametrize("empty, lines", [(("cloudy", "unique"), True), (("cloudy", "unique"), False),
                                          (("non_cloudy", "cloudy", "unique"), False)])
def test_report_with_empty_test_sets_renders_and_says_so(tmp_path, empty, lines):
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir=None)
    _empty_sets(run, empty, lines)
    _, flat = _pdf_text(write_report(run))
    names = {("cloudy", "unique"): "The cloudy and unique-areas test sets have no triplets",
             ("non_cloudy", "cloudy", "unique"): "The non-cloudy, cloudy and unique-areas test sets have no triplets"}
    assert "Empty test sets." in flat and names[empty] in flat
    assert "Unique areas 0 – – – –" in flat  # the final model's table keeps a line for the empty set
    if len(empty) == 3:
        assert "No metrics of the final model are available" in flat
        assert "Baseline table: not available. tables/baselines.csv has no rows: every test set is empty." in flat
        assert "Extra rows: not available. tables/extras.csv has no rows" in flat
    else:
        assert "Cloudy: nothing compared, the test set has no triplets." in flat
        assert "On the cloudy set there is no triplet, so nothing is compared." in flat
        assert "On the non-cloudy set (4 triplets) the final U-Net beats persistence" in flat


def test_a_perfect_score_is_flagged(tmp_path):
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir=None)
    bl = pd.read_csv(run / "tables" / "baselines.csv")
    hit = (bl["baseline"] == "persistence") & (bl["set"] == "non_cloudy")
    bl.loc[hit, ["rmse", "rmse_norm", "r2"]] = [0.0, 0.0, 1.0]
    bl.to_csv(run / "tables" / "baselines.csv", index=False)
    _, flat = _pdf_text(write_report(run))
    assert ("Suspicious perfect score. Persistence on the non-cloudy set scores RMSE 0.000 LAI and R² = 1.000 exactly. "
            "A perfect score usually means that the inputs and the target are identical") in flat
    assert flat.count("Suspicious perfect score") == 1


def test_several_seeds_and_the_paper_schedule(tmp_path):
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir=None)
    profile = yaml.safe_load((run / "profile.yaml").read_text())
    profile["train"].update(seeds=3, schedule="milestones", milestones="paper")
    (run / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    pd.read_csv(run / "tables" / "seeds.csv").assign(seeds=3, rmse_std=0.05).to_csv(run / "tables" / "seeds.csv", index=False)
    _, flat = _pdf_text(write_report(run))
    assert "fixed epochs (at a third and two thirds of the epochs: the paper’s protocol)" in flat
    assert "fine-tuned with 3 training seeds" in flat and "Non-cloudy 3 0.600 0.050 0.600 – 0.600 0.800" in flat
    assert "one seed" not in flat


def test_stale_partials_of_the_report_are_swept(tmp_path):
    """An interrupted report leaves hidden partial files: the next report removes them, and nothing else."""
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir=None)
    stale = [run / ".report.pdf.partial-999-deadbeef", run / ".report.json.partial-999-deadbeef"]
    others = [run / ".notes.txt.partial-1-x", run / "report.pdf.partial-kept", run / "mine.txt"]
    for path in stale + others:
        path.write_text("left over")
    write_report(run)
    assert not any(p.exists() for p in stale)
    assert all(p.read_text() == "left over" for p in others)


def test_failing_compile_leaves_no_report(tmp_path, monkeypatch):
    import lai.report as report_mod

    run = build_fake_run(tmp_path, figure_dir=None)
    (run / "report.pdf").write_bytes(b"%PDF-1.7 an older report")

    def broken(template, output, root, data):
        Path(output).write_bytes(b"%PDF-1.7 half written")
        raise RuntimeError("typst exploded")

    monkeypatch.setattr(report_mod, "_compile", broken)
    with pytest.raises(report_mod.ReportError, match="typst exploded"):
        report_mod.write_report(run)
    assert (run / "report.pdf").read_bytes() == b"%PDF-1.7 an older report"
    assert not list(run.glob(".*partial*"))


def test_typst_error_leaves_no_report(tmp_path, monkeypatch):
    """A real Typst failure (an invalid template) goes through the same path."""
    import lai.report as report_mod

    run = build_fake_run(tmp_path, figure_dir=None)
    monkeypatch.setattr(report_mod, "template_source", lambda: b"#let x = (\n")
    with pytest.raises(report_mod.ReportError, match="Typst could not typeset"):
        report_mod.write_report(run)
    assert not (run / "report.pdf").exists()


def test_template_ships_with_the_package_and_places_every_figure():
    import re

    from lai.facts import FIGURE_NAMES
    from lai.report import template_source

    template = template_source().decode()
    placed = re.findall(r'(?:#|\s)fig\("(\w+)"', template)  # at the start of a line, or inside a grid
    assert sorted(placed) == sorted(FIGURE_NAMES)
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    package_data = re.search(r"\[tool\.setuptools\.package-data\]\nlai = \[(.*)\]", pyproject).group(1)
    assert '"report.typ"' in package_data  # installed with the package, not only in a checkout


def test_text_and_numbers():
    from lai.report import fmt, rich, strong

    assert rich("a ", ["b", None, strong("c")], "", "d") == ["a b", {"text": "c", "style": "strong"}, "d"]
    assert fmt(-0.04451) == "\u22120.045" and fmt(float("nan")) == "–" and fmt(0.1234) == "0.123"
    assert fmt(-0.0001) == "0.000"
    assert fmt(1e308) == "1.000e+308" and fmt(-1e300) == "\u22121.000e+300" and fmt(10**400) == "–"
    assert fmt(123456789) == "123,456,789" and fmt(2 * 10**9) == "2.000e+09"


def test_an_interval_bound_that_is_not_zero_never_prints_as_zero():
    from lai.report import fmt_bound, fmt_interval

    assert fmt_interval(-0.125, -0.00015) == "[\u22120.125, \u22120.00015]"
    assert fmt_bound(0.0004) == "0.00040" and fmt_bound(1e-9) == "0.0000000010"
    assert fmt_bound(0.0) == "0.000" and fmt_bound(0.0123) == "0.012" and fmt_bound(float("nan")) == "–"
    for value in (-0.0004999, 0.00049, -3e-7, 2e-5):
        assert float(fmt_bound(value).replace("\u2212", "-")) != 0, value
    # judged against a nominal coverage: a bound just below 0.95 (counted as excluding it) never prints as 0.950
    assert fmt_interval(0.9299, 0.9495002, nominal=0.95) == "[0.930, 0.94950]"
    assert fmt_interval(0.93, 0.95, nominal=0.95) == "[0.930, 0.950]" and fmt_bound(0.9504, nominal=0.95) == "0.95040"


def _texts(item) -> str:
    return "".join(run if isinstance(run, str) else run["text"] for run in item)


def test_conclusions_cover_every_set_the_s2_encoder_the_truth_the_oracle_and_how_training_stopped(report):
    """Non-cloudy, cloudy and unique, each against persistence, MLR, RF and the S2 encoder (observation), the
    true LAI and the oracle; training as "stopped at epoch N of at most M; validation flat for P epochs"."""
    run, _ = report
    data = json.loads((run / "report.json").read_text())
    lines = [_texts(item) for item in data["conclusions"]]
    from lai.report import fmt

    persistence_truth = {"Non-cloudy": 0.07 ** 0.5, "Cloudy": 1.4 ** 0.5, "Unique areas": 0.2 ** 0.5}  # make_tables
    for title in ("Non-cloudy", "Cloudy", "Unique areas"):
        mine = [line for line in lines if line.startswith(title)]
        for other in ("persistence", "MLR", "RF", "the S2 encoder (S2 + S2 masks + seas. (Encoder 2))"):
            assert any(f" {other} (" in line and "RMSE difference against the observation" in line for line in mine), (title, other)
        assert any("against the true LAI" in line and f"persistence {fmt(persistence_truth[title])}," in line
                   for line in mine), title
        assert any("oracle bound" in line and "model − oracle" in line for line in mine), title
    assert any("model − oracle \u22120.010 LAI [\u22120.040, \u22120.00015]" in line for line in lines)  # not 0.000
    assert lines[0].startswith("Model compared below: the final U-Net (no other candidate in this profile); one training "
                               "seed: each interval draws the test triplets for this one training, not the variation "
                               "between trainings")
    stopped = next(line for line in lines if line.startswith("Training. "))
    assert "S1 (Encoder 1): stopped at epoch 3 of at most 40; validation flat for 0 epochs." in stopped
    assert "S2 + S2 masks (Encoder 2): stopped at epoch 3 of at most 40; validation flat for 2 epochs." in stopped
    late = next(line for line in lines if line.startswith("Not converged"))
    assert "S1 (Encoder 1), S1 + S2 masks (Encoder 1), All (Final)." in late  # the training table's verdicts
    assert not any(line.startswith("Every training stage converged") for line in lines)
    one = [line for line in lines if line.startswith("Non-cloudy, RMSE difference")]  # one sentence per set
    assert len(one) == 1 and one[0].count("the final U-Net") == 1, one
    fitting = dict(data["data"]["items"])["Used for fitting"]
    assert _texts(fitting).startswith("40 training and 5 validation triplets; 0 buffer triplets")


def test_the_seeds_ensemble_is_said_where_the_run_has_one(tmp_path):
    """tables/ensemble.csv (the mean of the seeds): one conclusion with its validation score against the seeds and
    each test set against the comparators and the oracle; none without the table."""
    from lai.report.inputs import Run
    from lai.report.prose import _conclusions

    run = build_fake_run(tmp_path, None)
    assert not any("ensemble" in _texts(item) for item in _conclusions(Run(run)))
    rows = [{"set": s, "model": "final ensemble", "other": other, "seeds": 3 if other == "final seeds" else 1,
             "triplets": 5, "rmse_model": 0.5,
             "rmse_other": 0.5 - diff, "diff": diff, "diff_lo": diff - 0.01, "diff_hi": diff + 0.01, "resolved": True,
             "verdict": "better" if diff < 0 else "worse"}
            for s in ("val", "non_cloudy", "cloudy", "unique")
            for other, diff in ((("final seeds", -0.008),) if s == "val" else
                                (("final seeds", -0.008), ("persistence", -0.03), ("MLR", -0.2), ("RF", -0.02),
                                 ("s2_masks_seas", -0.02), ("oracle", 0.04)))]
    pd.DataFrame(rows).to_csv(run / "tables" / "ensemble.csv", index=False)
    (line,) = [_texts(item) for item in _conclusions(Run(run)) if "ensemble" in _texts(item)]
    assert line.startswith("The mean prediction of the final U-Net's 3 seeds (an ensemble, "), line
    assert "on validation 0.500 LAI against the seeds' 0.508 (\u22120.008 LAI [\u22120.018, 0.002]; " in line, line
    for title in ("Non-cloudy", "Cloudy", "Unique areas"):
        assert (f"{title}: 0.500 LAI; it beats persistence (\u22120.030 LAI [\u22120.040, \u22120.020]), MLR" in line
                and "loses to the oracle bound" in line), title


def test_stages_that_stopped_alike_are_said_in_one_sentence(tmp_path):
    """When every stage stopped after the same flat stretch under the same cap, one sentence lists the epochs."""
    from lai.report.inputs import Run
    from lai.report.prose import _stopping

    run = build_fake_run(tmp_path, None)
    training = pd.read_csv(run / "tables" / "training.csv")
    training["stopped_epoch"], training["flat_epochs"], training["max_epochs"], training["converged"] = 20, 6, 40, True
    training.to_csv(run / "tables" / "training.csv", index=False)
    (line,) = [_texts(item) for item in _stopping(Run(run))]
    assert line.startswith("Training. Every stage stopped once validation had been flat for 6 epochs, before its cap "
                           "of 40 epochs: S1 (Encoder 1) at epoch 20, "), line
    # every stage at its cap (train.epochs=3, as the notebooks' parameters suggest): not "stopped before its cap"
    training.assign(stopped_epoch=3, flat_epochs=0, max_epochs=3, converged=False).to_csv(
        run / "tables" / "training.csv", index=False)
    line, late = [_texts(item) for item in _stopping(Run(run))]
    assert line.startswith("Training. S1 (Encoder 1): ran to its cap of 3 epochs; validation flat for 0 epochs. "), line
    assert "before its cap" not in line and late.startswith("Not converged")


def test_the_report_names_the_code_and_machine_that_trained_its_stages(tmp_path):
    """provenance.json is the report's own (rewritten by notebook 05); stages are reused across later code."""
    from lai.report import build_data

    run = build_fake_run(tmp_path, None)
    training = pd.read_csv(run / "tables" / "training.csv")
    training.assign(trained_at="37142eeae748 (lai 0.1.0)", trained_on="Xeon (AVX512), CPU (2 cores)").to_csv(
        run / "tables" / "training.csv", index=False)
    items = dict(build_data(run)["provenance"]["items"])
    assert items["stages trained by"] == f"37142eeae748 (lai 0.1.0) on Xeon (AVX512), CPU (2 cores): {len(training)} stages"
    assert "git revision (this report)" in items


def test_report_cells_come_from_their_own_columns(tmp_path):
    """Sentinel values in columns a slip could swap: the baselines' RMSE in LAI/5, the noise floor table's RMSE
    against the truth on clear pixels (not clouded ones), the large errors' mean prediction and observation."""
    import json as _json

    from lai.report import build_data

    run = build_fake_run(tmp_path, None)
    bl = pd.read_csv(run / "tables" / "baselines.csv")
    bl.assign(rmse_norm=0.987).to_csv(run / "tables" / "baselines.csv", index=False)
    t1 = pd.read_csv(run / "tables" / "table1.csv")
    t1.assign(truth_rmse_clear=0.321, truth_rmse_cloudy=0.654).to_csv(run / "tables" / "table1.csv", index=False)
    le = pd.read_csv(run / "tables" / "large_errors.csv")
    le.assign(pred_mean=4.31, obs_mean=3.52).to_csv(run / "tables" / "large_errors.csv", index=False)
    data = build_data(run)
    assert "0.987" in _json.dumps(data["baselines"]["table"], ensure_ascii=False)
    floor = _json.dumps(data["noise_floor"]["table"], ensure_ascii=False)
    assert "0.321" in floor and "0.654" not in floor
    said = _texts(data["large_errors"])
    assert "predicted 4.31 against 3.52 observed on average" in said, said


@pytest.mark.parametrize("schedule, said", [
    (dict(schedule="plateau", lr_patience=2, lr_decay=0.2, epochs=40, patience=6),
     "at most 40 epochs: the learning rate is multiplied by 0.2 once 3 epochs have passed without a better validation "
     "score, and the stage stops after 6; "),
    (dict(schedule="milestones", milestones="paper", epochs=100), "100 epochs, the learning rate multiplied by 0.2 at "
     "fixed epochs (at a third and two thirds of the epochs: the paper’s protocol); "),
    (dict(schedule="milestones", milestones="reference", epochs=100), "100 epochs, the learning rate multiplied by 0.2 "
     "at fixed epochs (once, at half the epochs: the reference code’s schedule); ")])
def test_the_schedule_is_described_as_it_runs(tmp_path, schedule, said):
    """The plateau decays on the epoch after lr_patience flat ones (PyTorch), and only the paper's milestones are the
    paper's protocol (the reference code's decay once)."""
    from lai.report import build_data

    run = build_fake_run(tmp_path, None)
    profile = yaml.safe_load((run / "profile.yaml").read_text())
    profile["train"].update({"lr_decay": 0.2, **schedule})
    (run / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    text = _texts(build_data(run)["training"]["text"])
    assert said in text and "the pre-trained encoders of rows 3 and 5" in text, text


def test_the_chosen_model_is_named_with_its_validation_scores_and_pooled_seeds(tmp_path):
    from lai.report import build_data

    run = build_fake_run(tmp_path)
    pd.DataFrame({"model": ["final", "final_gated"], "title": ["All (Final)", "Final, gated skip"],
                  "best_val_rmse": [0.91, 0.84], "best_epoch": [9, 12], "chosen": [False, True]}).to_csv(
        run / "tables" / "selection.csv", index=False)
    pd.read_csv(run / "tables" / "seeds.csv").assign(seeds=3).to_csv(run / "tables" / "seeds.csv", index=False)
    lines = [_texts(item) for item in build_data(run)["conclusions"]]
    assert lines[0] == ("Model compared below: the final U-Net (gated skip), chosen from validation scores only (best "
                        "validation RMSE, LAI: All (Final) 0.910, Final, gated skip 0.840; test sets unseen); its 3 "
                        "trainings (seeds) are pooled: its RMSE is their mean, and each bootstrap resample of the "
                        "triplets is applied to every seed.")
    comp = pd.read_csv(run / "tables" / "comparisons.csv")
    comp.assign(trainings_resampled=True).to_csv(run / "tables" / "comparisons.csv", index=False)
    data = build_data(run)
    drawn = [_texts(item) for item in data["conclusions"]]
    assert drawn[0].endswith("its 3 trainings (seeds) are pooled: its RMSE is their mean, and each bootstrap resample "
                             "draws the triplets and the seeds (a two-stage bootstrap: an interval says what trainings "
                             "of this kind score, not only these)."), drawn[0]
    assert "with 95% paired-bootstrap intervals (triplets and seeds drawn);" in _texts(data["baselines"]["reading"])
    comp.to_csv(run / "tables" / "comparisons.csv", index=False)
    assert any(line.startswith("Non-cloudy, RMSE difference against the observation (LAI, 95 % paired interval): the final "
                               "U-Net (gated skip) ") for line in lines)
    # the chosen model's own numbers wherever the report names it, not the final U-Net's
    data = build_data(run)
    seeds = pd.read_csv(run / "tables" / "seeds.csv").set_index("set")
    from lai.report import fmt

    assert (f"The model chosen on validation, the final U-Net (gated skip), reaches non-cloudy: RMSE "
            f"{fmt(seeds.loc['non_cloudy', 'rmse_mean'])} LAI") in _texts(data["abstract"])
    assert _texts(data["abstract"]).endswith("(the mean of its 3 seeds). Persisting the last clear LAI reaches R² 0.930 "
                                             "on the non-cloudy set.")
    rows = data["baselines"]["table"]["rows"]
    bold = [r for r in rows if isinstance(r, list) for c in r if isinstance(c, dict) and c.get("strong")]
    assert [c["body"] for r in bold for c in r if isinstance(c, dict) and c.get("strong")][:2] == \
        ["final U-Net", "final U-Net (gated skip)"]
    assert "its 3 seeds pooled" in _texts(data["baselines"]["reading"])
    # the noise floor's table has the model its sentence quotes: the chosen one, beside Table 1's rows
    cells = [[c.get("body") if isinstance(c, dict) else c for c in r] for r in data["noise_floor"]["table"]["rows"]]
    chosen_row = [r for r in cells if "final U-Net (gated skip) (chosen; its seeds' mean)" in r]
    assert len(chosen_row) == 1 and chosen_row[0][1] == "1.43", cells
    (run / "tables" / "extras.csv").unlink()  # a profile without the extra rows, whose candidate ran all the same
    extra = next(line for line in map(_texts, build_data(run)["conclusions"]) if line.startswith("Extra rows"))
    assert extra == ("Extra rows beyond the paper (cloud-weighted loss, residual, baselines without the LAI history): "
                     "not run in this profile (extras: false); the paper profile runs them. The gated skip was trained "
                     "as a candidate for the chosen model (above).")


def test_control_characters_never_reach_the_report(tmp_path):
    from lai.report import build_data

    run = build_fake_run(tmp_path)
    data = json.loads((run / "data.json").read_text())
    data["source"] = "/data/\x1b[31mred\u202eevil\x07"
    (run / "data.json").write_text(json.dumps(data))
    text = json.dumps(build_data(run), ensure_ascii=False)
    assert "/data/[31mredevil" in text and not any(c in text for c in "\x1b\u202e\x07")


def test_names_outside_the_run_folder_schema_are_refused(tmp_path):
    """A table or figure name that lai.facts does not list is an error naming it and the allowed names."""
    from lai.errors import PipelineError
    from lai.report import ReportError
    from lai.report.inputs import read_table
    from lai.run_folder import RunContext

    ctx = RunContext.open(tmp_path / "run", "tiny", data_root=tmp_path / "data")
    with pytest.raises(PipelineError, match=r"table name 'tabel1' is not in the run folder's schema .*allowed: splits, "):
        ctx.save_table(pd.DataFrame({"a": [1]}), "tabel1")
    assert not list((ctx.run_dir / "tables").iterdir())
    with pytest.raises(PipelineError, match=r"figure name 'densty' is not in .*allowed: sample_maps, "):
        ctx.figure("densty")
    assert ctx.save_table(pd.DataFrame({"a": [1]}), facts.TABLE.table1) == ctx.run_dir / "tables" / "table1.csv"
    with pytest.raises(ReportError, match=r"table name 'tabel1' is not in the run folder's schema"):
        read_table(tmp_path, "tabel1")
    with pytest.raises(AttributeError, match=r"no figure 'densty' in the run folder's schema"):
        _ = facts.FIGURE.densty
    assert set(facts.FIGURE_NAMES) <= set(facts.FIGURES) and set(facts.REPORT_TABLES) <= set(facts.TABLES)


def test_one_model_label_rule():
    assert facts.row_title("s1") == "S1 (Encoder 1)" == ROWS["s1"].title and facts.row_title("MLR") == "MLR"
    assert facts.stage_label("final_seed2") == ("final", "All (Final), seed 2")
    assert facts.stage_label("s1_masks") == ("s1_masks", "S1 + S2 masks (Encoder 1)")
    assert facts.stage_label("final_residual") == ("final_residual", "Final, residual")
    assert facts.stage_label("final_gated_seed2") == ("final_gated", "Final, gated skip, seed 2")
    assert facts.stage_label("other") == ("other", "other")
    assert facts.row_columns("final") == ("All", "Final") and facts.row_columns("x") == ("x", "")
    assert facts.row_columns("final_gated") == ("All, gated skip", "Final")
    assert facts.row_columns("final_gated_seed2") == ("All, gated skip, seed 2", "Final")
    assert facts.row_columns("final_seed1") == ("All, seed 1", "Final") and facts.row_columns("x_seed1") == ("x_seed1", "")


def test_the_ratio_to_the_noise_floor_is_the_rmse_over_the_floor():
    """Table 1's and the baselines' "x noise floor": 2.0 LAI against a floor of 0.5 is 4x (not 0.25x)."""
    from lai.tables import with_floor

    table = with_floor(pd.DataFrame({"set": ["cloudy", "unique"], "rmse": [2.0, 1.0]}),
                       pd.DataFrame({"set": ["cloudy"], "floor_rmse": [0.5]}))
    assert table["floor_ratio"].iloc[0] == 4.0 and np.isnan(table["floor_ratio"].iloc[1])


def test_large_errors_count_the_pixels_missed_by_more_than_the_threshold():
    """Two triplets of 2x2 pixels: the misses over 2 LAI among the pixels clear at t, how many had no clear past
    date, their mean prediction and observation, and the triplet that holds most of them."""
    import xarray as xr

    from lai.tables import large_errors

    lai = np.full((2, 3, 2, 2), 4.0, np.float32)
    scl = np.full((2, 3, 2, 2), 4, np.uint8)
    scl[0, :2, 0, :] = 9  # triplet 0: first row clouded at t-2 and t-1
    cube = xr.Dataset({"lai": (("triplet", "time", "y", "x"), lai), "scl": (("triplet", "time", "y", "x"), scl)})
    pred = np.full((2, 2, 2), 4.0, np.float32)
    pred[0, 0, :] = 1.0  # off by 3 where the past was clouded
    pred[1, 1, 1] = 1.5  # off by 2.5, past clear
    pred[1, 0, 0] = 2.5  # off by 1.5: not a large error
    clear = np.ones((2, 2, 2), np.uint8)
    clear[0, 0, 1] = 0  # not scored
    preds = {"cloudy": xr.Dataset({"lai_pred": (("triplet", "y", "x"), pred), "clear_t": (("triplet", "y", "x"), clear)},
                                  coords={"triplet": [0, 1]})}
    row = large_errors(cube, preds, (4, 5, 6), threshold=2.0).iloc[0]
    assert (row["set"], row["pixels"], row["large"]) == ("cloudy", 7, 2)
    assert row["large_share"] == pytest.approx(2 / 7) and row["no_clear_past_share"] == pytest.approx(0.5)
    assert row["pred_mean"] == pytest.approx(1.25) and row["obs_mean"] == pytest.approx(4.0) and row["under_share"] == 1.0
    assert row["top_share"] == pytest.approx(1.0) and row["top_triplets"] == "0 1"
    assert "true_mean" not in row
    scl[1, 0, 1, 1] = 9  # the other large error's t-2 clouded too: t-1 is still clear, so it had a clear past date
    cube["scl"] = (("triplet", "time", "y", "x"), scl)
    assert large_errors(cube, preds, (4, 5, 6), threshold=2.0).iloc[0]["no_clear_past_share"] == pytest.approx(0.5)


def test_oracle_gap_splits_the_model_and_the_oracle_by_the_true_change():
    """Two triplets of 2x2 pixels: one whose true LAI barely changes (0.05), one that grows by 1 LAI; two seeds
    whose squared errors are averaged per class; the slope of the model's change on the true change per seed."""
    import xarray as xr

    from lai.facts import ORACLE_GAP_ALL
    from lai.tables import change_classes, oracle_gap

    assert [c[0] for c in change_classes()] == ["< 0.1", "0.1-0.3", "0.3-0.6", "≥ 0.6"]
    true = np.ones((2, 3, 2, 2), np.float32)
    true[0, 2], true[1, 2] = 1.05, 2.0
    true[:, 0] = 4.0  # t-2: neither the oracle nor the change, which are t-1's
    cube = xr.Dataset({"lai_true": (("triplet", "time", "y", "x"), true)})
    clear = np.ones((2, 2, 2), np.uint8)
    clear[1, 0, 0] = 0  # not scored

    def seed(steady: float, grown: float) -> dict:
        pred = np.stack([np.full((2, 2), steady), np.full((2, 2), grown)]).astype(np.float32)
        return {"unique": xr.Dataset({"lai_pred": (("triplet", "y", "x"), pred), "clear_t": (("triplet", "y", "x"), clear)},
                                     coords={"triplet": [0, 1]})}

    gap = oracle_gap(cube, [seed(1.0, 1.5), seed(1.1, 1.7)]).set_index("change")
    assert (gap["set"] == "unique").all() and (gap["seeds"] == 2).all()
    assert gap.loc["< 0.1", "pixels"] == 4 and gap.loc["≥ 0.6", "pixels"] == 3 and gap.loc["0.1-0.3", "pixels"] == 0
    assert gap.loc["< 0.1", "model_rmse"] == pytest.approx(0.05, abs=1e-6)  # both seeds off by 0.05
    assert gap.loc["< 0.1", "oracle_rmse"] == pytest.approx(0.05, abs=1e-6)
    assert gap.loc["≥ 0.6", "model_rmse"] == pytest.approx(np.sqrt((0.25 + 0.09) / 2), abs=1e-6)
    assert gap.loc["≥ 0.6", "oracle_rmse"] == pytest.approx(1.0)
    assert np.isnan(gap.loc["0.3-0.6", "model_rmse"]) and gap.loc["0.3-0.6", "model_mse_part"] == 0
    total = gap.loc[ORACLE_GAP_ALL]
    assert total["pixels"] == 7 and total["share"] == 1
    assert total["model_mse_part"] == pytest.approx(gap.drop(ORACLE_GAP_ALL)["model_mse_part"].sum())
    assert total["model_rmse"] ** 2 == pytest.approx(4 / 7 * 0.0025 + 3 / 7 * 0.17, rel=1e-5)
    assert total["change_slope"] == pytest.approx((1.5 / 3.01 + 2.12 / 3.01) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="lai_true"):
        oracle_gap(cube.drop_vars("lai_true"), [seed(1.0, 1.5)])


def test_past_estimators_score_each_estimator_on_the_pixels_clear_in_the_past():
    """One 4x4 triplet: the left half's true LAI stays at 2, the right half's grows from 2 to 3; the past observations
    are the truth +0.2 (t-2) and -0.2 (t-1), so their mean is exact where nothing changed; one pixel is a cloud shadow
    at t-2 (SCL 3: not clear by the strict rule) and one is not scored at t. Two seeds err by +0.1 and -0.3."""
    import xarray as xr

    from lai.facts import ORACLE_GAP_ALL
    from lai.tables import past_estimator_errors, past_estimators

    true = np.full((1, 3, 4, 4), 2.0, np.float32)  # the cube's dtype
    true[0, 2, :, 2:] = 3.0
    obs = true.copy()
    obs[0, 0] += 0.2
    obs[0, 1] -= 0.2
    scl = np.full((1, 3, 4, 4), 4, np.uint8)
    scl[0, 0, 0, 0] = 3
    cube = xr.Dataset({"lai_true": (("triplet", "time", "y", "x"), true), "lai": (("triplet", "time", "y", "x"), obs),
                       "scl": (("triplet", "time", "y", "x"), scl)})
    clear_t = np.ones((1, 4, 4), bool)
    clear_t[0, 3, 3] = False

    def seed(bias: float) -> dict:
        return {"unique": xr.Dataset({"lai_pred": (("triplet", "y", "x"), true[:, 2] + bias),
                                      "clear_t": (("triplet", "y", "x"), clear_t)}, coords={"triplet": [0]})}

    seeds = [seed(0.1), seed(-0.3)]
    e = past_estimator_errors(cube, [p["unique"] for p in seeds])
    grew = np.abs(e["change"]) > 0.5
    assert e["change"].size == 14 and grew.sum() == 7  # 16 less the shadow (left half) and the pixel not scored (right)
    np.testing.assert_allclose(e["model"], 0.05, rtol=1e-6)  # (0.1^2 + 0.3^2) / 2: the seeds' squared errors averaged per pixel
    np.testing.assert_allclose(e["last_observation"], np.where(grew, 1.2 ** 2, 0.2 ** 2), rtol=1e-6)
    np.testing.assert_allclose(e["two_date_mean"], np.where(grew, 1.0, 0.0), atol=1e-6)
    np.testing.assert_allclose(e["oracle"], np.where(grew, 1.0, 0.0))
    np.testing.assert_allclose(e["stability_known"], np.where(grew, 0.05, 0.0), rtol=1e-6, atol=1e-12)
    table = past_estimators(cube, seeds).set_index("change")
    assert (table["set"] == "unique").all() and (table["seeds"] == 2).all()
    assert table.loc["< 0.1", "pixels"] == 7 and table.loc["≥ 0.6", "pixels"] == 7 and table.loc["0.1-0.3", "pixels"] == 0
    assert np.isnan(table.loc["0.1-0.3", "model_rmse"])
    assert table.loc["< 0.1", "two_date_mean_rmse"] == pytest.approx(0.0, abs=1e-6)
    assert table.loc["< 0.1", "last_observation_rmse"] == pytest.approx(0.2, rel=1e-6)
    total = table.loc[ORACLE_GAP_ALL]
    assert total["pixels"] == 14 and total["share"] == 1 and total["model_rmse"] == pytest.approx(np.sqrt(0.05), rel=1e-6)
    assert total["stability_known_rmse"] == pytest.approx(np.sqrt(0.05 / 2), rel=1e-6)  # half the pixels exact, half the model's
    assert total["oracle_rmse"] == pytest.approx(np.sqrt(0.5))
    with pytest.raises(ValueError, match="different triplets"):
        past_estimator_errors(cube, [seeds[0]["unique"], seeds[1]["unique"].assign_coords(triplet=[1])])
    with pytest.raises(ValueError, match="lai_true"):
        past_estimators(cube.drop_vars("lai_true"), seeds)


def test_the_floor_section_says_where_the_model_wins_and_loses_against_the_oracle(report):
    run, pdf = report
    floor = json.loads((run / "report.json").read_text())["noise_floor"]
    assert _texts(floor["verdict"]).endswith(
        "Where it wins and loses, against the true LAI on the non-cloudy set: where the true LAI changed by < 0.1 LAI "
        "from t-1 to t (68% of the pixels) the oracle is almost exact (RMSE 0.038 LAI) and the final U-Net is not "
        "(0.222 LAI: the retrieval noise of the past dates it could not remove); where it changed by ≥ 0.6 LAI (7%) the final "
        "U-Net scores 0.956 against the oracle’s 1.052 LAI. Its change from the true LAI of t-1 follows the true change "
        "with a slope of 0.21 (1: every change forecast). How much of that noise a predictor could remove, on the "
        "non-cloudy pixels clear (SCL 4–6) at t-2 and t-1: where the true LAI changed by < 0.1 LAI the mean of the two "
        "past observations scores 0.170 LAI (the final U-Net: 0.215); taking it there and the final U-Net elsewhere, "
        "which needs the truth to know where, scores 0.351 LAI against the oracle’s 0.332 (the final U-Net: 0.367): "
        "still above the oracle (tables/past_estimators.csv).")
    assert "True change t-1 → t (LAI)" in _pdf_text(pdf)[1]
    caption = _texts(floor["gap"]["caption"])
    assert caption.startswith("Against the true LAI at t, on the pixels clear at t: the RMSE of the final U-Net and of")


def test_the_floor_section_of_a_run_without_the_oracle_gap_table_renders_without_it(tmp_path, figure_dir):
    """A run folder of lai before 2026-12-07 has no tables/oracle_gap.csv: no table, no sentence, the rest as before."""
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir)
    (run / "tables" / "oracle_gap.csv").unlink()
    (run / "tables" / "past_estimators.csv").unlink()
    write_report(run)
    floor = json.loads((run / "report.json").read_text())["noise_floor"]
    assert floor["gap"] is None and "wins and loses" not in _texts(floor["verdict"])
    assert "a predictor could remove" not in _texts(floor["verdict"])


def test_the_floor_section_says_below_the_oracle_where_knowing_the_unchanged_pixels_would_get_there(tmp_path, figure_dir):
    """The verdict follows the numbers: a composite under the oracle is said to be below it; without the oracle-gap
    table the sentence stands on its own."""
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir)
    path = run / "tables" / "past_estimators.csv"
    past = pd.read_csv(path)
    past.loc[past["change"] == "all", "stability_known_rmse"] = 0.300
    past.to_csv(path, index=False)
    (run / "tables" / "oracle_gap.csv").unlink()
    write_report(run)
    verdict = _texts(json.loads((run / "report.json").read_text())["noise_floor"]["verdict"])
    assert verdict.endswith("scores 0.300 LAI against the oracle’s 0.332 (the final U-Net: 0.367): below the oracle "
                            "(tables/past_estimators.csv).")
    assert "wins and loses" not in verdict


def test_the_floor_verdict_compares_one_model_with_the_floor_and_the_oracle(report):
    """The ratio to the noise floor is that of the model the oracle sentence compares (the chosen model, the mean of
    its seeds: noise_floor.csv's model_floor_ratio), not Table 1's first seed (1.60 beside a seeds' mean of 1.61)."""
    run, _ = report
    verdict = _texts(json.loads((run / "report.json").read_text())["noise_floor"]["verdict"])
    assert verdict.startswith("On the non-cloudy set the RMSE of the final U-Net is 1.43 times the noise floor (0.420 LAI).")


def test_a_comparison_without_interval_says_why():
    from lai.facts import MIN_SCORED_TRIPLETS
    from lai.report.inputs import diff_text

    row = {"diff": -0.028, "diff_lo": float("nan"), "diff_hi": float("nan"), "scored_triplets": "1", "triplets": "7"}
    assert diff_text(row).endswith(f"LAI, no interval: 1 of 7 triplets hold a scored pixel, fewer than {MIN_SCORED_TRIPLETS}")
    assert "[" not in diff_text(row) and "[" in diff_text({**row, "diff_lo": -0.04, "diff_hi": -0.01})
    # a set whose every comparison lacks an interval for one reason says it once, not after each comparator
    from lai.report.inputs import shared_no_interval
    from lai.report.prose import _verdicts

    rows = {o: {**row, "other": o, "verdict": "not resolved"} for o in ("persistence", "MLR")}
    assert shared_no_interval(list(rows.values())) == f"1 of 7 triplets hold a scored pixel, fewer than {MIN_SCORED_TRIPLETS}"
    said = plain(_verdicts(rows, ("persistence", "MLR")))
    assert said.count("no interval") == 1 and said.endswith("(no interval: 1 of 7 triplets hold a scored pixel, fewer than 10)")
    assert shared_no_interval([rows["MLR"], {**row, "diff_lo": -0.04, "diff_hi": -0.01}]) is None


def test_the_conclusions_read_as_plain_text_as_the_pdf_prints_them(report):
    """Notebook 05 prints them, so that nbval compares the report's sentences and numbers, not only its size."""
    from lai.report import conclusions_text
    from lai.report.text import plain, rich, strong

    run, pdf = report
    text = conclusions_text(run)
    assert text.startswith("- Model compared below: ") and "beats persistence" in text
    assert len(text.splitlines()) == len(json.loads((run / "report.json").read_text())["conclusions"])
    # hyphens aside: where the PDF breaks a word at a line's end, pypdf gives "persis- tence"
    printed = _pdf_text(pdf)[1].replace("- ", "").replace("-", "")
    # the lines are the PDF's bullets, in order, each whole up to the next (a line cut short fails)
    bullets = " • ".join(" ".join(line.removeprefix("- ").split()).replace("-", "") for line in text.splitlines())
    assert f"• {bullets}" in printed
    assert plain(rich("a ", strong("b"), [" c"])) == "a b c"


def test_a_report_of_an_unfinished_run_says_so_and_reads_the_profile_not_the_missing_tables(tmp_path):
    """Notebook 05 on a folder where only notebook 01 had run: the report said "not run in this profile (extras:
    false)" of a profile with extras on, and "no other candidate" of one with candidates, without a word that the
    run was unfinished."""
    from lai.config import Profile
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir=None)
    for name in ("table1", "comparisons", "training", "extras"):
        (run / "tables" / f"{name}.csv").unlink()
    profile = Profile(name="quick_test", extras=True, candidates=["final_gated"])
    (run / "profile.yaml").write_text(yaml.safe_dump(profile.to_dict(), sort_keys=False))
    write_report(run)
    data = json.loads((run / "report.json").read_text())
    warnings = [plain(w) for w in data["warnings"]]
    assert any(w.startswith("Incomplete run. This run folder holds no tables/training.csv, tables/table1.csv, "
                            "tables/comparisons.csv") for w in warnings), warnings
    said = " ".join(plain(c) for c in data["conclusions"])
    assert "not run yet: this profile runs them (extras: true)" in said and "not run in this profile" not in said
    assert "the choice among it and 1 candidate is not made yet" in said and data["extras_pending"] is True


def test_the_large_errors_sentence_counts_the_triplets_it_lists():
    """"100 % in its 5 worst triplets" was printed of a set whose table listed 3."""
    from lai.report.results import _worst

    assert _worst("12 15 10") == "3 worst triplets" and _worst(14) == "worst triplet"
    assert _worst("1 2 3 4 5") == "5 worst triplets"


def test_a_report_of_an_overridden_profile_says_so_on_every_page(tmp_path):
    """A run of the tiny profile with --set overrides was headed "lai run report: tiny", as the profile itself."""
    import yaml

    from lai.config import load_profile
    from lai.report.inputs import Run
    from lai.report.prose import _title

    for folder, overrides in (("plain", []), ("changed", ["train.epochs=2", "splits.held_out_areas=[]"])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "profile.yaml").write_text(yaml.safe_dump(load_profile("tiny", overrides).to_dict()))
    assert _title(Run(tmp_path / "plain"))["header"] == "lai run report: tiny (simulated data)"
    changed = _title(Run(tmp_path / "changed"))
    assert changed["header"] == "lai run report: tiny, 2 settings changed (simulated data)"
    assert changed["changed"] == ["splits.held_out_areas", "train.epochs"]
