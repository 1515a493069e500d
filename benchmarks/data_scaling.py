"""How the final model's test error, and its distance to the oracle bound, move with the amount of training data::

    python benchmarks/data_scaling.py reports/standard --train 400 800 --out /tmp/scaling [--seed 0] [--set KEY=VALUE]

``RUN`` is a finished ``lai run`` folder of a simulated profile (e.g. ``reports/standard``). For each size N of
``--train``, a copy of the run's cube keeps N of its training triplets (drawn at random with ``--seed``, nested: the
400 are among the 800) and labels the others ``buffer``; validation and the test sets stay as they are. The two
encoders and the final model are trained on it from scratch, exactly as the run's profile trains them (one
seed, ``train.seed``), then scored on the test sets. Each is compared by paired bootstrap over triplets
(``lai.tables.comparisons``) with the oracle bound (the true LAI at t-1), persistence and RF of the run, and the
run's own final model (seed 0, all its training triplets), which is also the last point of the curve.

``--extra CUBE`` carries the curve past the run's own training data on the *same* test sets: ``CUBE`` holds more
scenes of the run's training regions, simulated with another ``simulate.seed`` (new fields, weather and clouds; no
pixel of the run's), e.g.::

    lai simulate --profile standard --set simulate.seed=1 --set simulate.train_triplets=2400 \
        --set simulate.unique_triplets=0 --out /tmp/extra/sim
    lai cube /tmp/extra/sim --profile standard --out /tmp/extra/cube.nc
    python benchmarks/data_scaling.py reports/standard --extra /tmp/extra/cube.nc --train 2400 3200 --out /tmp/scaling

A size N above the run's keeps all of the run's training triplets and appends the first N minus those of the extra
cube's triplets (one random order drawn with ``--seed``, nested as above), labelled ``train`` whatever split the
extra cube gave them, their names prefixed with ``extra_``.

``--set`` (repeatable, as ``lai run --set``) changes the profile the points are trained with, e.g.
``--set model.preset=wide --train 1600``: the run's own training data with a wider model, compared with the run's
final model by the same paired bootstrap. Its points go to folders named after the overrides.

The copies of the cube take the cube's size each (about 0.7 GB for the standard profile) under ``--out``.
Writes ``<out>/data_scaling.json`` (``data_scaling-<overrides>.json`` with ``--set``).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_comparators, run_cube, write_report  # noqa: E402
from lai.config import load_profile  # noqa: E402
from lai.cube import TRIPLET_NDIM, check_cube_file  # noqa: E402
from lai.evaluate import evaluate_run  # noqa: E402
from lai.facts import BUFFER, ORACLE, RUN_PROFILE_FILE, STAGE_PER_TRIPLET_FILE, TRAIN  # noqa: E402
from lai.io import atomic_path  # noqa: E402
from lai.simulate import SIMULATION_FILE  # noqa: E402
from lai.tables import comparisons  # noqa: E402
from lai.train import convergence, train_rows  # noqa: E402

COMPARED_BASELINES = ("persistence", "RF")  # the run's baselines the curve is scored against, beside the oracle
EXTRA_PREFIX = "extra_"  # before the names of the --extra cube's triplets in an extended copy (names may coincide)
SAME_CUBE_ATTRS = ("float_dtype", "valid_classes", "has_truth")  # what an --extra cube must share with the run's
FINAL_SCORES = Path("runs") / "final" / STAGE_PER_TRIPLET_FILE  # a run's (or a point's) final model's per-triplet sums


def point_name(n_train: int, subset_seed: int, extra_seed: int | None) -> str:
    """The name of a point's cube copy and folder: its training triplets, subset seed and extra cube's simulate.seed."""
    return f"train{n_train}-seed{subset_seed}" + (f"-extra{extra_seed}" if extra_seed is not None else "")


def point_train_triplets(folder: Path) -> int:
    """The training triplets of a point, from its folder's name (:func:`point_name`, then any overrides)."""
    found = re.fullmatch(r"train(\d+)-seed\d+(-extra\d+)?(-.*)?", folder.name)
    if found is None:
        raise SystemExit(f"{folder}: not a point folder of benchmarks/data_scaling.py (train<N>-seed<S>...)")
    return int(found[1])


