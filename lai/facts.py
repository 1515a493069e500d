"""Facts every step shares, with one owner and no heavy imports (no torch).

Table 1 of the paper (its rows, their labels and the paper's numbers, its title and authors), the
model size presets, the split labels, the test sets with their titles and prose names, the baselines,
the verdicts of a paired comparison, the extra rows that go beyond the paper, and the run folder's
schema: the name of every table (with the columns the report reads) and figure, and the metric columns.
Config, model, training, tables, figures, report and the CLI import them from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EncoderSpec:
    source: str  # "s1" (VV, VH at t-2, t-1, t) or "s2" (LAI at t-2, t-1)
    masks: bool
    seasonality: bool


@dataclass(frozen=True)
class RowSpec:
    label: str  # Table 1 input column
    architecture: str  # Table 1 architecture column
    enc1: EncoderSpec | None
    enc2: EncoderSpec | None
    decoder: bool

    @property
    def title(self) -> str:
        return model_title(self.label, self.architecture)

    @property
    def reads_s1(self) -> bool:
        """Whether the row's model reads Sentinel-1 (its radar encoder)."""
        return self.enc1 is not None

    @property
    def inputs(self) -> str:
        """What the row's model reads, in words (band ``lai_model`` of its maps)."""
        specs = [s for s in (self.enc1, self.enc2) if s is not None]
        parts = (["Sentinel-1 at t-2, t-1, t"] if self.reads_s1 else []) + \
                (["S2 LAI at t-2, t-1"] if self.enc2 is not None else []) + \
                (["the S2 cloud masks"] if any(s.masks for s in specs) else []) + \
                (["the date"] if any(s.seasonality for s in specs) else [])
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def model_title(label: str, architecture: str) -> str:
    """A model's name from Table 1's input and architecture columns: "S1 (Encoder 1)"."""
    return f"{label} ({architecture})"


# Table 1's six rows, in the paper's order.
FINAL = "final"  # the paper's final model: Table 1's last row, the base of every variant (EXTRA_ROWS)
ROWS: dict[str, RowSpec] = {
    "s1": RowSpec("S1", "Encoder 1", EncoderSpec("s1", False, False), None, False),
    "s1_masks": RowSpec("S1 + S2 masks", "Encoder 1", EncoderSpec("s1", True, False), None, False),
    "s1_masks_seas": RowSpec("S1 + S2 masks + seas.", "Encoder 1", EncoderSpec("s1", True, True), None, False),
    "s2_masks": RowSpec("S2 + S2 masks", "Encoder 2", None, EncoderSpec("s2", True, False), False),
    "s2_masks_seas": RowSpec("S2 + S2 masks + seas.", "Encoder 2", None, EncoderSpec("s2", True, True), False),
    FINAL: RowSpec("All", "Final", EncoderSpec("s1", True, True), EncoderSpec("s2", True, True), True),
}
# The final model starts from the encoders of rows 3 and 5 (trained once, reused).
PRETRAINED_FROM = {FINAL: {"enc1": "s1_masks_seas", "enc2": "s2_masks_seas"}}
# the S2 encoder the chosen model is compared with (tables/comparisons.csv): the one it starts from, the same LAI history
S2_ENCODER = PRETRAINED_FROM[FINAL]["enc2"]
# the model output holding the decoder's predicted log-variance (model.uncertainty; lai.model, lai.loss)
LOG_VAR = "dec_log_var"

PRESETS = {
    "paper": dict(encoder_widths=[32, 64, 128], decoder_widths=[64, 128, 256]),  # the reference's "strontium"
    "wide": dict(encoder_widths=[16, 32, 64], decoder_widths=[32, 64, 128]),  # CPU, twice small's widths
    "small": dict(encoder_widths=[8, 16, 32], decoder_widths=[16, 32, 64]),  # CPU
}

