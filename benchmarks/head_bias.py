"""Head-bias initialisation: one Table 1 row trained from the same seed with ``train.init_bias`` on and off.

PyTorch draws a head's bias uniformly within +-1/sqrt(channels); a head's mean output over a batch is its
bias, so a model can start far off the data's mean LAI, and Adam removes that offset only slowly. This trains
the row (default the S2 encoder with seasonality, where the quick profile met it) both ways on the quick
profile's data, for a few epochs, and records per epoch the training loss, the validation RMSE and the mean
offset of the predictions from the targets on the validation split. The profile's simulated data and cube go to
the project's ``data/`` folder (git-ignored), where ``make run`` keeps them too, and are reused from there.

    python benchmarks/head_bias.py --out benchmarks/results/head-bias-DATE.json [--row s2_masks_seas --epochs 6]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, write_report  # noqa: E402
from lai.config import load_profile  # noqa: E402
from lai.encode import encode_batch  # noqa: E402
from lai.infer import load_trained  # noqa: E402
from lai.loader import BatchLoader, CubeSplit  # noqa: E402
from lai.run_folder import RunContext  # noqa: E402
from lai.train import train_stage  # noqa: E402


def offset(run: Path, cube: Path, enc) -> float:
    """Mean prediction minus mean target on the validation split's clear pixels (LAI)."""
    model = load_trained(run, "cpu").model.eval()
    diff, count = 0.0, 0
    with torch.no_grad():
        for raw in BatchLoader(CubeSplit(cube, "val"), 64):
            x = encode_batch(raw, enc)
            pred = model.prediction(model(x))
            diff += float((pred - x.target)[x.target_valid].sum())
            count += int(x.target_valid.sum())
    return diff / max(count, 1) * enc.lai_scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--row", default="s2_masks_seas")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    report = {**report_header(__file__), "profile": args.profile, "row": args.row, "epochs": args.epochs,
              "seed": args.seed, "load_average": list(np.round(__import__("os").getloadavg(), 2)), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(args.profile, [], Path(tmp) / "run", Path(__file__).resolve().parent.parent / "data")
        ctx.ensure_data(progress=False)
        for init_bias in (False, True):
            p = load_profile(args.profile, [f"train.epochs={args.epochs}", f"train.patience={args.epochs}",
                                            f"train.seed={args.seed}"])
            p = replace(p, train=replace(p.train, init_bias=init_bias))
            run = Path(tmp) / f"init_bias_{init_bias}"
            t0 = time.perf_counter()
            result = train_stage(p, args.row, ctx.cube_path, run, progress=False)
            h = result.history
            report["runs"][f"init_bias={init_bias}"] = {
                "train_loss": [round(v, 4) for v in h["train_loss"]], "val_rmse": [round(v, 3) for v in h["val_rmse"]],
                "best_val_rmse": round(float(h["val_rmse"].min()), 3),
                "val_offset_lai": round(offset(run, ctx.cube_path, p.encoding), 3),
                "seconds": round(time.perf_counter() - t0, 1)}
            print(init_bias, report["runs"][f"init_bias={init_bias}"], flush=True)
    write_report(args.out, report)


if __name__ == "__main__":
    main()
