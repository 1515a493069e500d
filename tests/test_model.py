"""The model: one configurable LAIModel for every Table 1 row, on random tensors."""
import numpy as np
import pytest
import torch

from lai.config import EncodingConfig, TrainConfig
from lai.encode import encode_batch
from lai.facts import LOG_VAR, ROWS
from lai.loss import total_loss
from lai.model import UNet
from tests.helpers import ENC, raw_batch, small


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


def test_the_date_input_is_the_day_of_year_in_both_encodings():
    """One owner of the day of year (the cube's integer days for training, dates for maps); sin/cos of the target's
    (paper) and the reference's triangular encoding of DateFrom: 0 on 1 January, 1 at mid-year, its twin a quarter
    of a year later."""
    import datetime as dt

    from lai.encode import day_of_year, seasonality

    dates = [dt.date(2019, 1, 1), dt.date(2020, 12, 31), dt.date(2019, 6, 15), dt.date(2020, 3, 1)]
    expected = [1, 366, 166, 61]
    assert day_of_year(dates).tolist() == expected
    days = [(d - dt.date(1970, 1, 1)).days for d in dates]
    assert day_of_year(np.array(days, np.int32)).tolist() == expected  # as the loader reads the cube
    doy = torch.tensor([1.0, 366 / 2 + 0.5, 365.25 / 4])
    sincos = seasonality(doy, torch.zeros(3), EncodingConfig())  # of the target, not of DateFrom
    torch.testing.assert_close(sincos[:, 0], torch.sin(2 * torch.pi * doy / 365.25))
    torch.testing.assert_close(sincos[:, 1], torch.cos(2 * torch.pi * doy / 365.25))
    tri = seasonality(doy, torch.tensor([0.0, 365.25 / 2, 365.25 / 4]), EncodingConfig(seasonality="triangular"))
    torch.testing.assert_close(tri, torch.tensor([[0.0, 0.5], [1.0, 0.5], [0.5, 1.0]]))


def test_tile_size_not_divisible_is_refused():
    with pytest.raises(ValueError, match="not divisible by 4"):
        UNet(3, [4, 8, 16])(torch.zeros(1, 3, 30, 30))


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
    # a spread head's log-variance is no LAI: the last clear LAI is never added to it
    spread = small("final", residual=True, uncertainty=True).eval()
    for head in (spread.enc1.head, spread.enc2.head, spread.dec_head, spread.spread_head[-1]):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    with torch.no_grad():
        out = spread(x)
    np.testing.assert_allclose(out["dec"][:, 0].numpy(), expected, atol=1e-6)
    assert torch.equal(out[LOG_VAR], torch.zeros_like(out[LOG_VAR]))


def test_gated_skip_adds_the_gated_last_clear_lai_to_the_decoder_only():
    """Gate logit +inf: the decoder predicts its change plus the last clear LAI; logit -inf: the change alone;
    the encoder heads are untouched."""
    raw = raw_batch()
    x = encode_batch(raw, ENC)
    model = small("final", gated_skip=True).eval()
    head = model.dec_head
    assert head.out_channels == 2
    valid = np.isin(raw["scl"].numpy(), ENC.valid_classes)
    lai = raw["lai"].numpy() / ENC.lai_scale
    base = np.where(valid[:, 1], lai[:, 1], np.where(valid[:, 0], lai[:, 0], 0.0))
    torch.nn.init.zeros_(head.weight)
    for gate, weight in ((50.0, 1.0), (-50.0, 0.0)):
        with torch.no_grad():
            head.bias.copy_(torch.tensor([0.25, gate]))
            out = model(x)
        np.testing.assert_allclose(out["dec"][:, 0].numpy(), 0.25 + weight * base, atol=1e-5)
    plain = small("final").eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("dec_head")}, strict=False)
    with torch.no_grad():
        torch.testing.assert_close(plain(x)["enc2"], model(x)["enc2"])



