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

from lai import figures
from lai.config import EncodingConfig, Profile
from lai.facts import PAPER_TABLE1, ROWS
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
        ds["lai_true"] = (("triplet", "y", "x"), (base * season[:, 2, None, None]).astype(np.float32))
    return ds


def make_predictions(ds: xr.Dataset, seed: int = 1) -> dict[str, xr.Dataset]:
    """Prediction datasets per test set, as lai.evaluate saves them (an empty set included)."""
    rng = np.random.default_rng(seed)
    split = ds["split"].values.astype(str)
    out = {}
    for name in ("non_cloudy", "cloudy", "unique"):
        idx = np.flatnonzero(split == name)
        ref = ds["lai_true"].values[idx] if "lai_true" in ds else ds["lai"].values[idx, 2]
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
                          "pixels": 1000, "floor_rmse_strict": [0.3, 0.25, 0.28], "pixels_strict": 800})
    t1 = table1(pd.DataFrame(metrics), floor)
    baselines = []
    for b, r2s in (("MLR", (0.45, 0.2, 0.3)), ("RF", (0.55, 0.25, 0.35)), ("persistence", (0.93, -0.4, 0.8)),
                   ("extrapolation", (0.7, -2.7, 0.5))):
        for s, r2 in zip(("non_cloudy", "cloudy", "unique"), r2s):
            baselines.append({"baseline": b, "set": s, "triplets": 4, "rmse": (1 - r2) ** 0.5 * 1.2,
                              "rmse_norm": (1 - r2) ** 0.5 * 1.2 / 5, "r2": r2, "n_pixels": 4000,
                              "truth_rmse_cloudy": 1.1 + rng.uniform(0, 0.5), "cloudy_pixels": 300})
    final = t1[t1["row"] == "final"][["set", "rmse", "rmse_norm", "r2", "n_pixels"]].assign(triplets=4,
                                                                                           truth_rmse_cloudy=0.9)
    splits = pd.DataFrame({"split": list(SPLITS[:5]), "triplets": [40, 5, 4, 4, 4], "regions": [4, 3, 2, 2, 2],
                           "clear_past": [0.8, 0.8, 0.97, 0.3, 0.8], "cloud_past": [0.15, 0.1, 0.01, 0.65, 0.12],
                           "clear_t": [0.8, 0.85, 0.9, 0.7, 0.8]})
    training = pd.DataFrame({"row": ["s1", "s1_masks", "s1_masks_seas", "s2_masks", "s2_masks_seas", "final"],
                             "epochs": [3] * 6, "seconds": [12.3, 13.1, 14.0, 9.5, 9.9, 30.2],
                             "samples_per_s": [55.2, 54.1, 52.3, 70.1, 69.0, 31.4],
                             "val_rmse": [1.2, 0.9, 0.85, 0.6, 0.55, 0.5]})
    training = training.assign(best_epoch=[3, 3, 2, 1, 2, 3], best_val_rmse=training["val_rmse"],
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
    return {"table1": t1, "baselines": with_floor(pd.DataFrame(baselines), floor), "final_metrics": final, "extras": extras,
            "splits": splits, "training": training, "noise_floor": floor, "comparisons": comparisons, "seeds": seeds}


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
    """Every figure of a run (``figures.FIGURE_NAMES``) from the synthetic cube, written to ``folder``."""
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
    }
    assert set(makers) == set(figures.FIGURE_NAMES)
    for name, make in makers.items():
        figures.save(make(), folder / f"{name}.png", dpi=dpi)
    return folder


def build_fake_run(root: Path, figure_dir: Path | None = None, with_figures=figures.FIGURE_NAMES,
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
    for name in figures.FIGURE_NAMES:
        assert (figure_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
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
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def report(tmp_path_factory, figure_dir):
    from lai.report import write_report

    run = build_fake_run(tmp_path_factory.mktemp("runs"), figure_dir)
    return run, write_report(run)


def test_report_has_the_key_sections(report):
    run, pdf = report
    assert pdf == run / "report.pdf" and pdf.is_file()
    pages, text = _pdf_text(pdf)
    assert pages >= 6
    flat = " ".join(text.split())
    for needle in ("Table 1", "MLR", "RF", "persistence", "extrapolation", "simulated", "Provenance", GIT_REV,
                   "0.163", "0.930", "0.0445", "0.0166", "/data/sim_lnb#2/my_folder", "/data/cube_*abc*.nc",
                   "quick_test #1",
                   "tile blocks", "Training", "Reading", "What this run shows", "Noise floor", "not converged",
                   "is not resolved against MLR", "loses to RF", "beats persistence", "one seed", "Final, residual_x",
                   "Beyond the paper", "see their table",
                   "0.42", "[0."):
        assert needle in flat, needle
    assert "not available" not in flat  # every figure was there
    assert not list(run.glob(".*partial*"))


def test_missing_figure_gives_a_note(tmp_path, figure_dir):
    from lai.report import write_report

    run = build_fake_run(tmp_path, figure_dir, with_figures=("learning_curves",), kind="real")
    (run / "figures" / "learning_curves.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")  # unreadable image
    (run / "tables" / "baselines.csv").unlink()
    (run / "tables" / "table1.csv").write_text("foo,bar\n1,2\n")  # malformed: costs its section only
    (run / "provenance.json").write_text("{not json")
    pdf = write_report(run)
    _, text = _pdf_text(pdf)
    flat = " ".join(text.split())
    assert "not available" in flat
    assert "Figure density: not available" in flat and "learning_curves" in flat
    assert "Baseline table: not available" in flat and "Provenance: not available" in flat
    assert "could not be built" in flat
    assert "Real data" in flat


def test_failing_compile_leaves_no_report(tmp_path, monkeypatch):
    import lai.report as report_mod

    run = build_fake_run(tmp_path, figure_dir=None)

    def broken(source, output, root):
        Path(output).write_bytes(b"%PDF-1.7 half written")
        raise RuntimeError("typst exploded")

    monkeypatch.setattr(report_mod, "_compile", broken)
    with pytest.raises(report_mod.ReportError, match="typst exploded"):
        report_mod.write_report(run)
    assert not (run / "report.pdf").exists()
    assert not list(run.glob(".*partial*"))


def test_typst_error_leaves_no_report(tmp_path, monkeypatch):
    """A real Typst failure (invalid markup) goes through the same path."""
    import lai.report as report_mod

    run = build_fake_run(tmp_path, figure_dir=None)
    monkeypatch.setattr(report_mod, "build_source", lambda run_dir: "#let x = (\n")
    with pytest.raises(report_mod.ReportError):
        report_mod.write_report(run)
    assert not (run / "report.pdf").exists()


def test_text_from_data_is_escaped():
    from lai.report import fmt, typst_str, typst_text

    assert typst_str('a_b#c"d\\e\n') == '"a_b#c\\"d\\\\e\\n"'
    assert typst_text("x").endswith(";")
    assert fmt(-0.04451) == "\u22120.045" and fmt(float("nan")) == "–" and fmt(0.1234) == "0.123"
    assert fmt(-0.0001) == "0.000"
