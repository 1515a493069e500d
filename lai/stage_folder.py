"""A training stage's folder (``lai.train``): what a finished stage holds, read back checked, and whether a folder
may be reused, resumed or is another run's.

A folder whose ``config.yaml`` equals the stage's configuration is reused when finished (``result.json`` and the
weights) and resumed from ``checkpoint.pt`` when asked; one of another configuration is refused, naming how they
differ, and never overwritten. Pre-trained folders named from another working directory count as the same.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lai.checkpoint import stage_config_from
from lai.config import NOT_SAVED, ConfigError, StageConfig, describe_differences, saved_differences
from lai.errors import RunFolderError, shorten
from lai.facts import (
    STAGE_CHECKPOINT_FILE,
    STAGE_CONFIG_FILE,
    STAGE_HISTORY_FILE,
    STAGE_RESULT_FILE,
    STAGE_WEIGHTS_FILE,
)
from lai.records import read_csv_record, read_json_record, read_yaml_mapping


@dataclass
class StageResult:
    """A trained stage: its row, folder, per-epoch history, seconds trained in this session (0 when reused)
    and parameter count."""

    row: str
    run_dir: Path
    history: pd.DataFrame
    seconds: float
    parameters: int
    reused: bool = False



HISTORY_COLUMNS = ("epoch", "val_mse", "val_rmse", "seconds", "samples_per_s")  # what every reader of history.csv needs


def read_finished(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    """``result.json`` and ``history.csv`` of a finished stage, checked: a JSON object with an integer ``parameters``,
    and a table of at least one epoch with :data:`HISTORY_COLUMNS`; :class:`RunFolderError` naming the file else."""
    retrain = f"delete the stage folder {run_dir} to train it again"
    path = run_dir / STAGE_RESULT_FILE
    result = read_json_record(path, RunFolderError, retrain)
    if not isinstance(result, dict):
        raise RunFolderError(f"{path}: expected a JSON object with the integer 'parameters' lai writes, got "
                             f"{shorten(json.dumps(result))}; {retrain}")
    if type(result.get("parameters")) is not int or result["parameters"] < 0:  # bool is an int to isinstance
        raise RunFolderError(f"{path}: field 'parameters' holds {shorten(json.dumps(result.get('parameters')), 30)}, "
                             f"expected the integer of at least 0 lai writes; {retrain}")
    return result, read_history(run_dir)


def read_history(run_dir: Path) -> pd.DataFrame:
    """``history.csv`` of a stage (finished or not), checked: at least one epoch with :data:`HISTORY_COLUMNS`, finite
    numbers of at least 0 (NaN validation only where it had no pixels); :class:`RunFolderError` naming the file else."""
    retrain = f"delete the stage folder {run_dir} to train it again"
    path = run_dir / STAGE_HISTORY_FILE
    history = read_csv_record(path, RunFolderError, retrain)
    missing = [c for c in HISTORY_COLUMNS if c not in history]
    if missing or history.empty:
        raise RunFolderError(f"{path}: expected one row per epoch with columns {', '.join(HISTORY_COLUMNS)}; it has "
                             f"{len(history)} row(s){', lacking ' + ', '.join(missing) if missing else ''}; {retrain}")
    for column in HISTORY_COLUMNS:  # lai writes finite numbers >= 0 (NaN only for validation without pixels)
        values = pd.to_numeric(history[column], errors="coerce")
        bad = (values.isna() & (history[column].notna() | (column not in ("val_mse", "val_rmse")))) | np.isinf(values) \
            | (values < 0)
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise RunFolderError(f"{path}: column {column} holds {shorten(history[column].iloc[row], 30)!r} in data row "
                                 f"{row + 1}, not a number (finite, at least 0); {retrain}")
        history[column] = values
    return history


def same_folder(saved, now: str | Path, run_dir: Path | None = None) -> bool:
    """Whether the pre-trained folder ``saved`` (as a run wrote it: absolute, or relative to its working directory
    then) is the folder ``now``: equal once resolved, or a relative path whose parts end ``now``'s absolute path
    (``runs/s1_masks_seas`` is ``/home/me/runs/s1_masks_seas`` given from another folder), or, for the stage in
    ``run_dir``, the sibling of the same name in its runs folder (a runs folder copied or renamed whole)."""
    if not isinstance(saved, str) or not saved:
        return False
    there, here = Path(saved), Path(now).resolve()
    if run_dir is not None and there.name == here.name and here.parent == Path(run_dir).resolve().parent:
        return True
    if there.is_absolute() or ".." in there.parts:
        return there.resolve() == here
    parts = tuple(p for p in there.parts if p != ".")
    return bool(parts) and here.parts[-len(parts):] == parts


# configuration fields that say how many stages a profile trains, not how one trains: a stage differing only there is
# the same stage (more seeds of the final model reuse its encoders and seed 0)
NOT_THE_STAGE = ("train.seeds",)


def _differences(saved: dict, source: Path, cfg: StageConfig, run_dir: Path) -> str:
    """How the stage configuration ``saved`` (the mapping ``source``, config.yaml or checkpoint.pt, holds) differs
    from ``cfg``, in words; "" when it does not."""
    if isinstance(saved.get("init_from"), dict):  # the same pre-trained folders named from another working directory
        saved = {**saved, "init_from": {k: str(cfg.init_from[k]) if k in cfg.init_from
                                        and same_folder(v, cfg.init_from[k], run_dir) else v
                                        for k, v in saved["init_from"].items()}}
    diffs = [d for d in saved_differences(saved, stage_config_from(saved, source), cfg) if d[0] not in NOT_THE_STAGE]
    other_cube = [d for d in diffs if d[0].startswith("cube.") and d[1] is not NOT_SAVED]  # hashes say nothing
    what = describe_differences([d for d in diffs if d not in other_cube])
    return "; ".join(filter(None, ["different cube data or split labels" if other_cube else "", what]))


def check_checkpoint(saved, path: Path, cfg: StageConfig, run_dir: Path) -> None:
    """Refuse to resume from ``path`` unless the configuration saved in it (``saved``) is the stage's now."""
    if not isinstance(saved, dict):
        raise RunFolderError(f"{path}: not a lai checkpoint (its config is not a mapping); delete it to restart the "
                             "stage from scratch")
    what = _differences(saved, path, cfg, run_dir)
    if what:
        raise RunFolderError(f"{run_dir}: {path.name} was saved by a run of another configuration than the stage's "
                             f"now ({what}), and resuming would go on with its settings; train into a new --runs "
                             f"folder, or delete the stage folder {run_dir} to train it from scratch")