def test_mixing_gated_skip_trusts_the_last_clear_lai_by_its_gate_and_never_where_no_past_date_is_clear():
    """gate_form "mix", gate logit +inf: the last clear LAI where a past date is clear and the decoder's own LAI
    elsewhere; logit -inf: the decoder's own LAI everywhere."""
    from lai.config import ConfigError, ModelConfig

    raw = raw_batch()
    x = encode_batch(raw, ENC)
    model = small("final", gated_skip=True, gate_form="mix").eval()
    head = model.dec_head
    valid = np.isin(raw["scl"].numpy(), ENC.valid_classes)
    assert (~valid[:, :2].any(1)).any() and valid[:, :2].any(1).any()  # the batch has both kinds of pixel
    lai = raw["lai"].numpy() / ENC.lai_scale
    base = np.where(valid[:, 1], lai[:, 1], np.where(valid[:, 0], lai[:, 0], np.nan))
    torch.nn.init.zeros_(head.weight)
    for gate, trusted in ((50.0, True), (-50.0, False)):
        with torch.no_grad():
            head.bias.copy_(torch.tensor([0.25, gate]))
            out = model(x)
        expected = np.where(np.isfinite(base), base, 0.25) if trusted else np.full(base.shape, 0.25)
        np.testing.assert_allclose(out["dec"][:, 0].numpy(), expected, atol=1e-5)
    with pytest.raises(ConfigError, match="model.gate_form must be one of add, mix, mix_change"):
        ModelConfig(gated_skip=True, gate_form="blend").validate()


