"""Model files and the training state: safe writing and reading of ``model.pt`` / ``checkpoint.pt``, and the
state a training stage saves after every epoch and resumes from (:class:`TrainingState`).

Files hold only tensors and plain values (dicts, lists, strings, numbers; random states as
tensors), so they load with ``torch.load(weights_only=True)``: a file carrying any other Python
object (a pickle payload that would run code) is refused without running it.

Names: ``read_*`` parses a file into plain data (weights, a :class:`~lai.config.StageConfig`);
a live model for inference is built by :func:`lai.infer.load_trained`.
"""
from __future__ import annotations

import copy
import io
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lai.config import ModelConfig, StageConfig, TrainConfig
from lai.errors import ConfigError, RunFolderError, shorten
from lai.facts import FINAL, STAGE_WEIGHTS_FILE
from lai.io import atomic_path

# model settings (fields of ModelConfig) a pre-trained part must share with the model it initialises
SHAPE_FIELDS = ("encoder_widths", "convs_per_level", "skip", "mask_embedding", "season_hidden", "season_channels",
                "upsample")


def to_plain(obj):
    """``obj`` with numpy scalars as Python numbers, numpy arrays as tensors, tuples as lists."""
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` (tensors and plain values; numpy ones are converted) atomically."""
    buffer = io.BytesIO()  # serialised in memory first: torch reports a failing disk write as a RuntimeError
    torch.save(to_plain(state), buffer)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buffer.getbuffer())
    return Path(path)


def read_checkpoint(path: str | Path, keys: tuple[str, ...] = ()) -> dict:
    """Read a file written by :func:`save_checkpoint`; refuse anything else with a message naming it."""
    from lai.records import open_record

    path = Path(path)
    try:
        with open_record(path, RunFolderError, "delete it (train that stage again)") as f:  # a FIFO would hang torch
            state = torch.load(f, map_location="cpu", weights_only=True)
    except RunFolderError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many kinds on a damaged file
        if isinstance(err, OSError) and err.filename is not None:  # the disk's error, naming the file
            raise
        if isinstance(err, pickle.UnpicklingError) and "Weights only load failed" in str(err):
            raise RunFolderError(
                f"{path}: refused: it holds Python objects other than tensors and plain values, which lai never "
                "writes (loading them could run code); it was not loaded"
            ) from None
        # a damaged file; an OSError naming no file is torch's own ("Invalid argument" from a zip cut short)
        raise RunFolderError(f"{path}: cannot be read as a lai checkpoint (truncated or not a torch file): {err}") from None
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise RunFolderError(f"{path}: not a lai checkpoint (lacks {', '.join(missing)}); delete it (and train that "
                             "stage again) or give the file lai wrote")
    return state


def stage_config_from(data, source: str | Path) -> StageConfig:
    """A stage configuration saved as a mapping (config.yaml, or a model file's ``config``, older ones included)
    as a :class:`StageConfig`: the one place where saved configurations are read; ``source`` names the file."""
    try:
        return StageConfig.from_mapping(data)
    except (ConfigError, KeyError, TypeError) as err:
        raise RunFolderError(f"{source}: broken model configuration ({type(err).__name__}: {err})") from None


def save_trained(run_dir: str | Path, weights: dict, config: StageConfig, pixel_sizes: list | None = None) -> Path:
    """Write a finished run's ``model.pt``: its (best-validation) weights, its stage configuration and the pixel sizes
    of its training triplets (``[[x, y], ...]`` in their CRS's units, :meth:`lai.loader.CubeSplit.pixel_sizes`)."""
    return save_checkpoint(Path(run_dir) / STAGE_WEIGHTS_FILE,
                           {"model": weights, "config": config.to_dict(), "pixel_sizes": pixel_sizes or []})


def read_trained(path: str | Path) -> dict:
    """Read the ``model.pt`` of a finished run (or a run folder): {"model": weights, "config": StageConfig, "path",
    "pixel_sizes": of its training triplets, [] where unknown (a file of lai before 2026-12-07)}."""
    path = Path(path)
    if path.is_dir() and not (path / STAGE_WEIGHTS_FILE).exists() and (path / "runs").is_dir():
        raise RunFolderError(f"{path} is a pipeline run folder, not a training stage: give {_stage_of(path)}")
    if path.is_dir():
        path = path / STAGE_WEIGHTS_FILE
    if not path.is_file():
        raise RunFolderError(f"{path}: weights file does not exist (did that training stage finish?)")
    state = read_checkpoint(path, ("model", "config"))
    if not isinstance(state["config"], dict) or not isinstance(state["model"], dict):
        raise RunFolderError(f"{path}: not a lai checkpoint (model and config must be mappings)")
    state["config"] = stage_config_from(state["config"], path)
    state["path"] = str(path)
    sizes = state.get("pixel_sizes") or []
    valid = isinstance(sizes, list) and all(isinstance(s, (list, tuple)) and len(s) == 2 and all(
        isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in s) for s in sizes)
    state["pixel_sizes"] = [[float(v) for v in s] for s in sizes] if valid else []  # a damaged record: unknown
    return state


def _stage_of(run_folder: Path) -> str:
    """Which stage of a pipeline run folder holds its model: the chosen one (tables/selection.csv), else runs/final."""
    from lai.facts import EXTRA_ROWS, ROWS, TABLE, chosen_model, result_file, stage_label
    from lai.records import read_csv_record

    path, unreadable = run_folder / result_file("table", TABLE.selection), ""
    try:
        chosen = chosen_model(read_csv_record(path, RunFolderError, "").to_dict("records")) if path.exists() else FINAL
    except (RunFolderError, KeyError):  # not a table lai wrote (a FIFO, not UTF-8, cut short, no model column)
        chosen, unreadable = FINAL, "; tables/selection.csv is unreadable"
    if stage_label(chosen)[0] not in {**ROWS, **EXTRA_ROWS}:  # a name lai never gives a model (a path, say)
        chosen, unreadable = FINAL, f"; tables/selection.csv is unreadable: its model {shorten(chosen, 40)!r} is none lai trains"
    stage = run_folder / "runs" / chosen
    what = "its chosen model (tables/selection.csv)" if chosen != FINAL else "its final model"
    return f"{stage} ({what}{'' if (stage / STAGE_WEIGHTS_FILE).is_file() else ', not trained yet'}{unreadable})"


def load_pretrained(model: torch.nn.Module, part: str, path: str | Path, expect_model: ModelConfig,
                    expect_row: str | None = None) -> None:
    """Load ``model``'s part ``part`` (``enc1``, ``enc2``: an encoder's U-Net, embeddings and head) from the finished
    run ``path`` of row ``expect_row``, with :func:`set_weights`' checks (weights that fit, finite), naming ``path``."""
    state = read_pretrained(path, part, expect_model, expect_row)
    prefix = f"{part}."
    set_weights(getattr(model, part), {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, path)


def read_pretrained(path: str | Path, expect_part: str | None = None, expect_model: ModelConfig | None = None,
                    expect_row: str | None = None) -> dict:
    """Weights of a finished run, checked to hold ``expect_part``, to be of row ``expect_row`` and to fit the model
    ``expect_model`` describes (the pre-trained parts a stage starts from)."""
    state = read_trained(path)
    if expect_row is not None and state["config"].row != expect_row:
        raise RunFolderError(f"{path}: holds a model of row {state['config'].row}, not of {expect_row}, whose "
                             "encoder this stage starts from; train that row there again")
    if expect_model is not None:
        theirs = state["config"].model
        mismatch = [k for k in SHAPE_FIELDS if getattr(theirs, k) != getattr(expect_model, k)]
        if mismatch:
            raise RunFolderError(
                f"{path}: checkpoint from a different model configuration "
                f"({', '.join(f'{k}: {getattr(theirs, k)} there, {getattr(expect_model, k)} here' for k in mismatch)})"
            )
    if expect_part is not None and not any(k.startswith(expect_part + ".") for k in state["model"]):
        raise RunFolderError(f"{path}: checkpoint holds no {expect_part} weights (row {state['config'].row})")
    return state["model"]


def set_weights(model: torch.nn.Module, weights: dict, source: str | Path) -> None:
    """``model.load_state_dict(weights)``, with a message naming ``source`` when they do not fit or are not finite
    (its maps would be NaN everywhere)."""
    bad = next((k for k, v in weights.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
                and v.device.type != "meta" and not bool(torch.isfinite(v).all())), None) if isinstance(weights, dict) else None
    if bad is not None:
        raise RunFolderError(f"{source}: weight {bad} holds NaN or inf (a diverged or damaged training); train it again")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        lines = [line.strip() for line in str(err).splitlines()]
        detail = "; ".join(line for line in lines[1:] if line) or lines[0]  # torch: a heading, then the keys
        detail = detail if len(detail) <= 300 else detail[:300] + " ..."
        raise RunFolderError(f"{source}: weights do not fit the model its configuration describes ({detail})") from None


# --------------------------------------------------------------------------- training state


def _check_progress(history: list, epochs_run: int, best_val_mse: float) -> None:
    """ValueError unless a checkpoint's ``history`` holds one record (a mapping) per epoch run and its best
    validation MSE is a number (inf before the first epoch)."""
    if epochs_run < 1 or len(history) != epochs_run or not all(isinstance(h, dict) for h in history):
        raise ValueError(f"its history holds {len(history)} record(s) for {epochs_run} epoch(s) run; expected one mapping "
                         "per epoch")
    if math.isnan(best_val_mse):
        raise ValueError("best_val_mse is NaN")


def milestones(epochs: int, kind: str) -> list[int]:
    """Epochs after which the learning rate decays.

    "paper": two equally spaced decays, at one and two thirds. "reference": the
    reference code's ``linspace(0, n, 3)[1:] = [n/2, n]``, which decays once.
    """
    if kind == "paper":
        return sorted({max(1, round(epochs / 3)), max(1, round(2 * epochs / 3))})
    return [int(m) for m in np.linspace(0, epochs, 3)[1:]]


def make_scheduler(opt: torch.optim.Optimizer, tcfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """ReduceLROnPlateau on the validation MSE ("plateau") or the paper's fixed decays ("milestones")."""
    if tcfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=tcfg.lr_decay, patience=tcfg.lr_patience)
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones(tcfg.epochs, tcfg.milestones), gamma=tcfg.lr_decay)


def copy_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s weights on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


SPREAD_LR_FACTOR = 10.0  # learning rate of a spread head (lai.model.spread_head) over train.lr
# what checkpoint.pt holds besides the config
STATE_KEYS = ("model", "optimizer", "scheduler", "generator", "torch_rng", "history", "epoch", "best_model",
              "best_epoch", "best_val_mse")


@dataclass
class TrainingState:
    """Everything a training stage carries from epoch to epoch: the model, its optimizer and learning-rate
    schedule, the shuffling's random generator, the history and the best-validation weights so far.
    Saved after every epoch (:meth:`save`, with the global torch random state) and restored on resume."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    schedule: str  # train.schedule: "plateau" steps the scheduler on the validation MSE
    history: list[dict] = field(default_factory=list)
    next_epoch: int = 0  # 0-based index of the next epoch to run
    best_epoch: int = 0  # 1-based, 0 before the first epoch
    best_val_mse: float = math.inf
    best_model: dict = field(default_factory=dict)
    averaged: torch.optim.swa_utils.AveragedModel | None = None  # train.ema: the weights validation scores
    decay_from_best: bool = False  # train.decay_from_best: a plateau decay reloads the best weights

    @classmethod
    def start(cls, model: torch.nn.Module, tcfg: TrainConfig) -> TrainingState:
        """The state before the first epoch: Adam at ``train.lr`` (a spread head's at :data:`SPREAD_LR_FACTOR`
        times that: it starts far from the error it learns and trains on little), its scheduler, the generator seeded."""
        spread = list(model.spread_head.parameters()) if getattr(model, "spread_head", None) is not None else []
        mean = [p for p in model.parameters() if all(p is not q for q in spread)]
        groups = [{"params": mean}] + ([{"params": spread, "lr": tcfg.lr * SPREAD_LR_FACTOR}] if spread else [])
        opt = torch.optim.Adam(groups, lr=tcfg.lr, foreach=True)  # one multi-tensor update (on the CPU too: same numbers)
        averaged = None
        if tcfg.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tcfg.ema), use_buffers=True)
        return cls(model, opt, make_scheduler(opt, tcfg), torch.Generator().manual_seed(tcfg.seed), tcfg.schedule,
                   best_model=copy_weights(model), averaged=averaged, decay_from_best=tcfg.decay_from_best)

    @property
    def scored(self) -> torch.nn.Module:
        """The weights an epoch is scored by and the run keeps: the moving average (``train.ema``) or the model."""
        return self.model if self.averaged is None else self.averaged.module

    def after_step(self) -> None:
        """Move the moving average (``train.ema``) towards the weights of the step just taken."""
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def end_epoch(self, record: dict) -> None:
        """Take one epoch's ``record`` (``epoch``, 1-based, and ``val_mse``): history, best weights, schedule."""
        self.history.append(record)
        if record["val_mse"] < self.best_val_mse:
            self.best_epoch, self.best_val_mse, self.best_model = record["epoch"], record["val_mse"], copy_weights(self.scored)
        if self.schedule == "plateau":
            lr = self.lr
            self.scheduler.step(record["val_mse"])
            if self.decay_from_best and self.lr < lr:  # the next epoch starts from the best weights (saved with them)
                self.model.load_state_dict(self.best_model)
        else:
            self.scheduler.step()
        self.next_epoch = record["epoch"]

    def save(self, path: str | Path, config: StageConfig) -> Path:
        """Write the state (``epoch``: the 0-based index of the last epoch run) and the stage's ``config``."""
        return save_checkpoint(path, {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.next_epoch - 1,
            "history": self.history,
            "best_model": self.best_model,
            "best_epoch": self.best_epoch,
            "best_val_mse": self.best_val_mse,
            **({} if self.averaged is None else {"averaged": self.averaged.state_dict()}),
            "config": config.to_dict(),
        })

    def restore(self, path: str | Path, check: Callable[[object], None] | None = None) -> None:
        """Continue from the state :meth:`save` wrote to ``path`` (the global torch random state included);
        ``check`` gets the configuration saved with it first, and raises to refuse it before anything is loaded."""
        state = read_checkpoint(path, (*STATE_KEYS, "config", *(() if self.averaged is None else ("averaged",))))
        if check is not None:
            check(state["config"])
        set_weights(self.model, state["model"], path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            self.history, self.next_epoch = list(state["history"]), int(state["epoch"]) + 1
            self.best_epoch, self.best_val_mse = int(state["best_epoch"]), float(state["best_val_mse"])
            self.best_model = state["best_model"]
            _check_progress(self.history, self.next_epoch, self.best_val_mse)
            set_weights(copy.deepcopy(self.model), self.best_model, f"{path} (best_model)")  # fits, finite: RunFolderError
            if self.averaged is not None:
                self.averaged.load_state_dict(state["averaged"])
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            raise RunFolderError(f"{path}: damaged checkpoint ({type(err).__name__}: {err}); delete it to "
                                 "restart the stage from scratch") from None
