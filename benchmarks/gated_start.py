"""The gated skip's start: fine-tune ``final_gated`` with this version's initialisation from the encoders of a
finished run folder and compare it, on the same test triplets, with that run's models and baselines::

    python benchmarks/gated_start.py OLD_RUN --out /tmp/gated [--seed 1] [--set model.gate_start=0.9]
    python benchmarks/gated_start.py reports/quick --out /tmp/nodate --set model.decoder_seasonality=false
    python benchmarks/gated_start.py reports/quick --out /tmp/lr --finetune-set train.lr=3e-4
    python benchmarks/gated_start.py reports/standard --out /tmp/ema --model final --finetune-set train.ema=0.995

``OLD_RUN`` is a finished ``lai run`` folder of a simulated profile (e.g. ``reports/quick``), of this version or an
earlier one (whose ``runs/final_gated`` started with the gate at one half and random head weights; before a96e628 the
``standard`` profile trained no candidate, so this measured what the candidate would give there). Its two pre-trained encoders
(``runs/s1_masks_seas``, ``runs/s2_masks_seas``) are copied under ``--out``; configuration fields that version did
not save are added to the copies' ``config.yaml`` with this version's values, which encoders do not use (no weight
changes). ``--finetune-set`` applies to the fine-tuning alone, after the variant's own settings, so it can change one
that the variant fixes (``lai.train.fine_tune_profile``; ``--set`` applies to the encoders' configuration too, which
must then match theirs). The new ``final_gated`` is scored on the run's test sets and compared by paired bootstrap over triplets
(``lai.tables.comparisons``) with the run's ``final`` (seed 0), its ``final_gated`` where it has one (scored on the
test sets first if validation did not choose it: ``lai.evaluate.evaluate_run`` adds its scores to its folder), its baselines
and the oracle bound (the true LAI at t-1, ``tables/oracle_per_triplet.csv``). ``--model final`` fine-tunes the
final model itself instead (Table 1's row, e.g. with other training settings), compared in the same way;
``--against OUT`` adds the model of another run of this script (its ``--out``, e.g. the same seed without the
override) to the comparisons.

Writes ``<out>/gated_start.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_comparators, run_cube, write_report  # noqa: E402
from lai.config import load_profile  # noqa: E402
from lai.evaluate import evaluate_run  # noqa: E402
from lai.facts import (  # noqa: E402
    PRETRAINED_FROM,
    RUN_PROFILE_FILE,
    STAGE_CONFIG_FILE,
    STAGE_PER_TRIPLET_FILE,
    STAGE_WEIGHTS_FILE,
)
from lai.tables import comparisons  # noqa: E402
from lai.train import fine_tune, stage_config, train_variant  # noqa: E402

# model settings an encoder row never reads (lai.model builds the decoder's date input from them only)
DECODER_ONLY = ("decoder_seasonality",)


def copy_encoders(old_runs: Path, runs: Path, profile, cube: str) -> None:
    """The old run's pre-trained encoders under ``runs``, their configuration completed with this version's fields."""
    for row in PRETRAINED_FROM["final"].values():
        if (runs / row).exists():
            continue
        shutil.copytree(old_runs / row, runs / row)
        saved = yaml.safe_load((runs / row / STAGE_CONFIG_FILE).read_text())
        now = asdict(stage_config(profile, row, cube))
        for section, values in now.items():
            if isinstance(values, dict) and isinstance(saved.get(section), dict):
                for key, value in values.items():
                    saved[section].setdefault(key, value)
        for key in DECODER_ONLY:  # a decoder setting measured with --set: the encoders were built without reading it
            saved["model"][key] = now["model"][key]
        (runs / row / STAGE_CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False))


def against_model(out: Path) -> Path:
    """The per-triplet scores of the model an earlier run of this script wrote under ``out`` (its ``--out``)."""
    try:
        model = json.loads((out / "gated_start.json").read_text())["model"]
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f"--against {out}: expected the --out folder of an earlier run of this script, with its "
                 f"gated_start.json naming the model ({type(err).__name__}: {err})")
    per_triplet = out / "runs" / model / STAGE_PER_TRIPLET_FILE
    if not per_triplet.is_file():
        sys.exit(f"--against {out}: {per_triplet} is missing (that run did not finish its evaluation)")
    return per_triplet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old_run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--finetune-set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override of the fine-tuning stage only (e.g. train.lr=3e-4)")
    ap.add_argument("--model", choices=("final_gated", "final"), default="final_gated",
                    help="what to fine-tune: the gated-skip variant (default) or the final model itself")
    ap.add_argument("--against", action="append", default=[], type=Path, metavar="OUT",
                    help="the --out folder of another run of this script (e.g. the same seed without the override): "
                         "its model is compared too, on the same triplets")
    args = ap.parse_args()
    against = {other: against_model(other) for other in args.against}  # checked before any training
    saved = yaml.safe_load((args.old_run / RUN_PROFILE_FILE).read_text())
    cube = run_cube(args.old_run)
    profile = load_profile(saved["name"], args.set)
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    copy_encoders(args.old_run / "runs", runs, profile, cube)
    t0 = time.perf_counter()
    if args.finetune_set:  # the encoders as trained; only the fine-tuning reads these, after the variant's settings
        result = fine_tune(profile, args.model, cube, runs, seed=args.seed, progress=False, overrides=args.finetune_set)
    else:
        result = train_variant(profile, args.model, cube, runs, seed=args.seed, progress=False)
    seconds = time.perf_counter() - t0
    evaluate_run(runs / args.model, cube, save_predictions=False)
    mine = pd.read_csv(runs / args.model / STAGE_PER_TRIPLET_FILE)
    others = run_comparators(args.old_run)
    for row in ("final", "final_gated"):  # the old run's models of seed 0 (a profile without the candidate lacks it)
        stage = args.old_run / "runs" / row
        if (stage / STAGE_WEIGHTS_FILE).is_file() and not (stage / STAGE_PER_TRIPLET_FILE).is_file():
            print(f"{stage}: not evaluated (validation did not choose it); scoring it on the test sets", file=sys.stderr)
            evaluate_run(stage, cube, save_predictions=False)
        if (stage / STAGE_PER_TRIPLET_FILE).is_file():
            others[f"old {row}"] = pd.read_csv(stage / STAGE_PER_TRIPLET_FILE)
    for other, per_triplet in against.items():
        others[f"against {other.name}"] = pd.read_csv(per_triplet)
    table = comparisons(mine, others, f"{args.model} (this version)")
    print(table[["set", "other", "rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi", "verdict"]].round(3).to_string())
    best = result.history["val_rmse"].min()
    report = report_header(__file__) | {
        "old_run": str(args.old_run), "model": args.model, "seed": args.seed, "overrides": args.set, "finetune_overrides": args.finetune_set,
        "gate_start": profile.model.gate_start,
        "seconds": seconds, "epochs": len(result.history), "best_val_rmse": float(best),
        "comparisons": table.to_dict("records")}
    write_report(args.out / "gated_start.json", report)


if __name__ == "__main__":
    main()
