"""Predictions for a split and metrics per test set (pooled over pixels clear at t).

Each RMSE and R2 comes with a 95% bootstrap interval over triplets; the
per-triplet sums behind it are kept in ``per_tile.csv`` for paired comparisons
(:func:`lai.tables.comparisons`). The strict valid rule (SCL 4-6, no shadows)
is scored beside the configured one. On simulated data the true LAI is known
everywhere, so the error against it on clear pixels and under clouds at t,
which real data cannot measure, is reported too. :func:`calibrate_run` recalibrates and measures a model's
predicted spread (:mod:`lai.uncertainty`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lai.config import ConfigError, StageConfig, check_tile_size
from lai.cube import check_valid_classes, cube_identity
from lai.distributed import pick_device
from lai.errors import RunFolderError
from lai.facts import (
    CLOUDY,
    EMPTY,
    N_PIXELS,
    R2,
    RMSE,
    RMSE_NORM,
    STAGE_METRICS_FILE,
    STAGE_PER_TRIPLET_FILE,
    STAGE_WEIGHTS_FILE,
    TEST_SETS,
    VAL,
)
from lai.infer import Trained, load_trained, predict_lai
from lai.io import atomic_path, atomic_write_text, output_lock, own_subfolder
from lai.loader import BatchLoader, CubeSplit
from lai.metrics import SUMS, Scores, per_tile, strict_clear
from lai.records import read_json_record
from lai.uncertainty import (
    TRANSFER_COLUMNS,
    Calibration,
    calibration_rows,
    fit_calibration,
    region_transfer,
    reliability,
    strata,
)

PER_TILE = (RMSE, RMSE_NORM, R2, N_PIXELS)  # per_tile.csv's metrics of each triplet (lai.metrics.pooled)
EVALUATED_ON = "evaluated_on.json"  # beside metrics.csv: the cube identity and lai code the metrics were computed by


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


def evaluation_identity(cube: str | Path) -> dict:
    """What a stage's cached metrics depend on beside its weights: the cube's identity and lai's code
    (:func:`lai.provenance.code_digest`: a fix to the metrics reaches a run folder evaluated before it)."""
    from lai.provenance import code_digest

    return {**cube_identity(cube), "lai_code": code_digest()}


def evaluated_on(run_dir: str | Path) -> dict | None:
    """The identity (:func:`evaluation_identity`) recorded with a run's metrics, or None; :class:`RunFolderError`
    naming the file if unreadable."""
    path = Path(run_dir) / EVALUATED_ON
    if not (path.exists() or path.is_symlink()):
        return None
    return read_json_record(path, RunFolderError, "delete it to evaluate that stage again")


def predict(trained: Trained, split: CubeSplit, batch_size: int = 32, progress: bool = False) -> dict[str, np.ndarray]:
    """LAI (m2/m2) predicted for every sample of ``split``, with the target and its masks; from a model with a spread
    head also ``sd`` (uncalibrated) and ``past_clear`` (clear dates among t-2, t-1 per pixel). ``progress``: a bar
    per split."""
    from lai.progress import tqdm

    out: dict[str, list] = {k: [] for k in ("pred", "target", "clear", "strict", "truth", "sd", "past_clear")}
    loader = BatchLoader(split, batch_size, False, trained.device, "auto")
    for raw in tqdm(loader, desc=f"{trained.stage} on {split.split}", unit="batch", leave=False, disable=not progress):
        x, lai, sd = predict_lai(trained.model, raw, trained.enc, trained.bf16)
        out["pred"].append(lai.cpu().numpy())
        if sd is not None:
            out["sd"].append(sd.cpu().numpy())
            out["past_clear"].append(x.past_valid.sum(1).to(torch.int8).cpu().numpy())
        out["target"].append(raw["lai"][:, 2].float().cpu().numpy())
        out["clear"].append(x.target_valid[:, 0].cpu().numpy())
        out["strict"].append(strict_clear(raw["scl"][:, 2].cpu().numpy(), out["target"][-1]))
        if "truth" in raw:
            out["truth"].append(raw["truth"].float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items() if v}


def scores(pred: dict[str, np.ndarray]) -> Scores:
    """:class:`lai.metrics.Scores` of a prediction (``result()``: the metrics, ``triplet_sums``: their sums)."""
    s = Scores()
    s.update(pred["pred"], pred["target"], pred["clear"], pred["strict"], pred.get("truth"))
    return s


def evaluate_run(run_dir: str | Path, cube: str | Path, sets=TEST_SETS, batch_size: int = 32,
                 device: str = "auto", save_predictions: bool = True, progress: bool = False) -> pd.DataFrame:
    """Metrics of a finished stage on each test set; writes metrics.csv, per_tile.csv (with the per-triplet
    sums ``lai.metrics.SUMS``), predictions/. An empty test set gets a row of NaN metrics with ``note``
    ``"empty"`` (``lai.facts.EMPTY``) and no predictions file. ``progress``: a bar per set."""
    run_dir = Path(run_dir)
    device = pick_device(device)
    with output_lock(run_dir, folder=STAGE_WEIGHTS_FILE):  # a folder holding a model: checked as it loads
        trained, identity = _trained_for(run_dir, cube, device)
        table = _evaluate(trained, run_dir, cube, sets, batch_size, save_predictions, progress)
        atomic_write_text(run_dir / EVALUATED_ON, json.dumps(evaluation_identity(cube), indent=2))
    return table


def _trained_for(run_dir: Path, cube: str | Path, device) -> tuple[Trained, dict]:
    """The model of ``run_dir``, refused unless it fits the cube's tiles and was trained on its split labels; and
    the cube's identity."""
    trained = load_trained(run_dir, device)
    whole = CubeSplit(cube)
    check_valid_classes(cube, whole.attrs, trained.enc.valid_classes)
    check_tile_size(whole.shape, trained.model.cfg, f"{cube}:")
    return trained, check_same_splits(trained.config, run_dir, cube)


