"""Up-sampling in the U-Nets: transposed convolution (the reference's) vs bilinear + 3x3 convolution.

Trains one Table 1 row twice on the same simulated data with the same seed, once per
``model.upsample`` option, scores both on the test sets and measures a checkerboard index on
their predictions::

    python benchmarks/upsampling.py --profile quick --row final --set train.epochs=10 --out /tmp/upsampling

Scores: test RMSE (LAI, pixels clear at t) with a 95% bootstrap interval over triplets, and the
paired difference bilinear - transpose on the same triplets (``lai.metrics``).

Checkerboard index (:func:`checkerboard_index`): a stride-2 up-sampling whose output pixels depend
on their position in the 2x2 block adds a pattern of period 2 pixels, i.e. power at the Nyquist
frequency. Per map (mean removed), the index is the mean spectral power on the Nyquist row and
column of the 2D spectrum (frequency 1/2 cycle per pixel along y or along x) divided by the mean
power on the rows and columns of the next ``band`` frequencies below it; the ratio of the summed
powers over all maps is reported. Maps with a missing pixel are left out (filling would add edges).
A smooth field gives a value at most about 1 (power falls with frequency), white noise about 1, a
period-2 pattern a value well above it. The same index of the observed LAI at t (maps without a
missing pixel) and, on simulated data, of the true LAI is the reference.

Training cost: seconds per epoch of each stage (wall time, disturbed by other jobs on a shared
machine), and the CPU time of one training step (forward + backward) of the row's model on a
random batch, the two options alternating so that both see the same load.

Writes ``<out>/upsampling.json`` (and the run folders under ``<out>``).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lai.facts import ROWS, TEST_SETS, UPSAMPLING  # noqa: E402
from lai.metrics import SUMS, bootstrap_intervals, paired_difference  # noqa: E402
from lai.run_folder import RunContext  # noqa: E402


def nyquist_power(maps: np.ndarray, band: int = 3) -> tuple[float, float]:
    """(mean power on the Nyquist row and column, mean power on the ``band`` rows and columns below them),
    summed over maps (N, H, W) with even H, W and no missing pixel; the mean of each map is removed."""
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 3 or maps.shape[1] % 2 or maps.shape[2] % 2:
        raise ValueError(f"maps must be (N, H, W) with even H and W, got {maps.shape}")
    x = maps - maps.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2  # (N, H, W); index H/2 (W/2) is the Nyquist frequency
    h, w = maps.shape[1:]
    ny = np.zeros((h, w), bool)
    ny[h // 2, :] = ny[:, w // 2] = True
    near = np.zeros((h, w), bool)
    for k in range(1, band + 1):  # frequencies (h/2 - k) and their negative twins (h/2 + k)
        near[[h // 2 - k, h // 2 + k], :] = True
        near[:, [w // 2 - k, w // 2 + k]] = True
    near &= ~ny
    return float(power[:, ny].mean(axis=1).sum()), float(power[:, near].mean(axis=1).sum())


def complete(maps: np.ndarray) -> np.ndarray:
    """The maps (N, H, W) without a missing pixel."""
    maps = np.asarray(maps, np.float64)
    return maps[np.isfinite(maps).all(axis=(1, 2))]


def checkerboard_index(maps: np.ndarray, band: int = 3) -> float:
    """Nyquist power over the power just below it (see the module docstring) of the maps without a
    missing pixel; NaN when there is none."""
    maps = complete(maps)
    if len(maps) == 0:
        return float("nan")
    at, below = nyquist_power(maps, band)
    return at / below if below > 0 else float("nan")


def step_cpu_seconds(profile, row: str, tile: int, reps: int = 6) -> dict[str, float]:
    """Median CPU seconds of one training step (forward, loss, backward, Adam) per option, alternating."""
    import torch

    from lai.encode import encode_batch, mask_channels
    from lai.loss import total_loss
    from lai.model import LAIModel

    g = torch.Generator().manual_seed(0)
    b = profile.train.batch_size
    raw = {"s1": -25 + 20 * torch.rand(b, 3, 2, tile, tile, generator=g), "lai": 6 * torch.rand(b, 3, tile, tile, generator=g),
           "scl": torch.full((b, 3, tile, tile), 4, dtype=torch.uint8), "doy_target": torch.full((b,), 180),
           "doy_from": torch.full((b,), 160)}
    x = encode_batch(raw, profile.encoding)
    models = {}
    for option in UPSAMPLING:
        torch.manual_seed(0)
        model = LAIModel(replace(profile.model, row=row, upsample=option), mask_channels(profile.encoding))
        models[option] = (model, torch.optim.Adam(model.parameters()))
    times: dict[str, list[float]] = {o: [] for o in UPSAMPLING}
    for k in range(reps + 1):
        for option, (model, opt) in models.items():
            t = time.process_time()
            loss, _ = total_loss(model(x), x, profile.train)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if k:  # the first step warms up
                times[option].append(time.process_time() - t)
    return {o: float(np.median(v)) for o, v in times.items()}


def self_check() -> None:
    """The index must tell a period-2 pattern from a smooth field, or the measurement means nothing."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64]
    smooth = np.stack([np.sin(x / 9 + p) + np.cos(y / 7 - p) + 0.02 * rng.standard_normal((64, 64))
                       for p in rng.uniform(0, 6, 8)])
    board = smooth + 0.05 * ((x % 2) - 0.5) * (1 + 0.5 * np.sin(y / 11))
    a, b = checkerboard_index(smooth), checkerboard_index(board)
    if not (a < 1.5 and b > 5 * a):
        raise AssertionError(f"checkerboard index does not separate: smooth {a:.3f}, checkerboard {b:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--row", default="final", choices=list(ROWS), help="the row trained with each option")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="profile overrides for both")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    self_check()

    t0 = time.perf_counter()
    result: dict = {"command": " ".join(["python", "benchmarks/upsampling.py", *sys.argv[1:]]), "row": args.row,
                    "profile": args.profile, "overrides": args.set, "machine": platform.machine(),
                    "processor": platform.processor(), "options": {}}
    sums, preds, ctx = {}, {}, None
    for option in UPSAMPLING:
        ctx = RunContext(args.profile, args.set + [f"model.upsample={option}"], args.out / f"run-{option}",
                         args.out / "data")
        ctx.ensure_data(progress=False)
        t = time.perf_counter()
        stages = ctx.train([args.row], progress=False)
        train_s = time.perf_counter() - t
        metrics = ctx.evaluate(args.row).set_index("set")
        tiles = ctx.per_triplet(args.row)
        predictions = ctx.predictions(args.row)
        entry = {"train_seconds_this_session": round(train_s, 1),  # 0 for stages reused from an earlier run
                 "stages": {name: {"epochs": int(r.history["epoch"].max()), "parameters": r.parameters,
                                   "seconds_per_epoch_median": round(float(r.history["seconds"].median()), 2),
                                   "seconds_total": round(float(r.history["seconds"].sum()), 1),
                                   "best_val_rmse": round(float(r.history["val_rmse"].min()), 4)}
                            for name, r in stages.items()},
                 "sets": {}}
        for name in TEST_SETS:
            s = tiles[tiles["set"] == name].sort_values("triplet")
            sums[option, name] = s[list(SUMS)].to_numpy(np.float64)
            maps = np.asarray(predictions[name]["lai_pred"].values) if name in predictions else np.zeros((0, 2, 2))
            preds[option, name] = maps
            entry["sets"][name] = {"triplets": int(len(s)), "maps_scored_for_index": int(len(complete(maps))),
                                   "rmse": float(metrics.loc[name, "rmse"]),
                                   "r2": float(metrics.loc[name, "r2"]),
                                   **{k: float(v) for k, v in bootstrap_intervals(sums[option, name]).items()},
                                   "checkerboard_index": checkerboard_index(maps)}
        entry["checkerboard_index_all_sets"] = checkerboard_index(
            np.concatenate([preds[option, n] for n in TEST_SETS if len(preds[option, n])]))
        result["options"][option] = entry
        print(option, json.dumps(entry, indent=1), flush=True)

    ds = ctx.open_cube()
    idx = np.concatenate([np.asarray(p["triplet"].values, int) for p in ctx.predictions(args.row).values()])
    observed = ds["lai"].isel(triplet=np.sort(idx), time=2).values
    reference = {"observed_lai_t": checkerboard_index(observed), "observed_maps_without_missing": len(complete(observed))}
    if "lai_true" in ds:
        reference["true_lai_t"] = checkerboard_index(ds["lai_true"].isel(triplet=np.sort(idx), time=2).values)
    result["reference_checkerboard_index"] = reference
    result["bilinear_minus_transpose_rmse"] = {
        name: {k: (bool(v) if k == "resolved" else float(v))
               for k, v in paired_difference(sums["bilinear", name], sums["transpose", name]).items()}
        for name in TEST_SETS if len(sums["transpose", name])}
    tile = int(ds.sizes["y"])
    result["train_step_cpu_seconds"] = {"batch": ctx.profile.train.batch_size, "tile": tile,
                                        **step_cpu_seconds(ctx.profile, args.row, tile)}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    result["cpu_seconds_user_sys"] = round(usage.ru_utime + usage.ru_stime, 1)
    result["max_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "upsampling.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("reference_checkerboard_index", "bilinear_minus_transpose_rmse",
                                             "train_step_cpu_seconds", "wall_seconds", "cpu_seconds_user_sys")},
                     indent=1))


if __name__ == "__main__":
    main()
