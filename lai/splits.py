"""Assign triplets to train, val and the paper's three test sets.

Labels: ``train``, ``val``, ``non_cloudy`` (past dates mostly clear), ``cloudy``
(past dates mostly cloudy), ``unique`` (held-out areas, never trained on) and
``buffer`` (kept out of training and testing: the other dates of a test tile, and
the tiles around a test tile).

With ``sampling="blocks"`` (default) the split is decided per tile position (region,
grid row, grid column) over all dates:

1. whole blocks of ``block_size`` x ``block_size`` positions are drawn for testing
   (``test_fraction``), validation (``val_fraction``) or training;
2. in the test blocks, the triplets that meet the thresholds (and the caps) form the
   non-cloudy and cloudy sets; a position holding one of them is a *test tile*;
3. every position among the 8 neighbours of a test tile, and the other dates of a test
   tile, become ``buffer``; the test-block positions that hold no test triplet and touch
   no test tile are given back to validation (until it holds its ``val_fraction`` share
   of the positions) and training.

So no test tile has a training or validation tile among its 8 neighbours (within its
region, hence within its scene), nor a training copy of itself at another date; test
and training triplets of the same scene and date lie at least two tiles apart.
``sampling="random"`` draws test triplets at random as the paper did (test tiles then
have training neighbours).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lai.config import SplitConfig
from lai.facts import BUFFER, CLOUDY, NON_CLOUDY, SET_TITLES, SPLIT_LABELS, TEST_SETS, TRAIN, UNIQUE, VAL

LABELS = SPLIT_LABELS  # every split a triplet can get (lai.facts)
META_COLUMNS = ("country", "area", "grid_row", "grid_col", "clear_t0", "clear_t1", "clear_t2", "cloud_t0", "cloud_t1")


def regions_of(meta: pd.DataFrame) -> np.ndarray:
    """COUNTRY_AREA of every row of ``meta``."""
    return (meta["country"].astype(str) + "_" + meta["area"].astype(str)).to_numpy()


def assign_splits(meta: pd.DataFrame, cfg: SplitConfig) -> np.ndarray:
    """Return one label per row of ``meta``.

    ``meta`` needs columns country, area, grid_row, grid_col, clear_t0, clear_t1,
    clear_t2, cloud_t0, cloud_t1 (fractions per time step).
    """
    missing = [c for c in META_COLUMNS if c not in meta]
    if missing:
        raise ValueError(f"split metadata lacks column(s) {', '.join(missing)}")
    rng = np.random.default_rng(cfg.seed)
    n = len(meta)
    labels = np.full(n, TRAIN, dtype=object)
    region = regions_of(meta)
    held = np.isin(region, cfg.held_out_areas) | np.isin(meta["area"].to_numpy(), cfg.held_out_areas)
    labels[held] = UNIQUE

    row, col = meta["grid_row"].to_numpy(np.int64), meta["grid_col"].to_numpy(np.int64)
    if cfg.sampling == "blocks":
        start = scene_start(region, col)
        block = (region + ":" + start.astype(str) + ":" + (row // cfg.block_size).astype(str)
                 + ":" + ((col - start) // cfg.block_size).astype(str))
    else:
        block = np.arange(n).astype(str)
    units = np.array(sorted(set(block[~held])))
    unit_region = {b: g for b, g in zip(block, region)}
    order = _by_region_in_turn(units, [unit_region[u] for u in units], rng)
    n_test = int(round(cfg.test_fraction * len(units)))
    n_val = int(round(cfg.val_fraction * len(units)))
    role = dict.fromkeys(units, TRAIN)
    role.update(dict.fromkeys(units[order[:n_test]], "test"))
    role.update(dict.fromkeys(units[order[n_test : n_test + n_val]], VAL))
    unit_role = np.array([role.get(b, UNIQUE) for b in block], dtype=object)

    clear_past = meta[["clear_t0", "clear_t1"]].mean(axis=1).to_numpy()
    cloud_past = meta[["cloud_t0", "cloud_t1"]].mean(axis=1).to_numpy()
    evaluable = meta["clear_t2"].to_numpy() >= cfg.min_clear_target

    labels[(unit_role == VAL) & ~held] = VAL
    test = (unit_role == "test") & ~held
    labels[test] = BUFFER
    mostly_clear, mostly_cloudy = past_cloud_classes(clear_past, cloud_past, cfg)
    non_cloudy = test & evaluable & mostly_clear
    cloudy = test & evaluable & mostly_cloudy
    for name, chosen, cap in ((NON_CLOUDY, non_cloudy, cfg.max_non_cloudy), (CLOUDY, cloudy, cfg.max_cloudy)):
        idx = np.flatnonzero(chosen)
        if cap is not None and len(idx) > cap:
            idx = np.sort(rng.choice(idx, cap, replace=False))
        labels[idx] = name
    if cfg.sampling == "blocks":
        _guard_test_tiles(labels, region, row, col, held, test, cfg.val_fraction, rng)
    return labels.astype(str)


def past_cloud_classes(clear_past: np.ndarray, cloud_past: np.ndarray, cfg: SplitConfig) -> tuple[np.ndarray, np.ndarray]:
    """Which triplets the test sets' thresholds call mostly clear (non-cloudy) and mostly cloudy (cloudy, and not
    mostly clear), from the mean clear and cloud fractions of t-2 and t-1."""
    mostly_clear = clear_past >= cfg.clear_past_threshold
    return mostly_clear, (cloud_past >= cfg.cloudy_past_threshold) & ~mostly_clear


def scene_start(region: np.ndarray, col: np.ndarray) -> np.ndarray:
    """The first grid column of each tile's scene: a scene is a run of occupied grid columns of one region
    (the simulator leaves an empty column between the scenes of a region; real data: the region's grid)."""
    start = np.empty(len(col), np.int64)
    for g in np.unique(region):
        at = region == g
        cols = np.unique(col[at])
        first = cols[np.r_[True, np.diff(cols) > 1]]
        start[at] = first[np.searchsorted(first, col[at], side="right") - 1]
    return start


def _by_region_in_turn(units: np.ndarray, regions: list, rng: np.random.Generator) -> np.ndarray:
    """A random order of ``units`` that takes one unit of each region in turn, so that the test and
    validation draws (its first units) spread over the regions."""
    order = rng.permutation(len(units))
    seen: dict = {}
    turn = np.empty(len(units), np.int64)
    for i in order:
        turn[i] = seen.get(regions[i], 0)
        seen[regions[i]] = turn[i] + 1
    rank = np.empty(len(units), np.int64)
    rank[order] = np.arange(len(units))
    return np.lexsort((rank, turn))


def _guard_test_tiles(labels: np.ndarray, region, row, col, held, reserved, val_fraction: float,
                      rng: np.random.Generator) -> None:
    """In place: buffer around and under the test tiles; the reserved positions that hold no test triplet
    and touch no test tile go back to validation (up to its share of the positions) and training."""
    position = pd.Series(list(zip(region, row, col)))
    is_test = np.isin(labels, (NON_CLOUDY, CLOUDY))
    test_tiles = set(position[is_test])
    near = {(g, r + dr, c + dc) for g, r, c in test_tiles for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
    guarded = position.isin(near).to_numpy() & ~held
    labels[guarded & ~is_test] = BUFFER
    free = reserved & ~guarded
    if not free.any():
        return
    positions = pd.unique(position[~held])
    val_positions = set(position[labels == VAL])
    want_val = int(round(val_fraction * len(positions))) - len(val_positions)
    released = sorted(set(position[free]))
    order = _by_region_in_turn(np.arange(len(released)), [p[0] for p in released], rng)
    to_val = {released[i] for i in order[: max(0, want_val)]}
    labels[free] = np.where(position[free].isin(to_val).to_numpy(), VAL, TRAIN)


def neighbour_leaks(meta: pd.DataFrame, labels, others=(TRAIN, VAL), of=(NON_CLOUDY, CLOUDY)) -> pd.DataFrame:
    """The triplets of the splits ``of`` (the test sets) whose tile has a tile of ``others`` among its 8 neighbours
    or at its own position (another date), in the same region: one row per such triplet (empty when the splits
    keep their promise)."""
    labels = np.asarray(labels)
    region = regions_of(meta)
    row, col = meta["grid_row"].to_numpy(np.int64), meta["grid_col"].to_numpy(np.int64)
    taken = {(g, r, c) for g, r, c, lab in zip(region, row, col, labels) if lab in others}
    chosen = np.flatnonzero(np.isin(labels, of))
    leaks = [i for i in chosen if any((region[i], row[i] + dr, col[i] + dc) in taken for dr in (-1, 0, 1) for dc in (-1, 0, 1))]
    return meta.iloc[leaks].assign(split=labels[leaks])


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
    cap = "max_non_cloudy" if name == NON_CLOUDY else "max_cloudy"
    if getattr(cfg, cap) == 0:
        return f"{_now(cfg, cap)} allows none: raise it or set it to null"
    more_blocks = f"raise {_now(cfg, 'test_fraction')}"
    if cfg.sampling == "blocks" and cfg.block_size > 1:
        more_blocks += f" or lower {_now(cfg, 'block_size')}"
    past = (f"its t-2 and t-1 at least {_now(cfg, 'clear_past_threshold')} clear on average" if name == NON_CLOUDY
            else f"its t-2 and t-1 at least {_now(cfg, 'cloudy_past_threshold')} cloudy on average")
    threshold = "clear_past_threshold" if name == NON_CLOUDY else "cloudy_past_threshold"
    kind = "mostly clear" if name == NON_CLOUDY else "mostly cloudy"
    need = f"a test triplet needs {past} and t at least {_now(cfg, 'min_clear_target')} clear"
    if not counts.get(BUFFER, 0):
        returned = (f"; or the tiles reserved held no such triplet and went back to training ({need}): lower "
                    f"splits.{threshold} or splits.min_clear_target" if cfg.sampling == "blocks" else "")
        return f"no triplet was reserved for testing: {more_blocks}, or add triplets{returned}"
    return (f"{need}, and none of the {counts[BUFFER]} reserved for testing (buffer) does: lower splits.{threshold} or "
            f"splits.min_clear_target, {more_blocks}, or add triplets with {kind} past dates")


def empty_sets_warning(counts: dict[str, int], cfg: SplitConfig, regions=()) -> str | None:
    """Lines starting "warning: " that name each empty test set (and an empty train or val split) and the
    split parameters that would fill it; None when no set is empty.

    ``counts``: :func:`split_counts` of the labels; ``cfg``: the settings that assigned them; ``regions``:
    the data's COUNTRY_AREA names, offered as candidates for ``splits.held_out_areas``.
    """
    empty = [name for name in TEST_SETS if not counts.get(name, 0)]
    lines = []
    if not counts.get(TRAIN, 0) and not counts.get(VAL, 0):  # one remedy for both, not two that contradict
        lines.append(f"the {TRAIN} and {VAL} splits are empty, so training will stop: the test sets take every triplet; "
                     f"lower {_now(cfg, 'test_fraction')} or hold out fewer areas, or add triplets")
    for name in (TRAIN, VAL) if counts.get(TRAIN, 0) or counts.get(VAL, 0) else ():
        if not counts.get(name, 0):
            fraction = f"raise {_now(cfg, 'val_fraction')}" if name == VAL else (
                f"lower {_now(cfg, 'test_fraction')} and {_now(cfg, 'val_fraction')}, or hold out fewer areas")
            lines.append(f"the {name} split is empty, so training will stop: {fraction}, or add triplets")
    if empty:
        titles = ", ".join(f"{SET_TITLES[n]} ({n})" for n in empty)
        lines.append(f"test sets empty ({len(empty)} of {len(TEST_SETS)}): {titles}; their scores will be NaN, "
                     "noted \"empty\" in the tables")
    for name in empty:
        if name == UNIQUE:
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