# U-Net up-sampling: the reference's 2x2 transposed convolution (the paper rows' choice), or bilinear
# interpolation followed by a 3x3 convolution (free of the transposed convolution's checkerboard artefacts).
UPSAMPLING = ("transpose", "bilinear")
GATE_FORMS = ("add", "mix", "mix_change")  # model.gate_form: how the gated skip combines the decoder with the past LAI
# model.skip_base: the past LAI the gated skip passes on: the last clear date's, or the level at t-1 estimated from
# both past dates where both are clear (lai.model.two_date_level)
SKIP_BASES = ("last_clear", "two_dates")

# Labels of the cube's time and pol dimensions (its coordinate variables ``time`` and ``pol``).
TIME_LABELS = ("t-2", "t-1", "t")
S1_DB_RANGE = (-60.0, 30.0)  # plausible backscatter in dB (real unclipped S1 spans about -38..+10)
POLARISATIONS = ("VV", "VH")

NON_CLOUDY, CLOUDY, UNIQUE = "non_cloudy", "cloudy", "unique"  # the test sets: past mostly clear, mostly cloudy, held-out areas
TEST_SETS = (NON_CLOUDY, CLOUDY, UNIQUE)
SET_TITLES = {NON_CLOUDY: "Non-cloudy", CLOUDY: "Cloudy", UNIQUE: "Unique areas"}  # one spelling, everywhere shown
SET_PROSE = {NON_CLOUDY: "non-cloudy", CLOUDY: "cloudy", UNIQUE: "unique-areas"}  # in a sentence: "the cloudy set"
# Every triplet's split, in the tables' order: training, validation, the test sets, and the buffer between them.
TRAIN, VAL, BUFFER = "train", "val", "buffer"
SPLIT_LABELS = (TRAIN, VAL, *TEST_SETS, BUFFER)
EMPTY = "empty"  # the note of a result row whose test set holds no triplet (its metrics are NaN)

MLR, RF, PERSISTENCE, EXTRAPOLATION = "MLR", "RF", "persistence", "extrapolation"  # the per-pixel baselines
BASELINES = (MLR, RF, PERSISTENCE, EXTRAPOLATION)
ORACLE = "oracle"  # the oracle bound as the other side of a comparison: the true LAI at t-1 as the prediction of t

# The verdict of a paired comparison (lai.tables.comparisons): the interval of the difference excludes 0
# (better, worse) or not; a comparison on no triplet has the verdict EMPTY.
BETTER, WORSE, NOT_RESOLVED = "better", "worse", "not resolved"
VERDICTS = (BETTER, WORSE, NOT_RESOLVED)
# A bootstrap interval over triplets needs this many triplets holding a scored pixel (clear at t): over fewer it
# is overconfident (one scored triplet gave an interval of zero width, "resolved"), so there is none and the
# verdict is NOT_RESOLVED (lai.metrics)
MIN_SCORED_TRIPLETS = 10

PAPER_TITLE = "Leaf Area Index Estimation from Multi-Temporal Sentinel 1 and 2 Satellite Data Using Deep Learning"
PAPER_AUTHORS = "C. Wang, A. Debouchage, V. Goldité, A. Wery, J. Salzinger"

# Table 1 of the paper: (RMSE, R2) per row and test set; RMSE most likely in LAI/5 units.
PAPER_LAI_SCALE = 5.0  # its unit: every RMSE_NORM of lai is RMSE / PAPER_LAI_SCALE, whatever encoding.lai_scale
PAPER_TABLE1 = {
    "s1": {"non_cloudy": (0.163, 0.434), "cloudy": (0.279, 0.152), "unique": (0.260, 0.125)},
    "s1_masks": {"non_cloudy": (0.117, 0.709), "cloudy": (0.245, 0.345), "unique": (0.208, 0.440)},
    "s1_masks_seas": {"non_cloudy": (0.111, 0.735), "cloudy": (0.233, 0.409), "unique": (0.198, 0.491)},
    "s2_masks": {"non_cloudy": (0.090, 0.827), "cloudy": (0.253, 0.301), "unique": (0.103, 0.863)},
    "s2_masks_seas": {"non_cloudy": (0.067, 0.903), "cloudy": (0.344, -0.294), "unique": (0.111, 0.839)},
    FINAL: {"non_cloudy": (0.058, 0.930), "cloudy": (0.238, 0.383), "unique": (0.101, 0.867)},
}
# Section 4.2: R2 of the per-pixel baselines on non-cloudy data.
PAPER_BASELINES_R2 = {MLR: -0.0445, RF: -0.0166}