def _evaluate(trained: Trained, run_dir: Path, cube, sets, batch_size, save_predictions, progress) -> pd.DataFrame:
    def predicted(split: CubeSplit) -> dict[str, np.ndarray]:
        pred = predict(trained, split, batch_size, progress)
        if save_predictions:
            save_prediction(run_dir / "predictions" / f"{split.split}.nc", split, pred)
        return pred

    table, tiles = score_sets(predicted, cube, sets)
    table = table.assign(row=trained.row)
    for frame, file in ((table, STAGE_METRICS_FILE), (tiles, STAGE_PER_TRIPLET_FILE)):
        with atomic_path(run_dir / file) as tmp:
            frame.to_csv(tmp, index=False)
    return table


def score_sets(predicted, cube: str | Path, sets) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics per set (one row each, ``note`` ``"empty"`` and NaN metrics for a set without triplets) and per
    triplet (``PER_TILE`` and the sums ``lai.metrics.SUMS``) of the predictions ``predicted(split)`` (a dict as
    :func:`predict` returns) of each split ``sets`` of ``cube``."""
    rows, tiles = [], []
    for name in sets:
        split = CubeSplit(cube, name)
        if len(split) == 0:  # every metric column, NaN, so that tables and checks find them
            rows.append({"set": name, "triplets": 0, **Scores().result(), "note": EMPTY})
            continue
        row, per_triplet = _scored(split, predicted(split))
        rows.append(row)
        tiles.append(per_triplet)
    return pd.DataFrame(rows), (pd.concat(tiles, ignore_index=True) if tiles else
                                pd.DataFrame(columns=["set", "triplet", *PER_TILE, *SUMS]))


def _scored(split: CubeSplit, pred: dict[str, np.ndarray]) -> tuple[dict, pd.DataFrame]:
    """One set's row of metrics and its per-triplet frame."""
    score = scores(pred)
    tile_metrics = per_tile(pred["pred"], pred["target"], pred["clear"])
    tiles = pd.DataFrame([{"set": split.split, "triplet": int(i), **t, **dict(zip(SUMS, sums))}
                          for i, t, sums in zip(split.index, tile_metrics, score.triplet_sums)])
    return {"set": split.split, "triplets": len(split), **score.result(), "note": ""}, tiles


