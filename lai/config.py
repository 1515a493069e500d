"""Typed configuration: the sections of a profile, profiles (YAML) with ``--set`` overrides, and a training
stage's configuration.

Every section rejects unknown keys and impossible values with a message that
names the field, so a typo in a profile or an override fails before any work.
The engine underneath (mappings checked against the dataclasses, nested merges,
differences between configurations) is ``lai.config_engine``; its names are re-exported here.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lai.config_engine import (  # noqa: F401 - re-exported
    NOT_SAVED,
    SWITCH,
    absent_fields,
    describe_differences,
    differences,
    from_dict,
    merge,
    saved_differences,
)
from lai.errors import ConfigError, shorten  # noqa: F401 - ConfigError re-exported
from lai.facts import EXTRA_ROWS, FINAL, GATE_FORMS, PRESETS, ROWS, S1_DB_RANGE, SKIP_BASES, UPSAMPLING, VALID_CLASSES
from lai.pixels import SCL_MAX
from lai.records import DuplicateKeyError, read_yaml_mapping, yaml_load  # noqa: F401 - re-exported

PROFILE_DIR = Path(__file__).parent / "profiles"

SEED_MAX = 2**32 - 1  # numpy and torch both take seeds up to this
MAX_WIDTH = 2**16  # channels of a U-Net level (the paper's widest: 512); far wider, sizes overflow before any memory check
MAX_TILE_SIZE = 4096  # pixels per tile side
MAX_GRID = 64  # tiles per scene side
MAX_SCENE_SIDE = 8192  # pixels per simulated scene side (grid x tile_size): one scene is held in memory
# the paper's unique regions: simulated apart from the training regions (simulate.unique_regions) and held out of
# training as the "unique" test set (splits.held_out_areas); both default to this list
HELD_OUT_REGIONS = ("CZECHIA_VYSOCINA", "ITALY_PIEMONTE")
CUBE_FLOATS = ("float32", "float16")  # storage of s1, lai and lai_true in the cube (profile key cube_float, lai.cube)
PROFILE_CONTENT = "a mapping of sections (simulate:, train:, ...)"  # what a profile file holds


# --------------------------------------------------------------------------- sections


@dataclass
class SimConfig:
    """Simulator parameters (the physics is described in lai/simulate/: land.py, clouds.py, sensors.py)."""

    train_regions: list[str] = field(
        default_factory=lambda: ["SPAIN_BADAJOZ", "FRANCE_BEAUCE", "GERMANY_BRANDENBURG", "POLAND_MAZOWSZE"]
    )
    unique_regions: list[str] = field(default_factory=lambda: list(HELD_OUT_REGIONS))
    train_triplets: int = 7635
    unique_triplets: int = 2005
    tile_size: int = 256
    grid: int = 8  # tiles per scene side: a scene is grid x grid tiles
    windows_per_scene: int = 12  # dated triplet windows simulated per scene
    cloudiness: float = 1.0  # multiplies every region's cloud climate
    seed: int = 0

    def validate(self) -> None:
        _positive(self, "train_triplets", "tile_size", "grid", "windows_per_scene")
        _non_negative(self, "unique_triplets", "cloudiness")
        _seed(self)
        if not 16 <= self.tile_size <= MAX_TILE_SIZE:
            raise ConfigError(f"simulate.tile_size must lie in 16..{MAX_TILE_SIZE} pixels, got {self.tile_size}")
        if self.grid > MAX_GRID:
            raise ConfigError(f"simulate.grid must be at most {MAX_GRID} tiles per scene side, got {self.grid}")
        if self.grid * self.tile_size > MAX_SCENE_SIDE:
            raise ConfigError(
                f"simulate.grid x simulate.tile_size = {self.grid * self.tile_size} pixels per scene side; at most "
                f"{MAX_SCENE_SIDE} (a scene is simulated in memory)"
            )
        if not self.train_regions:
            raise ConfigError("simulate.train_regions must name at least one region")
        if self.unique_triplets and not self.unique_regions:
            raise ConfigError("simulate.unique_regions is empty but simulate.unique_triplets > 0")


@dataclass
class SplitConfig:
    """How triplets are assigned to train / val / non_cloudy / cloudy / unique sets."""

    held_out_areas: list[str] = field(default_factory=lambda: list(HELD_OUT_REGIONS))
    sampling: str = "blocks"  # "blocks": by tile position (no neighbour leakage); "random": paper-like
    block_size: int = 2  # tiles per block side when sampling == "blocks"
    test_fraction: float = 0.2  # share of blocks (or triplets) reserved for the two cloud test sets
    val_fraction: float = 0.1
    clear_past_threshold: float = 0.9  # non-cloudy: mean clear fraction of t-2, t-1 at least this
    cloudy_past_threshold: float = 0.5  # cloudy: mean cloud fraction of t-2, t-1 at least this
    min_clear_target: float = 0.3  # test triplets need this clear fraction at t (validation pools whatever is clear)
    max_non_cloudy: int | None = None  # cap (paper: 254); extra candidates become "buffer"
    max_cloudy: int | None = None  # cap (paper: 250)
    seed: int = 0

    def validate(self) -> None:
        _choice(self, "sampling", ("blocks", "random"))
        _positive(self, "block_size")
        _seed(self)
        for name in ("max_non_cloudy", "max_cloudy"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ConfigError(f"splits.{name} must be zero or positive (or null for no cap), got {getattr(self, name)}")
        for name in ("test_fraction", "val_fraction", "clear_past_threshold", "cloudy_past_threshold", "min_clear_target"):
            _unit_interval(self, name)
        if self.test_fraction + self.val_fraction >= 1:
            raise ConfigError("splits.test_fraction + splits.val_fraction must be below 1")


@dataclass
class EncodingConfig:
    """Input normalisation, SCL masks and seasonality shared by every model."""

    lai_scale: float = 5.0  # reference: LAI / 5
    db_scale: float = 30.0  # reference: dB / 30 + 1
    db_offset: float = 1.0
    # dB values are clipped to [low, high] before normalisation, in training and in prediction alike:
    # the simulator and the paper's data stop at [-30, 0], raw Sentinel-1 patches reach -38 and +9.7.
    db_range: list[float] = field(default_factory=lambda: [-30.0, 0.0])
    valid_classes: list[int] = field(default_factory=lambda: list(VALID_CLASSES))  # reference rule; strict: [4, 5, 6]
    mask_encoding: str = "onehot"  # "onehot": 12 SCL classes (paper); "reference": valid flag + SCL 2..6
    seasonality: str = "sincos"  # "sincos" of target DOY (paper); "triangular" of DateFrom (reference)

    def validate(self) -> None:
        _positive(self, "lai_scale", "db_scale")
        low, high = S1_DB_RANGE
        if (len(self.db_range) != 2 or not all(isinstance(v, (int, float)) for v in self.db_range)
                or not low <= self.db_range[0] < self.db_range[1] <= high):
            raise ConfigError(f"encoding.db_range must be [low, high] with {low:g} <= low < high <= {high:g} (dB, the "
                              f"plausible backscatter), got {shorten(self.db_range, 60)}")
        _choice(self, "mask_encoding", ("onehot", "reference"))
        _choice(self, "seasonality", ("sincos", "triangular"))
        bad = [c for c in self.valid_classes if not 0 <= int(c) <= SCL_MAX]
        if bad or not self.valid_classes:
            raise ConfigError(f"encoding.valid_classes must be SCL classes 0..{SCL_MAX}, got {self.valid_classes}")


@dataclass
class ModelConfig:
    """One configurable model for every Table 1 row (see ``lai.facts.ROWS``)."""

    row: str = FINAL  # s1 | s1_masks | s1_masks_seas | s2_masks | s2_masks_seas | final
    preset: str = "paper"  # "paper" (the reference's sizes), "wide" or "small" (CPU); explicit widths win
    encoder_widths: list[int] | None = None
    decoder_widths: list[int] | None = None
    convs_per_level: int = 2
    skip: bool = True
    mask_embedding: int = 2  # channels of the 1x1 conv that reduces the SCL maps of each date
    season_hidden: int = 16
    season_channels: int = 4  # broadcast map channels produced by the seasonality MLP
    decoder_seasonality: bool = True  # the abstract's "decoder also incorporates the date"
    residual: bool = False  # every head predicts the change from the last clear LAI (t-1, else t-2, else 0)
    # the decoder combines its output with the last clear LAI (t-1, else t-2) by a per-pixel gate in [0, 1] that it
    # learns from its features (gate_form); encoder heads are unchanged
    gated_skip: bool = False
    # the gate's value before training: near 1 starts the gated skip near persistence, 0.5 halfway; the gate starts
    # as a constant map (zero weights, lai.model)
    gate_start: float = 0.95
    # "mix" (variant final_gated): the decoder's own LAI and the last clear LAI weighted by the gate, which is 0
    # where no past date is clear (there the decoder predicts the LAI itself, as the final model does); "add": the
    # decoder's change plus the gate times the last clear LAI (0 where none is clear: the change alone must be the
    # LAI there), its change starting at zero weights; lai before 2026-12-06 and a run's config.yaml without the key;
    # "mix_change": as "mix", but where the gate trusts the past it passes on the past plus a change of its own
    # (starting at zero weights), so that the decoder's own LAI serves where the past is not trusted and no longer as
    # the lever of the change (measured on the quick data 2026-12-07: worse on cloudy and unique, not adopted)
    gate_form: str = "add"
    # what the gated skip passes on (read only with gated_skip): "last_clear" (the LAI of t-1 where clear, else of
    # t-2), or "two_dates": where both past dates are clear, their mean with t-2 moved by the local mean change from
    # t-2 to t-1 (halves the variance of one date's retrieval noise; lai.model.two_date_level), the last clear LAI
    # elsewhere; lai before 2026-12-06 (later) and a run's config.yaml without the key: last_clear
    skip_base: str = "last_clear"
    # a Gaussian of this many pixels over the pixels with a clear past date smooths what the gated skip passes on
    # (less pixel noise, some blur of the LAI's own variation); 0: off (0.5 measured and not adopted, 2026-12-06)
    skip_smoothing: float = 0.0
    # the fusion decoder also reads, for each Gaussian of these sigmas (pixels), the mean of the clear pixels of t-2
    # and of t-1 under it and their clear fractions (lai.model.past_context: normalised convolution, which a
    # convolution over zero-filled clouds cannot compute); []: off, the paper's decoder; [1, 2, 4] in the variant
    # final_gated (lai.facts.EXTRA_ROWS, since c54dbc7 of 2026-12-06)
    past_context: list[float] = field(default_factory=list)
    # a second head on the decoder's detached features predicts the variance of the error per pixel (Gaussian
    # negative log-likelihood on the pixels clear at t, lai.loss); the mean trains exactly as without it
    uncertainty: bool = False
    upsample: str = "transpose"  # U-Net up-sampling: "transpose" (2x2 transposed conv, the reference's) | "bilinear" (+ 3x3 conv)

    def __post_init__(self) -> None:
        if self.preset in PRESETS:
            for name in ("encoder_widths", "decoder_widths"):
                if getattr(self, name) is None:
                    setattr(self, name, list(PRESETS[self.preset][name]))

    def validate(self) -> None:
        _choice(self, "row", tuple(ROWS))
        _choice(self, "preset", tuple(PRESETS))
        _choice(self, "upsample", UPSAMPLING)
        _choice(self, "gate_form", GATE_FORMS)
        _choice(self, "skip_base", SKIP_BASES)
        if not 0 <= self.skip_smoothing <= 8:
            raise ConfigError(f"model.skip_smoothing must lie in [0, 8] (a Gaussian's sigma in pixels; 0 = off), got "
                              f"{self.skip_smoothing}")
        _positive(self, "convs_per_level", "mask_embedding", "season_hidden", "season_channels")
        if any(not 0.25 <= float(s) <= 16 for s in self.past_context):
            raise ConfigError(f"model.past_context must list Gaussian sigmas in [0.25, 16] pixels (or be empty: off), "
                              f"got {self.past_context}")
        if not 0.0 < self.gate_start < 1.0:
            raise ConfigError(f"model.gate_start must lie strictly between 0 and 1 (a sigmoid's value), got {self.gate_start}")
        if self.residual and self.gated_skip:
            raise ConfigError("model.residual and model.gated_skip exclude each other: the gated skip already adds "
                              "the last clear LAI to the decoder's output; set one of them to false")
        if self.residual and ROWS[self.row].enc2 is None:
            raise ConfigError(f"model.residual adds the last clear S2 LAI to every head, but row {self.row} "
                              f"({ROWS[self.row].title}) does not read S2: train the rows without S2 without it")
        for name in ("encoder_widths", "decoder_widths"):
            widths = getattr(self, name)
            if not widths or any(not 0 < int(w) <= MAX_WIDTH for w in widths):
                raise ConfigError(f"model.{name} must be a non-empty list of positive integers of at most {MAX_WIDTH} "
                                  f"channels, got {widths}")

    @property
    def downsampling(self) -> int:
        """Tile sizes must be divisible by this factor."""
        return 2 ** (max(len(self.encoder_widths), len(self.decoder_widths)) - 1)


@dataclass
class TrainConfig:
    """Optimisation, loss weights and the execution device."""

    epochs: int = 100  # per stage (each encoder pre-training, then the fine-tuning); the cap with "plateau"
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 0.2
    # "plateau": decay the LR on the epoch after lr_patience epochs without a better validation score (PyTorch's
    # ReduceLROnPlateau, relative threshold 1e-4), stop after patience such epochs (README: with 2 and 6 the second
    # decay comes as the stage stops); "milestones": the paper's protocol, all epochs with decays at fixed epochs
    schedule: str = "plateau"
    milestones: str = "paper"  # "paper": decays at 1/3 and 2/3; "reference": linspace(0, n, 3)[1:] (one decay)
    patience: int = 6  # epochs without a better validation score that mean converged (and stop "plateau")
    lr_patience: int = 2
    augment: bool = True  # random 90-degree rotations and flips of every training sample
    # a head trained from scratch starts with its bias at the training target's mean LAI (lai.train.init_head_bias),
    # not at PyTorch's random bias (up to +-0.35 normalised = 1.8 LAI off, which Adam's steps of about lr remove
    # only over hundreds of steps: a quick-profile encoder once stayed 1.7 LAI off for 12 epochs); false: the reference's init
    init_bias: bool = True
    seeds: int = 1  # the final model is trained with seeds seed, seed+1, ... (encoders pre-trained once)
    alpha: float = 0.1  # weight of encoder 1 (S1) intermediate loss
    beta: float = 0.15  # weight of encoder 2 (S2) intermediate loss
    cloudy_weight: float = 1.0  # sample weight for cloudy-past samples (paper 4.2 remedy); 1 = off
    # decay per step of an exponential moving average of the weights (and BatchNorm statistics): validation,
    # the schedule and the kept weights read the average, not the last step's weights; 0 = off
    ema: float = 0.0
    # "plateau" schedule: on each learning-rate decay, training goes on from the best-validation weights so far
    # instead of the last epoch's (the smaller steps refine the best point, not a drifted one); false: PyTorch's rule
    decay_from_best: bool = False
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: str = field(default="auto", metadata={SWITCH: True})  # auto (on for CUDA) | on | off
    # auto = on (CUDA, and the CPU since 2026-12-04: docs/measurements.md) | on | off
    channels_last: str = field(default="auto", metadata={SWITCH: True})
    compile: bool = False
    resident: str = field(default="auto", metadata={SWITCH: True})  # auto | on | off: keep the whole split on the device
    max_batches_per_epoch: int | None = None  # for smoke tests only
    # the training loss counts only the pixels clear at t (encoding.valid_classes) whose SCL class at t is one of these
    # (e.g. [4, 5, 6]: not the flagged cloud shadows and dark areas, whose retrieved LAI is too low); inputs,
    # validation and every score keep encoding.valid_classes; None: every pixel clear at t, the paper's loss
    loss_classes: list[int] | None = None

    def validate(self) -> None:
        _positive(self, "epochs", "batch_size", "lr", "patience", "seeds")
        _non_negative(self, "lr_patience")
        _choice(self, "schedule", ("plateau", "milestones"))
        _seed(self)
        if not 0 < self.lr_decay < 1:  # 0 stops learning at the first decay; PyTorch's plateau refuses 1
            raise ConfigError(f"train.lr_decay must lie strictly between 0 and 1 (the factor each decay multiplies the "
                              f"learning rate by), got {self.lr_decay}")
        _non_negative(self, "alpha", "beta")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"train.ema must lie in [0, 1) (the moving average's decay per step; 0 = off), got {self.ema}")
        if self.decay_from_best and (self.schedule != "plateau" or self.ema):
            raise ConfigError("train.decay_from_best needs train.schedule: plateau (it acts on the plateau's decays) and "
                              f"train.ema: 0 (the best weights are the average's); got schedule {self.schedule!r}, "
                              f"ema {self.ema}")
        if self.cloudy_weight <= 0:
            raise ConfigError(f"train.cloudy_weight must be positive, got {self.cloudy_weight}")
        _choice(self, "milestones", ("paper", "reference"))
        for name in ("bf16", "channels_last", "resident"):
            _choice(self, name, ("auto", "on", "off"))  # the SWITCH fields
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.loss_classes is not None and (not self.loss_classes or any(not 0 <= int(c) <= SCL_MAX for c in self.loss_classes)):
            raise ConfigError(f"train.loss_classes must be a non-empty list of SCL classes 0..{SCL_MAX} (or null: every pixel "
                              f"clear at t), got {self.loss_classes}")
        if self.seed + self.seeds - 1 > SEED_MAX:  # seed k of the final model's fine-tunings is train.seed + k
            raise ConfigError(f"train.seed {self.seed} with train.seeds {self.seeds}: the last seed, "
                              f"{self.seed + self.seeds - 1}, lies beyond {SEED_MAX}; lower train.seed")
        if self.max_batches_per_epoch is not None and self.max_batches_per_epoch <= 0:
            raise ConfigError("train.max_batches_per_epoch must be positive or null")


@dataclass
class BaselineConfig:
    """Per-pixel baselines (MLR, RF) and temporal ones (persistence, extrapolation)."""

    max_train_pixels: int = 200_000
    rf_trees: int = 50
    rf_max_depth: int | None = 16
    rf_min_samples_leaf: int = 5
    seed: int = 0

    def validate(self) -> None:
        _positive(self, "max_train_pixels", "rf_trees", "rf_min_samples_leaf")
        _seed(self)
        if self.rf_max_depth is not None and self.rf_max_depth <= 0:
            raise ConfigError(f"baselines.rf_max_depth must be positive or null, got {self.rf_max_depth}")


@dataclass
class PreprocessConfig:
    """Scene rasters -> LNB tiles (`lai preprocess`)."""

    tile_size: int = 256
    max_s1_gap_days: int = 1  # the paper's data: S1 within +-1 day of each S2 date
    s1_units: str = "db"  # "db" or "linear" (power): linear is converted to dB
    reproject: bool = True  # allow resampling S1 onto the S2 grid when CRS or resolution differ
    reflectance_scale: float = 1e-4  # L2A digital number -> reflectance (before processing baseline 04.00)
    reflectance_offset: float = 0.0  # baseline 04.00 and later: -0.1
    snap_auxdata: str | None = None  # SNAP's auxdata folder: its 3_0 networks per platform (None: the built-in 2_1)

    def validate(self) -> None:
        if self.tile_size < 16:
            raise ConfigError(f"preprocess.tile_size must be at least 16 pixels, got {self.tile_size}")
        _non_negative(self, "max_s1_gap_days")
        _choice(self, "s1_units", ("db", "linear"))
        scale, offset = self.reflectance_scale, self.reflectance_offset
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= 1):
            raise ConfigError(f"preprocess.reflectance_scale (--reflectance-scale) must be a finite number in (0, 1] "
                              f"(1e-4 for L2A digital numbers, 1 for reflectance already in 0-1), got {scale!r}")
        if not (isinstance(offset, (int, float)) and math.isfinite(offset) and -0.5 <= offset <= 0.5):
            raise ConfigError(f"preprocess.reflectance_offset (--reflectance-offset) must be a finite number in "
                              f"[-0.5, 0.5] in reflectance units (-0.1 from processing baseline 04.00), got {offset!r}")
        if self.snap_auxdata is not None and not Path(self.snap_auxdata).is_dir():
            raise ConfigError(f"preprocess.snap_auxdata (--snap-auxdata) {self.snap_auxdata}: not a folder; expected SNAP's "
                              "auxdata folder (e.g. ~/.snap/auxdata) holding s2tbx/biophysical/3_0/<S2A|S2B>/LAI/")


FIGURES_SAMPLES_MAX = 16  # rows of maps in one figure


SIMULATE = "simulate"  # Profile.data of a run on the built-in simulator (else the path of a real LNB folder)


@dataclass
class Profile:
    """Every parameter of one run of the pipeline; saved next to each result."""

    name: str = "custom"
    data: str = SIMULATE  # SIMULATE, or the path of a real LNB folder
    simulate: SimConfig = field(default_factory=SimConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    figures_samples: int = 4  # maps shown in figures (rows of a figure: 1..FIGURES_SAMPLES_MAX)
    extras: bool = False  # also train and score the rows beyond the paper (lai.facts.EXTRA_ROWS, EXTRA_BASELINES)
    # variants of the final model (names of lai.facts.EXTRA_ROWS) trained beside it, one seed each; the one of
    # lowest validation RMSE (final included) is the run's chosen model: it gets the train.seeds trainings and
    # is the model compared with the baselines (lai.train.train_chosen)
    candidates: list[str] = field(default_factory=list)
    cube_float: str = "float32"  # storage of s1/lai in the cube (CUBE_FLOATS): float32 (exact) or float16 (half the disk, lai.cube)
    # a real LNB folder's bad triplets (a missing or unreadable file, values in other units, a bad CSV row): left out
    # and listed (data.json, notebook 01) instead of stopping the run at the first (`lai run --skip-bad`)
    skip_bad: bool = False

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate()
        check_cube_float(self.cube_float)
        if not 1 <= self.figures_samples <= FIGURES_SAMPLES_MAX:
            raise ConfigError(f"figures_samples must be 1 to {FIGURES_SAMPLES_MAX} (maps shown in a figure, a row each), "
                              f"got {self.figures_samples}")
        unknown = [c for c in self.candidates if c not in EXTRA_ROWS]
        if unknown or len(set(self.candidates)) != len(self.candidates):
            raise ConfigError(f"candidates must name distinct variants of the final model among {', '.join(EXTRA_ROWS)}, "
                              f"got {self.candidates}")
        if self.data != SIMULATE and not str(self.data).strip():
            raise ConfigError("data must be 'simulate' or the path of an LNB folder")
        if self.data == SIMULATE:
            check_tile_size(self.simulate.tile_size, self.model)
        check_loss_classes(self.train, self.encoding)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_loss_classes(train: TrainConfig, encoding: EncodingConfig) -> None:
    """The loss is taken on pixels clear at t (``encoding.valid_classes``) whose class is one of ``train.loss_classes``:
    classes outside the valid ones leave no pixel, and the stage would train on nothing."""
    if train.loss_classes is not None and not set(train.loss_classes) & set(encoding.valid_classes):
        raise ConfigError(f"train.loss_classes {list(train.loss_classes)} hold none of encoding.valid_classes "
                          f"{list(encoding.valid_classes)}: the loss would count no pixel and nothing would be learnt")


def check_cube_float(value: str) -> None:
    """Raise unless ``value`` is a float type the cube can store (``CUBE_FLOATS``)."""
    if value not in CUBE_FLOATS:
        raise ConfigError(f"cube_float must be {' or '.join(CUBE_FLOATS)}, got {value!r}")


def check_tile_size(tile_size: int | tuple[int, int], model: ModelConfig, where: str = "") -> None:
    """Raise unless the U-Nets can down-sample tiles of ``tile_size`` (one side, or height x width) cleanly."""
    factor = model.downsampling
    sides = tuple(tile_size) if isinstance(tile_size, (tuple, list)) else (tile_size,)
    if any(side % factor for side in sides):
        size = "x".join(map(str, sides)) if len(set(sides)) > 1 else str(sides[0])
        raise ConfigError(
            f"{where + ' ' if where else ''}tile size {size} is not divisible by {factor} = 2^(levels-1) of the U-Net "
            f"(encoder widths {model.encoder_widths}, decoder widths {model.decoder_widths})"
        )


# --------------------------------------------------------------------------- generic helpers


def _positive(obj, *names):
    for name in names:
        value = getattr(obj, name)
        if value is None or value <= 0:
            raise ConfigError(f"{_section(obj)}.{name} must be positive, got {value}")


def _non_negative(obj, *names):
    for name in names:
        value = getattr(obj, name)
        if value is None or value < 0:
            raise ConfigError(f"{_section(obj)}.{name} must be zero or positive, got {value}")


def _seed(obj):
    if not 0 <= obj.seed <= SEED_MAX:
        raise ConfigError(f"{_section(obj)}.seed must lie in 0..{SEED_MAX}, got {obj.seed}")


def _unit_interval(obj, name):
    value = getattr(obj, name)
    if not 0 <= value <= 1:
        raise ConfigError(f"{_section(obj)}.{name} must lie in [0, 1], got {value}")


def _choice(obj, name, choices):
    value = getattr(obj, name)
    if value not in choices:
        raise ConfigError(f"{_section(obj)}.{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


@functools.cache
def _section_names() -> dict[type, str]:
    """Each section's class -> its key in a profile (the Profile field holding it; PreprocessConfig: preprocess)."""
    names = {cls: name for name, cls in typing.get_type_hints(Profile).items() if dataclasses.is_dataclass(cls)}
    return {**names, PreprocessConfig: "preprocess"}


