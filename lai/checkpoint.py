"""Model files: safe saving and loading of ``model.pt`` / ``checkpoint.pt``, and models built from them.

Files hold only tensors and plain values (dicts, lists, strings, numbers; random states as
tensors), so they load with ``torch.load(weights_only=True)``: a file carrying any other Python
object (a pickle payload that would run code) is refused without running it.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from lai.config import EncodingConfig, ModelConfig, StageConfig
from lai.errors import ConfigError, RunFolderError
from lai.io import atomic_path
from lai.model import LAIModel

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


def numpy_rng_state(rng: np.random.Generator) -> dict:
    """A numpy generator's state as plain values (for a checkpoint)."""
    return to_plain(rng.bit_generator.state)


def set_numpy_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` (tensors and plain values; numpy ones are converted) atomically."""
    buffer = io.BytesIO()  # serialised in memory first: torch reports a failing disk write as a RuntimeError
    torch.save(to_plain(state), buffer)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buffer.getbuffer())
    return Path(path)


def load_checkpoint(path: str | Path, keys: tuple[str, ...] = ()) -> dict:
    """Load a file written by :func:`save_checkpoint`; refuse anything else with a message naming it."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):
            raise RunFolderError(
                f"{path}: refused: it holds Python objects other than tensors and plain values, which lai never "
                "writes (loading them could run code); it was not loaded"
            ) from None
        raise RunFolderError(f"{path}: cannot be read as a lai checkpoint (truncated or not a torch file): {err}") from None
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise RunFolderError(f"{path}: cannot be read as a lai checkpoint (truncated or not a torch file): {err}") from None
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise RunFolderError(f"{path}: not a lai checkpoint (lacks {', '.join(missing)})")
    return state


def build_model(model: ModelConfig, encoding: EncodingConfig) -> LAIModel:
    """The model ``model`` describes, with the SCL-mask inputs ``encoding`` gives it."""
    from lai.encode import mask_channels

    return LAIModel(model, mask_channels(encoding))


def stage_config_from(data, source: str | Path) -> StageConfig:
    """A stage configuration saved as a mapping (config.yaml, or a model file's ``config``, older ones included)
    as a :class:`StageConfig`: the one place where saved configurations are read; ``source`` names the file."""
    try:
        return StageConfig.from_mapping(data)
    except (ConfigError, KeyError, TypeError) as err:
        raise RunFolderError(f"{source}: broken model configuration ({type(err).__name__}: {err})") from None


def read_checkpoint(path: str | Path) -> dict:
    """Read the ``model.pt`` of a finished run (or a run folder): {"model": weights, "config": StageConfig, "path"}."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise RunFolderError(f"{path}: weights file does not exist (did that training stage finish?)")
    state = load_checkpoint(path, ("model", "config"))
    if not isinstance(state["config"], dict) or not isinstance(state["model"], dict):
        raise RunFolderError(f"{path}: not a lai checkpoint (model and config must be mappings)")
    state["config"] = stage_config_from(state["config"], path)
    state["path"] = str(path)
    return state


def load_state(model: torch.nn.Module, weights: dict, source: str | Path) -> None:
    """``model.load_state_dict(weights)``, with a message naming ``source`` when they do not fit."""
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        lines = [line.strip() for line in str(err).splitlines()]
        detail = "; ".join(line for line in lines[1:] if line) or lines[0]  # torch: a heading, then the keys
        detail = detail if len(detail) <= 300 else detail[:300] + " ..."
        raise RunFolderError(f"{source}: weights do not fit the model its configuration describes ({detail})") from None


def load_model(path: str | Path) -> tuple[LAIModel, StageConfig]:
    """Model of a finished run with its weights, and its stage configuration."""
    state = read_checkpoint(path)
    config: StageConfig = state["config"]
    model = build_model(config.model, config.encoding)
    load_state(model, state["model"], state["path"])
    return model, config


def load_weights(path: str | Path, expect_part: str | None = None, expect_model: ModelConfig | None = None) -> dict:
    """Weights of a finished run, checked to fit the model asked for."""
    state = read_checkpoint(path)
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
