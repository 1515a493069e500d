"""Model, loss and metrics on random tensors (no data on disk)."""
import numpy as np
import pytest
import torch

from lai.config import EncodingConfig, ModelConfig, TrainConfig
from lai.encode import encode_batch, mask_channels
from lai.facts import ROWS
from lai.loss import masked_mse, total_loss
from lai.metrics import pooled
from lai.model import LAIModel, UNet

ENC = EncodingConfig()


def raw_batch(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    scl = torch.randint(0, 12, (b, 3, size, size), generator=g, dtype=torch.uint8)
    return {
        "s1": -30 * torch.rand(b, 3, 2, size, size, generator=g),
        "lai": 6 * torch.rand(b, 3, size, size, generator=g),
        "scl": scl,
        "doy_target": torch.randint(1, 366, (b,), generator=g),
        "doy_from": torch.randint(1, 366, (b,), generator=g),
    }


def small(row, **kw):
    return LAIModel(ModelConfig(row=row, preset="small", **kw), mask_channels(ENC))


@pytest.mark.parametrize("row", list(ROWS))
@pytest.mark.parametrize("size", [32, 48, 64])
def test_output_shapes_every_row_and_tile_size(row, size):
    x = encode_batch(raw_batch(size=size), ENC)
    out = small(row)(x)
    expected = {"final": {"enc1", "enc2", "dec"}}.get(row, {"enc1"} if ROWS[row].enc1 else {"enc2"})
    assert set(out) == expected
    for pred in out.values():
        assert pred.shape == (2, 1, size, size)


def test_unused_inputs_are_dropped_not_zeroed():
    plain, with_masks = small("s1"), small("s1_masks")
    first = lambda m: m.enc1.unet.down[0][0].in_channels  # noqa: E731
    assert first(plain) == 6
    assert first(with_masks) == 6 + 2 * 2
    assert plain.enc1.mask_embed is None and plain.enc1.season is None
    assert small("s2_masks_seas").enc1 is None


def test_reference_mask_encoding_has_six_channels():
    enc = EncodingConfig(mask_encoding="reference")
    x = encode_batch(raw_batch(), enc)
    assert x.masks.shape[2] == 6
    assert torch.all(x.masks[:, :, 1:].sum(2) <= 1)


def test_tile_size_not_divisible_is_refused():
    with pytest.raises(ValueError, match="not divisible by 4"):
        UNet(3, [4, 8, 16])(torch.zeros(1, 3, 30, 30))


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


def test_gradients_reach_both_encoders_and_encoder_alone_trains():
    x = encode_batch(raw_batch(), ENC)
    model = small("final")
    loss, _ = total_loss(model(x), x, TrainConfig())
    loss.backward()
    for part in (model.enc1, model.enc2, model.decoder):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters() if p.requires_grad)
    alone = small("s2_masks_seas")
    loss, parts = total_loss(alone(x), x, TrainConfig())
    assert set(parts) == {"enc2"}
    loss.backward()
    assert all(p.grad is not None for p in alone.parameters())


def test_decoder_seasonality_switch_changes_input_channels():
    on, off = small("final"), small("final", decoder_seasonality=False)
    assert on.decoder.down[0][0].in_channels == off.decoder.down[0][0].in_channels + on.cfg.season_channels
    assert off.dec_season is None


