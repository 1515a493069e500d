"""Where in a pixel's past each of a finished run's final models wins, and what a stack of them with persistence
would give: per pattern of clear past dates, a non-negative weighted sum of the models' and persistence's LAI,
the weights fitted on the validation split only::

    python benchmarks/past_pattern_stack.py reports/quick --out benchmarks/results/past-pattern-stack-quick.json

``RUN`` is a finished ``lai run`` folder. The stacked models are its final model and each trained variant of it
(``runs/final``, ``runs/final_gated``, ...: first seeds only); persistence is :func:`lai.baselines.persistence`
(the last clear LAI). The patterns (:data:`PATTERNS`): t-2 and t-1 clear, t-1 clear only, t-2 clear only, and
neither (where persistence is a tile mean, left out of that pattern's stack). The weights are the non-negative
least-squares ones against the observed LAI at t on the validation pixels clear at t (what a real-data run can
fit too). Validation is also scored with weights fitted on the other half of its triplets (two halves, each
scored by the other's weights: :func:`cross_fitted`), the score a selection by validation could use.

Prints and writes (JSON): per set and pattern, each model's and persistence's RMSE against the observation and
(simulated data) the truth; the weights; paired bootstrap over triplets (:func:`lai.tables.comparisons`) of the
stack against each stacked model, the run's baselines and the oracle, and of the run's chosen model against
the same and the other stacked models (its lines against the baselines are the run's own ``comparisons.csv``
lines again: a check). Nothing in the run folder is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_chosen, run_comparators, stage_cube, write_report  # noqa: E402
from lai.baselines import _clear, persistence  # noqa: E402
from lai.config import EncodingConfig  # noqa: E402
from lai.evaluate import predict, score_sets  # noqa: E402
from lai.facts import RMSE, SELECTABLE, STAGE_WEIGHTS_FILE, TEST_SETS, VAL  # noqa: E402
from lai.infer import load_trained  # noqa: E402
from lai.loader import BatchLoader, CubeSplit  # noqa: E402
from lai.metrics import pooled  # noqa: E402
from lai.tables import comparisons  # noqa: E402

SETS = (VAL, *TEST_SETS)
NONE = -1  # the pattern of a pixel clear at neither past date
PATTERNS = {0: "t-2 and t-1 clear", 1: "t-1 clear only", 2: "t-2 clear only", NONE: "neither clear"}
_PAST = {0: (True, True), 1: (False, True), 2: (True, False)}  # (t-2 clear, t-1 clear) of each other pattern
PERSISTENCE = "persistence"
COLUMNS = ["set", "model", "other", "rmse_model", "rmse_other", "diff", "diff_lo", "diff_hi", "verdict"]


def past_of(split: CubeSplit, enc: EncodingConfig, batch_size: int) -> dict[str, np.ndarray]:
    """``persistence`` and each pixel's ``pattern`` of clear past dates (a key of :data:`PATTERNS`) for every sample
    of ``split``, in :func:`lai.evaluate.predict`'s order."""
    out: dict[str, list] = {PERSISTENCE: [], "pattern": []}
    for raw in BatchLoader(split, batch_size, False, "cpu", "auto"):
        host = {k: raw[k].numpy() for k in ("lai", "scl")}
        clear = _clear(host, enc)
        pattern = np.full(clear.shape[:1] + clear.shape[2:], NONE, np.int8)
        for i, (t2, t1) in _PAST.items():
            pattern[(clear[:, 0] == t2) & (clear[:, 1] == t1)] = i
        out[PERSISTENCE].append(persistence(host, enc))
        out["pattern"].append(pattern)
    return {k: np.concatenate(v) for k, v in out.items()}


def scored(base: dict[str, np.ndarray]) -> np.ndarray:
    """The pixels a set is scored on: clear at t, with an observed LAI."""
    return base["clear"].astype(bool) & np.isfinite(base["target"])


def fit_weights(components: dict[str, np.ndarray], pattern: np.ndarray, target: np.ndarray, use: np.ndarray
                ) -> dict[int, dict[str, float]]:
    """Per pattern, the non-negative least-squares weights of ``components`` (name -> LAI, one shape) against
    ``target`` over the pixels ``use``; persistence takes 0 where neither past date is clear; without pixels
    the first component alone."""
    from scipy.optimize import nnls

    names = list(components)
    weights = {}
    for p in PATTERNS:
        cols = [n for n in names if not (p == NONE and n == PERSISTENCE)]
        sel = use & (pattern == p)
        if not sel.any():
            weights[p] = {n: float(n == names[0]) for n in names}
            continue
        w, _ = nnls(np.stack([components[n][sel] for n in cols], 1).astype(np.float64), target[sel].astype(np.float64))
        weights[p] = {n: float(w[cols.index(n)]) if n in cols else 0.0 for n in names}
    return weights