# Rows beyond the paper (their own table, never in Table 1): the final model trained with other settings.
@dataclass(frozen=True)
class ExtraRow:
    title: str
    overrides: dict  # nested profile keys changed from the profile's final model
    short: str = ""  # label in figures and prose: "Final, gated skip"

    @property
    def variant(self) -> str:
        """What the row changes, as prose names it: "gated skip" of "Final, gated skip"."""
        return self.short.split(", ", 1)[-1]


EXTRA_ROWS = {
    "final_cloudy_weight": ExtraRow("Final, cloud-weighted loss (cloudy-past samples x3, the paper's remedy)",
                                    {"train": {"cloudy_weight": 3.0}}, "Final, cloud-weighted loss"),
    "final_residual": ExtraRow("Final, residual: predicts the change from the last clear LAI", {"model": {"residual": True}},
                               "Final, residual"),
    "final_gated": ExtraRow("Final, gated skip: weighs its own LAI against the past LAI (both clear dates' level, else the "
                            "last clear LAI) by a learned per-pixel gate; its decoder also reads the clear past's local "
                            "means under Gaussians of 1, 2 and 4 pixels",
                            {"model": {"gated_skip": True, "gate_form": "mix", "skip_base": "two_dates",
                                       "past_context": [1.0, 2.0, 4.0]}}, "Final, gated skip"),
}
# Per-pixel baselines without the LAI history (S1 + masks + seasonality): name -> the baseline it restricts.
EXTRA_BASELINES = {f"{MLR}_no_history": MLR, f"{RF}_no_history": RF}
NO_HISTORY = "without the LAI history"  # what the extra baselines leave out, as titles and prose say it
HISTORY_FEATURES = ("LAI_t-2", "LAI_t-1")

# The reference's valid rule (its mask_fn): SCL 2-6 count as clear (encoding.valid_classes' default).
VALID_CLASSES = (2, 3, 4, 5, 6)
# The strict valid rule: only vegetation, bare soil and water (SCL 4-6) count as clear, shadows (3) do not.
STRICT_VALID_CLASSES = (4, 5, 6)


def row_title(name: str) -> str:
    """A model's name in tables and legends: a Table 1 row's title ("S1 (Encoder 1)"), any other name as it is."""
    return ROWS[name].title if name in ROWS else str(name)


def _seeded(name: str) -> tuple[str, str]:
    """(model, ", seed k") of a further seed ``<model>_seed<k>`` of a Table 1 row or a variant of the final model;
    (name, "") for any other name."""
    model, _, seed = name.rpartition("_seed")
    return (model, f", seed {seed}") if seed.isdigit() and (model in ROWS or model in EXTRA_ROWS) else (name, "")


def row_columns(name: str) -> tuple[str, str]:
    """Table 1's input and architecture columns of a row; a variant of the final model (``EXTRA_ROWS``) or a further
    seed of either (``<model>_seed<k>``) in the same two columns ("All, gated skip, seed 1", "Final"); (name, "") for
    any other name."""
    model, seed = _seeded(name)
    if model in EXTRA_ROWS:
        return f"{ROWS[FINAL].label}, {EXTRA_ROWS[model].variant}{seed}", ROWS[FINAL].architecture
    spec = ROWS.get(model)
    return (spec.label + seed, spec.architecture) if spec else (name, "")


def stage_label(name: str) -> tuple[str, str]:
    """(model, label) of a training stage: a Table 1 row, a variant of the final model (``lai.facts.EXTRA_ROWS``),
    or a further seed of either (``<model>_seed<k>``: "<title>, seed k"); any other stage is its own model and label."""
    model, seed = _seeded(name)
    if model in ROWS:
        return model, row_title(model) + seed
    if model in EXTRA_ROWS:
        return model, EXTRA_ROWS[model].short + seed
    return name, name