def _section(obj) -> str:
    return _section_names().get(type(obj), type(obj).__name__)


# --------------------------------------------------------------------------- profiles and overrides


def parse_overrides(items: list[str] | dict | None) -> dict:
    """Turn ``["train.epochs=3", "model.row=s1"]`` (values in YAML syntax) into a nested dict."""
    if not items:
        return {}
    if isinstance(items, dict):
        nested: dict = {}
        for key, value in items.items():
            nested = merge(nested, _dotted(key, value))
        return nested
    nested = {}
    if isinstance(items, str) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"overrides must be a list of 'section.key=value' strings, got {shorten(repr(items), 200)}")
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {shorten(item)!r}: value is not valid YAML ({shorten(str(err).splitlines()[0], 200)})") from None
        except ValueError as err:  # a value YAML recognises but cannot build, e.g. the date 2019-02-30
            raise ConfigError(f"override {shorten(item)!r}: impossible value ({shorten(str(err), 200)})") from None
        nested = merge(nested, _dotted(key.strip(), value))
    return nested


def _dotted(key: str, value: Any) -> dict:
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"override key {key!r} is malformed")
    out: dict = value
    for part in reversed(parts):
        out = {part: out}
    return out


def profile_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise ConfigError(f"profile file {path} does not exist")
        return path
    candidate = PROFILE_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown profile {name_or_path!r}; built-in profiles: {', '.join(known)} (or give a .yaml path)")
    return candidate


