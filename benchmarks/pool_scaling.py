"""Several trainings of one data-scaling size, pooled into one comparison as a run pools its seeds::

    python benchmarks/pool_scaling.py reports/standard /tmp/scaling/train4000-seed0-extra1-train.epochs-40 \\
        /tmp/scaling2/train4000-seed0-extra2-train.epochs-40 --out benchmarks/results/pooled.json

Each ``POINT`` is a folder that ``benchmarks/data_scaling.py`` trained and scored on ``RUN``'s test sets (it holds
``runs/final/per_tile.csv``), all of the same number of training triplets: for example other draws of the extra
scenes (``--extra`` cubes simulated with other ``simulate.seed``) or other training seeds (``--set train.seed=1``).
Their final models are compared, by :func:`lai.tables.comparisons` with the points in the place of seeds (the RMSE
is the mean over points, each bootstrap resample of test triplets applies to every point), with the oracle bound,
persistence and RF of the run and the run's own final model (seed 0); the spread over points is each point's own
difference, also written. One point alone gives what ``data_scaling.py`` printed for it. That interval holds the
trainings fixed; the lines with ``trainings_resampled`` true draw the trainings with replacement too (a two-stage
bootstrap), which counts how much another draw of trainings like these would move the mean: the interval to quote
where the points differ in their data.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_comparators, run_cube, write_report  # noqa: E402
from benchmarks.data_scaling import (  # noqa: E402
    COMPARED_BASELINES,
    FINAL_SCORES,
    point_train_triplets,
    run_model_name,
    trained_model_name,
    training_triplets,
)
from lai.tables import comparisons  # noqa: E402


def pooled(run: Path, points: list[Path]) -> tuple[pd.DataFrame, int]:
    """The comparisons of the points' final models pooled (``seeds`` = number of points) and of each alone
    (``point`` names its folder; empty on the pooled lines), and their number of training triplets."""
    sizes = {point_train_triplets(p) for p in points}
    if len(sizes) != 1:
        raise SystemExit(f"the points were trained on different numbers of triplets ({sorted(sizes)}); pool one size")
    missing = [str(p / FINAL_SCORES) for p in points if not (p / FINAL_SCORES).exists()]
    if missing:
        raise SystemExit(f"no scores of a trained point: {', '.join(missing)}")
    n = sizes.pop()
    others = {**run_comparators(run, COMPARED_BASELINES),
              run_model_name(len(training_triplets(run_cube(run)))): pd.read_csv(run / FINAL_SCORES)}
    frames = [pd.read_csv(p / FINAL_SCORES) for p in points]
    name = f"{trained_model_name(n)}, {len(points)} trainings pooled"
    try:
        lines = [comparisons(frames, others, name, resample_trainings=False).assign(point=""),
                 comparisons(frames, others, name).assign(point="")]
        lines += [comparisons(f, others, trained_model_name(n)).assign(point=p.name) for f, p in zip(frames, points)]
    except ValueError as err:  # scored on other test triplets than the run's
        raise SystemExit(f"{err}: every point must be scored on {run}'s test sets") from None
    return pd.concat(lines, ignore_index=True), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="the finished lai run whose cube the points were trained on")
    ap.add_argument("points", type=Path, nargs="+", metavar="POINT", help="point folders of benchmarks/data_scaling.py")
    ap.add_argument("--out", type=Path, required=True, help="JSON file")
    args = ap.parse_args()
    table, n = pooled(args.run, args.points)
    shown = table[table["point"] == ""]
    print(shown[["set", "other", "seeds", "trainings_resampled", "rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi",
                 "verdict"]].round(3).to_string())
    write_report(args.out, report_header(__file__) | {"run": str(args.run), "train_triplets": n,
                                                       "points": [str(p) for p in args.points],
                                                       "comparisons": table.to_dict("records")})


if __name__ == "__main__":
    main()
