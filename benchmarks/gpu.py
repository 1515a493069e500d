"""One GPU command: training and inference throughput, peak memory and a short paper-profile training.

Everything is written to one JSON file (``--out``), section by section, so a run cut short still
leaves what it measured. Designed for one device call of at most 10 minutes on a bare GPU machine
whose Python has torch, numpy, pandas, xarray, h5py, scikit-learn, tqdm (rasterio and h5netcdf
travel as wheels; see docs/gpu.md)::

    python benchmarks/gpu.py --out gpu.json

Sections:

* ``throughput``: the final model at ``--tile`` (256) and ``--batch`` (32), paper preset, for each
  precision variant: model alone (one pre-encoded batch through ``lai.train.train_step``: forward,
  backward, Adam step) and end to end (``lai.train.train_epoch`` over the split resident on the
  GPU: indexing, encoding, step), in samples/s, with peak GPU memory.
* ``inference``: tiles/s of the final model in eval mode through ``lai.infer.forward`` (bf16,
  channels_last).
* ``training``: the ``paper`` profile shrunk by ``--set`` overrides (fewer triplets, few epochs),
  trained through ``lai.train.train_rows`` (both encoders, then the final model), with each
  stage's seconds per epoch and validation RMSE, and the projected time of the full paper
  protocol (100 epochs per stage on the paper's split sizes).

On a CPU the same script runs: at toy sizes to check it before spending GPU time (about a minute on 2 cores;
with ``--train-epochs 1`` instead of ``--skip training`` about 11 minutes, docs/gpu.md),
    python benchmarks/gpu.py --tile 64 --batch 4 --triplets 48 --steps 2 --variants fp32 --skip training
and at the CPU profile's sizes (``make bench``),
    python benchmarks/gpu.py --preset small --tile 64 --batch 16 --variants fp32 --skip training
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lai.config import EncodingConfig, ModelConfig, TrainConfig, load_profile  # noqa: E402
from lai.cube import build_cube  # noqa: E402
from lai.distributed import pick_device  # noqa: E402
from lai.encode import encode_batch  # noqa: E402
from lai.infer import build_model, forward, to_channels_last  # noqa: E402
from lai.loader import BatchLoader, CubeSplit  # noqa: E402
from lai.model import n_parameters  # noqa: E402
from lai.provenance import environment  # noqa: E402
from lai.simulate import simulate  # noqa: E402
from lai.train import train_epoch, train_rows, train_step  # noqa: E402

# name -> (bf16 autocast, channels_last, torch.compile mode or None, TF32 allowed)
VARIANTS = {
    "fp32": (False, False, None, False),
    "tf32": (False, False, None, True),  # PyTorch's default for convolutions (cuDNN TF32)
    "bf16_cl": (True, True, None, True),
    "bf16_cl_compile": (True, True, "default", True),
    "bf16_cl_compile_max": (True, True, "max-autotune-no-cudagraphs", True),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def measure_variant(name: str, cube: Path, args, device: torch.device, enc: EncodingConfig) -> dict:
    """Model-alone and end-to-end training samples/s of the final model for one precision variant."""
    bf16, channels_last, compile_mode, tf32 = VARIANTS[name]
    torch._dynamo.reset()  # each variant compiles afresh: no cache limits or guards carried over
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    reset_peak(device)
    torch.manual_seed(0)
    model = build_model(ModelConfig(row="final", preset=args.preset), enc).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    t_compile = time.perf_counter()
    step_model = torch.compile(model, mode=compile_mode) if compile_mode else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tcfg = TrainConfig()

    loader = BatchLoader(CubeSplit(cube, "train"), args.batch, True, device, "on", drop_last=True)
    train_epoch(step_model, opt, loader, tcfg, enc, bf16, channels_last, progress=False)  # warm-up (and compile)
    sync(device)
    warmup_s = time.perf_counter() - t_compile
    seen, seconds = 0, 0.0
    while seen < args.steps * args.batch:  # whole epochs, as training runs them
        e2e = train_epoch(step_model, opt, loader, tcfg, enc, bf16, channels_last, progress=False)
        seen += round(e2e["samples_per_s"] * e2e["seconds"])
        seconds += e2e["seconds"]

    x = encode_batch(next(iter(loader)), enc)
    if channels_last:
        x = to_channels_last(x)

    for _ in range(3):
        train_step(step_model, opt, x, tcfg, bf16)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        train_step(step_model, opt, x, tcfg, bf16)
    sync(device)
    alone = args.steps * args.batch / (time.perf_counter() - t0)
    return {
        "bf16": bf16, "channels_last": channels_last, "compile": compile_mode, "tf32": tf32,
        "model_alone_samples_per_s": alone, "end_to_end_samples_per_s": seen / seconds,

        "warmup_and_compile_s": warmup_s, "peak_gpu_gib": peak_gib(device),
        "parameters": n_parameters(model), "resident": loader.resident,
    }


@torch.no_grad()
def measure_inference(cube: Path, args, device: torch.device, enc: EncodingConfig, compile_mode: str | None) -> dict:
    """Tiles/s of the final model in eval mode, encoding included, from the resident split."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch._dynamo.reset()
    cuda = device.type == "cuda"
    reset_peak(device)
    model = build_model(ModelConfig(row="final", preset=args.preset), enc).to(device).eval()
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    run = torch.compile(model, mode=compile_mode) if compile_mode else model
    loader = BatchLoader(CubeSplit(cube, "train"), args.batch, False, device, "on")

    def passes(n):
        done = 0
        while done < n:
            for raw in loader:
                forward(run, raw, enc, bf16=cuda, channels_last=cuda)
                done += raw["s1"].shape[0]
                if done >= n:
                    break
        return done

    passes(args.batch * 3)
    sync(device)
    t0 = time.perf_counter()
    n = passes(args.batch * args.steps)
    sync(device)
    return {"tiles_per_s": n / (time.perf_counter() - t0), "batch": args.batch, "bf16": cuda,
            "channels_last": cuda, "compile": compile_mode, "peak_gpu_gib": peak_gib(device)}


