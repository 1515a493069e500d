"""Tables of results: Table 1 as reproduced next to the paper's, and the baselines."""
from __future__ import annotations

import pandas as pd

from lai.facts import PAPER_TABLE1, ROWS, SET_TITLES, TEST_SETS


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
