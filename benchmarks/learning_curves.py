"""Learning curves: every Table 1 row of a profile trained far past its early stop, then scored.

Each row trains ``--epochs`` epochs with the profile's schedule, but with ``train.patience`` raised
to the cap so nothing stops early; from each history the script reads where the profile's own
early stop (``--patience``, default the profile's) would have ended the stage and which epoch
was best, which is what the quick profile's epoch cap is chosen from. The rows are then scored
on the test sets beside the baselines, with paired comparisons of the chosen model (final or a candidate, its seeds pooled); with
``--no-augment`` the three stages of the final model are trained again without augmentation.

    python benchmarks/learning_curves.py --profile quick --epochs 60 --out /tmp/curves

Writes ``curves.csv`` (row, epoch, losses, val_rmse, lr), ``stops.csv`` (per row: best epoch,
early-stop epoch, seconds per epoch), ``table1.csv``, ``baselines.csv``, ``comparisons.csv`` and,
with ``--no-augment``, ``augment_effect.csv`` under ``--out``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lai.baselines import evaluate_baselines  # noqa: E402
from lai.config import load_profile  # noqa: E402
from lai.facts import BASELINES, ROWS, S2_ENCODER  # noqa: E402
from lai.run_folder import RunContext  # noqa: E402
from lai.tables import comparisons, seed_spread, table1, with_floor  # noqa: E402


def early_stop(history: pd.DataFrame, patience: int) -> dict:
    """Best epoch so far and the epoch at which ``patience`` epochs without improvement end the stage."""
    best, best_epoch = float("inf"), 0
    for epoch, value in zip(history["epoch"], history["val_mse"]):
        if value < best:
            best, best_epoch = value, int(epoch)
        elif epoch - best_epoch >= patience:
            return {"stop_epoch": int(epoch), "best_epoch_at_stop": best_epoch,
                    "val_rmse_at_stop_best": float(history.loc[history["epoch"] == best_epoch, "val_rmse"].iloc[0])}
    return {"stop_epoch": None, "best_epoch_at_stop": best_epoch,
            "val_rmse_at_stop_best": float(history.loc[history["epoch"] == best_epoch, "val_rmse"].iloc[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patience", type=int, default=None, help="early-stop patience to read off (default: the profile's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS),
                    help="rows to train (default all; 'final' brings its two encoders); only 'all' scores Table 1")
    ap.add_argument("--no-augment", action="store_true", help="also train the final model's stages without augmentation")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    patience = args.patience or load_profile(args.profile, args.set).train.patience
    overrides = args.set + [f"train.epochs={args.epochs}", f"train.patience={args.epochs}"]
    ctx = RunContext(args.profile, overrides, args.out / "run", args.out / "data")
    t0 = time.perf_counter()
    ctx.ensure_data(progress=False)
    print(f"data: {time.perf_counter() - t0:.0f} s", flush=True)
    ctx.train(args.rows, progress=False)
    if "final" in args.rows:  # the chosen model (final or a candidate) and its further seeds
        ctx.train_chosen(progress=False)
    chosen, chosen_runs = ctx.chosen() if "final" in args.rows else ("final", ["final"])
    runs = list(dict.fromkeys([*ROWS, *ctx.profile.candidates, *chosen_runs]))
    curves = pd.concat([h.assign(row=r) for r, h in ctx.histories(runs).items()], ignore_index=True)
    curves.to_csv(args.out / "curves.csv", index=False)
    stops = pd.DataFrame([{"row": r, **early_stop(h, patience), "best_epoch": int(h.loc[h["val_mse"].idxmin(), "epoch"]),
                           "best_val_rmse": float(h["val_rmse"].min()), "s_per_epoch": float(h["seconds"].median())}
                          for r, h in ctx.histories(runs).items()])
    stops.to_csv(args.out / "stops.csv", index=False)
    print(stops.round(3).to_string(), flush=True)

    if set(args.rows) != set(ROWS):
        print(f"total: {time.perf_counter() - t0:.0f} s (rows {', '.join(args.rows)} only: nothing scored)")
        return
    floor = ctx.noise_floor()
    t1 = table1(pd.concat([ctx.evaluate(r) for r in ROWS]), floor)
    t1.to_csv(args.out / "table1.csv", index=False)
    scored = evaluate_baselines(ctx.cube_path, ctx.profile.baselines, ctx.profile.encoding, progress=False)
    with_floor(scored, floor).to_csv(args.out / "baselines.csv", index=False)
    per = scored.attrs["per_triplet"]
    others = {b: per[per["baseline"] == b] for b in BASELINES}
    others[S2_ENCODER] = ctx.per_triplet(S2_ENCODER)
    comp = comparisons([ctx.per_triplet(r) for r in chosen_runs], others, chosen)
    comp.to_csv(args.out / "comparisons.csv", index=False)
    seeds = seed_spread({name: ctx.evaluate(name) for name in chosen_runs})
    seeds.to_csv(args.out / "seeds.csv", index=False)
    print(floor.round(3).to_string() if floor is not None else "no noise floor (real data)")
    print(t1[["row", "set", "rmse", "rmse_lo", "rmse_hi", "r2", "floor_ratio" if floor is not None else "r2"]].round(3).to_string())
    print(with_floor(scored, floor)[["baseline", "set", "rmse", "rmse_lo", "rmse_hi", "r2"]].round(3).to_string())
    print(comp.round(3).to_string())
    print(seeds.round(3).to_string(), flush=True)

    if args.no_augment:
        plain = RunContext(args.profile, overrides + ["train.augment=false", "train.seeds=1"], args.out / "run_noaug",
                           args.out / "data")
        plain.train(["final"], progress=False)
        effect = pd.concat([ctx.evaluate("final").assign(augment=True), plain.evaluate("final").assign(augment=False)])
        effect = effect[["augment", "set", "rmse", "rmse_lo", "rmse_hi", "r2"]]
        effect.to_csv(args.out / "augment_effect.csv", index=False)
        hist = plain.histories(["s1_masks_seas", "s2_masks_seas", "final"])
        print(effect.round(3).to_string())
        print(pd.DataFrame([{"row": r, **early_stop(h, patience)} for r, h in hist.items()]).to_string())
        pd.concat([h.assign(row=r) for r, h in hist.items()]).to_csv(args.out / "curves_noaug.csv", index=False)
    print(f"total: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
