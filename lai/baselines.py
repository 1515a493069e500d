"""Per-pixel baselines on the U-Nets' test sets and metrics (paper section 4.2; the reference code's per-pixel features).

* ``MLR`` and ``RF``: the paper's single-pixel models on the "same features" the
  U-Nets get (see :func:`feature_names`), trained on a random sample of training
  pixels that are clear at t.
* ``persistence``: the last clear LAI (what a user without any model would use).
* ``extrapolation``: linear in time from t-2 and t-1 to t.

Metrics are pooled over pixels clear at t exactly as :func:`lai.evaluate.scores`
computes them for the U-Nets, accumulated batch by batch so that memory does not
grow with the size of a test set.
"""
from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from lai.config import BaselineConfig, EncodingConfig
from lai.encode import N_SCL, REFERENCE_CLASSES, Encoded, encode_batch, valid_mask
from lai.facts import (
    BASELINES,
    EMPTY,
    EXTRA_BASELINES,
    EXTRAPOLATION,
    HISTORY_FEATURES,
    MLR,
    PERSISTENCE,
    POLARISATIONS,
    RF,
    TEST_SETS,
    TIME_LABELS,
    TRAIN,
)
from lai.loader import CubeSplit
from lai.metrics import SUMS, Scores, strict_clear

TIMES = TIME_LABELS[:2]  # the past dates
_BATCH = 16  # triplets per read: bounds memory (a 256x256 batch of features is ~140 MB)


# --------------------------------------------------------------------------- features


def feature_names(enc: EncodingConfig | None = None) -> list[str]:
    """Names of the :func:`pixel_features` columns for an encoding (masks and seasonality depend on it)."""
    enc = enc or EncodingConfig()
    names = [f"{pol}_{t}" for t in TIME_LABELS for pol in POLARISATIONS]
    names += [f"LAI_{t}" for t in TIMES]
    if enc.mask_encoding == "onehot":
        channels = [f"SCL{k}" for k in range(N_SCL)]
    else:
        channels = ["valid"] + [f"SCL{k}" for k in REFERENCE_CLASSES]
    names += [f"{c}_{t}" for t in TIMES for c in channels]
    names += ["sin_doy", "cos_doy"] if enc.seasonality == "sincos" else ["tri_from", "tri_from_q"]
    return names


FEATURE_NAMES = feature_names(EncodingConfig())  # default encoding: one-hot SCL, sin/cos of the target's DOY


def _tensors(raw: dict) -> dict[str, torch.Tensor]:
    return {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v)) for k, v in raw.items()}


def _feature_maps(x: Encoded) -> torch.Tensor:
    """(B, F, H, W): every input of the U-Nets, per pixel."""
    b, _, h, w = x.s1.shape
    masks = x.masks.reshape(b, -1, h, w)
    season = x.season[:, :, None, None].expand(b, x.season.shape[1], h, w)
    return torch.cat([x.s1, x.s2, masks, season], dim=1)


def _flat(maps: torch.Tensor) -> np.ndarray:
    """(B, F, H, W) -> (B*H*W, F) float32, pixel order = sample, row, column."""
    b, f, h, w = maps.shape
    return maps.permute(0, 2, 3, 1).reshape(b * h * w, f).float().numpy()


def pixel_features(raw: dict, enc: EncodingConfig) -> np.ndarray:
    """Features of every pixel of a raw batch, shape (n_samples*H*W, F), columns :func:`feature_names`.

    VV, VH at t-2, t-1, t (dB/scale+offset), LAI at t-2, t-1 (LAI/scale, NaN -> 0),
    the SCL masks of t-2 and t-1 as ``enc.mask_encoding`` encodes them for the
    U-Nets, and the two seasonality values: all from :func:`lai.encode.encode_batch`.
    """
    return _flat(_feature_maps(encode_batch(_tensors(raw), enc)))