def load_profile(name_or_path: str | Path = "quick", overrides: list[str] | dict | None = None) -> Profile:
    """Load a built-in profile (a file of lai/profiles: quick, standard, paper, tiny) or a YAML file, apply overrides, validate."""
    path = profile_path(name_or_path)
    raw = merge(read_yaml_mapping(path, "profile file", PROFILE_CONTENT), parse_overrides(overrides))
    raw.setdefault("name", path.stem)
    profile = from_dict(Profile, raw)
    profile.validate()
    return profile


def profile_from_dict(data: dict) -> Profile:
    profile = from_dict(Profile, data)
    profile.validate()
    return profile


def variant(profile: Profile, overrides: dict) -> Profile:
    """A copy of ``profile`` with nested ``overrides`` (e.g. ``{"train": {"cloudy_weight": 3.0}}``), validated."""
    return profile_from_dict(merge(profile.to_dict(), overrides))


# --------------------------------------------------------------------------- training stages


@dataclass(frozen=True)
class CubeRef:
    """The cube a stage trained on: its data and split-label fingerprints (``lai.cube.cube_identity``), and its
    path, which does not count in comparisons (a moved cube holding the same data and labels is the same)."""

    path: str = field(compare=False)
    fingerprint: str
    splits: str


STAGE_SECTIONS = ("model", "train", "encoding", "cube")


