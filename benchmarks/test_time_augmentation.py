"""What test-time augmentation would give a finished run's chosen model: its prediction averaged over the 8
symmetries of the square (the rotations and flips training draws, in :mod:`lai.augment`'s pixel orders), against its plain
forward pass, both scored by lai's code on the validation and test sets::

    python benchmarks/test_time_augmentation.py reports/standard --out benchmarks/results/tta-standard.json

``RUN`` is a finished ``lai run`` folder of a simulated profile. Each trained seed of its chosen model
(``tables/selection.csv``; ``runs/<model>``, ``runs/<model>_seed<k>``) predicts every set plainly and as the
mean of its 8 transformed inputs (each prediction put back in the tile's order; the masks and targets
are the plain pass's). Paired bootstrap over triplets
(:func:`lai.tables.comparisons`): per seed, augmented against plain; the seeds pooled, plain and augmented, against
the run's baselines and the oracle (the plain lines are the run's own ``comparisons.csv`` lines again: a check);
with several seeds, the mean of the augmented seeds (an ensemble) against the same. Nothing in the run folder is
written. Writes the comparisons, the seconds each way (the augmented ones without the plain pass) and the machine as JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_chosen, run_comparators, run_profile, stage_cube, write_report  # noqa: E402
from lai.augment import drawn_symmetries, spatial_keys, symmetry_orders  # noqa: E402
from lai.evaluate import predict, score_sets  # noqa: E402
from lai.facts import STAGE_WEIGHTS_FILE, TEST_SETS, VAL  # noqa: E402
from lai.infer import Trained, load_trained, predict_lai  # noqa: E402
from lai.loader import BatchLoader, CubeSplit  # noqa: E402
from lai.tables import comparisons  # noqa: E402
from lai.train import seed_runs  # noqa: E402

SETS = (VAL, *TEST_SETS)
COLUMNS = ["set", "model", "other", "seeds", "rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi", "verdict"]


def augmented_lai(trained: Trained, split: CubeSplit, batch_size: int) -> np.ndarray:
    """LAI (m2/m2) of every sample of ``split``: the mean over the symmetries training draws of the prediction from
    the inputs in that symmetry's pixel order, each put back in the tile's order."""
    preds = []
    for raw in BatchLoader(split, batch_size, False, trained.device, "auto"):
        keys = spatial_keys(raw)
        height, width = raw["lai"].shape[-2:]
        orders = symmetry_orders(height, width).to(trained.device)
        picked = drawn_symmetries(height, width)
        total = None
        for order in orders[picked]:
            moved = {k: v.flatten(-2)[..., order].view_as(v) if k in keys else v for k, v in raw.items()}
            lai = predict_lai(trained.model, moved, trained.enc, trained.bf16)[1]
            lai = lai.flatten(-2)[..., order.argsort()].view_as(lai).double()
            total = lai if total is None else total + lai
        preds.append((total / len(picked)).float().cpu().numpy())
    return np.concatenate(preds)


def score_seed(trained: Trained, cube: str, batch_size: int, ensemble: dict[str, list]
               ) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """One seed's per-triplet sums on every set of :data:`SETS`, plain and augmented, and the seconds each took
    (the augmented pass reuses the plain pass's masks and targets); its augmented predictions are appended to
    ``ensemble``, per split."""
    plains: dict[str, dict[str, np.ndarray]] = {}

    def plain_pred(split: CubeSplit) -> dict[str, np.ndarray]:
        plains[split.split] = predict(trained, split, batch_size)
        return plains[split.split]

    def augmented_pred(split: CubeSplit) -> dict[str, np.ndarray]:
        kept = {k: v for k, v in plains[split.split].items() if k not in ("sd", "past_clear")}
        pred = {**kept, "pred": augmented_lai(trained, split, batch_size)}
        ensemble.setdefault(split.split, []).append(pred)
        return pred

    tiles, seconds = {}, {}
    for kind, predicted in (("plain", plain_pred), ("augmented", augmented_pred)):
        start = time.perf_counter()
        tiles[kind] = score_sets(predicted, cube, SETS)[1]
        seconds[kind] = time.perf_counter() - start
    return tiles, seconds


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    profile = run_profile(args.run)
    model = run_chosen(args.run)
    runs = [r for r in seed_runs(model, profile.train) if (args.run / "runs" / r / STAGE_WEIGHTS_FILE).exists()]
    cube = stage_cube(args.run, model)
    batch = profile.train.batch_size
    plain, augmented, seconds, ensemble = [], [], {"plain": 0.0, "augmented": 0.0}, {}
    for run in runs:
        trained = load_trained(args.run / "runs" / run, "cpu")
        tiles, took = score_seed(trained, cube, batch, ensemble)
        plain.append(tiles["plain"])
        augmented.append(tiles["augmented"])
        seconds = {kind: seconds[kind] + took[kind] for kind in seconds}
    others = run_comparators(args.run)
    table = [comparisons(a, {f"{model} plain": p}, f"{model} augmented ({run})", SETS) for run, a, p in
             zip(runs, augmented, plain)]
    table += [comparisons(plain, others, f"{model} plain"), comparisons(augmented, others, f"{model} augmented")]
    if len(runs) > 1:
        mean = {name: {**preds[0], "pred": np.mean([p["pred"] for p in preds], axis=0)} for name, preds in ensemble.items()}
        ensemble_tiles = score_sets(lambda split: mean[split.split], cube, SETS)[1]
        table.append(comparisons(ensemble_tiles, others, f"{model} augmented ensemble"))
    table = pd.concat(table, ignore_index=True)
    with pd.option_context("display.width", 220):
        print(table[COLUMNS].round(4).to_string(index=False))
    write_report(args.out, {**report_header(__file__), "run": str(args.run),
                            "model": model, "seeds": runs, "seconds": seconds,
                            "comparisons": table.to_dict("records")})


if __name__ == "__main__":
    main()
