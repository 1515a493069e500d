"""The loss: masked MSE over pixels clear at t, and the intermediate supervision."""
import pytest
import torch

from lai.config import TrainConfig
from lai.encode import encode_batch
from lai.loss import masked_mse, total_loss
from tests.helpers import ENC, raw_batch, small


def test_loss_ignores_pixels_cloudy_at_t_and_sees_clear_ones():
    raw = raw_batch()
    raw["scl"][:, 2] = 4
    raw["scl"][:, 2, :8] = 9  # cloud at t on the top rows
    x = encode_batch(raw, ENC)
    pred = torch.rand_like(x.target)
    base = masked_mse(pred, x.target, x.target_valid)
    target2, pred2 = x.target.clone(), pred.clone()
    target2[:, :, :8] += 100
    pred2[:, :, :8] = float("nan")
    assert torch.equal(masked_mse(pred2, target2, x.target_valid), base)
    target3 = x.target.clone()
    target3[0, 0, 20, 20] += 1
    assert masked_mse(pred, target3, x.target_valid) != base


def test_pooled_loss_is_sum_over_count():
    pred = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 0.0]]]])
    target = torch.zeros_like(pred)
    valid = torch.tensor([[[[True, True]]], [[[True, False]]]])
    assert masked_mse(pred, target, valid).item() == pytest.approx((1 + 4 + 0) / 3)
    w = torch.tensor([2.0, 1.0])
    assert masked_mse(pred, target, valid, w).item() == pytest.approx((2 * 5 + 0) / (2 * 2 + 1))


def test_intermediate_supervision_weights():
    x = encode_batch(raw_batch(), ENC)
    out = small("final")(x)
    cfg = TrainConfig(alpha=0.1, beta=0.15)
    loss, parts = total_loss(out, x, cfg)
    assert loss.item() == pytest.approx(float(parts["dec"] + 0.1 * parts["enc1"] + 0.15 * parts["enc2"]), rel=1e-5)
