"""Shared fixtures: a small hand-written LNB folder, and simulated data of the tiny profile."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from lai.lnb import MASK_DIR, S1_DIR, S2_DIR, SERIES_CSV, TRUTH_DIR, TileName


def write_tiff(path: Path, array: np.ndarray, **kw) -> None:
    """Write (bands, H, W) or (H, W) ``array`` as a GeoTIFF without georeferencing (like the real LNB files)."""
    array = array[None] if array.ndim == 2 else array
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", height=array.shape[1], width=array.shape[2], count=array.shape[0], dtype=array.dtype)
    profile.update(kw)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def make_lnb(root: Path, n_triplets: int = 3, size: int = 16, seed: int = 0, truth: bool = False,
             width: int | None = None) -> Path:
    """A valid LNB folder of ``n_triplets`` random triplets (one area, tiles on a row) of size x width pixels."""
    rng = np.random.default_rng(seed)
    shape = (size, width or size)
    rows = []
    for k in range(n_triplets):
        start = dt.date(2019, 3, 1) + dt.timedelta(days=10 * k)
        names = [
            TileName("SPAIN", "BADAJOZ", start, start + dt.timedelta(days=10), i, 3 + i, 0, k).format() for i in range(3)
        ]
        for name in names:
            write_tiff(root / S1_DIR / name, rng.uniform(-25, -5, (2, *shape)).astype(np.float32))
            write_tiff(root / S2_DIR / name, rng.uniform(0, 6, shape).astype(np.float32))
            write_tiff(root / MASK_DIR / name, rng.choice([4, 5, 8], shape).astype(np.uint8))
        if truth:
            write_tiff(root / TRUTH_DIR / names[2], rng.uniform(0, 6, shape).astype(np.float32))
        rows.append(names)
    pd.DataFrame(rows, columns=["0", "1", "2"]).to_csv(root / SERIES_CSV, index=False)
    return root


@pytest.fixture
def lnb(tmp_path) -> Path:
    return make_lnb(tmp_path / "lnb")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """The tiny profile simulated once per test session, and its cube: (profile, lnb folder, cube path)."""
    from lai.config import load_profile
    from lai.cube import build_cube
    from lai.simulate import simulate

    root = tmp_path_factory.mktemp("tiny")
    profile = load_profile("tiny")
    simulate(profile.simulate, root / "lnb", progress=False)
    build_cube(root / "lnb", root / "cube.nc", profile.splits, profile.encoding, progress=False)
    return profile, root / "lnb", root / "cube.nc"


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory):
    """The final row of the tiny profile trained on simulated data, two batches per stage (numbers mean nothing)."""
    from lai.config import load_profile
    from lai.train import train_rows

    _, _, cube = tiny_data
    runs = tmp_path_factory.mktemp("runs")
    train_rows(load_profile("tiny", ["train.max_batches_per_epoch=2"]), cube, runs, ["final"], progress=False)
    return runs / "final"
