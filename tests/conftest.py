"""Shared fixtures: a small hand-written LNB folder, and simulated data of the tiny profile (helpers: tests/helpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_lnb


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
