"""Tables of results: Table 1 as reproduced next to the paper's, and the baselines."""
from __future__ import annotations

import pandas as pd

from lai.model import ROWS
from lai.splits import TEST_SETS

# Table 1 of the paper (RMSE most likely in LAI/5 units; see DESIGN section 5).
PAPER_TABLE1 = {
    "s1": {"non_cloudy": (0.163, 0.434), "cloudy": (0.279, 0.152), "unique": (0.260, 0.125)},
    "s1_masks": {"non_cloudy": (0.117, 0.709), "cloudy": (0.245, 0.345), "unique": (0.208, 0.440)},
    "s1_masks_seas": {"non_cloudy": (0.111, 0.735), "cloudy": (0.233, 0.409), "unique": (0.198, 0.491)},
    "s2_masks": {"non_cloudy": (0.090, 0.827), "cloudy": (0.253, 0.301), "unique": (0.103, 0.863)},
    "s2_masks_seas": {"non_cloudy": (0.067, 0.903), "cloudy": (0.344, -0.294), "unique": (0.111, 0.839)},
    "final": {"non_cloudy": (0.058, 0.930), "cloudy": (0.238, 0.383), "unique": (0.101, 0.867)},
}
# Section 4.2: per-pixel baselines on non-cloudy data.
PAPER_BASELINES_R2 = {"MLR": -0.0445, "RF": -0.0166}
SET_TITLES = {"non_cloudy": "Non cloudy", "cloudy": "Cloudy", "unique": "Unique areas"}


def table1(metrics: pd.DataFrame) -> pd.DataFrame:
    """Long metrics (columns row, set, rmse, rmse_norm, r2) -> one line per Table 1 row and test set,
    with the paper's RMSE and R2 beside ours."""
    out = []
    for row, spec in ROWS.items():
        for name in TEST_SETS:
            ours = metrics[(metrics["row"] == row) & (metrics["set"] == name)]
            paper_rmse, paper_r2 = PAPER_TABLE1[row][name]
            rec = {"row": row, "input": spec.label, "architecture": spec.architecture, "set": name,
                   "paper_rmse": paper_rmse, "paper_r2": paper_r2}
            for col in ("rmse", "rmse_norm", "r2", "n_pixels"):
                rec[col] = float(ours[col].iloc[0]) if len(ours) and col in ours else float("nan")
            out.append(rec)
    return pd.DataFrame(out)


def table1_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Paper layout: one line per row; for each test set RMSE (LAI/5 units) and R2, ours and the paper's."""
    cols = {}
    for name in TEST_SETS:
        part = long[long["set"] == name].set_index("row")
        title = SET_TITLES[name]
        cols[(title, "RMSE")] = part["rmse_norm"]
        cols[(title, "RMSE paper")] = part["paper_rmse"]
        cols[(title, "R2")] = part["r2"]
        cols[(title, "R2 paper")] = part["paper_r2"]
    wide = pd.DataFrame(cols)
    labels = long.drop_duplicates("row").set_index("row")
    wide.index = [f"{labels.loc[r, 'input']} ({labels.loc[r, 'architecture']})" for r in wide.index]
    return wide
