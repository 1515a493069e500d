"""Random 90-degree rotations and flips of a raw training batch, on its device.

Each sample gets one of the 8 symmetries of the square (4 with non-square
tiles: rotations by 0 or 180 degrees, with or without a flip), applied
identically to every spatial array of the sample: S1, LAI history and target,
SCL masks and, on simulated data, the true LAI. Dates are untouched. The draws
come from a CPU ``torch.Generator`` whose state a training checkpoint saves.
"""
from __future__ import annotations

import torch


def spatial_keys(raw: dict[str, torch.Tensor]) -> list[str]:
    """Keys of the arrays that carry the tile (their last two axes are its height and width)."""
    shape = raw["lai"].shape[-2:]
    return [k for k, v in raw.items() if v.dim() >= 3 and v.shape[-2:] == shape]


def augment(raw: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A new batch in which every sample is rotated by k*90 degrees and maybe flipped left-right."""
    n = raw["lai"].shape[0]
    square = raw["lai"].shape[-1] == raw["lai"].shape[-2]
    turns = torch.randint(0, 4, (n,), generator=generator) * (1 if square else 2) % 4
    flips = torch.randint(0, 2, (n,), generator=generator).bool()
    out = dict(raw)
    for key in spatial_keys(raw):
        value = raw[key]
        result = torch.empty_like(value)
        for k in turns.unique().tolist():
            for flip in (False, True):
                pick = ((turns == k) & (flips == flip)).nonzero().flatten()
                if len(pick) == 0:
                    continue
                part = value[pick.to(value.device)]
                part = torch.rot90(part, k, dims=(-2, -1))
                result[pick.to(value.device)] = part.flip(-1) if flip else part
        out[key] = result
    return out
