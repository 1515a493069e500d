"""Encoding of a raw batch, on hand-made values: what the model reads and what the loss is taken on."""
import torch

from lai.config import EncodingConfig
from lai.encode import encode_batch, normalise_db
from tests.helpers import ENC, raw_batch


def test_db_values_are_clipped_to_the_range_then_scaled():
    """The reference's rule: clip to [-30, 0] dB, then dB / 30 + 1 (0 at -30 dB, 1 at 0 dB)."""
    db = torch.tensor([-45.0, -30.0, -15.0, -6.0, 0.0, 4.0])
    torch.testing.assert_close(normalise_db(db, ENC), torch.tensor([0.0, 0.0, 0.5, 0.8, 1.0, 1.0]))
    narrow = EncodingConfig(db_range=[-25.0, -5.0])
    torch.testing.assert_close(normalise_db(db, narrow), torch.tensor([-25.0, -25.0, -15.0, -6.0, -5.0, -5.0]) / 30 + 1)


def test_s1_channels_are_vv_vh_of_t_minus_2_t_minus_1_t_in_order():
    raw = raw_batch(b=1, size=4)
    raw["s1"] = -torch.arange(6.0).reshape(1, 3, 2, 1, 1).expand(1, 3, 2, 4, 4) * 3  # (date k, pol p): -3 (2k + p)
    x = encode_batch(raw, ENC)
    expected = 1 - torch.arange(6.0) * 3 / 30
    torch.testing.assert_close(x.s1[0, :, 2, 3], expected)


def test_lai_is_divided_by_the_configured_scale():
    raw = raw_batch(b=1, size=4)
    raw["scl"][:] = 4
    raw["lai"] = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1).expand(1, 3, 4, 4).clone()
    for scale in (5.0, 2.0):
        x = encode_batch(raw, EncodingConfig(lai_scale=scale))
        torch.testing.assert_close(x.s2[0, :, 0, 0], torch.tensor([1.0, 2.0]) / scale)
        torch.testing.assert_close(x.target[0, 0, 0, 0], torch.tensor(3.0 / scale))


def test_masks_are_those_of_t_minus_2_and_t_minus_1_never_t():
    """The one-hot of SCL at t-2 and t-1; the SCL at t (which would leak the target's clouds) changes the target's
    validity only."""
    raw = raw_batch(b=2, size=8)
    raw["scl"][:, 0] = 4
    raw["scl"][:, 1] = 8
    raw["scl"][:, 2] = 9
    x = encode_batch(raw, ENC)
    assert x.masks.shape == (2, 2, 12, 8, 8)
    assert (x.masks[:, 0, 4] == 1).all() and (x.masks[:, 1, 8] == 1).all() and x.masks.sum(2).eq(1).all()
    assert x.masks[:, :, 9].sum() == 0
    clear_t = dict(raw, scl=raw["scl"].clone())
    clear_t["scl"][:, 2] = 4
    y = encode_batch(clear_t, ENC)
    assert torch.equal(y.masks, x.masks) and y.target_valid.all() and not x.target_valid.any()


def test_a_lai_not_finite_is_never_clear_whatever_its_scl():
    raw = raw_batch(b=1, size=4)
    raw["scl"][:] = 4
    raw["lai"][0, 2, 1, 1] = float("nan")
    raw["lai"][0, 1, 2, 2] = float("inf")
    x = encode_batch(raw, ENC)
    assert not x.target_valid[0, 0, 1, 1] and x.target_valid.sum() == 15 and x.target[0, 0, 1, 1] == 0
    assert not x.past_valid[0, 1, 2, 2] and x.past_valid.sum() == 31 and x.s2[0, 1, 2, 2] == 0


def test_past_cloudy_is_the_clear_fraction_of_t_minus_2_and_t_minus_1_below_one_half():
    """Sample 0: its past 40 % clear, t clear (cloudy past, whatever t); sample 1: its past half clear (not below one
    half), t cloudy; sample 2: its past all clear, t cloudy."""
    raw = raw_batch(b=3, size=10)
    raw["scl"][:] = 4
    raw["scl"][0, :2, :6] = 9
    raw["scl"][1, :2, :5] = 9
    raw["scl"][1:, 2] = 9
    x = encode_batch(raw, ENC)
    assert x.past_cloudy.tolist() == [True, False, False]