def measure_training(args, work: Path) -> dict:
    """A short run of the paper profile (shrunk by overrides) through the real training entry point."""
    overrides = [
        f"simulate.train_triplets={args.train_triplets}", f"simulate.unique_triplets={args.train_unique}",
        f"simulate.tile_size={args.tile}", f"train.epochs={args.train_epochs}", f"train.compile={args.train_compile}",
        *args.set,
    ]
    profile = load_profile("paper", overrides)
    t0 = time.perf_counter()
    sim = simulate(profile.simulate, work / "train-lnb", progress=False)
    sim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = build_cube(work / "train-lnb", work / "train-cube.nc", profile.splits, profile.encoding, progress=False)
    cube_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = train_rows(profile, work / "train-cube.nc", work / "runs", rows=["final"], progress=False)
    train_s = time.perf_counter() - t0
    paper = load_profile("paper")
    # Paper split sizes scale with the simulated triplets: same fractions as this subset's split.
    scale = (paper.simulate.train_triplets + paper.simulate.unique_triplets) / max(1, summary.n_triplets)
    stages, projected = {}, 0.0
    for row, res in results.items():
        h = res.history
        steady = h["seconds"].iloc[1:] if len(h) > 1 else h["seconds"]  # epoch 1 includes compilation
        stages[row] = {
            "epochs": int(len(h)), "seconds_per_epoch": [round(float(s), 2) for s in h["seconds"]],
            "samples_per_s": [round(float(s), 1) for s in h["samples_per_s"]],
            "val_rmse": [round(float(v), 4) for v in h["val_rmse"]], "best_val_rmse": float(h["val_rmse"].min()),
        }
        projected += float(steady.mean()) * scale * paper.train.epochs
    return {
        "overrides": overrides, "simulate_s": sim_s, "simulated_triplets": sim["triplets"], "cube_s": cube_s,
        "splits": summary.splits, "train_s": train_s, "stages": stages,
        "projected_paper_protocol_hours": projected / 3600,
        "projection": f"mean steady epoch time per stage x {scale:.1f} (paper triplets / these) x "
                      f"{paper.train.epochs} epochs, summed over every stage trained (both encoders, then the "
                      f"final model once per training seed)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="gpu-benchmark.json")
    ap.add_argument("--preset", default="paper", choices=["paper", "small"])
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--triplets", type=int, default=320, help="simulated triplets of the throughput cube")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--variants", default="fp32,tf32,bf16_cl,bf16_cl_compile", help=f"from {', '.join(VARIANTS)}")
    ap.add_argument("--inference-compile", default="default", help="torch.compile mode for inference, or none")
    ap.add_argument("--train-triplets", type=int, default=800, help="training section: simulated triplets")
    ap.add_argument("--train-unique", type=int, default=0)
    ap.add_argument("--train-epochs", type=int, default=3)
    ap.add_argument("--train-compile", default="false", help="train.compile for the training section")
    ap.add_argument("--set", action="append", default=[], help="more profile overrides for the training section")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: throughput, inference, training")
    ap.add_argument("--work", default=None, help="folder for simulated data (default: a temporary one)")
    args = ap.parse_args()

    device = pick_device("auto")
    torch.backends.cudnn.benchmark = device.type == "cuda"
    skip = set(filter(None, args.skip.split(",")))
    out = Path(args.out)
    report: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads",
        "tile": args.tile, "batch": args.batch, "preset": args.preset, "environment": environment(),
    }

    print(f"device: {report['device']}" + ("" if device.type == "cuda" else " (no CUDA GPU: every figure is a CPU's)"),
          flush=True)

    def save():
        out.write_text(json.dumps(report, indent=2))

    enc = EncodingConfig()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        if not {"throughput", "inference"} <= skip:
            t0 = time.perf_counter()
            quick = load_profile("quick", [f"simulate.tile_size={args.tile}", f"simulate.train_triplets={args.triplets}",
                                           "simulate.unique_triplets=0", "splits.test_fraction=0.05",
                                           "splits.val_fraction=0.05"])
            simulate(quick.simulate, work / "lnb", progress=False)
            build_cube(work / "lnb", work / "cube.nc", quick.splits, quick.encoding, progress=False)
            report["throughput_data"] = {"seconds": time.perf_counter() - t0,
                                         "train_triplets": len(CubeSplit(work / "cube.nc", "train"))}
            save()
        if "throughput" not in skip:
            report["throughput"] = {}
            for name in filter(None, args.variants.split(",")):
                print(f"throughput: {name} ...", flush=True)
                report["throughput"][name] = measure_variant(name, work / "cube.nc", args, device, enc)
                print(f"  {json.dumps(report['throughput'][name])}", flush=True)
                save()
        if "inference" not in skip:
            mode = None if args.inference_compile == "none" else args.inference_compile
            report["inference"] = measure_inference(work / "cube.nc", args, device, enc, mode)
            print(f"inference: {json.dumps(report['inference'])}", flush=True)
            save()
        if "training" not in skip:
            print("training: short paper-profile run ...", flush=True)
            report["training"] = measure_training(args, work)
            save()

    print(f"\ndevice: {report['device']}; final model ({args.preset} preset), {args.tile}x{args.tile}, batch {args.batch}")
    for name, r in report.get("throughput", {}).items():
        print(f"  {name:22s} model alone {r['model_alone_samples_per_s']:8.1f}   end to end "
              f"{r['end_to_end_samples_per_s']:8.1f} samples/s   peak {r['peak_gpu_gib'] or 0:.2f} GiB")
    if "inference" in report:
        print(f"  inference {report['inference']['tiles_per_s']:.1f} tiles/s")
    if "training" in report:
        t = report["training"]
        for row, s in t["stages"].items():
            print(f"  {row:14s} s/epoch {s['seconds_per_epoch']}  val RMSE {s['val_rmse']}")
        print(f"  projected paper protocol: {t['projected_paper_protocol_hours']:.2f} h")
    print(f"written {out}")


if __name__ == "__main__":
    main()