def trained_model_name(n_train: int, overrides=()) -> str:
    """The name of a point's final model (``n_train`` training triplets, the profile's ``overrides``) in comparisons."""
    return f"final, {n_train} training triplets" + "".join(f", {o}" for o in overrides)


def run_model_name(n_train: int) -> str:
    """The name of the run's own final model (all its ``n_train`` training triplets) in the JSON's comparisons."""
    return f"final, {n_train} training triplets (the run's)"


def training_triplets(cube: Path) -> np.ndarray:
    """Indices of the cube's training triplets."""
    with h5py.File(cube, "r") as f:
        return np.flatnonzero(f["split"][:].astype(str) == TRAIN)


def subset_cube(cube: Path, train: np.ndarray, out: Path, n_train: int, seed: int) -> None:
    """Copy ``cube`` to ``out`` keeping ``n_train`` of its training triplets ``train`` (the first of one random order
    drawn with ``seed``, so smaller subsets lie inside larger ones); the others become ``buffer``."""
    if not 0 < n_train <= len(train):
        raise SystemExit(f"--train {n_train}: the cube {cube} has {len(train)} training triplets; ask for 1 to {len(train)}"
                         " (or more with --extra)")
    dropped = np.sort(np.random.default_rng(seed).permutation(train)[n_train:])

    def relabel(f: h5py.File) -> None:
        split = f["split"]
        for i in dropped:
            split[int(i)] = BUFFER.encode()

    edited_copy(cube, out, relabel)


def edited_copy(cube: Path, out: Path, edit: Callable[[h5py.File], None]) -> None:
    """Write ``out`` as a copy of ``cube`` changed in place by ``edit``, unless an earlier call wrote it; an
    interrupted copy leaves nothing under ``out`` (:func:`lai.io.atomic_path`), a finished one is a valid cube."""
    if out.exists():
        return
    with atomic_path(out) as tmp:
        shutil.copyfile(cube, tmp)
        with h5py.File(tmp, "r+") as f:
            edit(f)
        check_cube_file(tmp)


def simulation(cube: Path) -> dict:
    """The ``simulate`` settings a simulated cube was built from (``simulation.yaml`` of its source folder)."""
    source = Path(check_cube_file(cube)["source"])
    try:
        return yaml.safe_load((source / SIMULATION_FILE).read_text())["simulate"]
    except (OSError, KeyError, TypeError) as err:
        raise SystemExit(f"--extra: {cube} was not built from a simulated LNB folder ({source / SIMULATION_FILE}: "
                         f"{err}); only simulated scenes of another simulate.seed are known to share no pixel") from None


def check_extra(cube: Path, extra: Path) -> dict:
    """Refuse an ``--extra`` cube that could share scenes with ``cube``, or differs from it in tiles, regions or
    encoding: it must be simulated with the same settings but another ``simulate.seed``, in the run's training
    regions only. Returns the extra cube's ``simulate`` settings."""
    mine, theirs = simulation(cube), simulation(extra)
    if theirs.get("seed") == mine.get("seed"):
        raise SystemExit(f"--extra: {extra} was simulated with simulate.seed={mine.get('seed')} like the run's cube; "
                         "its scenes would repeat the run's (test scenes included): simulate it with another seed")
    cube_attrs, extra_attrs = check_cube_file(cube), check_cube_file(extra)
    differ = ([k for k in ("tile_size", "grid", "windows_per_scene", "cloudiness") if theirs.get(k) != mine.get(k)]
              + [k for k in SAME_CUBE_ATTRS if extra_attrs.get(k) != cube_attrs.get(k)])
    if differ:
        raise SystemExit(f"--extra: {extra} differs from the run's cube {cube} in {', '.join(differ)}")
    outside = sorted(set(theirs["train_regions"]) - set(mine["train_regions"]))
    if outside or theirs.get("unique_triplets"):
        raise SystemExit(f"--extra: {extra} holds regions the run does not train on ({', '.join(outside) or 'unique areas'}); "
                         f"simulate only simulate.train_regions {mine['train_regions']} with simulate.unique_triplets=0")
    return theirs