def test_mixing_gated_skip_with_its_own_change_moves_the_trusted_past_and_starts_at_mix():
    """gate_form "mix_change": where the gate trusts the past (logit +inf), the last clear LAI plus the decoder's
    change; where no past date is clear, or the gate trusts nothing, the decoder's own LAI. Built, it equals "mix"
    (the change's weights and bias start at 0)."""
    raw = raw_batch()
    x = encode_batch(raw, ENC)
    model = small("final", gated_skip=True, gate_form="mix_change").eval()
    assert model.dec_head.out_channels == 3
    assert not model.dec_head.weight[1:].any() and not model.dec_head.bias[2]
    mix = small("final", gated_skip=True, gate_form="mix").eval()
    mix.load_state_dict({k: v[:2] if k.startswith("dec_head") else v for k, v in model.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(model(x)["dec"], mix(x)["dec"])
    valid = np.isin(raw["scl"].numpy(), ENC.valid_classes)
    lai = raw["lai"].numpy() / ENC.lai_scale
    base = np.where(valid[:, 1], lai[:, 1], np.where(valid[:, 0], lai[:, 0], np.nan))
    torch.nn.init.zeros_(model.dec_head.weight)
    for gate, trusted in ((50.0, True), (-50.0, False)):
        with torch.no_grad():
            model.dec_head.bias.copy_(torch.tensor([0.25, gate, -0.1]))
            out = model(x)
        expected = np.where(np.isfinite(base), base - 0.1, 0.25) if trusted else np.full(base.shape, 0.25)
        np.testing.assert_allclose(out["dec"][:, 0].numpy(), expected, atol=1e-5)


def _both_past_dates(truth_t2: np.ndarray, change: float | np.ndarray, noise: float, rng) -> tuple[object, np.ndarray]:
    """An encoded batch whose past dates are clear everywhere but one pixel column (t-2 clouded) and one row (both
    clouded); its normalised LAI: ``truth_t2`` at t-2 and ``truth_t2 + change`` at t-1, each plus pixel noise."""
    b, h, w = truth_t2.shape
    lai = np.stack([truth_t2, truth_t2 + change, truth_t2], 1) + rng.normal(0, noise, (b, 3, h, w))
    scl = np.full((b, 3, h, w), 4, np.uint8)
    scl[:, 0, :, 5] = 9  # t-2 clouded on column 5: t-1 alone there
    scl[:, :2, 7, :] = 9  # both clouded on row 7
    lai[:, 0, :, 5] = lai[:, :2, 7, :] = 2.5  # under the clouds, a retrieval far off: never averaged in
    raw = raw_batch(b=b, size=h)
    raw.update(lai=torch.from_numpy((lai * ENC.lai_scale).astype(np.float32)), scl=torch.from_numpy(scl))
    return encode_batch(raw, ENC), lai


def test_two_date_level_is_t_minus_1_under_a_uniform_change_and_the_last_clear_lai_elsewhere():
    from lai.model import last_clear, two_date_level

    rng = np.random.default_rng(0)
    x, lai = _both_past_dates(rng.uniform(0.2, 1.2, (2, 32, 32)), change=0.1, noise=0.0, rng=rng)
    level = two_date_level(x)[:, 0].numpy()
    both = np.ones(level.shape, bool)
    both[:, :, 5] = both[:, 7, :] = False
    np.testing.assert_allclose(level[both], lai[:, 1][both], atol=1e-5)  # (t-1 + t-2 + change) / 2 = t-1
    np.testing.assert_allclose(level[~both], last_clear(x)[:, 0].numpy()[~both], atol=1e-6)
    assert np.all(level[:, 7, :] == 0) and np.allclose(level[:, :, 5][:, np.arange(32) != 7], lai[:, 1, :, 5][:, np.arange(32) != 7])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as a bf16 step runs it: never rounded to bf16
        np.testing.assert_array_equal(two_date_level(x)[:, 0].numpy(), level)


def test_two_date_level_halves_the_variance_of_one_dates_pixel_noise():
    """Independent pixel noise of s.d. 0.1 on each date, a smooth change: the level's error against the true t-1
    has about half the variance of the t-1 observation's (plus the local mean's small share)."""
    from lai.model import two_date_level

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :64] / 64
    truth = np.broadcast_to(0.5 + 0.3 * np.sin(3 * xx + 2 * yy), (4, 64, 64))
    x, lai = _both_past_dates(truth, change=0.05 + 0.05 * xx, noise=0.1, rng=rng)
    inner = (slice(None), slice(10, 54), slice(10, 54))
    level_error = (two_date_level(x)[:, 0].numpy() - (truth + 0.05 + 0.05 * xx))[inner]
    one_date_error = (lai[:, 1] - (truth + 0.05 + 0.05 * xx))[inner]
    ratio = level_error.var() / one_date_error.var()
    assert 0.5 <= ratio <= 0.6, ratio  # 1/2, and the local mean's share: 0.54 at sigma 1 px (0.08 of the change's
    # noise variance falls on the pixel itself)


def test_gated_skip_passes_on_the_two_date_level_when_asked():
    """skip_base "two_dates", gate logit +inf: the mixing gated skip returns the two-date level where a past date
    is clear; an unknown skip_base is refused by name."""
    from lai.config import ConfigError, ModelConfig
    from lai.model import two_date_level

    rng = np.random.default_rng(2)
    x, _ = _both_past_dates(rng.uniform(0.2, 1.2, (2, 32, 32)), change=0.1, noise=0.05, rng=rng)
    model = small("final", gated_skip=True, gate_form="mix", skip_base="two_dates").eval()
    torch.nn.init.zeros_(model.dec_head.weight)
    with torch.no_grad():
        model.dec_head.bias.copy_(torch.tensor([0.25, 50.0]))
        out = model(x)["dec"][:, 0].numpy()
    expected = two_date_level(x)[:, 0].numpy()
    expected[:, 7, :] = 0.25  # no past date clear: the decoder's own LAI
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ConfigError, match="model.skip_base must be one of last_clear, two_dates"):
        ModelConfig(gated_skip=True, skip_base="mean").validate()


def test_skip_smoothing_averages_the_past_over_clear_pixels_only():
    """model.skip_smoothing: a constant past LAI stays that constant wherever a past date is clear, cloudy pixels
    (of any value) never leak into it, and it is 0 where no past date is clear; out-of-range values are refused."""
    from lai.config import ConfigError, ModelConfig

    rng = np.random.default_rng(3)
    x, _ = _both_past_dates(np.full((2, 32, 32), 0.6), change=0.0, noise=0.0, rng=rng)
    x.s2[:, :, 7, :] = 5.0  # garbage under the clouds of row 7
    model = small("final", gated_skip=True, gate_form="mix", skip_base="two_dates", skip_smoothing=1.5)
    past = model.skip_base(x)[:, 0].numpy()
    np.testing.assert_allclose(np.delete(past, 7, axis=1), 0.6, atol=1e-5)
    assert np.all(past[:, 7, :] == 0)
    noisy, _ = _both_past_dates(np.full((2, 32, 32), 0.6), change=0.0, noise=0.1, rng=rng)
    sharp = small("final", gated_skip=True, gate_form="mix", skip_base="two_dates").skip_base(noisy)[:, 0, 10:]
    assert float(model.skip_base(noisy)[:, 0, 10:].std()) < 0.5 * float(sharp.std())  # rows clear on some date
    for bad in (-0.5, 9.0):
        with pytest.raises(ConfigError, match="model.skip_smoothing must lie in"):
            ModelConfig(gated_skip=True, skip_smoothing=bad).validate()


