"""One CPU training step of a model, under the layouts and precisions a CPU could run it in, side by side.

Times :func:`lai.train.train_step` (forward, loss, backward, Adam) of one Table 1 row on one fixed batch
of random inputs (no loader, no encoding), in one process, for each variant:

- ``fp32``: channels-first (NCHW), what training did before ``train.channels_last`` was on for the CPU;
- ``channels_last``: the model and its image inputs in channels_last order (what training does now: with
  BatchNorm on a channels-first copy below ``lai.model.CHANNELS_FIRST_BATCHNORM_BELOW`` channels);
- ``channels_last+bn_cl``: the same with every BatchNorm in channels_last order (lai before 8fbe9f4);
- ``bf16``, ``channels_last+bf16``: under bf16 autocast (``train.bf16=on``; fast only where the CPU has
  AVX512_BF16 or AMX, and not fp32);
- ``channels_last+compile`` (with ``--compile``): ``torch.compile`` of the channels_last model; its
  compilation time (the first three steps) is reported apart.

Each variant builds the model afresh from one seed, runs a few warm-up steps, then times ``--steps``
steps; variants alternate for ``--repeats`` rounds. Prints and writes (JSON) samples/s per round, the
median, and each variant's ratio to ``fp32`` per round. Example (small preset, quick profile's batch)::

    python benchmarks/cpu_step.py --preset small --tile 64 --batch 16 --compile
    python benchmarks/cpu_step.py --variants fp32 channels_last --repeats 5  # a CPU without bf16 hardware

With ``--roofline`` it also counts the floating-point operations of one training step (forward, loss and backward,
``torch.utils.flop_counter``; Adam's few per parameter are left out) per sample, gives each variant's rate in
GFLOP/s, and measures two rates this CPU reaches in fp32 on its own: a 2048x2048 matrix product and the 3x3
convolution of the model's widest channels (in and out) over the whole tile at the benchmark's batch (channels_last,
forward, median of 20):
how far the step is from what the machine can do, i.e. how much any fp32 change of layout or threads could still gain
at the same widths.

With ``--batchnorm C`` (repeatable) it also times one BatchNorm layer of C channels alone (forward and
backward, training mode, ``nn.BatchNorm2d``) on a (batch, C, tile, tile) input in channels-first and in
channels_last order.

Pin the kernels the tests use with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``, one thread
with ``OMP_NUM_THREADS=1``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from pathlib import Path

import torch
from _common import median_seconds, report_header, write_report

import lai.model
from lai.config import EncodingConfig, ModelConfig, TrainConfig
from lai.encode import encode_batch, mask_channels
from lai.infer import to_channels_last
from lai.model import LAIModel
from lai.train import train_step

HERE = Path(__file__).resolve().parent
VARIANTS = ("fp32", "channels_last", "channels_last+bn_cl", "bf16", "channels_last+bf16")


def random_batch(batch: int, tile: int, enc: EncodingConfig, seed: int = 0):
    """An encoded batch of random inputs in the loader's value ranges (dB, LAI, SCL classes, days of year)."""
    g = torch.Generator().manual_seed(seed)
    raw = {"s1": torch.randn(batch, 3, 2, tile, tile, generator=g) * 3 - 12,
           "lai": torch.rand(batch, 3, tile, tile, generator=g) * 5,
           "scl": torch.randint(0, 12, (batch, 3, tile, tile), generator=g, dtype=torch.uint8),
           "doy_target": torch.randint(1, 366, (batch,), generator=g),
           "doy_from": torch.randint(1, 366, (batch,), generator=g)}
    return encode_batch(raw, enc)


def time_variant(variant: str, args, enc: EncodingConfig) -> dict:
    """Samples/s of ``args.steps`` timed steps (median step) of a fresh model under ``variant``."""
    below = lai.model.CHANNELS_FIRST_BATCHNORM_BELOW
    if variant.endswith("+bn_cl"):
        lai.model.CHANNELS_FIRST_BATCHNORM_BELOW = 0  # read at every forward
    try:
        return _time_variant(variant, args, enc)
    finally:
        lai.model.CHANNELS_FIRST_BATCHNORM_BELOW = below


def time_batchnorm(channels: int, args, repeats: int = 50) -> dict:
    """Milliseconds (median of ``repeats``) of one training-mode BatchNorm forward and backward on a random
    (batch, channels, tile, tile) input, channels-first and channels_last."""
    out = {}
    for layout in ("channels_first", "channels_last"):
        layer = torch.nn.BatchNorm2d(channels)
        x = torch.randn(args.batch, channels, args.tile, args.tile)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        grad = torch.randn_like(x)
        out[layout] = 1000 * median_seconds(lambda layer=layer, x=x, grad=grad: layer(x).backward(grad), repeats, warmup=5)
    return out


def step_gflop(args, enc: EncodingConfig) -> float:
    """GFLOP of one training step (forward, loss, backward) per sample of the benchmark's model and batch."""
    from torch.utils.flop_counter import FlopCounterMode

    from lai.loss import total_loss

    model = LAIModel(ModelConfig(preset=args.preset, row=args.row, uncertainty=True), mask_channels(enc))
    x = random_batch(args.batch, args.tile, enc)
    with FlopCounterMode(display=False) as counter:
        loss, _ = total_loss(model(x), x, TrainConfig())
        loss.backward()
    return counter.get_total_flops() / args.batch / 1e9


