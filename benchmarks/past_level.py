"""How well the past alone predicts the observed LAI at t, on a simulated cube: the case for the gated skip's
two-date level (``model.skip_base: two_dates``)::

    python benchmarks/past_level.py data/cube-XXXX.nc --out FILE.json

On the pixels of each set (validation and the test sets) that are clear at t and on both past dates, the RMSE
against the observation at t of

- ``persistence``: the observed LAI of t-1;
- ``persistence_smoothed``: the observed LAI of t-1 smoothed by a Gaussian of ``--sigma`` pixels over its clear
  pixels (:func:`lai.model.masked_gaussian`, as ``model.skip_smoothing`` does; noise removed in space, at the cost
  of blurring the LAI's own variation from pixel to pixel);
- ``two_date_level``: :func:`lai.model.two_date_level`, the mean of t-1 and of t-2 moved by the local mean change
  (what the variant ``final_gated`` passes on there);
- ``oracle``: the true LAI of t-1 (the oracle bound's prediction, here on these pixels only);
- ``oracle_smoothed``: the true LAI of t-1 smoothed by a Gaussian of ``--sigma`` pixels: what smoothing in space
  costs even without noise, i.e. how much the true LAI varies from pixel to pixel;

and the RMSE of the observed LAI of t-1 against its true LAI (``noise_t_minus_1``). Needs a cube with the true
LAI of every date (simulated data of this lai version). Writes the JSON and prints one line per set.
"""
from __future__ import annotations

import argparse
import math
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, write_report  # noqa: E402
from lai.config import EncodingConfig  # noqa: E402
from lai.facts import TEST_SETS, VAL  # noqa: E402
from lai.model import masked_gaussian, two_date_level  # noqa: E402
from lai.pixels import scl_lookup  # noqa: E402

CHUNK = 64  # triplets read at once


def past_level(cube: Path, sets=(VAL, *TEST_SETS), sigma: float = 0.7) -> dict[str, dict]:
    """Per set: pixel count and the RMSEs the module docstring lists."""
    enc = EncodingConfig()
    valid = scl_lookup(enc.valid_classes)
    names = ("persistence", "persistence_smoothed", "two_date_level", "oracle", "oracle_smoothed", "noise_t_minus_1")
    out = {}
    with h5py.File(cube, "r") as f:
        if "lai_true" not in f or f["lai_true"].ndim != 4:
            raise SystemExit(f"{cube}: needs the true LAI of every date (a simulated cube of this lai version)")
        labels = f["split"][:].astype(str)
        for name in sets:
            index = np.flatnonzero(labels == name)
            sse, n = dict.fromkeys(names, 0.0), 0
            for start in range(0, len(index), CHUNK):
                rows = index[start:start + CHUNK]
                obs = f["lai"][rows].astype(np.float64)
                scl = f["scl"][rows]
                truth = f["lai_true"][rows].astype(np.float64)
                clear = valid[scl] & np.isfinite(obs)
                mask = clear.all(axis=1)
                x = types.SimpleNamespace(past_valid=torch.from_numpy(clear[:, :2]),
                                          s2=torch.from_numpy(np.nan_to_num(obs[:, :2]) / enc.lai_scale))
                level = two_date_level(x)[:, 0].numpy() * enc.lai_scale
                t_minus_1 = torch.from_numpy(np.nan_to_num(obs[:, 1:2]))
                smoothed_obs = masked_gaussian(t_minus_1, torch.from_numpy(clear[:, 1:2]).double(), sigma)[:, 0].numpy()
                true_t_minus_1 = torch.from_numpy(truth[:, 1:2])
                smoothed = masked_gaussian(true_t_minus_1, torch.ones_like(true_t_minus_1), sigma)[:, 0].numpy()
                for key, pred, ref in (("persistence", obs[:, 1], obs[:, 2]), ("persistence_smoothed", smoothed_obs, obs[:, 2]),
                                       ("two_date_level", level, obs[:, 2]),
                                       ("oracle", truth[:, 1], obs[:, 2]), ("oracle_smoothed", smoothed, obs[:, 2]),
                                       ("noise_t_minus_1", obs[:, 1], truth[:, 1])):
                    sse[key] += float(np.square(pred - ref)[mask].sum())
                n += int(mask.sum())
            out[name] = {"triplets": len(index), "pixels": n,
                         **{key: math.sqrt(v / n) if n else float("nan") for key, v in sse.items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cube", type=Path, help="a simulated data cube (lai cube)")
    ap.add_argument("--sigma", type=float, default=0.7, help="Gaussian of the smoothed oracle, pixels (default 0.7)")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = ap.parse_args()
    result = past_level(args.cube, sigma=args.sigma)
    for name, r in result.items():
        print(f"{name:11s} {r['pixels']:9d} px: persistence {r['persistence']:.4f} (smoothed {r['persistence_smoothed']:.4f}), "
              f"two-date level {r['two_date_level']:.4f}, "
              f"oracle {r['oracle']:.4f}, oracle smoothed {r['oracle_smoothed']:.4f}; noise of t-1 {r['noise_t_minus_1']:.4f}")
    write_report(args.out, {**report_header(__file__), "cube": str(args.cube), "sigma": args.sigma, "sets": result})


if __name__ == "__main__":
    main()
