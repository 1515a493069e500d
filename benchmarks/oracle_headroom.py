"""How far below the oracle bound a predictor could go on a simulated cube, and what stands in its way::

    python benchmarks/oracle_headroom.py data/cube-XXXX.nc --out FILE.json

A gradient-boosted regressor per pixel (scikit-learn's ``HistGradientBoostingRegressor``, 300 rounds of at most 63
leaves), fitted on up to ``--pixels`` pixels of the training split, predicts the LAI at t from

- ``true_past``: the TRUE LAI of t-2 and t-1 (which no model has), S1 VV and VH of the three dates as they are and
  under a Gaussian of 1.5 pixels, the target's day of year (sin, cos) and the two gaps between the dates; fitted on
  the true LAI at t: what knowing the past exactly is worth, i.e. whether the oracle (the true LAI of t-1) can be
  beaten at all by forecasting the change;
- ``observed_past``: the observed LAI of t-2 and t-1 where clear (missing elsewhere), for each Gaussian of 1, 2 and
  4 pixels their means over the clear pixels and the clear fractions (:func:`lai.model.past_context`), and the same
  S1 and date features; fitted on the observed LAI at t of the pixels clear at t (``encoding.valid_classes``, the
  paper's loss): what any model can learn from;
- ``observed_past_strict``: the same, fitted on the pixels of SCL 4-6 at t only (``train.loss_classes: [4, 5,
  6]``: not the flagged cloud shadows and dark areas, whose retrieved LAI the simulator makes too low);

and each is scored as the oracle is (``tables/noise_floor.csv``): on every set's pixels clear at t, against the
observation (RMSE and mean difference) and against the true LAI. Not a baseline of lai's tables (their settings are
fixed by the science issue): a bound on what the inputs allow. Needs a cube with the true LAI of every date (a
simulated cube of this lai version). Writes the JSON and prints one line per set; about 3 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import types
from pathlib import Path

import h5py
import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, write_report  # noqa: E402
from lai.config import EncodingConfig  # noqa: E402
from lai.encode import day_of_year  # noqa: E402
from lai.facts import STRICT_VALID_CLASSES, TEST_SETS, TRAIN, VAL  # noqa: E402
from lai.model import gaussian_blur, past_context  # noqa: E402
from lai.pixels import scl_lookup  # noqa: E402

CHUNK = 64  # triplets read at once
CONTEXT_SIGMAS = (1.0, 2.0, 4.0)
S1_SIGMA = 1.5
# each model and the feature columns it reads (features()); the strict one differs in its training pixels only
MODELS = {"true_past": "true_past", "observed_past": "observed_past", "observed_past_strict": "observed_past"}


def features(f: h5py.File, rows: np.ndarray, enc: EncodingConfig) -> dict[str, np.ndarray]:
    """Per pixel of the triplets ``rows`` (sorted): the feature columns of both kinds, targets and masks, flattened."""
    s1 = torch.from_numpy(f["s1"][rows].astype(np.float32))  # (n, 3, 2, H, W) dB
    obs = f["lai"][rows].astype(np.float32)
    truth = f["lai_true"][rows].astype(np.float32)
    scl = f["scl"][rows]
    n, _, _, h, w = s1.shape
    clear = scl_lookup(enc.valid_classes)[scl] & np.isfinite(obs)
    smooth_s1 = gaussian_blur(s1.reshape(n * 6, 1, h, w), S1_SIGMA).reshape(n, 6, h, w).numpy()
    past = types.SimpleNamespace(s2=torch.from_numpy(np.nan_to_num(obs[:, :2])), past_valid=torch.from_numpy(clear[:, :2]))
    context = past_context(past, CONTEXT_SIGMAS, past.s2).numpy()
    days = np.asarray(f["date"][rows], "datetime64[D]")
    angle = 2 * np.pi * day_of_year(days[:, 2]) / 365.25
    per_triplet = np.stack([np.sin(angle), np.cos(angle), *np.diff(days.astype(np.int64), axis=1).T.astype(np.float64)], 1)
    shared = [s1.reshape(n, 6, h, w).numpy(), smooth_s1, np.broadcast_to(per_triplet[:, :, None, None], (n, 4, h, w))]
    observed_past = np.where(clear[:, :2], obs[:, :2], np.nan)
    flat = lambda maps: np.concatenate([m.astype(np.float32) for m in maps], 1).transpose(0, 2, 3, 1).reshape(n * h * w, -1)  # noqa: E731
    return {"true_past": flat([truth[:, :2], *shared]), "observed_past": flat([observed_past, context, *shared]),
            "obs": obs[:, 2].reshape(-1), "truth": truth[:, 2].reshape(-1), "oracle": truth[:, 1].reshape(-1),
            "clear": clear[:, 2].reshape(-1), "strict": np.isin(scl[:, 2], STRICT_VALID_CLASSES).reshape(-1)}


def fit(cube: Path, pixels: int, seed: int, enc: EncodingConfig) -> dict[str, HistGradientBoostingRegressor]:
    """The three regressors of the module docstring, each on up to ``pixels`` pixels of the training split."""
    rng = np.random.default_rng(seed)
    with h5py.File(cube, "r") as f:
        rows = np.flatnonzero(f["split"][:].astype(str) == TRAIN)
        clear_total = int((scl_lookup(enc.valid_classes)[f["scl"][rows, 2]] & np.isfinite(f["lai"][rows, 2])).sum())
        keep = min(1.0, pixels / max(clear_total, 1))
        parts = []
        for start in range(0, len(rows), CHUNK):
            x = features(f, rows[start:start + CHUNK], enc)
            drawn = x["clear"] & (rng.random(x["clear"].shape) < keep)
            parts.append({k: v[drawn] for k, v in x.items()})
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    make = lambda: HistGradientBoostingRegressor(max_iter=300, max_leaf_nodes=63, random_state=seed)  # noqa: E731
    strict = data["strict"]
    return {"true_past": make().fit(data["true_past"], data["truth"]),
            "observed_past": make().fit(data["observed_past"], data["obs"]),
            "observed_past_strict": make().fit(data["observed_past"][strict], data["obs"][strict])}


def score(cube: Path, models: dict, enc: EncodingConfig, sets=(VAL, *TEST_SETS)) -> dict[str, dict]:
    """Per set: pixels clear at t, and for the oracle and each model the RMSE against the observation and the truth
    and the mean difference from the observation."""
    out = {}
    with h5py.File(cube, "r") as f:
        labels = f["split"][:].astype(str)
        for name in sets:
            rows = np.flatnonzero(labels == name)
            sums = {key: np.zeros(3) for key in ("oracle", *models)}
            n = 0
            for start in range(0, len(rows), CHUNK):
                x = features(f, rows[start:start + CHUNK], enc)
                clear = x["clear"]
                preds = {"oracle": x["oracle"][clear],
                         **{key: m.predict(x[MODELS[key]][clear])
                            for key, m in models.items()}}
                obs, truth = x["obs"][clear], x["truth"][clear]
                for key, pred in preds.items():
                    sums[key] += [np.square(pred - obs).sum(), np.square(pred - truth).sum(), (pred - obs).sum()]
                n += int(clear.sum())
            out[name] = {"triplets": len(rows), "pixels": n,
                         **{key: {"rmse_obs": math.sqrt(s[0] / n), "rmse_truth": math.sqrt(s[1] / n), "bias_obs": s[2] / n}
                            if n else None for key, s in sums.items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cube", type=Path, help="a simulated data cube (lai cube) with the true LAI of every date")
    ap.add_argument("--pixels", type=int, default=600_000, help="training pixels drawn for each fit (default 600,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = ap.parse_args()
    with h5py.File(args.cube, "r") as f:
        if "lai_true" not in f or f["lai_true"].ndim != 4:
            raise SystemExit(f"{args.cube}: needs the true LAI of every date (a simulated cube of this lai version)")
    enc = EncodingConfig()
    t0 = time.perf_counter()
    result = score(args.cube, fit(args.cube, args.pixels, args.seed, enc), enc)
    for name, r in result.items():
        print(f"{name:11s} {r['pixels']:9d} px, RMSE against the observation (the truth): "
              + ", ".join(f"{key} {r[key]['rmse_obs']:.4f} ({r[key]['rmse_truth']:.4f})" for key in ("oracle", *MODELS)))
    write_report(args.out, {**report_header(__file__), "cube": str(args.cube), "pixels": args.pixels, "seed": args.seed,
                            "context_sigmas": CONTEXT_SIGMAS, "s1_sigma": S1_SIGMA,
                            "seconds": time.perf_counter() - t0, "sets": result})


if __name__ == "__main__":
    main()