def test_residual_and_gated_skip_exclude_each_other():
    from lai.config import ConfigError, ModelConfig

    with pytest.raises(ConfigError, match="model.residual and model.gated_skip"):
        ModelConfig(residual=True, gated_skip=True).validate()


def test_a_row_without_s2_is_never_residual():
    """model.residual set for a profile added the last clear S2 LAI to the heads of the S1 rows too: "S1 (Encoder 1)"
    read the LAI history."""
    from lai.config import ConfigError, ModelConfig, load_profile
    from lai.train import stage_config

    ModelConfig(row="s2_masks", residual=True).validate()
    with pytest.raises(ConfigError, match=r"model.residual adds the last clear S2 LAI to every head, but row s1_masks "
                                          r"\(S1 \+ S2 masks \(Encoder 1\)\) does not read S2"):
        ModelConfig(row="s1_masks", residual=True).validate()
    profile = load_profile("tiny", ["model.residual=true"])
    with pytest.raises(ConfigError, match="row s1 "):
        stage_config(profile, "s1", "unused.nc")
    for start in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match=f"model.gate_start must lie strictly between 0 and 1.*got {start}"):
            ModelConfig(gated_skip=True, gate_start=start).validate()


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_both_upsampling_options_build_every_part_and_keep_the_tile_size(upsample):
    x = encode_batch(raw_batch(size=32), ENC)
    model = small("final", upsample=upsample)
    kinds = {type(m) for m in model.modules()}
    assert (torch.nn.ConvTranspose2d in kinds) == (upsample == "transpose")
    assert (torch.nn.Upsample in kinds) == (upsample == "bilinear")
    for pred in model(x).values():
        assert pred.shape == (2, 1, 32, 32)


def test_unknown_upsampling_is_refused_by_the_config_and_the_model():
    from lai.config import ConfigError, ModelConfig, load_profile

    with pytest.raises(ConfigError, match="model.upsample must be one of transpose, bilinear; got 'nearest'"):
        ModelConfig(upsample="nearest").validate()
    with pytest.raises(ConfigError, match="model.upsample"):
        load_profile("tiny", ["model.upsample=nearest"])
    with pytest.raises(ValueError, match="model.upsample"):
        UNet(3, [4, 8], upsample="nearest")
    assert load_profile("tiny", ["model.upsample=bilinear"]).model.upsample == "bilinear"
    assert ModelConfig().upsample == "transpose"  # the reference's choice stays the default


def test_unet_block_is_the_references_conv_relu_conv_relu_batchnorm():
    """One BatchNorm per block, after the last ReLU; convolutions with bias (as the reference's AutoEncoder)."""
    from lai.model import conv_block

    block = conv_block(5, 8, 2)
    kinds = [type(layer).__name__ for layer in block]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "BatchNorm2d"]
    assert all(layer.bias is not None for layer in block if isinstance(layer, torch.nn.Conv2d))
    unet = UNet(4, [8, 16, 32])
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in unet.modules())
    assert n_bn == 3 + 2  # three down blocks, two merge blocks


def test_paper_preset_parameters_within_one_percent_of_the_reference():
    """The reference's final model (Strontium, valentingol/LeafNothingBehind 5b6bce3) has 2,837,105 parameters."""
    from lai.config import ModelConfig
    from lai.encode import mask_channels
    from lai.model import LAIModel, n_parameters

    n = n_parameters(LAIModel(ModelConfig(row="final", preset="paper"), mask_channels(ENC)))
    assert abs(n - 2_837_105) / 2_837_105 < 0.01