def extended_cube(cube: Path, extra: Path, out: Path, n_extra: int, seed: int) -> None:
    """Copy ``cube`` to ``out`` with ``n_extra`` triplets of ``extra`` appended as training triplets (the first of one
    random order drawn with ``seed``, so smaller extensions lie inside larger ones)."""
    with h5py.File(extra, "r") as f:
        available = len(f["split"])
    if not 0 < n_extra <= available:
        raise SystemExit(f"--train: {n_extra} more training triplets asked of --extra {extra}, which has {available}")
    chosen = np.sort(np.random.default_rng(seed).permutation(available)[:n_extra])

    def append(dst: h5py.File) -> None:
        start = len(dst["split"])
        with h5py.File(extra, "r") as src:
            for name in ("triplet", *TRIPLET_NDIM):  # the dimension itself, then every per-triplet variable
                if name not in dst:
                    continue
                dst[name].resize(start + n_extra, axis=0)
                if name == "triplet":
                    continue
                values = src[name][chosen]
                if name == "split":
                    values = np.full(n_extra, TRAIN.encode(), dtype=object)
                elif name == "name":
                    values = np.vectorize(lambda v: EXTRA_PREFIX.encode() + v, otypes=[object])(values)
                dst[name][start:] = values

    edited_copy(cube, out, append)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--train", type=int, nargs="+", required=True, metavar="N", help="training triplets to keep")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0, help="seed of the random subsets (not of training)")
    ap.add_argument("--extra", type=Path, metavar="CUBE",
                    help="a cube of more simulated scenes of the run's training regions (another simulate.seed): "
                         "sizes above the run's training triplets take theirs from it")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one parameter of the run's profile for the trained points (repeatable)")
    args = ap.parse_args()
    saved = yaml.safe_load((args.run / RUN_PROFILE_FILE).read_text())
    cube = run_cube(args.run)
    profile = load_profile(saved["name"], args.set)
    variant = "".join(f"-{re.sub(r'[^A-Za-z0-9_.]+', '-', o)}" for o in args.set)  # the overrides, in folder names
    others = run_comparators(args.run, COMPARED_BASELINES)
    full = pd.read_csv(args.run / FINAL_SCORES)
    train = training_triplets(cube)
    n_full = len(train)
    points, tables = [], []
    extra_seed = check_extra(cube, args.extra)["seed"] if args.extra else None
    for n in sorted(set(args.train)):
        extended = n > n_full and args.extra
        name = point_name(n, args.seed, extra_seed if extended else None)
        sub = args.out / f"cube-{name}.nc"
        if extended:
            extended_cube(cube, args.extra, sub, n - n_full, args.seed)
        else:
            subset_cube(cube, train, sub, n, args.seed)
        point = args.out / f"{name}{variant}"
        stages = train_rows(profile, sub, point / "runs", ["final"], progress=False)
        evaluate_run(point / "runs" / "final", sub, save_predictions=False)
        mine = pd.read_csv(point / FINAL_SCORES)
        table = comparisons(mine, {**others, "final, all training triplets": full}, trained_model_name(n, args.set))
        tables.append(table.assign(train_triplets=n))
        points.append({"train_triplets": n, **{row: {"training_seconds": float(r.history["seconds"].sum()),
                                                     "reused": r.reused, **convergence(r.history, profile.train.patience)}
                                               for row, r in stages.items()}})
        print(table[["set", "other", "rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi", "verdict"]].round(3).to_string())
    last = comparisons(full, others, run_model_name(n_full)).assign(train_triplets=n_full)
    curve = pd.concat([*tables, last], ignore_index=True)
    shown = curve[curve["other"].isin((ORACLE, *COMPARED_BASELINES))]
    # one column per trained model (a point of the run's own size stays apart from the run's model)
    print(shown.pivot(index=["set", "other"], columns="model", values="diff").round(3).to_string())
    report = report_header(__file__) | {
        "run": str(args.run), "cube": str(cube), "profile": saved["name"], "subset_seed": args.seed, "overrides": args.set,
        "extra_cube": str(args.extra) if args.extra else None,
        "extra_simulate_seed": extra_seed,
        "train_seed": profile.train.seed, "full_train_triplets": n_full, "points": points,
        "full_final": convergence(pd.read_csv(args.run / "runs" / "final" / "history.csv"), profile.train.patience),
        "comparisons": curve.to_dict("records")}
    write_report(args.out / f"data_scaling{variant}.json", report)


if __name__ == "__main__":
    main()