def pixel_targets(raw: dict, enc: EncodingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Normalised LAI at t (0 where not clear) and the clear-at-t mask, both flat (n_samples*H*W,)."""
    x = encode_batch(_tensors(raw), enc)
    return x.target.reshape(-1).numpy(), x.target_valid.reshape(-1).numpy()


def pixel_data(raw: dict, enc: EncodingConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pixel_features` and :func:`pixel_targets` from a single encoding of the batch."""
    x = encode_batch(_tensors(raw), enc)
    return _flat(_feature_maps(x)), x.target.reshape(-1).numpy(), x.target_valid.reshape(-1).numpy()


# --------------------------------------------------------------------------- temporal baselines


def _clear(raw: dict, enc: EncodingConfig) -> np.ndarray:
    """(N, 3, H, W) bool: valid SCL and finite LAI."""
    lai = np.asarray(raw["lai"])
    return valid_mask(torch.from_numpy(np.ascontiguousarray(raw["scl"])), enc).numpy() & np.isfinite(lai)


def persistence(raw: dict, enc: EncodingConfig, fallback: float | None = None) -> np.ndarray:
    """Last clear LAI, (N, H, W) in LAI units.

    Per pixel: LAI at t-1 where clear at t-1; else LAI at t-2 where clear at t-2;
    else the mean clear LAI of that tile's past (all pixels clear at t-2 or t-1,
    both dates pooled); else (no clear past pixel in the tile) ``fallback``, the
    training mean that :func:`evaluate_baselines` passes in. Without a fallback
    the mean clear past LAI of the whole batch is used, or 0 if it has none.
    """
    lai = np.asarray(raw["lai"], np.float64)
    clear = _clear(raw, enc)
    past, past_clear = lai[:, :2], clear[:, :2]
    count = past_clear.sum(axis=(1, 2, 3))
    total = np.where(past_clear, past, 0.0).sum(axis=(1, 2, 3))
    if fallback is None:
        fallback = float(total.sum() / count.sum()) if count.sum() else 0.0
    tile_mean = np.where(count > 0, total / np.maximum(count, 1), fallback)
    out = np.broadcast_to(tile_mean[:, None, None], lai.shape[:1] + lai.shape[2:]).copy()
    out = np.where(clear[:, 0], lai[:, 0], out)
    out = np.where(clear[:, 1], lai[:, 1], out)
    return out.astype(np.float32)


def extrapolation(raw: dict, enc: EncodingConfig, dates: np.ndarray, fallback: float | None = None,
                  clip: tuple[float, float] = (0.0, 10.0)) -> np.ndarray:
    """Linear extrapolation in time, (N, H, W) in LAI units.

    Where t-2 and t-1 are both clear: ``LAI(t-1) + (LAI(t-1) - LAI(t-2)) * (d_t - d_t-1) / (d_t-1 - d_t-2)``
    with ``dates`` (N, 3) the cube's ``date`` rows (days; t-1's date is estimated).
    Elsewhere, or where the two past dates coincide, :func:`persistence`. Clipped to ``clip``.
    """
    lai = np.asarray(raw["lai"], np.float64)
    clear = _clear(raw, enc)
    d = np.asarray(dates, np.float64)
    gap_past, gap_ahead = d[:, 1] - d[:, 0], d[:, 2] - d[:, 1]
    ok = gap_past > 0
    ratio = np.where(ok, gap_ahead / np.where(ok, gap_past, 1.0), 0.0)[:, None, None]
    with np.errstate(invalid="ignore"):
        line = lai[:, 1] + (lai[:, 1] - lai[:, 0]) * ratio
    both = clear[:, 0] & clear[:, 1] & ok[:, None, None]
    out = np.where(both, line, persistence(raw, enc, fallback))
    return np.clip(out, *clip).astype(np.float32)


def split_dates(split: CubeSplit) -> np.ndarray:
    """(len(split), 3) dates of t-2, t-1 (estimated), t in days since 1970, from the cube's ``date`` variable."""
    with h5py.File(split.path, "r") as f:
        return f["date"][:][split.index].astype(np.int64)


# --------------------------------------------------------------------------- pixel models


class PixelModels(dict):
    """``{"MLR": estimator, "RF": estimator}`` plus what was learned from the training sample.

    ``train_mean``: mean clear LAI at t of the sample (LAI units; persistence's last fallback);
    ``n_pixels``: sample size; ``feature_names``; ``fit_seconds``.
    """

    train_mean: float = 0.0
    n_pixels: int = 0
    feature_names: list[str] = []
    fit_seconds: float = 0.0


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(start + size, n))


