"""Masked MSE over pixels clear at t, the paper's intermediate supervision, and the spread head's Gaussian
negative log-likelihood."""
from __future__ import annotations

import torch

from lai.config import TrainConfig
from lai.encode import Encoded
from lai.facts import LOG_VAR


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor | None = None):
    """Sum of squared errors over valid pixels divided by their count, pooled over the batch.

    With per-sample ``weights`` both sums are weighted. Values of ``pred`` or
    ``target`` at invalid pixels (NaN included) never reach the result.
    """
    err = torch.where(valid, pred.float() - target.float(), torch.zeros((), device=pred.device))
    sq = err.square().flatten(1).sum(1)
    count = valid.flatten(1).sum(1).float()
    if weights is not None:
        sq, count = sq * weights, count * weights
    return sq.sum() / count.sum().clamp_min(1.0)


def gaussian_nll(log_var: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid pixels of ``0.5 * (log_var + (target - pred)**2 / exp(log_var))`` with ``pred`` detached:
    trains the predicted variance to the squared error of a mean it does not move."""
    err2 = (target.float() - pred.detach().float()).square()
    nll = 0.5 * (log_var.float() + err2 * torch.exp(-log_var.float()))
    nll = torch.where(valid, nll, torch.zeros((), device=nll.device))
    return nll.sum() / valid.sum().clamp_min(1).float()


def sample_weights(x: Encoded, cfg: TrainConfig) -> torch.Tensor | None:
    """Optional higher weight for samples whose past inputs are cloudy (the paper's 4.2 remedy)."""
    if cfg.cloudy_weight == 1.0:
        return None
    return torch.where(x.past_cloudy, cfg.cloudy_weight, 1.0).to(x.target.device)


def supervision_weights(parts, cfg: TrainConfig) -> dict[str, float]:
    """``MSE(dec) + alpha*MSE(enc1) + beta*MSE(enc2)``; an encoder trained alone gets weight 1."""
    if "dec" not in parts:
        return {name: 1.0 for name in parts}
    return {"dec": 1.0, "enc1": cfg.alpha, "enc2": cfg.beta}


def total_loss(out: dict[str, torch.Tensor], x: Encoded, cfg: TrainConfig):
    """Return (loss, {part: mse}) for a model output dict; the parts are detached tensors. With a spread head
    (``lai.model.LOG_VAR`` in ``out``) the loss adds its :func:`gaussian_nll` around the decoder's output, part
    ``nll``; its gradient reaches the spread head only."""
    out = dict(out)
    log_var = out.pop(LOG_VAR, None)
    w = sample_weights(x, cfg)
    parts = {name: masked_mse(pred, x.target, x.target_valid, w) for name, pred in out.items()}
    weights = supervision_weights(parts, cfg)
    loss = sum(weights[name] * value for name, value in parts.items() if name in weights)
    if log_var is not None:
        parts["nll"] = gaussian_nll(log_var, out["dec"], x.target, x.target_valid)
        loss = loss + parts["nll"]
    return loss, {name: v.detach() for name, v in parts.items()}