def stacked(components: dict[str, np.ndarray], pattern: np.ndarray, weights: dict[int, dict[str, float]]) -> np.ndarray:
    """The weighted sum of ``components`` with each pixel's pattern's weights."""
    out = np.zeros(pattern.shape, np.float64)
    for p, w in weights.items():
        sel = pattern == p
        out[sel] = sum(w[n] * components[n][sel] for n in components)
    return out.astype(np.float32)


def cross_fitted(components: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> np.ndarray:
    """The stack on validation with weights fitted on the other half of its triplets (even and odd positions)."""
    use = scored(base)
    half = (np.arange(len(base["target"])) % 2).astype(bool)
    out = np.empty_like(base["target"])
    for fit_on in (half, ~half):
        w = fit_weights(components, base["pattern"], base["target"], use & fit_on[:, None, None])
        out[~fit_on] = stacked({n: c[~fit_on] for n, c in components.items()}, base["pattern"][~fit_on], w)
    return out


def pattern_rmse(name: str, set_name: str, pred: np.ndarray, base: dict[str, np.ndarray]) -> list[dict]:
    """RMSE of ``pred`` per pattern on the pixels clear at t, against the observation and the truth."""
    rows = []
    for p, text in PATTERNS.items():
        sel = scored(base) & (base["pattern"] == p)
        if not sel.any():
            continue
        row = {"set": set_name, "pattern": text, "model": name, "pixels": int(sel.sum()),
               "rmse_observation": pooled(pred, base["target"], sel)[RMSE]}
        if "truth" in base:
            row["rmse_truth"] = pooled(pred, base["truth"], sel)[RMSE]
        rows.append(row)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=16, help="prediction batch size (default 16)")
    args = ap.parse_args(argv)
    models = [m for m in SELECTABLE if (args.run / "runs" / m / STAGE_WEIGHTS_FILE).exists()]
    chosen = run_chosen(args.run)
    cube = stage_cube(args.run, models[0])
    preds = {}
    for m in models:
        trained = load_trained(args.run / "runs" / m, "cpu")
        preds[m] = {s: predict(trained, CubeSplit(cube, s), args.batch) for s in SETS}
    # targets and masks (the same in every model's pass), persistence and patterns, read once per set
    base = {s: {**preds[models[0]][s], **past_of(CubeSplit(cube, s), trained.enc, args.batch)} for s in SETS}
    components = {s: {**{m: preds[m][s]["pred"] for m in models}, PERSISTENCE: base[s][PERSISTENCE]} for s in SETS}
    val = base[VAL]
    weights = fit_weights(components[VAL], val["pattern"], val["target"], scored(val))
    stack = {s: stacked(components[s], base[s]["pattern"], weights) for s in SETS}
    rows = [r for s in SETS for n, c in components[s].items() for r in pattern_rmse(n, s, c, base[s])]
    rows += [r for s in SETS for r in pattern_rmse("stack", s, stack[s], base[s])]
    per_pattern = pd.DataFrame(rows)

    def tiles(pred_of) -> pd.DataFrame:
        return score_sets(lambda split: {**base[split.split], "pred": pred_of(split.split)}, cube, SETS)[1]

    stack_tiles = tiles(lambda s: stack[s])
    cross = score_sets(lambda split: {**val, "pred": cross_fitted(components[VAL], val)}, cube, (VAL,))[0]
    model_tiles = {m: tiles(lambda s, m=m: preds[m][s]["pred"]) for m in models}
    others = run_comparators(args.run)
    rivals = {m: t for m, t in model_tiles.items() if m != chosen}  # the chosen model against the other final models
    table = pd.concat([comparisons(stack_tiles, model_tiles, "stack", SETS),
                       comparisons(model_tiles[chosen], {**others, **rivals}, chosen), comparisons(stack_tiles, others, "stack")],
                      ignore_index=True)
    with pd.option_context("display.width", 220, "display.max_rows", 500):
        print(per_pattern.round(3).to_string(index=False))
        print("weights per pattern:", {PATTERNS[p]: {n: round(v, 3) for n, v in w.items()} for p, w in weights.items()})
        print(f"validation RMSE of the stack, weights fitted on the other half of its triplets: {cross['rmse'].iloc[0]:.4f}")
        print(table[COLUMNS].round(4).to_string(index=False))
    write_report(args.out, {**report_header(__file__), "run": str(args.run), "models": models, "chosen": chosen,
                            "weights": {PATTERNS[p]: w for p, w in weights.items()},
                            "validation_rmse_cross_fitted": float(cross["rmse"].iloc[0]),
                            "per_pattern": per_pattern.to_dict("records"), "comparisons": table.to_dict("records")})


if __name__ == "__main__":
    main()
