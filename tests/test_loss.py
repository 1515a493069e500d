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
    for alpha, beta in ((0.1, 0.15), (0.37, 2.5)):  # the defaults, and weights of their own (a fixed weight fails)
        loss, parts = total_loss(out, x, TrainConfig(alpha=alpha, beta=beta))
        assert all(float(parts[k]) > 0 for k in ("dec", "enc1", "enc2"))
        assert loss.item() == pytest.approx(float(parts["dec"] + alpha * parts["enc1"] + beta * parts["enc2"]), rel=1e-5)
    # with a spread head the loss adds its Gaussian negative log-likelihood, whose gradient reaches that head alone
    loss, parts = total_loss(small("final", uncertainty=True)(x), x, TrainConfig(alpha=0.37, beta=2.5))
    assert float(parts["nll"]) != 0
    assert loss.item() == pytest.approx(float(parts["dec"] + 0.37 * parts["enc1"] + 2.5 * parts["enc2"] + parts["nll"]),
                                        rel=1e-5)


def test_the_spread_heads_loss_is_least_where_the_variance_is_the_squared_error():
    """The Gaussian negative log-likelihood of a fixed error e is least at log_var = log e^2, and its gradient
    reaches the variance only (a sign slip in the exponent sent log_var to its clamp whatever the error)."""
    from lai.loss import gaussian_nll

    pred, target = torch.zeros(1, 1, 1, 3), torch.tensor([[[[0.5, 1.0, 2.0]]]])
    valid = torch.ones_like(pred, dtype=torch.bool)
    log_var = torch.zeros_like(pred, requires_grad=True)
    opt = torch.optim.SGD([log_var], lr=0.5)
    for _ in range(400):
        opt.zero_grad()
        gaussian_nll(log_var, pred, target, valid).backward()
        opt.step()
    torch.testing.assert_close(log_var.detach(), (target ** 2).log(), atol=1e-3, rtol=0)
    mean = pred.clone().requires_grad_()
    assert not gaussian_nll(torch.zeros_like(pred), mean, target, valid).requires_grad  # the mean is detached


def test_cloudy_samples_weigh_more_in_the_loss():
    """train.cloudy_weight (the paper's 4.2 remedy) raises the weight of samples whose past dates are mostly
    unusable, not of the others: the loss equals the hand-weighted mean of the squared errors."""
    raw = raw_batch()
    raw["scl"][:] = 4
    raw["scl"][0, :2] = 9  # sample 0: t-2 and t-1 cloudy; sample 1 clear
    x = encode_batch(raw, ENC)
    assert x.past_cloudy.tolist()[:2] == [True, False]
    pred = torch.zeros_like(x.target)
    cfg = TrainConfig(cloudy_weight=3.0)
    _, parts = total_loss({"enc2": pred}, x, cfg)
    err = torch.where(x.target_valid, x.target, torch.zeros(())).square().flatten(1)
    count = x.target_valid.flatten(1).sum(1).float()
    w = torch.where(x.past_cloudy, 3.0, 1.0)
    expected = (w * err.sum(1)).sum() / (w * count).sum()
    assert parts["enc2"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_loss_classes_keep_only_those_pixels_clear_at_t_in_the_training_loss():
    """train.loss_classes [4, 5, 6]: the flagged cloud shadows (SCL 3) at t, clear under the reference's rule, leave
    the loss (their LAI never reaches it), the vegetation pixels stay; None leaves the batch as it is; a class
    outside 0..11 is refused by name."""
    from lai.config import ConfigError
    from lai.encode import loss_target

    raw = raw_batch()
    raw["scl"][:, 2] = 4
    raw["scl"][:, 2, :8] = 3  # flagged shadow at t on the top rows: clear under SCL 2-6
    raw["scl"][:, 2, 8:10] = 9  # cloud
    x = encode_batch(raw, ENC)
    assert x.target_valid[:, :, :8].all()
    strict = loss_target(x, raw["scl"][:, 2], [4, 5, 6])
    assert not strict.target_valid[:, :, :10].any() and strict.target_valid[:, :, 10:].all()
    assert torch.equal(strict.target_valid, x.target_valid & (raw["scl"][:, 2:3] == 4))
    pred = torch.rand_like(x.target)
    shadow_lai = raw["lai"].clone()
    shadow_lai[:, 2, :8] = 40.0
    other = loss_target(encode_batch({**raw, "lai": shadow_lai}, ENC), raw["scl"][:, 2], [4, 5, 6])
    loss = masked_mse(pred, strict.target, strict.target_valid)
    assert torch.equal(masked_mse(pred, other.target, other.target_valid), loss)
    assert loss != masked_mse(pred, x.target, x.target_valid)
    assert loss_target(x, raw["scl"][:, 2], None) is x
    with pytest.raises(ConfigError, match="train.loss_classes must be a non-empty list of SCL classes 0..11"):
        TrainConfig(loss_classes=[4, 12]).validate()


def test_the_spread_heads_loss_is_the_mean_over_clear_pixels_around_the_decoders_output():
    """Hand values: pixels 0 and 1 clear at t, pixel 2 clouded (its huge error and log-variance never count); the
    negative log-likelihood is taken around the decoder's output, not an encoder's, and averaged over the 2 clear
    pixels."""
    from lai.encode import Encoded
    from lai.facts import LOG_VAR
    from lai.loss import gaussian_nll

    target = torch.tensor([[[[1.0, 0.0, 50.0]]]])
    valid = torch.tensor([[[[True, True, False]]]])
    dec = torch.tensor([[[[0.0, 2.0, 0.0]]]])
    log_var = torch.tensor([[[[0.0, 2.0 * torch.log(torch.tensor(2.0)).item(), -8.0]]]])
    # 0.5 * (0 + 1 / 1) and 0.5 * (log 4 + 4 / 4)
    expected = (0.5 * (0 + 1) + 0.5 * (torch.log(torch.tensor(4.0)).item() + 1)) / 2
    assert gaussian_nll(log_var, dec, target, valid).item() == pytest.approx(expected, rel=1e-6)
    x = Encoded(s1=None, s2=None, masks=None, season=None, target=target, target_valid=valid,
                past_cloudy=torch.tensor([False]), past_valid=None)
    far = torch.full_like(dec, 9.0)
    _, parts = total_loss({"enc1": far, "enc2": far, "dec": dec, LOG_VAR: log_var}, x, TrainConfig())
    assert parts["nll"].item() == pytest.approx(expected, rel=1e-6)