def sample_training_pixels(cube_path: str | Path, cfg: BaselineConfig, enc: EncodingConfig,
                           split: str = TRAIN, batch_size: int = _BATCH, progress: bool = True):
    """Features and normalised targets of at most ``cfg.max_train_pixels`` random pixels clear at t.

    The split is read in batches; each clear pixel is kept with the same
    probability, set from the cube's ``clear_fraction`` at t so that about
    10% more than needed are drawn; a final draw trims to the cap. Memory is
    bounded by the cap and one batch, whatever the size of the split.
    """
    from lai.progress import tqdm

    data = CubeSplit(cube_path, split)
    if len(data) == 0:
        raise ValueError(f"{cube_path}: split {split!r} is empty; no pixel to train the baselines on")
    rng = np.random.default_rng(cfg.seed)
    with h5py.File(data.path, "r") as f:
        est_clear = float(f["clear_fraction"][:][data.index, 2].sum()) * int(np.prod(data.shape))
    keep = min(1.0, 1.1 * cfg.max_train_pixels / max(est_clear, 1.0))
    xs, ys = [], []
    try:
        for pos in tqdm(list(_batches(len(data), batch_size)), desc="baselines: sample train pixels",
                        unit="batch", disable=not progress):
            raw = data.read(pos)
            features, target, clear = pixel_data(raw, enc)
            idx = np.flatnonzero(clear)
            take = rng.binomial(len(idx), keep)
            if take == 0:
                continue
            idx = np.sort(rng.choice(idx, take, replace=False))
            xs.append(features[idx])
            ys.append(target[idx])
    finally:
        data.close()
    if not xs:
        raise ValueError(f"{cube_path}: no pixel of split {split!r} is clear at t; cannot train the baselines")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(y) > cfg.max_train_pixels:
        idx = np.sort(rng.choice(len(y), cfg.max_train_pixels, replace=False))
        x, y = x[idx], y[idx]
    return x, y


def without_history(enc: EncodingConfig) -> np.ndarray:
    """Column indices of :func:`pixel_features` without the LAI history (``lai.facts.HISTORY_FEATURES``)."""
    return np.array([i for i, name in enumerate(feature_names(enc)) if name not in HISTORY_FEATURES])


