"""Split assignment: the frozen thresholds, caps and held-out areas, on hand-made triplet metadata."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lai.config import SplitConfig, load_profile
from lai.facts import BUFFER, SET_TITLES, TRAIN, VAL
from lai.splits import assign_splits, empty_sets_warning, neighbour_leaks, regions_of, scene_start, split_counts

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
    clear_past = np.array([0.95, 0.9, 0.89, 0.1, 0.2, 0.95, 0.0, 0.0])
    cloud_past = np.array([0.0, 0.05, 0.05, 0.5, 0.49, 0.0, 0.9, 0.9])
    clear_t = np.array([0.5, 0.3, 0.9, 0.9, 0.9, 0.29, 0.31, 0.29])  # the last: cloudy past, too little to score at t
    cfg = SplitConfig(sampling="random", test_fraction=0.99, val_fraction=0.0)
    labels = assign_splits(_meta(clear_past, cloud_past, clear_t), cfg)
    assert list(labels) == ["non_cloudy", "non_cloudy", "buffer", "cloudy", "buffer", "buffer", "cloudy", "buffer"]


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
    by_area = assign_splits(meta.reset_index(drop=True), SplitConfig(held_out_areas=["PIEMONTE"], block_size=1))
    assert list(by_area) == list(labels)  # the area's name alone names it too


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
    assert "Non-cloudy" not in empty_sets_warning(counts, advised)
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


# --------------------------------------------------------------------------- the neighbour promise, on the plans


def _plan_meta(sim, seed: int) -> pd.DataFrame:
    """The metadata ``assign_splits`` takes, for every triplet the simulator plans (tile positions as the file
    names give them, no pixels), with cloud fractions drawn at random: U-shaped per scene and date, varied per tile."""
    from lai.simulate.write import plan

    rows = [{"country": s.region.country, "area": s.region.area, "grid_row": r, "grid_col": c + s.col_offset,
             "date": f"{s.region.name}:{s.index}:{w}"} for s in plan(sim) for w, r, c in s.picks]
    meta = pd.DataFrame(rows)
    rng = np.random.default_rng(seed)
    keys = sorted(set(meta["date"]))
    scene_cloud = dict(zip(keys, rng.beta(0.2, 0.3, (len(keys), 3))))
    cloud = np.clip(np.stack([scene_cloud[k] for k in meta["date"]]) + rng.normal(0, 0.1, (len(meta), 3)), 0, 1)
    clear = np.clip(1 - 1.15 * cloud, 0, 1)
    return meta.assign(**{f"cloud_t{i}": cloud[:, i] for i in range(3)}, **{f"clear_t{i}": clear[:, i] for i in range(3)})


def _positions(meta, labels, names) -> set:
    mask = np.isin(labels, names)
    return set(zip(regions_of(meta)[mask], meta["grid_row"][mask], meta["grid_col"][mask]))


@pytest.mark.parametrize("profile", ["quick", "standard", "gpu", "paper"])
def test_no_test_tile_has_a_training_or_validation_neighbour(profile):
    """Splits computed on the simulator's plan of each scored profile (any cloud fractions: three draws, and
    all clear, all cloudy): no non-cloudy or cloudy tile has a train or val tile among its 8 neighbours, nor at
    its own position at another date; the test sets are not empty."""
    cfg = load_profile(profile)
    base = _plan_meta(cfg.simulate, 0)
    frames = [_plan_meta(cfg.simulate, seed) for seed in (0, 1, 2)]
    frames.append(base.assign(**{f"cloud_t{i}": 0.0 for i in range(3)}, **{f"clear_t{i}": 1.0 for i in range(3)}))
    frames.append(base.assign(cloud_t0=1.0, cloud_t1=1.0, clear_t0=0.0, clear_t1=0.0))
    for meta in frames:
        labels = assign_splits(meta, cfg.splits)
        assert not len(neighbour_leaks(meta, labels)), profile
        test = _positions(meta, labels, ("non_cloudy", "cloudy"))
        assert test, profile
        near = {(g, r + dr, c + dc) for g, r, c in test for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
        assert not near & _positions(meta, labels, (TRAIN, VAL)), profile
    # the check can fail: the paper's random sampling puts training tiles beside test tiles
    rnd = SplitConfig(**{**cfg.splits.__dict__, "sampling": "random"})
    assert len(neighbour_leaks(frames[0], assign_splits(frames[0], rnd)))


def test_the_neighbour_check_sees_diagonals_and_its_own_position_in_its_region_only():
    """The oracle the profiles' test relies on: a training tile diagonal to a test tile, or at its position on another
    date, is a leak; two tiles away or in another region is not."""
    meta = pd.DataFrame({"country": ["SPAIN"] * 5 + ["ITALY"], "area": ["BADAJOZ"] * 5 + ["PIEMONTE"],
                         "grid_row": [5, 6, 5, 9, 11, 6], "grid_col": [5, 6, 5, 9, 9, 6]})
    labels = np.array(["train", "non_cloudy", "cloudy", "cloudy", "val", "non_cloudy"])
    leaks = neighbour_leaks(meta, labels)
    assert sorted(leaks.index) == [1, 2]  # diagonal (6, 6); the same tile (5, 5); not (9, 9), nor ITALY's (6, 6)
    assert list(leaks["split"]) == ["non_cloudy", "cloudy"]


@pytest.mark.parametrize("profile, least_train", [("quick", 300), ("standard", 1500)])
def test_validation_is_big_and_from_several_regions(profile, least_train):
    cfg = load_profile(profile)
    for seed in (0, 1):
        meta = _plan_meta(cfg.simulate, seed)
        labels = assign_splits(meta, cfg.splits)
        val = labels == VAL
        assert val.sum() >= 200 and len(set(regions_of(meta)[val])) >= 3
        assert (labels == TRAIN).sum() >= least_train


def test_reserved_tiles_without_a_test_triplet_go_back_to_training():
    """A 1x8 strip of tiles, all reserved for testing, of which only tile 0 has a non-cloudy triplet: tile 1 is its
    buffer, tiles 2-7 (no test triplet, no test neighbour) train or validate instead of lying idle."""
    clear = np.r_[1.0, np.full(7, 0.6)]
    meta = _meta(clear, 1 - clear, np.ones(8))
    labels = assign_splits(meta, SplitConfig(block_size=1, test_fraction=0.99, val_fraction=0.0))
    assert list(labels[:2]) == ["non_cloudy", BUFFER] and set(labels[2:]) == {TRAIN}
    with_val = assign_splits(meta, SplitConfig(block_size=1, test_fraction=0.8, val_fraction=0.19))
    assert with_val[0] == "non_cloudy" and with_val[1] == BUFFER and VAL in set(with_val[2:])


def test_scenes_are_runs_of_grid_columns():
    """Blocks start at each scene's first column (the simulator leaves one empty column between scenes)."""
    region = np.array(["A"] * 5 + ["B"] * 2)
    col = np.array([0, 1, 3, 5, 4, 0, 7])
    assert list(scene_start(region, col)) == [0, 0, 3, 3, 3, 0, 7]


def test_test_and_validation_draws_take_one_block_of_each_region_in_turn():
    """The first units drawn (test, then validation) spread over the regions: any three consecutive draws hold one
    unit of each of three regions, whatever the random order within a region."""
    from lai.splits import _by_region_in_turn

    regions = ["A"] * 7 + ["B"] * 5 + ["C"] * 9
    for seed in range(5):
        order = _by_region_in_turn(np.arange(len(regions)), regions, np.random.default_rng(seed))
        drawn = [regions[i] for i in order]
        assert sorted(order) == list(range(len(regions)))
        for k in range(0, 15, 3):  # while every region still has units
            assert sorted(drawn[k:k + 3]) == ["A", "B", "C"], (seed, drawn)