@pytest.mark.parametrize("encoding", ["onehot", "reference"])
def test_scl_masks_equal_the_one_hot_definition(encoding):
    """The comparison-built maps equal the one-hot of the SCL class (clamped to 0..11), or the reference's
    valid flag + one-hot of SCL 2..6, for every uint8 value."""
    from lai.encode import N_SCL, REFERENCE_CLASSES, scl_masks, valid_mask

    enc = EncodingConfig(mask_encoding=encoding)
    scl = torch.arange(256, dtype=torch.uint8).reshape(2, 2, 8, 8)
    if encoding == "onehot":
        expected = torch.nn.functional.one_hot(scl.long().clamp(0, N_SCL - 1), N_SCL)
    else:
        onehot = (scl[..., None].long() == torch.tensor(REFERENCE_CLASSES)).long()
        expected = torch.cat([valid_mask(scl, enc)[..., None].long(), onehot], dim=-1)
    assert torch.equal(scl_masks(scl, enc), expected.permute(0, 1, 4, 2, 3).float())
    assert scl_masks(scl, enc).is_contiguous()
    in_channels_last = scl_masks(scl, enc, channels_last=True)  # stored (B, H, W, T, C): a channels_last view
    assert torch.equal(in_channels_last, expected.permute(0, 1, 4, 2, 3).float())
    assert in_channels_last.flatten(1, 2).is_contiguous(memory_format=torch.channels_last)


def test_channels_last_training_feeds_every_convolution_a_channels_last_input():
    """With the model and batch in channels_last order (lai.infer.to_channels_last), no convolution gets a
    channels-first input (which it would convert, forward and for the weight gradient): the mask embedding's
    input and the concatenations with the seasonality maps stay channels_last."""
    from lai.infer import to_channels_last

    model = small("final", uncertainty=True).to(memory_format=torch.channels_last)
    seen = []
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(lambda m, inp, out: seen.append(inp[0].is_contiguous(memory_format=torch.channels_last)))
    x = to_channels_last(encode_batch(raw_batch(2, 16), ENC))
    assert torch.equal(x.masks, encode_batch(raw_batch(2, 16), ENC).masks)  # the same maps, another memory order
    model(x)
    assert len(seen) > 20 and all(seen), seen


def test_cpu_batchnorm_with_few_channels_normalises_a_channels_first_copy(monkeypatch):
    """lai's BatchNorm2d, training on the CPU with fewer than CHANNELS_FIRST_BATCHNORM_BELOW channels, hands
    nn.BatchNorm2d a channels-first copy and returns channels_last; output, input gradient and running
    statistics equal nn.BatchNorm2d's (to float rounding); with more channels, or in eval mode, it is
    nn.BatchNorm2d unchanged."""
    from lai.model import CHANNELS_FIRST_BATCHNORM_BELOW, BatchNorm2d

    layouts = []
    original = torch.nn.BatchNorm2d.forward
    monkeypatch.setattr(torch.nn.BatchNorm2d, "forward", lambda self, x: layouts.append(x.is_contiguous()) or original(self, x))
    for channels, detour in ((8, True), (CHANNELS_FIRST_BATCHNORM_BELOW, False)):
        x = torch.randn(4, channels, 8, 8).contiguous(memory_format=torch.channels_last)
        ours, plain = BatchNorm2d(channels), torch.nn.BatchNorm2d(channels)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        layouts.clear()
        ya = ours(xa)
        assert layouts == [detour]
        yb = plain(xb)
        assert ya.is_contiguous(memory_format=torch.channels_last)
        g = torch.randn_like(x)
        ya.backward(g), yb.backward(g)
        torch.testing.assert_close(ya, yb)
        torch.testing.assert_close(xa.grad, xb.grad)
        torch.testing.assert_close(ours.running_var, plain.running_var)
        assert ours.state_dict().keys() == plain.state_dict().keys()
        layouts.clear()
        ours.eval()(x)
        assert layouts == [False]