def variant_of(config) -> str:
    """The variant of the final model (a key of :data:`EXTRA_ROWS`) that a stage's configuration ``config`` (sections
    ``model``, ``train``, ...) was trained as: the first whose overrides it holds; "" for none (the row as Table 1
    trains it, or a variant of an earlier lai whose settings differ, such as the additive gated skip)."""
    if getattr(getattr(config, "model", None), "row", None) != FINAL:
        return ""
    return next((name for name, extra in EXTRA_ROWS.items()
                 if all(getattr(getattr(config, section, None), key, None) == value
                        for section, keys in extra.overrides.items() for key, value in keys.items())), "")


def chosen_model(selection_rows) -> str:
    """The chosen model's name from the rows (mappings) of tables/selection.csv; "final" where none is marked chosen
    (a run folder of an earlier lai, or no selection yet)."""
    return next((str(r["model"]) for r in selection_rows if str(r.get("chosen", "")).lower() == "true"), FINAL)


SELECTABLE = (FINAL, *EXTRA_ROWS)  # the models a run chooses from (lai.train.train_chosen; profile.candidates)


def ensemble_names(model: str) -> tuple[str, str]:
    """How tables name the mean of ``model``'s seeds (its ensemble) and the seeds themselves."""
    return f"{model} ensemble", f"{model} seeds"


def chosen_title(name: str) -> str:
    """The chosen model's name in prose: "the final U-Net" or "the final U-Net (gated skip)"."""
    return "the final U-Net" if name == FINAL else f"the final U-Net ({EXTRA_ROWS[name].variant})"


# --------------------------------------------------------------------------- the run folder's schema

# Metric columns of the result tables (lai.metrics scores; lai.tables, lai.evaluate, lai.baselines, the report).
RMSE, RMSE_NORM, R2, N_PIXELS = "rmse", "rmse_norm", "r2", "n_pixels"  # RMSE in LAI and in LAI/PAPER_LAI_SCALE, pixels

