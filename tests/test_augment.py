"""Augmentation: one symmetry per sample, applied to every array of it."""
import torch


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


def test_augmentation_of_non_square_tiles_uses_the_four_symmetries_that_keep_the_shape():
    from lai.augment import augment

    n, h, w = 64, 4, 6
    base = torch.rand(n, h, w, generator=torch.Generator().manual_seed(0))
    raw = {"lai": base[:, None].expand(n, 3, h, w).clone(), "truth": base.clone()}
    moved = augment(raw, torch.Generator().manual_seed(1))["truth"]
    assert moved.shape == (n, h, w) and torch.equal(augment(raw, torch.Generator().manual_seed(1))["lai"][:, 0], moved)
    symmetries = [lambda a, k=k, f=f: torch.rot90(a, k, (-2, -1)).flip(-1) if f else torch.rot90(a, k, (-2, -1))
                  for k in (0, 2) for f in (False, True)]
    used = {next(i for i, sym in enumerate(symmetries) if torch.equal(sym(base[j]), moved[j])) for j in range(n)}
    assert used == set(range(4))
