"""Split assignment: the frozen thresholds, caps and held-out areas, on hand-made triplet metadata."""
from __future__ import annotations

import numpy as np
import pandas as pd

from lai.config import SplitConfig, load_profile
from lai.splits import assign_splits, split_counts

THRESHOLDS = ("clear_past_threshold", "cloudy_past_threshold", "min_clear_target")


def _meta(clear_past, cloud_past, clear_t, region=("SPAIN", "BADAJOZ")) -> pd.DataFrame:
    """One triplet per value, each on its own tile position of one region."""
    n = len(clear_past)
    return pd.DataFrame({
        "country": [region[0]] * n, "area": [region[1]] * n,
        "grid_row": np.arange(n), "grid_col": np.zeros(n, int),
        "clear_t0": clear_past, "clear_t1": clear_past, "clear_t2": clear_t,
        "cloud_t0": cloud_past, "cloud_t1": cloud_past,
    })


def test_the_scored_profiles_keep_the_frozen_thresholds():
    """quick and paper compare models on test sets chosen by the same rules (changing them needs a stated reason)."""
    frozen = SplitConfig()
    assert (frozen.clear_past_threshold, frozen.cloudy_past_threshold, frozen.min_clear_target) == (0.9, 0.5, 0.3)
    for name in ("quick", "paper"):
        splits = load_profile(name).splits
        assert [getattr(splits, k) for k in THRESHOLDS] == [getattr(frozen, k) for k in THRESHOLDS], name


def test_thresholds_decide_the_test_set():
    clear_past = np.array([0.95, 0.9, 0.89, 0.1, 0.2, 0.95, 0.0])
    cloud_past = np.array([0.0, 0.05, 0.05, 0.5, 0.49, 0.0, 0.9])
    clear_t = np.array([0.5, 0.3, 0.9, 0.9, 0.9, 0.29, 0.31])
    cfg = SplitConfig(sampling="random", test_fraction=0.99, val_fraction=0.0)
    labels = assign_splits(_meta(clear_past, cloud_past, clear_t), cfg)
    assert list(labels) == ["non_cloudy", "non_cloudy", "buffer", "cloudy", "buffer", "buffer", "cloudy"]


def test_caps_move_the_surplus_to_the_buffer():
    n = 40
    meta = _meta(np.r_[np.ones(n // 2), np.zeros(n // 2)], np.r_[np.zeros(n // 2), np.ones(n // 2)], np.ones(n))
    cfg = SplitConfig(sampling="random", test_fraction=0.99, val_fraction=0.0, max_non_cloudy=5, max_cloudy=7)
    counts = split_counts(assign_splits(meta, cfg))
    assert counts["non_cloudy"] == 5 and counts["cloudy"] == 7 and counts["buffer"] == n - 12


def test_held_out_areas_are_unique_whatever_their_clouds():
    meta = pd.concat([_meta([1.0] * 4, [0.0] * 4, [1.0] * 4), _meta([0.0] * 3, [1.0] * 3, [1.0] * 3, ("ITALY", "PIEMONTE"))])
    labels = assign_splits(meta.reset_index(drop=True), SplitConfig(held_out_areas=["ITALY_PIEMONTE"], block_size=1))
    assert list(labels[4:]) == ["unique"] * 3 and "unique" not in labels[:4]