def check_run_folder(run_dir: Path, cfg: StageConfig, resume: bool) -> StageResult | None:
    """Return the finished result of an identical run, or None to (re)start; raise on a foreign run."""
    config_file = run_dir / STAGE_CONFIG_FILE
    if not config_file.exists():
        if (run_dir / STAGE_CHECKPOINT_FILE).exists():
            raise RunFolderError(f"{run_dir} holds a checkpoint but no {STAGE_CONFIG_FILE}; use another run folder")
        return None
    try:
        saved = read_yaml_mapping(config_file, "stage configuration")
    except ConfigError:
        saved = None
    if not isinstance(saved, dict) or not isinstance(saved.get("cube"), dict):
        raise RunFolderError(f"{config_file} is not the configuration of a lai training run; use another run folder")
    what = _differences(saved, config_file, cfg, run_dir)
    if what:
        unfinished = not any((run_dir / f).exists() for f in (STAGE_CHECKPOINT_FILE, STAGE_WEIGHTS_FILE, STAGE_RESULT_FILE))
        raise RunFolderError(f"{run_dir} already holds another run ({what})"
                             + ("; it stopped before its first epoch ended (diverged or interrupted), so nothing trained "
                                "is kept there" if unfinished else "") + "; choose another run folder or delete it")
    if (run_dir / STAGE_RESULT_FILE).exists() and (run_dir / STAGE_WEIGHTS_FILE).exists():
        result, history = read_finished(run_dir)
        return StageResult(cfg.row, run_dir, history, 0.0, result["parameters"], reused=True)
    if (run_dir / STAGE_CHECKPOINT_FILE).exists() and not resume:
        raise RunFolderError(f"{run_dir} holds an unfinished run of the same configuration; pass --resume to continue it")
    return None


def stage_folder_of(run: str | Path) -> Path:
    """The training stage folder that ``run`` names: the folder itself, or the folder of a weights file given as
    ``run`` where that folder is a stage's (the file is its ``model.pt``, or the folder holds its ``config.yaml``).
    Outputs are never written inside it."""
    run = Path(run)
    stage = run.is_file() and (run.name == STAGE_WEIGHTS_FILE or (run.parent / STAGE_CONFIG_FILE).is_file())
    return run.parent if stage else run
