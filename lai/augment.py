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
    """A new batch in which every sample is rotated by k*90 degrees and maybe flipped left-right.

    Each array is permuted in one gather per key, along the flattened tile, by the pixel order of its sample's
    symmetry (:func:`symmetry_orders`)."""
    n = raw["lai"].shape[0]
    height, width = raw["lai"].shape[-2:]
    drawn = torch.tensor(drawn_symmetries(height, width))
    turns = torch.randint(0, 4, (n,), generator=generator) % (len(drawn) // 2)
    flips = torch.randint(0, 2, (n,), generator=generator)
    orders = symmetry_orders(height, width)[drawn[turns * 2 + flips]]  # (n, height * width)
    out = dict(raw)
    for key in spatial_keys(raw):
        flat = raw[key].flatten(-2)
        index = orders.to(flat.device).view(n, *[1] * (flat.dim() - 2), height * width).expand_as(flat)
        out[key] = flat.gather(-1, index).view_as(raw[key])
    return out


def drawn_symmetries(height: int, width: int) -> list[int]:
    """The rows of :func:`symmetry_orders` that :func:`augment` draws for a tile of this shape: all 8 for a
    square, else the half turns with or without a flip (0, 1, 4, 5)."""
    return [i for i in range(8) if height == width or (i // 2) % 2 == 0]


def symmetry_orders(height: int, width: int) -> torch.Tensor:
    """(8, height * width): for ``turns * 2 + flip``, the flattened pixel order of a tile rotated by ``turns`` x 90
    degrees (``torch.rot90``), then flipped left-right if ``flip``; a non-square tile's rows of odd turns (never
    drawn) stay 0."""
    grid = torch.arange(height * width).reshape(height, width)
    orders = torch.zeros(8, height * width, dtype=torch.long)
    for turns in range(4):
        rotated = torch.rot90(grid, turns, dims=(0, 1))
        if rotated.shape != grid.shape:
            continue  # a quarter turn of a non-square tile: never drawn
        orders[2 * turns] = rotated.flatten()
        orders[2 * turns + 1] = rotated.flip(-1).flatten()
    return orders
