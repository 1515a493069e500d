"""Training throughput of the final model (two encoders + decoder), data loading included.

Two figures per run, side by side: end to end (cube -> loader -> encoding -> forward/backward/step) and
the model alone on one pre-encoded batch. On a GPU: bf16 autocast, channels_last, the split resident on
the GPU, optionally torch.compile. The device is printed with the numbers.

GPU (paper size, goal >= 1,000 samples/s end to end on one H100):
    python benchmarks/train_speed.py --preset paper --tile 256 --batch 32 --compile
CPU (small preset):
    python benchmarks/train_speed.py --preset small --tile 64 --batch 16
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import simulated_cube  # noqa: E402

from lai.config import EncodingConfig, ModelConfig, TrainConfig  # noqa: E402
from lai.encode import encode_batch, mask_channels  # noqa: E402
from lai.loader import BatchLoader, CubeSplit  # noqa: E402
from lai.loss import total_loss  # noqa: E402
from lai.model import LAIModel, n_parameters  # noqa: E402
from lai.train import pick_device  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small", choices=["small", "paper"])
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--triplets", type=int, default=256, help="simulated triplets in the benchmark cube")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (after warm-up)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    device = pick_device(args.device)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = cuda
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    _, cube = simulated_cube(args.triplets, tile_size=args.tile, grid=4, windows=max(1, args.triplets // 16 + 1))
    enc, tcfg = EncodingConfig(), TrainConfig()
    model = LAIModel(ModelConfig(row="final", preset=args.preset), mask_channels(enc)).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            out = step_model(x)
        loss, _ = total_loss(out, x, tcfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def prepare(raw):
        x = encode_batch(raw, enc)
        if cuda:
            x.s1 = x.s1.contiguous(memory_format=torch.channels_last)
            x.s2 = x.s2.contiguous(memory_format=torch.channels_last)
        return x

    loader = BatchLoader(CubeSplit(cube), args.batch, shuffle=True, device=device, resident="auto")

    def batches():
        while True:
            yield from loader

    it = batches()
    for _ in range(args.warmup):
        step(prepare(next(it)))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(prepare(next(it)))
    sync(device)
    end_to_end = args.steps * args.batch / (time.perf_counter() - t0)

    x = prepare(next(it))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(x)
    sync(device)
    model_alone = args.steps * args.batch / (time.perf_counter() - t0)

    print(f"device: {name}; final model, preset {args.preset} ({n_parameters(model) / 1e6:.2f} M parameters), "
          f"{args.tile}x{args.tile}, batch {args.batch}, bf16+channels_last {cuda}, compile {args.compile}, "
          f"split resident {loader.resident}")
    print(f"end to end (loader + encoding + step): {end_to_end:8.1f} samples/s")
    print(f"model alone (one pre-encoded batch):   {model_alone:8.1f} samples/s")


if __name__ == "__main__":
    main()
