"""lai's paper preset against the reference code's final model: parameters, FLOPs, memory traffic, CPU step time.

The reference is valentingol/LeafNothingBehind at 5b6bce3, checked out beside this repository::

    git clone https://github.com/valentingol/LeafNothingBehind ../LeafNothingBehind
    git -C ../LeafNothingBehind checkout 5b6bce3
    python benchmarks/reference.py [--reference ../LeafNothingBehind] [--batch 2] [--repeats 5] [--out FILE]

Only its model classes are used (``lnb/architecture/models.py``: ``Strontium`` = ``Sodium`` (S1 encoder) +
``Aluminium`` (S2 encoder) + the fusion U-Net, with the sizes of ``config/models.yaml``), so neither its
data path nor its optional packages are needed (``transformers`` and ``einops``, imported at the top of its
modules but unused by these classes, are stubbed when absent). At 256x256 (the reference's only size), per
training sample, fp32:

- parameters;
- GFLOP: 2 x multiply-adds of every convolution, transposed convolution and linear layer in the forward
  pass, times 3 (forward, gradient of the input, gradient of the weights);
- non-convolution memory traffic, from the activation shapes seen by forward hooks, in bytes read plus
  written, forward and backward: BatchNorm (training: forward reads its input twice and writes its output,
  3N; backward reads the output gradient and the input twice and writes the input gradient, 5N), ReLU
  (forward N + N, backward reads the gradient and the output and writes the gradient, 3N), max pooling
  2x2 (forward reads N, writes N/4 values and N/4 int64 indices; backward reads N/4 + N/4 indices, writes
  N), concatenation (forward reads the inputs, writes the output: 2N; backward the same 2N) and up-sampling
  by interpolation (input + output, both ways); 4 bytes per value;
- CPU time of one training step (forward, backward, Adam), both models interleaved, median of ``--repeats``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import report_header, write_report  # noqa: E402

from lai.config import load_profile  # noqa: E402
from lai.encode import encode_batch  # noqa: E402
from lai.model import LAIModel, n_parameters  # noqa: E402

SIZE = 256
# config/models.yaml of the reference, "strontium" (the paper's final model)
STRONTIUM = {
    "sodium_config": {"pretrained": False, "run_id": 0, "mask_embedding_channels": 2, "mlp_layers": [2, 1],
                      "ae_config": {"in_dim": 11, "out_dim": 1, "layer_channels": [32, 64, 128], "conv_per_layer": 2,
                                    "residual": True, "dropout_rate": 0.0}},
    "aluminium_config": {"pretrained": False, "run_id": 0, "mask_embedding_channels": 2, "mlp_layers": [2, 1],
                         "ae_config": {"in_dim": 7, "out_dim": 1, "layer_channels": [32, 64, 128], "conv_per_layer": 2,
                                       "residual": True, "dropout_rate": 0.0}},
    "ae_config": {"in_dim": 64, "out_dim": 1, "layer_channels": [64, 128, 256], "conv_per_layer": 2,
                  "residual": True, "dropout_rate": 0.0},
}


def reference_models(repo: Path):
    """The reference's ``lnb.architecture.models`` module, imported from its checkout."""
    models = repo / "lnb" / "architecture" / "models.py"
    if not models.exists():
        raise SystemExit(f"{repo}: not a checkout of valentingol/LeafNothingBehind (no lnb/architecture/models.py); "
                         "see this script's docstring")
    for name in ("transformers", "einops"):  # imported at the top, unused by the classes measured here
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            stub.SegformerConfig = stub.SegformerModel = stub.rearrange = None
            sys.modules[name] = stub
    sys.path.insert(0, str(repo))
    from lnb.architecture import models as ref

    return ref


class CountCat(TorchFunctionMode):
    """Records the output size of every ``torch.cat`` (not a module, so no hook sees it)."""

    def __init__(self):
        super().__init__()
        self.values = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.cat:
            self.values += out.numel()
        return out


def measure(model: nn.Module, inputs: tuple, batch: int) -> dict:
    """GFLOP and non-convolution traffic (GiB) per training sample, from one forward pass."""
    macs, traffic = 0, defaultdict(float)

    def hook(module, args, out):
        nonlocal macs
        if not isinstance(out, torch.Tensor):
            return
        n_in, n_out = args[0].numel(), out.numel()
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            k = module.weight.shape[2] * module.weight.shape[3]
            c = module.in_channels // module.groups
            macs += (n_out * c * k if isinstance(module, nn.Conv2d) else n_in * module.out_channels * k)
        elif isinstance(module, nn.Linear):
            macs += n_out * module.in_features
        elif isinstance(module, nn.BatchNorm2d):
            traffic["batchnorm"] += 3 * n_in + 5 * n_in
        elif isinstance(module, nn.ReLU):
            traffic["relu"] += 2 * n_in + 3 * n_in
        elif isinstance(module, nn.MaxPool2d):
            traffic["maxpool"] += (n_in + n_out + 2 * n_out) + (n_out + 2 * n_out + n_in)
        elif isinstance(module, nn.Upsample):
            traffic["upsample"] += 2 * (n_in + n_out)

    handle = nn.modules.module.register_module_forward_hook(hook)  # also sees modules built inside forward
    cats = CountCat()
    try:
        with cats, torch.no_grad():
            model.train()
            model(*inputs)
    finally:
        handle.remove()
    traffic["concatenation"] = 4 * cats.values
    gib = {k: v * 4 / batch / 2**30 for k, v in traffic.items()}
    gib["all"] = sum(gib.values())
    return {"gflop": 3 * 2 * macs / batch / 1e9, "traffic_gib": gib}


