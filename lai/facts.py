"""Facts every step shares, with one owner and no heavy imports (no torch).

Table 1 of the paper (its rows, their labels and the paper's numbers), the
model size presets, the test sets and their titles, the baselines, the
extra rows that go beyond the paper, and the names of a run folder's figures.
Config, model, training, tables, figures, report and the CLI import them from here.
"""
from __future__ import annotations

from dataclasses import dataclass


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
        return f"{self.label} ({self.architecture})"


# Table 1's six rows, in the paper's order.
ROWS: dict[str, RowSpec] = {
    "s1": RowSpec("S1", "Encoder 1", EncoderSpec("s1", False, False), None, False),
    "s1_masks": RowSpec("S1 + S2 masks", "Encoder 1", EncoderSpec("s1", True, False), None, False),
    "s1_masks_seas": RowSpec("S1 + S2 masks + seas.", "Encoder 1", EncoderSpec("s1", True, True), None, False),
    "s2_masks": RowSpec("S2 + S2 masks", "Encoder 2", None, EncoderSpec("s2", True, False), False),
    "s2_masks_seas": RowSpec("S2 + S2 masks + seas.", "Encoder 2", None, EncoderSpec("s2", True, True), False),
    "final": RowSpec("All", "Final", EncoderSpec("s1", True, True), EncoderSpec("s2", True, True), True),
}
# The final model starts from the encoders of rows 3 and 5 (trained once, reused).
PRETRAINED_FROM = {"final": {"enc1": "s1_masks_seas", "enc2": "s2_masks_seas"}}

PRESETS = {
    "paper": dict(encoder_widths=[32, 64, 128], decoder_widths=[64, 128, 256]),  # the reference's "strontium"
    "small": dict(encoder_widths=[8, 16, 32], decoder_widths=[16, 32, 64]),  # CPU
}

# U-Net up-sampling: the reference's 2x2 transposed convolution (the paper rows' choice), or bilinear
# interpolation followed by a 3x3 convolution (free of the transposed convolution's checkerboard artefacts).
UPSAMPLING = ("transpose", "bilinear")

# Labels of the cube's time and pol dimensions (its coordinate variables ``time`` and ``pol``).
TIME_LABELS = ("t-2", "t-1", "t")
POLARISATIONS = ("VV", "VH")

TEST_SETS = ("non_cloudy", "cloudy", "unique")
SET_TITLES = {"non_cloudy": "Non cloudy", "cloudy": "Cloudy", "unique": "Unique areas"}
EMPTY = "empty"  # the note of a result row whose test set holds no triplet (its metrics are NaN)

BASELINES = ("MLR", "RF", "persistence", "extrapolation")

# Table 1 of the paper: (RMSE, R2) per row and test set; RMSE most likely in LAI/5 units.
PAPER_TABLE1 = {
    "s1": {"non_cloudy": (0.163, 0.434), "cloudy": (0.279, 0.152), "unique": (0.260, 0.125)},
    "s1_masks": {"non_cloudy": (0.117, 0.709), "cloudy": (0.245, 0.345), "unique": (0.208, 0.440)},
    "s1_masks_seas": {"non_cloudy": (0.111, 0.735), "cloudy": (0.233, 0.409), "unique": (0.198, 0.491)},
    "s2_masks": {"non_cloudy": (0.090, 0.827), "cloudy": (0.253, 0.301), "unique": (0.103, 0.863)},
    "s2_masks_seas": {"non_cloudy": (0.067, 0.903), "cloudy": (0.344, -0.294), "unique": (0.111, 0.839)},
    "final": {"non_cloudy": (0.058, 0.930), "cloudy": (0.238, 0.383), "unique": (0.101, 0.867)},
}
# Section 4.2: R2 of the per-pixel baselines on non-cloudy data.
PAPER_BASELINES_R2 = {"MLR": -0.0445, "RF": -0.0166}

# Rows beyond the paper (their own table, never in Table 1): the final model trained with other settings.
@dataclass(frozen=True)
class ExtraRow:
    title: str
    overrides: dict  # nested profile keys changed from the profile's final model


EXTRA_ROWS = {
    "final_cloudy_weight": ExtraRow("Final, cloud-weighted loss (cloudy-past samples x3, the paper's remedy)",
                                    {"train": {"cloudy_weight": 3.0}}),
    "final_residual": ExtraRow("Final, residual: predicts the change from the last clear LAI", {"model": {"residual": True}}),
}
# Per-pixel baselines without the LAI history (S1 + masks + seasonality): name -> the baseline it restricts.
EXTRA_BASELINES = {"MLR_no_history": "MLR", "RF_no_history": "RF"}
HISTORY_FEATURES = ("LAI_t-2", "LAI_t-1")

# The strict valid rule: only vegetation, bare soil and water (SCL 4-6) count as clear, shadows (3) do not.
STRICT_VALID_CLASSES = (4, 5, 6)

# The figures a run folder holds, in report order: figures/<name>.png (drawn by lai.figures, placed by the report).
FIGURE_NAMES = ("sample_maps", "cloud_statistics", "seasonality_encoding", "s1_vs_lai", "learning_curves", "density",
                "error_by_set", "table1_comparison", "truth_vs_prediction_maps")

# Every run folder's configuration file, the first file lai writes into it: a training stage's
# (lai train) and a notebook run's (lai run, notebooks); and a stage's weights (what lai evaluate reads).
STAGE_CONFIG_FILE = "config.yaml"
RUN_PROFILE_FILE = "profile.yaml"
STAGE_WEIGHTS_FILE = "model.pt"