def test_gaussian_blur_is_the_truncated_gaussian_convolution_with_zeros_beyond_the_edges():
    """Against a direct sum over the (6 sigma + 1)^2 taps in float64, on a non-square image, for sigmas whose
    radius reaches past the image's short side; an impulse far from the edges keeps its mass."""
    from lai.model import gaussian_blur

    rng = np.random.default_rng(0)
    values = rng.random((2, 1, 9, 23)).astype(np.float32) * 8
    for sigma in (0.5, 1.0, 2.5, 4.0):
        radius = max(1, int(np.ceil(3 * sigma)))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        kernel = np.outer(taps, taps) / taps.sum() ** 2
        padded = np.pad(values.astype(np.float64), ((0, 0), (0, 0), (radius, radius), (radius, radius)))
        expected = np.zeros(values.shape)
        for dy in range(2 * radius + 1):
            for dx in range(2 * radius + 1):
                expected += kernel[dy, dx] * padded[..., dy:dy + 9, dx:dx + 23]
        got = gaussian_blur(torch.from_numpy(values), sigma).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"sigma {sigma}")
    impulse = torch.zeros(1, 1, 40, 40)
    impulse[0, 0, 20, 20] = 1.0
    assert float(gaussian_blur(impulse, 2.0).sum()) == pytest.approx(1.0, abs=1e-6)


def test_past_context_is_the_mean_of_the_clear_past_pixels_near_each_pixel():
    """A uniform LAI on each past date, its clouded pixels holding 50: every context mean is that date's LAI (clouds
    and tile edges change the clear fraction beside it, never the mean), 1 where the Gaussian covers only clear
    pixels; the decoder reads 4 channels per sigma; a sigma out of range is refused by name."""
    from lai.config import ConfigError, ModelConfig
    from lai.model import past_context

    b, h, w = 2, 32, 32
    lai = np.empty((b, 3, h, w), np.float32)
    lai[:, 0], lai[:, 1], lai[:, 2] = 0.4, 0.6, 0.5
    scl = np.full((b, 3, h, w), 4, np.uint8)
    scl[:, 1, 10:14, 10:14] = 9  # a cloud on t-1
    lai[:, 1, 10:14, 10:14] = 50.0
    raw = raw_batch(b=b, size=h)
    raw.update(lai=torch.from_numpy(lai * ENC.lai_scale), scl=torch.from_numpy(scl))
    x = encode_batch(raw, ENC)
    maps = past_context(x, (1.0, 3.0), x.s1).numpy()
    assert maps.shape == (b, 8, h, w)
    for k in (0, 4):  # the means of t-2 and t-1 for each sigma
        np.testing.assert_allclose(maps[:, k], 0.4, atol=1e-5)
        np.testing.assert_allclose(maps[:, k + 1], 0.6, atol=1e-5)
    fraction = maps[:, 3]  # of t-1 under sigma 1
    assert fraction[:, 24, 24] == pytest.approx(1.0, abs=1e-5)
    assert (fraction[:, 12, 12] < 0.3).all() and (fraction[:, 0, 0] < 0.6).all()  # inside the cloud; at a corner
    cl = past_context(x, (1.0,), x.s1.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last)
    plain, context = small("final"), small("final", past_context=[1.0, 3.0])
    assert context.decoder.down[0][0].in_channels == plain.decoder.down[0][0].in_channels + 8
    assert context(x)["dec"].shape == (b, 1, h, w)
    with pytest.raises(ConfigError, match=r"model.past_context must list Gaussian sigmas in \[0.25, 16\]"):
        ModelConfig(past_context=[0.1]).validate()


def test_each_decoder_level_merges_the_skip_of_its_own_level():
    """With every up-sampling zeroed (it outputs 0), a U-Net's output reaches its input only through the skip
    connections: it still moves with the input; without skips it is a constant."""
    torch.manual_seed(0)
    for skip in (True, False):
        unet = UNet(3, [4, 8, 16], skip=skip).eval()
        for up in unet.up:
            torch.nn.init.zeros_(up.weight)
            torch.nn.init.zeros_(up.bias)
        with torch.no_grad():
            a, b = unet(torch.rand(1, 3, 8, 8)), unet(torch.rand(1, 3, 8, 8))
        assert (a - b).abs().max() > 1e-4 if skip else torch.equal(a, b)


def test_the_rows_answer_is_the_decoders_output_else_its_only_head():
    """What every score and map reads: the final row's decoder (never its first encoder's head); an encoder row's
    head."""
    from lai.model import LAIModel

    a, b, c, d = (torch.full((1, 1, 2, 2), float(v)) for v in range(4))
    assert LAIModel.prediction({"enc1": a, "enc2": b, "dec": c, LOG_VAR: d}) is c
    assert LAIModel.prediction({"enc2": b}) is b and LAIModel.prediction({"enc1": a}) is a
