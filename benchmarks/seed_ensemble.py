"""What more seeds of a finished run's chosen model would give: train them beside it, then score the seeds'
mean (an ensemble, :func:`lai.evaluate.evaluate_ensemble`) as notebook 04 does::

    python benchmarks/seed_ensemble.py reports/quick --seeds 2 --out benchmarks/results/seed-ensemble-quick.json

``RUN`` is a finished ``lai run`` folder of a simulated profile (the quick profile trains one seed). Its chosen
model (``tables/selection.csv``) is fine-tuned again with the further seeds (``runs/<model>_seed<k>``, from the
same pre-trained encoders; a finished one is reused), then the ensemble of ``--seeds`` seeds is compared by
paired bootstrap over triplets with its seeds (validation and test sets), the run's baselines and the oracle
(:func:`lai.tables.ensemble_comparisons`). Writes the comparisons, the training seconds and the machine as JSON.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_chosen, run_comparators, run_profile, stage_cube, write_report  # noqa: E402
from lai.evaluate import evaluate_ensemble  # noqa: E402
from lai.tables import ensemble_comparisons  # noqa: E402
from lai.train import seed_runs, train_variant  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    profile = run_profile(args.run)  # as the run trained it (train.seeds is part of a stage's config)
    model = run_chosen(args.run)
    cube = stage_cube(args.run, model)
    wanted = seed_runs(model, replace(profile.train, seeds=args.seeds))
    runs, seconds = list(wanted), {}
    for run, seed in list(wanted.items())[1:]:
        start = time.perf_counter()
        train_variant(profile, model, cube, args.run / "runs", seed, run, progress=False)
        seconds[run] = time.perf_counter() - start
    _, sums, members = evaluate_ensemble([args.run / "runs" / run for run in runs], cube,
                                         batch_size=profile.train.batch_size, device="cpu")
    others = run_comparators(args.run)
    table = ensemble_comparisons(sums, members, others, model)
    cols = ["set", "other", "rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi", "verdict"]
    with pd.option_context("display.width", 200):
        print(table[cols].round(4).to_string(index=False))
    write_report(args.out, {**report_header(__file__), "run": str(args.run), "model": model,
                            "seeds": runs, "training_seconds": seconds, "comparisons": table.to_dict("records")})


if __name__ == "__main__":
    main()