def fit_pixel_models(cube_path: str | Path, cfg: BaselineConfig, enc: EncodingConfig,
                     progress: bool = True, extras: bool = False) -> PixelModels:
    """MLR and RF on a random sample of training pixels clear at t (targets are LAI/scale, as for the U-Nets).

    With ``extras`` also the same two on the features without the LAI history (``lai.facts.EXTRA_BASELINES``).
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression

    start = time.perf_counter()
    x, y = sample_training_pixels(cube_path, cfg, enc, progress=progress)

    def fit(kind: str, features: np.ndarray):
        if kind == MLR:  # least squares in float64: in float32, a sample whose features are collinear (a class
            # absent from a small training split) kept rounding noise as directions, and the fit blew up (RMSE 28 to
            # 83 LAI on the tiny profile) or not depending on the CPU's kernels; same fit otherwise (quick: RMSE
            # within 2e-7 LAI)
            return LinearRegression().fit(features.astype(np.float64), y.astype(np.float64))
        return RandomForestRegressor(n_estimators=cfg.rf_trees, max_depth=cfg.rf_max_depth,
                                     min_samples_leaf=cfg.rf_min_samples_leaf, n_jobs=-1, random_state=cfg.seed).fit(features, y)

    models = PixelModels({MLR: fit(MLR, x), RF: fit(RF, x)})
    if extras:
        for name, base in EXTRA_BASELINES.items():
            models[name] = fit(base, x[:, without_history(enc)])
    models.train_mean = float(y.mean() * enc.lai_scale)
    models.n_pixels = len(y)
    models.feature_names = feature_names(enc)
    models.fit_seconds = time.perf_counter() - start
    return models


def rf_importances(models: dict, feature_names: list[str] | None = None) -> pd.DataFrame:
    """Impurity-based feature importances of the RF, largest first (columns feature, importance)."""
    rf = models[RF]
    names = feature_names or getattr(models, "feature_names", None) or [f"x{i}" for i in range(rf.n_features_in_)]
    if len(names) != rf.n_features_in_:
        raise ValueError(f"{len(names)} feature names for an RF trained on {rf.n_features_in_} features")
    df = pd.DataFrame({"feature": names, "importance": rf.feature_importances_})
    return df.sort_values("importance", ascending=False, ignore_index=True)


# --------------------------------------------------------------------------- evaluation


def predict_baselines(raw: dict, models: dict, enc: EncodingConfig, dates: np.ndarray,
                      fallback: float | None = None) -> dict[str, np.ndarray]:
    """LAI at t (N, H, W) of every baseline for one raw batch."""
    n, _, h, w = np.asarray(raw["lai"]).shape
    x = pixel_features(raw, enc)
    columns = {name: without_history(enc) for name in EXTRA_BASELINES}
    out = {name: (model.predict(x[:, columns[name]] if name in columns else x) * enc.lai_scale)
           .reshape(n, h, w).astype(np.float32) for name, model in models.items()}
    out[PERSISTENCE] = persistence(raw, enc, fallback)
    out[EXTRAPOLATION] = extrapolation(raw, enc, dates, fallback)
    return out


def evaluate_baselines(cube_path: str | Path, cfg: BaselineConfig, enc: EncodingConfig, sets=TEST_SETS,
                       progress: bool = True, models: PixelModels | None = None,
                       batch_size: int = _BATCH, extras: bool = False) -> pd.DataFrame:
    """Fit MLR and RF (unless ``models`` is given) and score the four baselines on each test set; with
    ``extras`` also the baselines without the LAI history (``lai.facts.EXTRA_BASELINES``).

    One row per (baseline, set): baseline, set, triplets and the columns of :class:`lai.metrics.Scores`
    (rmse in LAI with its interval, r2, the strict-rule and true-LAI scores), and ``note``: ``"empty"``
    (``lai.facts.EMPTY``) where the set holds no triplet and its metrics are NaN. ``attrs`` hold the RF
    importances, the training sample size, training mean, timings and ``per_triplet``: a frame
    (baseline, set, triplet and the sums ``lai.metrics.SUMS``) for paired comparisons.
    """
    from lai.progress import tqdm

    start = time.perf_counter()
    models = models if models is not None else fit_pixel_models(cube_path, cfg, enc, progress=progress, extras=extras)
    fallback = getattr(models, "train_mean", None)
    names = [*BASELINES, *(b for b in EXTRA_BASELINES if b in models)]
    rows, sums = [], []
    for name in sets:
        split = CubeSplit(cube_path, name)
        if len(split) == 0:
            rows += [{"baseline": b, "set": name, "triplets": 0, **Scores().result(), "note": EMPTY}
                     for b in names]
            continue
        dates = split_dates(split)
        acc = {b: Scores() for b in names}
        try:
            for pos in tqdm(list(_batches(len(split), batch_size)), desc=f"baselines: {name}", unit="batch",
                            disable=not progress):
                raw = split.read(pos)
                clear = _clear(raw, enc)[:, 2]
                strict = strict_clear(raw["scl"][:, 2], raw["lai"][:, 2])
                for b, pred in predict_baselines(raw, models, enc, dates[pos], fallback).items():
                    acc[b].update(pred, raw["lai"][:, 2], clear, strict, raw.get("truth"))
        finally:
            split.close()
        rows += [{"baseline": b, "set": name, "triplets": len(split), **acc[b].result(), "note": ""} for b in names]
        sums += [pd.DataFrame(acc[b].triplet_sums, columns=list(SUMS)).assign(baseline=b, set=name, triplet=split.index)
                 for b in names]
    table = pd.DataFrame(rows)
    table.attrs["per_triplet"] = pd.concat(sums, ignore_index=True) if sums else pd.DataFrame(columns=["baseline", "set", "triplet", *SUMS])
    if RF in models:
        imp = rf_importances(models, getattr(models, "feature_names", None) or feature_names(enc))
        table.attrs["rf_importances"] = dict(zip(imp["feature"], imp["importance"].astype(float)))
    table.attrs.update(train_pixels=int(getattr(models, "n_pixels", 0)), train_mean=float(fallback or 0.0),
                       fit_seconds=float(getattr(models, "fit_seconds", 0.0)),
                       total_seconds=time.perf_counter() - start)
    return table