def lai_model(batch: int):
    profile = load_profile("paper")
    model = LAIModel(profile.model, _mask_channels(profile.encoding))
    g = torch.Generator().manual_seed(0)
    raw = {"s1": torch.randn(batch, 3, 2, SIZE, SIZE, generator=g) - 12,
           "lai": torch.rand(batch, 3, SIZE, SIZE, generator=g) * 5,
           "scl": torch.randint(0, 12, (batch, 3, SIZE, SIZE), generator=g, dtype=torch.uint8),
           "doy_target": torch.randint(1, 366, (batch,), generator=g), "doy_from": torch.randint(1, 366, (batch,), generator=g)}
    x = encode_batch(raw, profile.encoding)

    def loss(out):
        return sum(w * ((out[k] - x.target) ** 2).mean() for k, w in (("dec", 1.0), ("enc1", 0.1), ("enc2", 0.15)))

    return model, (x,), loss


def _mask_channels(enc) -> int:
    from lai.encode import mask_channels

    return mask_channels(enc)


def reference_model(ref, batch: int):
    model = ref.Strontium(STRONTIUM)
    g = torch.Generator().manual_seed(0)
    inputs = (torch.randn(batch, 3, 2, SIZE, SIZE, generator=g), torch.rand(batch, 2, 1, SIZE, SIZE, generator=g),
              (torch.rand(batch, 2, 6, SIZE, SIZE, generator=g) > 0.5).float(), torch.rand(batch, 2, generator=g))
    target = torch.rand(batch, 1, SIZE, SIZE, generator=g)

    def loss(out):
        dec, (enc1, enc2) = out
        return ((dec - target) ** 2).mean() + 0.1 * ((enc1 - target) ** 2).mean() + 0.15 * ((enc2 - target) ** 2).mean()

    return model, inputs, loss


def step_seconds(model, inputs, loss, opt) -> float:
    t0 = time.perf_counter()
    value = loss(model(*inputs))
    opt.zero_grad(set_to_none=True)
    value.backward()
    opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", type=Path, default=ROOT.parent / "LeafNothingBehind", help="checkout of the reference at 5b6bce3")
    ap.add_argument("--batch", type=int, default=2, help="training batch for the step time (default 2)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="JSON file of the figures (default: print only)")
    args = ap.parse_args()
    ref = reference_models(args.reference.resolve())
    torch.manual_seed(0)
    built = {"lai paper preset": lai_model(args.batch), "reference (Strontium)": reference_model(ref, args.batch)}
    report = {**report_header(__file__), "load_average_1_5_15": os.getloadavg(), "tile": SIZE, "batch": args.batch, "models": {}}
    for name, (model, inputs, _) in built.items():
        report["models"][name] = {"parameters": n_parameters(model), **measure(model, inputs, args.batch)}
    opts = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, (m, _, _) in built.items()}
    times = {name: [] for name in built}
    for r in range(args.repeats + 1):  # the first round warms up, not counted
        for name, (model, inputs, loss) in (built.items() if r % 2 == 0 else reversed(built.items())):
            model.train()
            s = step_seconds(model, inputs, loss, opts[name])
            if r:
                times[name].append(s)
    for name in built:
        report["models"][name]["step_s"] = {"median": statistics.median(times[name]), "min": min(times[name]),
                                            "max": max(times[name]), "values": times[name]}
    report["load_average_end"] = os.getloadavg()
    lai_, ref_ = report["models"].values()
    print(f"{report['date']}, {platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {report['load_average_1_5_15'][0]:.1f} -> {report['load_average_end'][0]:.1f}")
    print(f"per training sample at {SIZE}x{SIZE}, fp32; step: batch {args.batch}, median [min, max] of {args.repeats}")
    for name, m in report["models"].items():
        t = m["traffic_gib"]
        parts = ", ".join(f"{k} {v:.3f}" for k, v in t.items() if k != "all")
        print(f"  {name:22s} {m['parameters']:>10,d} parameters  {m['gflop']:6.1f} GFLOP  non-conv traffic "
              f"{t['all']:.3f} GiB ({parts})  step {m['step_s']['median']:.2f} s [{m['step_s']['min']:.2f}, "
              f"{m['step_s']['max']:.2f}]")
    print(f"  lai / reference: parameters {lai_['parameters'] / ref_['parameters']:.4f}, GFLOP {lai_['gflop'] / ref_['gflop']:.4f}, "
          f"non-conv traffic {lai_['traffic_gib']['all'] / ref_['traffic_gib']['all']:.3f} (goal <= 1.05), "
          f"step time {lai_['step_s']['median'] / ref_['step_s']['median']:.2f}")
    if args.out:
        write_report(args.out, report)


if __name__ == "__main__":
    main()