def test_small_model_overfits_a_handful_of_samples():
    torch.manual_seed(0)
    raw = raw_batch(b=4, size=32, seed=1)
    raw["scl"][:] = 4
    # learnable target: LAI at t close to LAI at t-1 plus a smooth radar-dependent term
    raw["lai"][:, 2] = 0.7 * raw["lai"][:, 1] + 0.3 * raw["lai"][:, 0]
    x = encode_batch(raw, ENC)
    model = small("final")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    cfg = TrainConfig()
    first = None
    for _ in range(150):
        loss, _ = total_loss(model(x), x, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    model.eval()
    with torch.no_grad():
        final, _ = total_loss(model(x), x, cfg)
    assert final.item() < first / 10


def test_metrics_match_hand_computation():
    pred = np.array([[1.0, 2.0, 9.0], [3.0, 5.0, 0.0]])
    target = np.array([[1.5, 2.0, np.nan], [2.0, 4.0, 7.0]])
    mask = np.array([[True, True, False], [True, True, False]])
    # kept pairs: (1, 1.5), (2, 2), (3, 2), (5, 4)
    errs = np.array([-0.5, 0.0, 1.0, 1.0])
    t = np.array([1.5, 2.0, 2.0, 4.0])
    rmse = np.sqrt(np.mean(errs**2))
    r2 = 1 - np.sum(errs**2) / np.sum((t - t.mean()) ** 2)
    got = pooled(pred, target, mask, lai_scale=5.0)
    assert got["rmse"] == pytest.approx(rmse)
    assert got["rmse_norm"] == pytest.approx(rmse / 5)
    assert got["r2"] == pytest.approx(r2)
    assert got["n_pixels"] == 4


def test_building_a_profile_imports_no_torch():
    """Configuration and the shared facts stay torch-free (no import circle through the model)."""
    import subprocess
    import sys

    code = "import sys; from lai.config import load_profile; load_profile('paper'); import lai.facts, lai.tables; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=__import__("pathlib").Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False", done.stdout + done.stderr


def test_augmentation_moves_every_array_of_a_sample_together():
    from lai.augment import augment

    g = torch.Generator().manual_seed(0)
    n, size = 64, 8
    base = torch.rand(n, size, size, generator=g)
    raw = {"s1": base[:, None, None].expand(n, 3, 2, size, size).clone(), "lai": base[:, None].expand(n, 3, size, size).clone(),
           "scl": (base[:, None].expand(n, 3, size, size) * 11).to(torch.uint8), "truth": base.clone(),
           "doy_target": torch.arange(n), "doy_from": torch.arange(n)}
    out = augment(raw, torch.Generator().manual_seed(1))
    moved = out["truth"]
    assert torch.equal(out["lai"], moved[:, None].expand_as(out["lai"])) and torch.equal(out["s1"][:, 2, 1], moved)
    assert torch.equal(out["scl"], (moved[:, None].expand(n, 3, size, size) * 11).to(torch.uint8))
    assert torch.equal(out["doy_target"], raw["doy_target"])
    symmetries = [lambda a, k=k, f=f: torch.rot90(a, k, (-2, -1)).flip(-1) if f else torch.rot90(a, k, (-2, -1))
                  for k in range(4) for f in (False, True)]
    used = {next(i for i, sym in enumerate(symmetries) if torch.equal(sym(base[j]), moved[j])) for j in range(n)}
    assert used == set(range(8))  # each sample got one of the 8 symmetries, and all 8 occur


def test_bootstrap_over_triplets_and_paired_differences():
    from lai.metrics import bootstrap_intervals, paired_difference, rmse_r2, triplet_sums

    rng = np.random.default_rng(0)
    target = rng.uniform(0, 6, (60, 8, 8))
    mask = rng.random((60, 8, 8)) > 0.2
    good = target + rng.normal(0, 0.3, target.shape)
    bad = target + rng.normal(0, 0.6, target.shape)
    a, b = triplet_sums(good, target, mask), triplet_sums(bad, target, mask)
    assert rmse_r2(a.sum(0))[0] == pytest.approx(pooled(good, target, mask)["rmse"])
    ci = bootstrap_intervals(a)
    assert ci["rmse_lo"] < 0.3 < ci["rmse_hi"] and ci["r2_lo"] < pooled(good, target, mask)["r2"] < ci["r2_hi"]
    better = paired_difference(a, b)
    assert better["resolved"] and better["diff_hi"] < 0 and better["diff"] == pytest.approx(
        pooled(good, target, mask)["rmse"] - pooled(bad, target, mask)["rmse"])
    close = paired_difference(a, triplet_sums(good + rng.normal(0, 0.01, target.shape), target, mask))
    assert not close["resolved"] and close["diff_lo"] < 0 < close["diff_hi"]
    with pytest.raises(ValueError, match="same triplets"):
        paired_difference(a, b[:-1])


def test_residual_model_adds_the_last_clear_lai():
    """With heads that output 0 a residual model predicts the last clear LAI: t-1, else t-2, else 0."""
    raw = raw_batch()
    x = encode_batch(raw, ENC)
    model = small("final", residual=True).eval()
    for head in (model.enc1.head, model.enc2.head, model.dec_head):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    valid = np.isin(raw["scl"].numpy(), ENC.valid_classes)
    lai = raw["lai"].numpy() / ENC.lai_scale
    expected = np.where(valid[:, 1], lai[:, 1], np.where(valid[:, 0], lai[:, 0], 0.0))
    with torch.no_grad():
        out = model(x)
    for pred in out.values():
        np.testing.assert_allclose(pred[:, 0].numpy(), expected, atol=1e-6)
