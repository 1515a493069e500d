"""Assign triplets to train, val and the paper's three test sets.

Labels: ``train``, ``val``, ``non_cloudy`` (past dates mostly clear), ``cloudy``
(past dates mostly cloudy), ``unique`` (held-out areas, never trained on) and
``buffer`` (tiles reserved for testing that fit neither test set, or exceed a
cap: kept out of training so that they cannot leak, and out of the tests).

With ``sampling="blocks"`` (default) whole blocks of neighbouring tiles, over
all dates, go to one set, so no test tile has a training neighbour or a
training copy of itself at another date. ``sampling="random"`` draws test
triplets at random as the paper did (test tiles then have training neighbours).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lai.config import SplitConfig
from lai.facts import TEST_SETS  # noqa: F401 - the test set labels

LABELS = ("train", "val", "non_cloudy", "cloudy", "unique", "buffer")


def assign_splits(meta: pd.DataFrame, cfg: SplitConfig) -> np.ndarray:
    """Return one label per row of ``meta``.

    ``meta`` needs columns country, area, grid_row, grid_col, clear_t0, clear_t1,
    clear_t2, cloud_t0, cloud_t1 (fractions per time step).
    """
    rng = np.random.default_rng(cfg.seed)
    n = len(meta)
    labels = np.full(n, "train", dtype=object)
    region = (meta["country"] + "_" + meta["area"]).to_numpy()
    held = np.isin(region, cfg.held_out_areas) | np.isin(meta["area"].to_numpy(), cfg.held_out_areas)
    labels[held] = "unique"

    if cfg.sampling == "blocks":
        block = (
            region
            + ":" + (meta["grid_row"].to_numpy() // cfg.block_size).astype(str)
            + ":" + (meta["grid_col"].to_numpy() // cfg.block_size).astype(str)
        )
    else:
        block = np.arange(n).astype(str)
    units = np.array(sorted(set(block[~held])))
    order = rng.permutation(len(units))
    n_test = int(round(cfg.test_fraction * len(units)))
    n_val = int(round(cfg.val_fraction * len(units)))
    role = dict.fromkeys(units, "train")
    role.update(dict.fromkeys(units[order[:n_test]], "test"))
    role.update(dict.fromkeys(units[order[n_test : n_test + n_val]], "val"))
    unit_role = np.array([role.get(b, "unique") for b in block], dtype=object)

    clear_past = meta[["clear_t0", "clear_t1"]].mean(axis=1).to_numpy()
    cloud_past = meta[["cloud_t0", "cloud_t1"]].mean(axis=1).to_numpy()
    evaluable = meta["clear_t2"].to_numpy() >= cfg.min_clear_target

    labels[(unit_role == "val") & ~held] = "val"
    test = (unit_role == "test") & ~held
    labels[test] = "buffer"
    non_cloudy = test & evaluable & (clear_past >= cfg.clear_past_threshold)
    cloudy = test & evaluable & (cloud_past >= cfg.cloudy_past_threshold) & ~non_cloudy
    for name, chosen, cap in (("non_cloudy", non_cloudy, cfg.max_non_cloudy), ("cloudy", cloudy, cfg.max_cloudy)):
        idx = np.flatnonzero(chosen)
        if cap is not None and len(idx) > cap:
            idx = np.sort(rng.choice(idx, cap, replace=False))
        labels[idx] = name
    return labels.astype(str)


def split_counts(labels) -> dict[str, int]:
    labels = np.asarray(labels)
    return {name: int((labels == name).sum()) for name in LABELS}