# The tables a run folder holds (tables/<name>.csv) and the columns the report requires of each (others are
# optional: a dash where absent); REPORT_TABLES are those the report reads.
REPORT_TABLES = {
    "splits": (), "training": ("row",), "final_metrics": ("set",), "seeds": ("set", "seeds"),
    "table1": ("row", "set"), "baselines": ("baseline", "set"), "selection": ("model", "best_val_rmse", "chosen"),
    "noise_floor": ("set", "floor_rmse", "oracle_rmse"),
    "comparisons": ("set", "other", "verdict", "diff", "diff_lo", "diff_hi", "triplets"), "extras": ("title", "set"),
    "ensemble": ("set", "model", "other", "verdict", "diff", "diff_lo", "diff_hi", "triplets", "rmse_model", "rmse_other"),
    "preprocessing_snap_lai": ("patch",),
    "calibration": ("set", "pixels", "sd", "coverage_68", "coverage_95", "sd_ratio", "spearman"),
    "reliability": ("set", "sd", "nominal", "observed"),
    "calibration_transfer": ("held_out", "pixels", "coverage_68", "coverage_95"),
    "large_errors": ("set", "pixels", "large", "large_share", "no_clear_past_share", "pred_mean", "obs_mean", "under_share",
                     "top_share"),
    "oracle_gap": ("set", "change", "pixels", "share", "model_rmse", "oracle_rmse", "model_mse_part", "oracle_mse_part"),
    "past_estimators": ("set", "change", "pixels", "share", "model_rmse", "last_observation_rmse", "two_date_mean_rmse",
                        "oracle_rmse", "stability_known_rmse"),
}
# What the report requires of the values in some of those columns (lai.report.inputs.read_table): "count" a whole
# number >= 0, "number" a finite number or empty (NaN: undefined, as on an empty test set), "model" a model that
# tables/selection.csv may name (:data:`SELECTABLE`). A column that REPORT_TABLES does not require is checked where
# present (the calibration's intervals: tables written before 2026-12-05 have none).
REPORT_VALUES = {
    "seeds": {"seeds": "count"}, "selection": {"model": "model", "best_val_rmse": "number"},
    "noise_floor": {"floor_rmse": "number", "oracle_rmse": "number"},
    "comparisons": {"diff": "number", "diff_lo": "number", "diff_hi": "number", "triplets": "count"},
    "ensemble": {c: "number" for c in ("diff", "diff_lo", "diff_hi", "rmse_model", "rmse_other")} | {"triplets": "count"},
    "calibration": {c: "number" for c in ("coverage_68", "coverage_95", "sd_ratio", "rms_sd_ratio", "spearman", *(
        f"{c}_{end}" for c in ("coverage_68", "coverage_95", "sd_ratio", "rms_sd_ratio") for end in ("lo", "hi")))},
    "reliability": {"nominal": "number", "observed": "number"},
    "calibration_transfer": {"coverage_68": "number", "coverage_95": "number", "triplets": "count", "n_pixels": "count"},
    "large_errors": {"pixels": "count", "large": "count", **{c: "number" for c in (
        "large_share", "no_clear_past_share", "pred_mean", "obs_mean", "under_share", "top_share")}},
    "oracle_gap": {"pixels": "count", "seeds": "count", **{c: "number" for c in (
        "share", "model_rmse", "oracle_rmse", "model_mse_part", "oracle_mse_part", "change_slope")}},
    "past_estimators": {"pixels": "count", "seeds": "count", **{c: "number" for c in (
        "share", "model_rmse", "last_observation_rmse", "two_date_mean_rmse", "oracle_rmse", "stability_known_rmse")}},
}
LARGE_ERROR_LAI = 2.0  # tables/large_errors.csv: pixels the final model misses by more than this (LAI)
LARGE_ERROR_TRIPLETS = 5  # ... and the share of them in this many worst triplets (top_share, top_triplets)
# tables/oracle_gap.csv: the classes of how much the true LAI changed from t-1 to t (LAI, absolute), whose edges these are
ORACLE_GAP_EDGES = (0.1, 0.3, 0.6)
ORACLE_GAP_ALL = "all"  # ... and the value of its column change on the line of all of a set's scored pixels
TABLES = {**REPORT_TABLES, "baselines_per_triplet": (), "oracle_per_triplet": (), "ensemble_metrics": (),
          "ensemble_per_triplet": ()}
# the columns of tables/training.csv that time the run: they differ between machines and runs, so the notebooks
# do not display them (their displayed outputs are compared by the tests)
TIMING_COLUMNS = ("seconds", "samples_per_s")
# ... and those saying which code and machine trained each stage (its result.json): they change with every commit
TRAINED_BY_COLUMNS = ("trained_at", "trained_on")

# The figures a run folder holds, in report order: figures/<name>.png (drawn by lai.figures, placed by the report).
FIGURE_NAMES = ("sample_maps", "cloud_statistics", "seasonality_encoding", "s1_vs_lai", "learning_curves", "density",
                "error_by_set", "table1_comparison", "truth_vs_prediction_maps", "reliability", "uncertainty_map",
                "preprocessing_patch")
FIGURES = FIGURE_NAMES


class _Names:
    """Names of the schema as attributes (``TABLE.splits == "splits"``): a misspelt name fails where it is written."""

    def __init__(self, kind: str, names):
        self._kind, self._names = kind, tuple(names)
        for name in self._names:
            setattr(self, name, name)

    def __getattr__(self, name: str):
        raise AttributeError(f"no {self._kind} {name!r} in the run folder's schema (lai.facts); allowed: {', '.join(self._names)}")


TABLE = _Names("table", TABLES)
FIGURE = _Names("figure", FIGURES)


def check_name(kind: str, name: str, error: type[Exception] = ValueError) -> str:
    """``name`` if the run folder's schema has a ``kind`` ("table" or "figure") of that name, else ``error``
    naming it and the allowed names."""
    allowed = TABLES if kind == "table" else FIGURES
    if name not in allowed:
        raise error(f"{kind} name {name!r} is not in the run folder's schema (lai.facts); allowed: {', '.join(allowed)}")
    return name


