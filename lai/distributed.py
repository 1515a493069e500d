"""Devices: the device a command runs on (:func:`pick_device`), and distributed data parallel training
under ``torchrun``: process group, rank, and sums across ranks.

``torchrun --standalone --nproc_per_node N -m lai train ...`` starts N processes and sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` joins them into one process group (NCCL on GPUs, gloo
on CPUs). Without torchrun everything runs in one process, exactly as before. Rank 0 alone writes
files; every rank reads the same shuffled order and takes its own slice of each global batch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lai.config import SIMULATE
from lai.errors import ConfigError, shorten


def pick_device(name: str = "auto", option: str = "--device") -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; any other name as torch spells it (``cpu``, ``cuda:1``).
    ``option``: what the user set it with, for the messages (``--device``, ``train.device``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{option} {shorten(name, 40)!r} is not a device torch knows; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{option} {name!r}: lai runs on cpu or cuda; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option} {name} but no CUDA device is available; use auto or cpu")
    return device


# one training step of the paper preset, per 256x256 sample, fp32, on a 2-core CPU: 1.58 s on an Intel Xeon with
# AVX-512, 3.84 s on an AMD EPYC with AVX2 (batch 1; benchmarks/reference.py, docs/measurements.md, 2026-12-05/06)
CPU_PAPER_SECONDS_PER_SAMPLE = 1.6


def cpu_cost_warning(profile) -> str | None:
    """What to tell a user whose ``profile`` would train the paper preset on the CPU because no GPU was found
    (``train.device`` auto): that preset is sized for a GPU. None with a GPU, a smaller preset, or the CPU by name."""
    if profile.train.device != "auto" or profile.model.preset != "paper" or torch.cuda.is_available():
        return None
    text = (f"profile {profile.name!r} trains the paper preset, sized for a GPU, and this machine has no CUDA device, "
            "so it would train on the CPU")
    if profile.data == SIMULATE:
        tile, triplets, epochs = profile.simulate.tile_size, profile.simulate.train_triplets, profile.train.epochs
        seconds = CPU_PAPER_SECONDS_PER_SAMPLE * (tile / 256) ** 2
        hours = seconds * triplets * epochs / 3600
        took = f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
        text += (f": at about {seconds:.2g} s per {tile}x{tile} training sample on a 2-core CPU, each of its training "
                 f"stages (up to {epochs} epochs over up to {triplets:,} triplets) could take up to {took}")
    return text + ". On a CPU, run --profile quick or standard (or set train.device=cpu to train here anyway)"


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on the process that writes checkpoints, history, logs and results."""
        return self.rank == 0


def main_process() -> bool:
    """True on rank 0 of a torchrun launch, or without one; known before :func:`setup`."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device: torch.device) -> World:
    """Join the process group that torchrun describes in the environment; a single process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(rank, size, local_rank)


def local_device(device: torch.device, world: World) -> torch.device:
    """Each rank on a GPU machine takes the GPU of its local rank."""
    return torch.device("cuda", world.local_rank) if device.type == "cuda" and world.size > 1 else device


def rank_batch_size(global_batch: int, world: World) -> int:
    """``train.batch_size`` is the global batch: each rank takes an equal share of it."""
    if global_batch % world.size:
        raise ConfigError(f"train.batch_size={global_batch} must be divisible by the {world.size} processes of torchrun")
    return global_batch // world.size


def sum_across(values: torch.Tensor, world: World) -> torch.Tensor:
    """Element-wise sum over every rank (the tensor itself when there is one process)."""
    if world.size > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def identical_across(tensors, world: World) -> bool:
    """Whether every rank holds the same ``tensors`` (a state dict's values): their checksums (sum, sum of squares and
    a position-weighted sum, in float64) agree on every rank; True with one process."""
    if world.size <= 1:
        return True
    sums = torch.zeros(3, dtype=torch.float64)
    for t in tensors:
        v = t.detach().flatten().to("cpu", torch.float64)
        sums += torch.stack([v.sum(), (v * v).sum(), (v * torch.arange(1, len(v) + 1, dtype=torch.float64)).sum()])
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    low, high = sums.to(device), sums.to(device).clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return bool(torch.equal(low, high))


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()
