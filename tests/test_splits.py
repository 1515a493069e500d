"""Split assignment: the frozen thresholds, caps and held-out areas, on hand-made triplet metadata."""
from __future__ import annotations

import numpy as np
import pandas as pd

from lai.config import SplitConfig, load_profile
from lai.facts import SET_TITLES
from lai.splits import assign_splits, empty_sets_warning, split_counts

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


def test_empty_sets_warning_names_each_set_and_what_fills_it():
    """Six triplets with a third of each past cloudy, as a small real folder gives: every test set empty, and
    the warning's advice, taken, fills them."""
    meta = _meta(np.full(6, 0.67), np.full(6, 0.33), np.full(6, 0.67))
    cfg = SplitConfig(sampling="random", test_fraction=0.3, val_fraction=0.1)
    counts = split_counts(assign_splits(meta, cfg))
    assert counts == {"train": 3, "val": 1, "non_cloudy": 0, "cloudy": 0, "unique": 0, "buffer": 2}
    lines = empty_sets_warning(counts, cfg, ["SPAIN_BADAJOZ"]).splitlines()
    assert all(line.startswith("warning: ") for line in lines) and len(lines) == 4
    for title, line in zip(SET_TITLES.values(), lines[1:]):
        assert line.startswith(f"warning: {title} (")
    assert "splits.clear_past_threshold (now 0.9)" in lines[1] and "splits.test_fraction (now 0.3)" in lines[1]
    assert "splits.cloudy_past_threshold (now 0.5)" in lines[2]
    assert "splits.held_out_areas (now CZECHIA_VYSOCINA, ITALY_PIEMONTE)" in lines[3]
    assert "the data's one region, SPAIN_BADAJOZ, is needed for training: add triplets of another region" in lines[3]
    two = empty_sets_warning(counts, cfg, ["SPAIN_BADAJOZ", "ITALY_LAZIO", "SPAIN_BADAJOZ"]).splitlines()[-1]
    assert "this data's regions: ITALY_LAZIO, SPAIN_BADAJOZ: name a region of the data there" in two

    advised = SplitConfig(sampling="random", test_fraction=0.5, val_fraction=0.1, clear_past_threshold=0.6)
    counts = split_counts(assign_splits(meta, advised))
    assert counts["non_cloudy"] > 0
    assert "Non cloudy" not in empty_sets_warning(counts, advised)
    meta.loc[5, "area"] = "VYSOCINA"
    counts = split_counts(assign_splits(meta, SplitConfig(held_out_areas=["SPAIN_VYSOCINA"])))
    assert counts["unique"] == 1 and "Unique areas" not in empty_sets_warning(counts, SplitConfig())


def test_empty_sets_warning_other_causes_and_none():
    full = {"train": 5, "val": 1, "non_cloudy": 1, "cloudy": 1, "unique": 1, "buffer": 0}
    assert empty_sets_warning(full, SplitConfig()) is None
    capped = empty_sets_warning({**full, "cloudy": 0, "buffer": 3}, SplitConfig(max_cloudy=0))
    assert capped.splitlines()[-1].startswith("warning: Cloudy (cloudy) is empty: splits.max_cloudy (now 0) allows none")
    none_reserved = empty_sets_warning({**full, "non_cloudy": 0, "val": 0}, SplitConfig(block_size=2))
    assert "the val split is empty, so training will stop: raise splits.val_fraction" in none_reserved
    assert "no triplet was reserved for testing: raise splits.test_fraction (now 0.2) or lower splits.block_size" in none_reserved