@dataclass(frozen=True)
class StageConfig:
    """Everything that defines one training stage; saved as its run folder's config.yaml and inside its model
    files. Two stages are the same run exactly when their configurations are equal (``==``)."""

    model: ModelConfig  # model.row is the Table 1 row
    train: TrainConfig
    encoding: EncodingConfig
    cube: CubeRef
    init_from: dict[str, str] = field(default_factory=dict)  # pre-trained part (enc1, enc2) -> its run folder

    @property
    def row(self) -> str:
        return self.model.row

    def to_dict(self) -> dict[str, Any]:
        """Plain values, ``row`` first (the layout of config.yaml and of the ``config`` entry of model files)."""
        return {"row": self.row, **dataclasses.asdict(self)}

    @classmethod
    def from_mapping(cls, data: Any) -> StageConfig:
        """The configuration :meth:`to_dict` wrote (older files included: a field they lack takes its default);
        :class:`ConfigError` naming the field when it is incomplete or invalid."""
        if not isinstance(data, dict):
            raise ConfigError(f"a stage configuration must be a mapping, got {type(data).__name__}")
        missing = [k for k in STAGE_SECTIONS if k not in data]
        if missing:
            raise ConfigError(f"stage configuration lacks {', '.join(missing)}")
        fields = {k: v for k, v in data.items() if k != "row"}
        stage = from_dict(cls, fields)
        for section in (stage.model, stage.train, stage.encoding):
            section.validate()
        if "row" in data and data["row"] != stage.row:
            raise ConfigError(f"row {data['row']!r} differs from model.row {stage.row!r}")
        return stage