def evaluate_ensemble(run_dirs: list[str | Path], cube: str | Path, sets=(VAL, *TEST_SETS), batch_size: int = 32,
                      device: str = "auto", progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """The mean prediction, per pixel, of several trainings of one model (its seeds: a deep ensemble), scored as
    one model on ``sets`` (by default the validation split too, so that the ensemble can be judged without the
    test sets); and each member scored by the same code on the same triplets.

    Returns the ensemble's metrics per set, its per-triplet sums, and each member's per-triplet sums (in the order
    of ``run_dirs``). Nothing is written."""
    device = pick_device(device)
    members = [_trained_for(Path(run), cube, device)[0] for run in run_dirs]
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs at least two trained runs, got {len(members)}: {', '.join(map(str, run_dirs))}")
    member_tiles: list[list[pd.DataFrame]] = [[] for _ in members]

    def ensemble_mean(split: CubeSplit) -> dict[str, np.ndarray]:
        """One member's prediction in memory at a time: each scored, its LAI added to the sum."""
        total, shared = None, {}
        for trained, frames in zip(members, member_tiles):
            pred = predict(trained, split, batch_size, progress)
            frames.append(_scored(split, pred)[1])
            if total is None:
                total, shared = pred["pred"].astype(np.float64), {k: v for k, v in pred.items() if k not in ("pred", "sd")}
            else:
                if not np.array_equal(pred["clear"], shared["clear"]):
                    raise RunFolderError(f"{cube}: the runs {', '.join(map(str, run_dirs))} score "
                                         f"other pixels of the {split.split} set (another valid rule?): no ensemble")
                total += pred["pred"]
        return {**shared, "pred": (total / len(members)).astype(np.float32)}

    table, tiles = score_sets(ensemble_mean, cube, sets)
    empty = tiles.iloc[0:0]
    return table, tiles, [pd.concat(frames, ignore_index=True) if frames else empty for frames in member_tiles]


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
    own_subfolder(path.parent.parent, path.parent.name)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


@dataclass
class CalibrationResult:
    """What :func:`calibrate_run` measured: the calibration table, the reliability curves, one example map and how
    far the calibration carries over to another area (:func:`lai.uncertainty.region_transfer`)."""

    calibration: Calibration
    table: pd.DataFrame
    reliability: pd.DataFrame
    example: dict[str, np.ndarray | str | int]
    transfer: pd.DataFrame


def calibrate_run(run_dir: str | Path, cube: str | Path, sets=TEST_SETS, batch_size: int = 32,
                  device: str = "auto", example_set: str = CLOUDY, progress: bool = False) -> CalibrationResult:
    """Recalibrate the spread head of a finished stage on the validation split (``calibration.json`` in its folder,
    :func:`lai.uncertainty.fit_calibration`), then measure its calibration on each test set, against the true LAI
    where the cube holds it, else against the observation on pixels clear at t. The example map is the triplet of
    ``example_set`` with the most pixels clouded at t; ``transfer``, the coverage on each validation region of the
    calibration fitted on the others (:func:`lai.uncertainty.region_transfer`)."""
    run_dir = Path(run_dir)
    device = pick_device(device)
    with output_lock(run_dir, folder=STAGE_WEIGHTS_FILE):
        trained = load_trained(run_dir, device)
        if not trained.predicts_spread:
            raise ConfigError(f"{run_dir}: this model predicts no spread (model.uncertainty is false, or its row "
                              f"{trained.row} has no decoder); train a row with the decoder with model.uncertainty=true "
                              "to calibrate it")
        check_same_splits(trained.config, run_dir, cube)
        val_split = CubeSplit(cube, VAL)
        val = predict(trained, val_split, batch_size, progress)
        err, against = _error(val)
        val_strata = strata(val["past_clear"], val["clear"])
        cal = fit_calibration(val["sd"], err, val_strata, against, f"{Path(cube).name}:{VAL}", _observation_sd(val))
        cal.write(run_dir)
        transfer = pd.DataFrame(region_transfer(val["sd"], err, val_strata, val["clear"], val_split.regions(), against),
                                columns=list(TRANSFER_COLUMNS))
        rows, curves, example = [], [], {}
        for name in sets:
            split = CubeSplit(cube, name)
            if len(split) == 0:
                continue
            p = predict(trained, split, batch_size, progress)
            err, against = _error(p)
            calibrated = cal.deviations(p["sd"], p["past_clear"], p["clear"])
            std = cal.std(p["sd"], p["past_clear"], p["clear"])
            rows += calibration_rows(name, err, p["sd"], calibrated, std, p["clear"], against)
            curves += [{**r, "sd": version} for version, sd in (("raw", p["sd"]), ("recalibrated", calibrated))
                       for r in reliability(name, err, sd)]
            if name == example_set:
                k = int(np.argmax((~p["clear"]).sum(axis=(1, 2))))
                example = {"set": name, "triplet": int(split.index[k]), "pred": p["pred"][k], "sd": std[k],
                           "clear": p["clear"][k], "reference": p["pred"][k] - err[k], "against": against}
    return CalibrationResult(cal, pd.DataFrame(rows), pd.DataFrame(curves), example, transfer)


def _error(pred: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """Prediction minus the true LAI, or (no truth) minus the observation where clear at t (NaN elsewhere)."""
    if "truth" in pred:
        return pred["pred"] - pred["truth"], "truth"
    return np.where(pred["clear"], pred["pred"] - pred["target"], np.nan), "observation"


def _observation_sd(pred: dict[str, np.ndarray]) -> float | None:
    """RMSE of the observed LAI against the true LAI on pixels clear at t; None without the truth."""
    if "truth" not in pred:
        return None
    diff = (pred["target"] - pred["truth"])[pred["clear"]]
    diff = diff[np.isfinite(diff)]
    return float(np.sqrt(np.mean(np.square(diff)))) if diff.size else None
