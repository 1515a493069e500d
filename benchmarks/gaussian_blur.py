"""The Gaussian blur of :func:`lai.model.gaussian_blur` as two band-matrix products (lai since 816683b) against
the 2-D convolution of (6 sigma + 1)^2 taps it replaced, side by side in one process::

    python benchmarks/gaussian_blur.py                     # the standard profile's tiles and batch
    python benchmarks/gaussian_blur.py --tile 256 --out /tmp/blur-256.json

Two timings, alternating between the two forms for ``--repeats`` rounds:

- ``blur_ms``: :func:`lai.model.past_context`'s blurs of one batch alone (for each sigma of the variant
  ``final_gated``, the clear weights and the clear LAI of both past dates: ``4 * batch`` images per sigma);
- ``step``: one training step (:func:`lai.train.train_step`: forward, loss, backward, Adam) of ``final_gated``
  (the small preset, channels_last, fp32) on one fixed batch of random inputs, samples/s.

Also the largest difference between the two forms' outputs (float32 rounding: they sum in another order). Writes
``benchmarks/results/gaussian-blur-DATE.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import median_seconds, report_header, write_report
from cpu_step import random_batch

import lai.model
from lai.config import EncodingConfig, ModelConfig, TrainConfig
from lai.encode import mask_channels
from lai.facts import EXTRA_ROWS
from lai.infer import to_channels_last
from lai.train import train_step

HERE = Path(__file__).resolve().parent
VARIANT = "final_gated"


def convolution_blur(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """lai.model.gaussian_blur before this change: one 2-D convolution with the outer product of the taps."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=values.dtype, device=values.device) / sigma) ** 2)
    kernel = (taps[:, None] * taps[None, :] / taps.sum() ** 2)[None, None]
    off = torch.autocast(values.device.type, enabled=False) if values.device.type in ("cpu", "cuda") else nullcontext()
    with off:
        return F.conv2d(values, kernel, padding=radius)


FORMS = {"band_matrices": lai.model.gaussian_blur, "convolution": convolution_blur}


def time_form(form: str, args, enc: EncodingConfig, sigmas) -> dict:
    lai.model.gaussian_blur = FORMS[form]  # what past_context and two_date_level call
    images = torch.rand(4 * args.batch, 1, args.tile, args.tile, generator=torch.Generator().manual_seed(0))
    blur_s = median_seconds(lambda: [FORMS[form](images, s) for s in sigmas], args.steps, args.warmup)
    torch.manual_seed(0)
    model_cfg = ModelConfig(preset="small", row="final", uncertainty=True, **EXTRA_ROWS[VARIANT].overrides["model"])
    model = lai.model.LAIModel(model_cfg, mask_channels(enc)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = to_channels_last(random_batch(args.batch, args.tile, enc))
    step_s = median_seconds(lambda: train_step(model, opt, x, TrainConfig(), False), args.steps, args.warmup)
    return {"blur_ms": 1000 * blur_s, "step_samples_per_s": args.batch / step_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tile", type=int, default=64, help="tile size (default 64)")
    ap.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    ap.add_argument("--steps", type=int, default=20, help="timed calls per form and round (default 20)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds over both forms (default 3)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: benchmarks/results/gaussian-blur-DATE.json)")
    args = ap.parse_args()
    enc = EncodingConfig()
    sigmas = EXTRA_ROWS[VARIANT].overrides["model"]["past_context"]
    probe = torch.rand(8, 1, args.tile, args.tile, generator=torch.Generator().manual_seed(1)) * 8
    max_diff = max(float((FORMS["band_matrices"](probe, s) - convolution_blur(probe, s)).abs().max()) for s in sigmas)
    loads, rounds = [os.getloadavg()], []
    for r in range(args.repeats):
        rounds.append({form: time_form(form, args, enc, sigmas) for form in FORMS})
        loads.append(os.getloadavg())
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(
            f"{f} blur {x['blur_ms']:.1f} ms, step {x['step_samples_per_s']:.1f} samples/s" for f, x in rounds[-1].items())
            + f"; load {loads[-1][0]:.1f}", flush=True)
    ratios = {key: [x["band_matrices"][key] / x["convolution"][key] for x in rounds]
              for key in ("blur_ms", "step_samples_per_s")}
    report = {**report_header(__file__),
              "load_average_1_5_15": {"start": loads[0], "end": loads[-1], "max_1min": max(x[0] for x in loads)},
              "settings": {**{k: getattr(args, k) for k in ("tile", "batch", "steps", "warmup", "repeats")},
                           "variant": VARIANT, "sigmas": sigmas},
              "max_abs_difference_lai_0_8": max_diff, "rounds": rounds,
              "blur_speedup_per_round": [1 / r for r in ratios["blur_ms"]],
              "step_speedup_per_round": ratios["step_samples_per_s"]}
    print(f"\n{report['date']}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tile}x{args.tile}, "
          f"batch {args.batch}; largest difference {max_diff:.1e} (values 0-8)")
    for key, label in (("blur_speedup_per_round", "blurs alone"), ("step_speedup_per_round", "training step")):
        x = report[key]
        print(f"  {label}: band matrices x{statistics.median(x):.2f} [{min(x):.2f}, {max(x):.2f}] the convolution")
    write_report(args.out or HERE / "results" / f"gaussian-blur-{dt.date.today().isoformat()}.json", report)


if __name__ == "__main__":
    main()
