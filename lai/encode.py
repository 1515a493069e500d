"""Encodings shared by every model: normalisation, SCL masks, seasonality.

All functions work on torch tensors of a raw batch (as the loader yields it)
and run on whatever device the batch lives on.

Raw batch keys: ``s1`` (B, 3, 2, H, W) dB; ``lai`` (B, 3, H, W) LAI, NaN allowed
where invalid; ``scl`` (B, 3, H, W) uint8; ``doy_target`` and ``doy_from`` (B,)
day of year of t and of t-2; optional ``truth`` (B, H, W) true LAI at t.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from lai.config import EncodingConfig
from lai.facts import VALID_CLASSES
from lai.pixels import SCL_MAX, scl_lookup

N_SCL = SCL_MAX + 1  # the one-hot channels of the SCL classes 0..SCL_MAX
REFERENCE_CLASSES = VALID_CLASSES  # the reference's 6 mask channels: valid flag + one-hot of its valid classes


def normalise_lai(lai, enc: EncodingConfig):
    return lai / enc.lai_scale


def denormalise_lai(x, enc: EncodingConfig):
    return x * enc.lai_scale


def normalise_db(db, enc: EncodingConfig):
    """dB -> model units, after clipping to ``enc.db_range`` (the one input-range rule of every model)."""
    low, high = enc.db_range
    return db.clamp(low, high) / enc.db_scale + enc.db_offset


def count_clipped(db, enc: EncodingConfig) -> int:
    """How many finite dB values lie outside ``enc.db_range`` (and are clipped by :func:`normalise_db`)."""
    low, high = enc.db_range
    return int(((db < low) | (db > high)).sum())


def valid_mask(scl: torch.Tensor, enc: EncodingConfig) -> torch.Tensor:
    """True where the SCL class counts as valid (default: the reference's SCL 2..6)."""
    return _scl_table("valid", tuple(enc.valid_classes), scl.device)[scl.long()]


def mask_channels(enc: EncodingConfig) -> int:
    return N_SCL if enc.mask_encoding == "onehot" else 1 + len(REFERENCE_CLASSES)


def mask_table(enc: EncodingConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """(256, C) float: the mask channels of each SCL byte value, the 12-class one-hot of the class (clamped to
    0..11), or the reference's valid flag + one-hot of SCL 2..6 (shared: do not modify)."""
    return _scl_table(enc.mask_encoding, tuple(enc.valid_classes), torch.device(device))


@functools.lru_cache(maxsize=32)
def _scl_table(kind: str, valid_classes: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A table over every SCL byte value, built once per device rather than at every batch: ``kind`` "valid"
    (bool, 256), else the mask channels of :func:`mask_table` (float, 256 x C)."""
    values = torch.arange(256)
    valid = torch.from_numpy(scl_lookup(valid_classes))
    if kind == "valid":
        return valid.to(device)
    if kind == "onehot":
        maps = values.clamp(max=N_SCL - 1)[:, None] == torch.arange(N_SCL)
    else:
        maps = torch.cat([valid[:, None], values[:, None] == torch.tensor(REFERENCE_CLASSES)], dim=1)
    return maps.float().to(device)


def scl_masks(scl: torch.Tensor, enc: EncodingConfig, channels_last: bool = False) -> torch.Tensor:
    """SCL (B, T, H, W) -> mask maps (B, T, C, H, W): 12-class one-hot, or the reference's 6 channels.

    A row lookup in :func:`mask_table` per pixel. ``channels_last``: the maps stored (B, H, W, T, C), so that
    ``maps.flatten(1, 2)`` is a channels_last view (the mask embedding's input in a channels_last model), else
    contiguous. On the CPU the lookup is several times faster than comparisons to a bool one-hot converted to
    float (and copied to channels_last order); the same maps.
    """
    table = mask_table(enc, scl.device)
    if channels_last:
        return nn.functional.embedding(scl.permute(0, 2, 3, 1).long(), table).permute(0, 3, 4, 1, 2)
    return nn.functional.embedding(scl.long(), table).permute(0, 1, 4, 2, 3).contiguous()


def day_of_year(dates) -> np.ndarray:
    """The model's date input: the day of year (1 for 1 January) of ``dates`` (dates, datetime64, or integer days since
    1970-01-01 as the cube stores them), for training, evaluation and maps alike."""
    d = np.asarray(dates, "datetime64[D]")
    return (d - d.astype("datetime64[Y]")).astype(np.int64) + 1


def seasonality(doy_target: torch.Tensor, doy_from: torch.Tensor, enc: EncodingConfig) -> torch.Tensor:
    """Two values per sample: sin and cos of the target's day of year (paper), or the
    reference's triangular periodic encoding of DateFrom (with a quarter-period shifted twin)."""
    if enc.seasonality == "sincos":
        angle = 2 * math.pi * doy_target.float() / 365.25
        return torch.stack([torch.sin(angle), torch.cos(angle)], dim=1)
    phase = doy_from.float() / 365.25
    tri = lambda p: 1 - 2 * torch.abs(torch.remainder(p, 1.0) - 0.5)  # noqa: E731 - 0 at Jan 1, 1 mid-year
    return torch.stack([tri(phase), tri(phase + 0.25)], dim=1)


@dataclass
class Encoded:
    """Model-ready tensors of one batch (normalised, NaN-free)."""

    s1: torch.Tensor  # (B, 6, H, W): VV, VH at t-2, t-1, t
    s2: torch.Tensor  # (B, 2, H, W): LAI at t-2, t-1 (0 where not finite)
    masks: torch.Tensor  # (B, 2, C, H, W): masks of t-2 and t-1 only (t would leak the target)
    season: torch.Tensor  # (B, 2)
    target: torch.Tensor  # (B, 1, H, W): LAI at t, normalised, 0 where not valid
    target_valid: torch.Tensor  # (B, 1, H, W) bool: clear at t (valid SCL and finite LAI)
    past_cloudy: torch.Tensor  # (B,) bool: mean valid fraction of t-2, t-1 below one half
    past_valid: torch.Tensor  # (B, 2, H, W) bool: clear at t-2, t-1


def encode_batch(raw: dict, enc: EncodingConfig, channels_last: bool = False) -> Encoded:
    """A raw batch (module docstring) -> :class:`Encoded`; ``channels_last``: the masks already in the order
    :func:`lai.infer.to_channels_last` gives them (:func:`scl_masks`)."""
    s1 = raw["s1"].float()
    lai = raw["lai"].float()
    scl = raw["scl"]
    b, _, _, h, w = s1.shape
    valid = valid_mask(scl, enc) & torch.isfinite(lai)
    lai_n = torch.nan_to_num(normalise_lai(lai, enc), nan=0.0, posinf=0.0, neginf=0.0)
    s1_n = torch.nan_to_num(normalise_db(s1, enc), nan=0.0, posinf=0.0, neginf=0.0)
    return Encoded(
        s1=s1_n.reshape(b, 6, h, w),
        s2=lai_n[:, :2],
        masks=scl_masks(scl[:, :2], enc, channels_last),
        season=seasonality(raw["doy_target"], raw["doy_from"], enc),
        target=(lai_n[:, 2:3] * valid[:, 2:3]),
        target_valid=valid[:, 2:3],
        past_cloudy=valid[:, :2].float().mean(dim=(1, 2, 3)) < 0.5,
        past_valid=valid[:, :2],
    )


def loss_target(x: Encoded, scl_t: torch.Tensor, classes) -> Encoded:
    """``x`` with ``target_valid`` restricted to the pixels whose SCL class at t (``scl_t``, (B, H, W)) is one of
    ``classes`` (``train.loss_classes``); ``x`` itself where ``classes`` is None."""
    if classes is None:
        return x
    keep = _scl_table("valid", tuple(classes), scl_t.device)[scl_t.long()].unsqueeze(1)
    return replace(x, target_valid=x.target_valid & keep, target=x.target * keep)
