"""What test-time augmentation would give a finished run's chosen model: its prediction averaged over the 8
symmetries of the square (the rotations and flips training draws, :mod:`lai.augment`), against its plain
forward pass, both scored by lai's code on the validation and test sets::

    python benchmarks/test_time_augmentation.py reports/standard --out benchmarks/results/tta-standard.json

``RUN`` is a finished ``lai run`` folder of a simulated profile. Each trained seed of its chosen model
(``tables/selection.csv``; ``runs/<model>``, ``runs/<model>_seed<k>``) predicts every set plainly and as the
mean of its 8 transformed inputs (each prediction turned back). Paired bootstrap over triplets
(:func:`lai.tables.comparisons`): per seed, augmented against plain; the seeds pooled, plain and augmented, against
the run's baselines and the oracle (the plain lines are the run's own ``comparisons.csv`` lines again: a check);
with several seeds, the mean of the augmented seeds (an ensemble) against the same. Nothing in the run folder is
written. Writes the comparisons, the seconds each way and the machine as JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_comparators, write_report  # noqa: E402
from lai.augment import spatial_keys  # noqa: E402
from lai.config import load_profile  # noqa: E402
from lai.evaluate import predict, score_sets  # noqa: E402
from lai.facts import TEST_SETS, VAL, chosen_model  # noqa: E402
from lai.infer import Trained, load_trained, predict_lai  # noqa: E402
from lai.loader import BatchLoader, CubeSplit  # noqa: E402
from lai.tables import comparisons  # noqa: E402
from lai.train import seed_runs  # noqa: E402

SETS = (VAL, *TEST_SETS)
COLUMNS = ["set", "model", "other", "seeds", "rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi", "verdict"]


def turned(x: torch.Tensor, turns: int, flip: bool, back: bool = False) -> torch.Tensor:
    """``x`` (tile in its last two axes) rotated by ``turns`` x 90 degrees, then flipped left-right if ``flip``
    (as :func:`lai.augment.symmetry_orders`); ``back``: the inverse."""
    if back:
        return torch.rot90(x.flip(-1) if flip else x, -turns, dims=(-2, -1))
    x = torch.rot90(x, turns, dims=(-2, -1))
    return x.flip(-1) if flip else x


def symmetries(height: int, width: int) -> list[tuple[int, bool]]:
    """The symmetries a tile of this shape keeps: 8 for a square, 4 (half turns, with or without a flip) else."""
    return [(t, f) for t in range(4) for f in (False, True) if height == width or t % 2 == 0]


def augmented_predict(trained: Trained, split: CubeSplit, batch_size: int) -> dict[str, np.ndarray]:
    """As :func:`lai.evaluate.predict` (without the spread), LAI the mean over the tile's symmetries of the
    prediction from the transformed inputs, each turned back."""
    plain = predict(trained, split, batch_size)
    preds = []
    for raw in BatchLoader(split, batch_size, False, trained.device, "auto"):
        keys = spatial_keys(raw)
        total = None
        for t, f in symmetries(*raw["lai"].shape[-2:]):
            moved = {k: turned(v, t, f) if k in keys else v for k, v in raw.items()}
            lai = turned(predict_lai(trained.model, moved, trained.enc, trained.bf16)[1], t, f, back=True)
            total = lai.double() if total is None else total + lai
        preds.append((total / len(symmetries(*raw["lai"].shape[-2:]))).float().cpu().numpy())
    return {**{k: v for k, v in plain.items() if k not in ("sd", "past_clear")}, "pred": np.concatenate(preds)}


def check_inverse() -> None:
    """Every symmetry turned back gives the input again (square and oblong tiles)."""
    for shape in ((2, 3, 5, 5), (2, 3, 4, 6)):
        x = torch.randn(shape)
        for t, f in symmetries(*shape[-2:]):
            assert torch.equal(turned(turned(x, t, f), t, f, back=True), x), (shape, t, f)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    check_inverse()
    profile = load_profile(args.run / "profile.yaml")
    model = chosen_model(pd.read_csv(args.run / "tables" / "selection.csv").to_dict("records"))
    runs = [r for r in seed_runs(model, profile.train) if (args.run / "runs" / r / "model.pt").exists()]
    cube = yaml.safe_load((args.run / "runs" / model / "config.yaml").read_text())["cube"]["path"]
    batch = profile.train.batch_size
    plain, augmented, seconds, ensemble = [], [], {"plain": 0.0, "augmented": 0.0}, {}
    for run in runs:
        trained = load_trained(args.run / "runs" / run, "cpu")
        scale = trained.enc.lai_scale

        def kept(split: CubeSplit, trained: Trained = trained) -> dict[str, np.ndarray]:
            pred = augmented_predict(trained, split, batch)
            ensemble.setdefault(split.split, []).append(pred)
            return pred

        for kind, frames, predicted in (("plain", plain, lambda split, t=trained: predict(t, split, batch)),
                                        ("augmented", augmented, kept)):
            start = time.perf_counter()
            frames.append(score_sets(predicted, cube, SETS, scale)[1])
            seconds[kind] += time.perf_counter() - start
    others = run_comparators(args.run)
    table = [comparisons(a, {f"{model} plain": p}, f"{model} augmented ({run})", SETS) for run, a, p in
             zip(runs, augmented, plain)]
    table += [comparisons(plain, others, f"{model} plain"), comparisons(augmented, others, f"{model} augmented")]
    if len(runs) > 1:
        mean = {name: {**preds[0], "pred": np.mean([p["pred"] for p in preds], axis=0)} for name, preds in ensemble.items()}
        tiles = score_sets(lambda split: mean[split.split], cube, SETS, scale)[1]
        table.append(comparisons(tiles, others, f"{model} augmented ensemble"))
    table = pd.concat(table, ignore_index=True)
    with pd.option_context("display.width", 220):
        print(table[COLUMNS].round(4).to_string(index=False))
    write_report(args.out, {**report_header(__file__), "run": str(args.run),
                            "model": model, "seeds": runs, "seconds": seconds,
                            "comparisons": table.to_dict("records")})


if __name__ == "__main__":
    main()
