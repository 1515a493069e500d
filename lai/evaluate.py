"""Predictions for a split and metrics per test set (pooled over pixels clear at t).

Each RMSE and R2 comes with a 95% bootstrap interval over triplets; the
per-triplet sums behind it are kept in ``per_tile.csv`` for paired comparisons
(:func:`lai.tables.comparisons`). The strict valid rule (SCL 4-6, no shadows)
is scored beside the configured one. On simulated data the true LAI is known
everywhere, so the error against it on clear pixels and under clouds at t,
which real data cannot measure, is reported too.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lai.checkpoint import load_model
from lai.config import EncodingConfig, StageConfig, check_tile_size
from lai.cube import cube_identity
from lai.encode import denormalise_lai, encode_batch
from lai.errors import RunFolderError
from lai.facts import EMPTY, STAGE_WEIGHTS_FILE, TEST_SETS
from lai.io import atomic_path, atomic_write_text, output_lock
from lai.loader import BatchLoader, CubeSplit
from lai.metrics import SUMS, Scores, per_tile, strict_clear
from lai.model import LAIModel
from lai.train import pick_device

PER_TILE = ("rmse", "rmse_norm", "r2", "n_pixels")  # per_tile.csv's metrics of each triplet (lai.metrics.pooled)
EVALUATED_ON = "evaluated_on.json"  # beside metrics.csv: the cube identity the metrics were computed on


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[LAIModel, StageConfig]:
    """Model of a finished training stage, in eval mode, and its stage configuration."""
    model, config = load_model(run_dir)
    return model.to(device).eval(), config


def check_same_splits(config: StageConfig, run_dir: Path, cube: str | Path) -> dict:
    """Refuse to score a model on a cube whose split labels differ from those it was trained with
    (its test sets could hold training triplets); return the cube's identity."""
    identity = cube_identity(cube)
    trained = config.cube.splits
    if trained != identity["splits"]:
        raise RunFolderError(
            f"{run_dir}: the model was trained on a cube with other split labels than {cube} "
            f"({str(trained)[:12]} there, {identity['splits'][:12]} here): its test sets may hold training "
            "triplets; evaluate it on the cube it was trained with, or retrain"
        )
    return identity


def evaluated_on(run_dir: str | Path) -> dict | None:
    """The cube identity recorded with a run's metrics, or None."""
    path = Path(run_dir) / EVALUATED_ON
    return json.loads(path.read_text()) if path.is_file() else None


@torch.no_grad()
def predict(model: LAIModel, split: CubeSplit, enc: EncodingConfig, batch_size: int = 32, device="cpu") -> dict[str, np.ndarray]:
    """LAI (model units -> LAI) for every sample of ``split``, with the target and its masks."""
    device = torch.device(device)
    use_bf16 = device.type == "cuda"
    out: dict[str, list] = {k: [] for k in ("pred", "target", "clear", "strict", "truth")}
    for raw in BatchLoader(split, batch_size, False, device, "auto"):
        x = encode_batch(raw, enc)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            pred = LAIModel.prediction(model(x)).float()
        out["pred"].append(denormalise_lai(pred[:, 0], enc).cpu().numpy())
        out["target"].append(raw["lai"][:, 2].float().cpu().numpy())
        out["clear"].append(x.target_valid[:, 0].cpu().numpy())
        out["strict"].append(strict_clear(raw["scl"][:, 2].cpu().numpy(), out["target"][-1]))
        if "truth" in raw:
            out["truth"].append(raw["truth"].float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items() if v}


def scores(pred: dict[str, np.ndarray], lai_scale: float) -> Scores:
    """:class:`lai.metrics.Scores` of a prediction (``result()``: the metrics, ``triplet_sums``: their sums)."""
    s = Scores(lai_scale)
    s.update(pred["pred"], pred["target"], pred["clear"], pred["strict"], pred.get("truth"))
    return s


def evaluate_run(run_dir: str | Path, cube: str | Path, sets=TEST_SETS, batch_size: int = 32,
                 device: str = "auto", save_predictions: bool = True) -> pd.DataFrame:
    """Metrics of a finished stage on each test set; writes metrics.csv, per_tile.csv (with the per-triplet
    sums ``lai.metrics.SUMS``), predictions/. An empty test set gets a row of NaN metrics with ``note``
    ``"empty"`` (``lai.facts.EMPTY``) and no predictions file."""
    run_dir = Path(run_dir)
    device = pick_device(device)
    with output_lock(run_dir, folder=STAGE_WEIGHTS_FILE):  # a folder holding a model: checked as it loads
        model, cfg = load_run(run_dir, device)
        check_tile_size(CubeSplit(cube).shape, model.cfg, f"{cube}:")
        identity = check_same_splits(cfg, run_dir, cube)
        table = _evaluate(model, cfg, run_dir, cube, sets, batch_size, device, save_predictions)
        atomic_write_text(run_dir / EVALUATED_ON, json.dumps(identity, indent=2))
    return table


def _evaluate(model: LAIModel, cfg: StageConfig, run_dir: Path, cube, sets, batch_size, device, save_predictions) -> pd.DataFrame:
    enc = cfg.encoding
    rows, tiles = [], []
    for name in sets:
        split = CubeSplit(cube, name)
        if len(split) == 0:  # every metric column, NaN, so that tables and checks find them
            rows.append({"set": name, "triplets": 0, **Scores(enc.lai_scale).result(), "note": EMPTY})
            continue
        pred = predict(model, split, enc, batch_size, device)
        score = scores(pred, enc.lai_scale)
        rows.append({"set": name, "triplets": len(split), **score.result(), "note": ""})
        tile_metrics = per_tile(pred["pred"], pred["target"], pred["clear"], enc.lai_scale)
        for i, t, sums in zip(split.index, tile_metrics, score.triplet_sums):
            tiles.append({"set": name, "triplet": int(i), **t, **dict(zip(SUMS, sums))})
        if save_predictions:
            save_prediction(run_dir / "predictions" / f"{name}.nc", split, pred)
    table = pd.DataFrame(rows).assign(row=cfg.row)
    tiles = pd.DataFrame(tiles, columns=None if tiles else ["set", "triplet", *PER_TILE, *SUMS])
    for frame, file in ((table, "metrics.csv"), (tiles, "per_tile.csv")):
        with atomic_path(run_dir / file) as tmp:
            frame.to_csv(tmp, index=False)
    return table


def save_prediction(path: Path, split: CubeSplit, pred: dict[str, np.ndarray]) -> None:
    import xarray as xr

    ds = xr.Dataset(
        {
            "lai_pred": (("triplet", "y", "x"), pred["pred"].astype(np.float32)),
            "clear_t": (("triplet", "y", "x"), pred["clear"].astype(np.uint8)),
        },
        coords={"triplet": split.index},
        attrs={"split": str(split.split), "cube": str(split.path), "units": "LAI (m2/m2)"},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


