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
from lai.facts import BUFFER, SET_TITLES, SPLIT_LABELS, TEST_SETS, TRAIN, VAL

LABELS = SPLIT_LABELS  # every split a triplet can get (lai.facts)


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
    labels[test] = BUFFER
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


def _now(cfg: SplitConfig, name: str) -> str:
    value = getattr(cfg, name)
    if isinstance(value, list):
        value = ", ".join(map(str, value)) or "none"
    return f"splits.{name} (now {value})"


def _cloud_set_hint(name: str, counts: dict[str, int], cfg: SplitConfig) -> str:
    """Why a cloud test set (non_cloudy or cloudy) is empty and which parameters would fill it."""
    cap = "max_non_cloudy" if name == "non_cloudy" else "max_cloudy"
    if getattr(cfg, cap) == 0:
        return f"{_now(cfg, cap)} allows none: raise it or set it to null"
    more_blocks = f"raise {_now(cfg, 'test_fraction')}"
    if cfg.sampling == "blocks" and cfg.block_size > 1:
        more_blocks += f" or lower {_now(cfg, 'block_size')}"
    if not counts.get(BUFFER, 0):
        return f"no triplet was reserved for testing: {more_blocks}, or add triplets"
    past = (f"its t-2 and t-1 at least {_now(cfg, 'clear_past_threshold')} clear on average" if name == "non_cloudy"
            else f"its t-2 and t-1 at least {_now(cfg, 'cloudy_past_threshold')} cloudy on average")
    threshold = "clear_past_threshold" if name == "non_cloudy" else "cloudy_past_threshold"
    kind = "mostly clear" if name == "non_cloudy" else "mostly cloudy"
    return (f"a test triplet needs {past} and t at least {_now(cfg, 'min_clear_target')} clear, and none of the "
            f"{counts[BUFFER]} reserved for testing (buffer) does: lower splits.{threshold} or "
            f"splits.min_clear_target, {more_blocks}, or add triplets with {kind} past dates")


def empty_sets_warning(counts: dict[str, int], cfg: SplitConfig, regions=()) -> str | None:
    """Lines starting "warning: " that name each empty test set (and an empty train or val split) and the
    split parameters that would fill it; None when no set is empty.

    ``counts``: :func:`split_counts` of the labels; ``cfg``: the settings that assigned them; ``regions``:
    the data's COUNTRY_AREA names, offered as candidates for ``splits.held_out_areas``.
    """
    empty = [name for name in TEST_SETS if not counts.get(name, 0)]
    lines = []
    for name in (TRAIN, VAL):
        if not counts.get(name, 0):
            fraction = f"raise {_now(cfg, 'val_fraction')}" if name == "val" else (
                f"lower {_now(cfg, 'test_fraction')} and {_now(cfg, 'val_fraction')}, or hold out fewer areas")
            lines.append(f"the {name} split is empty, so training will stop: {fraction}, or add triplets")
    if empty:
        titles = ", ".join(f"{SET_TITLES[n]} ({n})" for n in empty)
        lines.append(f"test sets empty ({len(empty)} of {len(TEST_SETS)}): {titles}; their scores will be NaN, "
                     "noted \"empty\" in the tables")
    for name in empty:
        if name == "unique":
            present = sorted(set(map(str, regions)))
            where = f"no triplet lies in {_now(cfg, 'held_out_areas')}"
            if len(present) == 1:
                hint = (f"{where}, and the data's one region, {present[0]}, is needed for training: add triplets "
                        "of another region and name it in splits.held_out_areas")
            else:
                offer = f"; this data's regions: {', '.join(present)}" if present else ""
                hint = (f"{where}{offer}: name a region of the data there (its triplets then leave training), "
                        "or add triplets from the held-out regions")
        else:
            hint = _cloud_set_hint(name, counts, cfg)
        lines.append(f"{SET_TITLES[name]} ({name}) is empty: {hint}")
    return "\n".join(f"warning: {line}" for line in lines) or None


def cube_split_warning(ds) -> str | None:
    """:func:`empty_sets_warning` of a cube (an ``xarray.Dataset`` from :func:`lai.cube.open_cube`), with
    the split settings stored in the cube."""
    import dataclasses
    import json

    stored = json.loads(ds.attrs.get("splits_config", "{}"))
    known = {f.name for f in dataclasses.fields(SplitConfig)}  # a cube of another lai version may hold other keys
    cfg = SplitConfig(**{k: v for k, v in stored.items() if k in known})
    regions = np.char.add(np.char.add(ds["country"].values.astype(str), "_"), ds["area"].values.astype(str))
    return empty_sets_warning(split_counts(ds["split"].values), cfg, regions)