def machine_rates(args, repeats: int = 20) -> dict:
    """GFLOP/s (median of ``repeats``) of a 2048x2048 fp32 matrix product and of a 3x3 convolution of the model's
    widest channels (in and out) over the whole tile at the benchmark's batch, channels_last."""
    import torch.nn.functional as F

    def rate(fn, flop: float) -> float:
        return flop / median_seconds(fn, repeats, warmup=3) / 1e9

    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    widths = ModelConfig(preset=args.preset).encoder_widths
    c, side = max(widths), args.tile
    x = torch.randn(args.batch, c, side, side).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, c, 3, 3).contiguous(memory_format=torch.channels_last)
    conv_flop = 2 * args.batch * side * side * c * c * 9
    return {"matmul_2048": rate(lambda: a @ b, 2 * n**3),
            f"conv3x3_{c}ch_{side}px": rate(lambda: F.conv2d(x, w, padding=1), conv_flop)}


def _time_variant(variant: str, args, enc: EncodingConfig) -> dict:
    torch.manual_seed(0)
    model = LAIModel(ModelConfig(preset=args.preset, row=args.row, uncertainty=True), mask_channels(enc))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    tcfg = TrainConfig()
    x = random_batch(args.batch, args.tile, enc)
    if "channels_last" in variant:
        model = model.to(memory_format=torch.channels_last)
        x = to_channels_last(x)
    bf16 = "bf16" in variant
    step_model, compile_s = model, None
    if "compile" in variant:
        step_model = torch.compile(model)
        t0 = time.perf_counter()
        for _ in range(3):
            train_step(step_model, opt, x, tcfg, bf16)
        compile_s = time.perf_counter() - t0
    seconds = median_seconds(lambda: train_step(step_model, opt, x, tcfg, bf16), args.steps, args.warmup)
    return {"samples_per_s": args.batch / seconds, "compile_s": compile_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small", help="model preset (default small)")
    ap.add_argument("--row", default="final", help="Table 1 row (default final)")
    ap.add_argument("--tile", type=int, default=64, help="tile size (default 64)")
    ap.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per variant and round (default 30)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds over all variants (default 3)")
    ap.add_argument("--compile", action="store_true", help="also time channels_last+compile")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), metavar="V",
                    help=f"the variants to time, fp32 always among them (default all: {', '.join(VARIANTS)}); the bf16 "
                         "ones take minutes per round on a CPU without AVX512_BF16 or AMX")
    ap.add_argument("--roofline", action="store_true",
                    help="also count the step's FLOPs and measure the CPU's fp32 matrix-product and convolution rates")
    ap.add_argument("--batchnorm", type=int, action="append", default=[], metavar="C",
                    help="also time one BatchNorm layer of C channels alone, in both layouts (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: benchmarks/results/cpu-step-DATE.json)")
    args = ap.parse_args()
    enc = EncodingConfig()
    chosen = ("fp32", *(v for v in VARIANTS if v in args.variants and v != "fp32"))  # the ratios' reference first
    variants = (*chosen, "channels_last+compile") if args.compile else chosen
    loads, rounds = [os.getloadavg()], []
    for r in range(args.repeats):
        rounds.append({v: time_variant(v, args, enc) for v in variants})
        loads.append(os.getloadavg())
        print(f"round {r + 1}/{args.repeats}: " + ", ".join(f"{v} {x['samples_per_s']:.1f}" for v, x in rounds[-1].items())
              + f" samples/s, load {loads[-1][0]:.1f}", flush=True)
    report = {**report_header(__file__),
              "env": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS")},
              "load_average_1_5_15": {"start": loads[0], "end": loads[-1], "max_1min": max(x[0] for x in loads)},
              "settings": {k: getattr(args, k) for k in ("preset", "row", "tile", "batch", "steps", "warmup", "repeats")},
              "rounds": rounds, "variants": {}}
    print(f"\n{report['date']}, torch {torch.__version__}, kernels {report['machine']['cpu_kernels']}, "
          f"{torch.get_num_threads()} threads; samples/s, median of {args.repeats} rounds; x fp32 per round")
    for v in variants:
        rates = [x[v]["samples_per_s"] for x in rounds]
        ratios = [x[v]["samples_per_s"] / x["fp32"]["samples_per_s"] for x in rounds]
        compile_s = [x[v]["compile_s"] for x in rounds if x[v]["compile_s"] is not None]
        report["variants"][v] = {"samples_per_s": rates, "median": statistics.median(rates), "x_fp32": ratios,
                                 "compile_s": compile_s or None}
        print(f"  {v:22s} {statistics.median(rates):6.1f}  x{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
              + (f"  (compile {min(compile_s):.0f}-{max(compile_s):.0f} s)" if compile_s else ""))
    if args.roofline:
        gflop, rates = step_gflop(args, enc), machine_rates(args)
        report["roofline"] = {"gflop_per_sample": gflop, "machine_gflop_per_s": rates, "variants_gflop_per_s": {
            v: gflop * report["variants"][v]["median"] for v in variants}}
        print(f"one training step: {gflop:.3f} GFLOP per sample; this CPU, fp32: "
              + ", ".join(f"{k} {r:.0f} GFLOP/s" for k, r in rates.items()))
        for v, r in report["roofline"]["variants_gflop_per_s"].items():
            print(f"  {v:22s} {r:6.1f} GFLOP/s, " + ", ".join(f"{r / m:.2f} of {k}" for k, m in rates.items()))
    if args.batchnorm:
        report["batchnorm_ms"] = {}
        print(f"one BatchNorm layer, forward + backward, ms (median of 50), input {args.batch}xCx{args.tile}x{args.tile}:")
        for c in args.batchnorm:
            report["batchnorm_ms"][c] = ms = time_batchnorm(c, args)
            print(f"  C={c:4d}  channels-first {ms['channels_first']:.3f}  channels_last {ms['channels_last']:.3f}")
    write_report(args.out or HERE / "results" / f"cpu-step-{dt.date.today().isoformat()}.json", report)


if __name__ == "__main__":
    main()