def result_file(kind: str, name: str, error: type[Exception] = ValueError) -> str:
    """Where a run folder keeps its table or figure ``name`` (:func:`check_name`), relative to the run folder:
    ``tables/<name>.csv`` or ``figures/<name>.png``."""
    check_name(kind, name, error)
    return f"tables/{name}.csv" if kind == "table" else f"figures/{name}.png"


def require_results(run_dir: Path, what: str, error: type[Exception]) -> None:
    """Refuse (``error``) to write a ``what`` (a report, a provenance record) of a run folder that holds nothing a run
    made (neither its data step's data.json nor a table): it would read as one of a run."""
    if not (run_dir / RUN_DATA_FILE).exists() and not any((run_dir / "tables").glob("*.csv")):
        raise error(f"run folder {run_dir} holds no results yet (no {RUN_DATA_FILE}, no tables): run notebooks 01-04 in "
                    f"it first (or `lai run`); a {what} of nothing would read as one of a run")

# the project folder (a checkout, installed editable by make setup): notebooks/, and the default reports/ and data/
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# the default folders of run folders and of simulated data and cubes: under the project folder for the notebooks,
# under the working folder for the CLI (`lai run --reports`, `--data-root`), which runs from the project folder
REPORTS_FOLDER, DATA_FOLDER = "reports", "data"
# the notebooks' parameters run_dir and data_root default to these environment variables where set (the tests set them)
RUN_DIR_ENV, DATA_ROOT_ENV = "LAI_RUN_DIR", "LAI_DATA_ROOT"

# Every run folder's configuration file, the first file lai writes into it: a training stage's
# (lai train) and a notebook run's (lai run, notebooks); and a stage's weights (what lai evaluate reads).
STAGE_CONFIG_FILE = "config.yaml"
RUN_PROFILE_FILE = "profile.yaml"
RUN_DATA_FILE = "data.json"  # what a run's data step recorded: the cube, its data root, split counts, fingerprint
RUN_PROVENANCE_FILE = "provenance.json"  # the code, packages and machine of the run (lai.provenance)
# the report (lai.report): the PDF, and the numbers and sentences it prints, which the Typst template reads
REPORT_FILE, REPORT_DATA_FILE = "report.pdf", "report.json"
RUN_SUBFOLDERS = ("tables", "figures", "runs", "notebooks", "preprocessing")  # the folders lai fills in a run folder
PUBLISHED_RECORD = ".lai-published"  # what lai publish wrote into a folder kept in git (lai.report.publish): never a run folder
# set by lai run for the notebooks it executes: the holder of the run folder's lock ("pid N on host H", lai.io), which
# its own kernels may write under (any other process is refused the folder meanwhile: lai.run_profile)
RUN_LOCK_HOLDER_ENV = "LAI_RUN_LOCK_HOLDER"
STAGE_WEIGHTS_FILE = "model.pt"
# what lai train writes beside them: the resumable state after each epoch, one row per epoch, and the finished
# stage's record (lai.stage_folder reads the last two back, checked)
STAGE_CHECKPOINT_FILE, STAGE_HISTORY_FILE, STAGE_RESULT_FILE = "checkpoint.pt", "history.csv", "result.json"

# lai predict's defaults: triplets per model call (--data); window and overlap of a scene's windows, in pixels (--scene)
PREDICT_BATCH, SCENE_WINDOW, SCENE_OVERLAP = 8, 256, 64
# pixels of the tiles beside a tile that frame it in lai predict --data (--context; at most the tiles' size): the
# seams between the quick run's 64-pixel maps were gone from 16 on (benchmarks/tile_context.py); 32 for deeper U-Nets
PREDICT_CONTEXT = 32
STAGE_METRICS_FILE = "metrics.csv"  # what lai evaluate writes beside the weights: the metrics per test set ...
STAGE_PER_TRIPLET_FILE = "per_tile.csv"  # ... and each triplet's scores and sums (lai.metrics.SUMS)
