"""RMSE and R2 pooled over pixels clear at t, and per tile."""
from __future__ import annotations

import numpy as np


class PooledMetrics:
    """Accumulate sums over masked pixels; RMSE and R2 over all of them at the end.

    R2 = 1 - SSE / SST, with SST around the pooled mean of the targets.
    """

    def __init__(self, lai_scale: float = 5.0):
        self.lai_scale = lai_scale
        self.sse = self.sy = self.syy = 0.0
        self.n = 0

    def update(self, pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> None:
        mask = np.asarray(mask, bool)
        p = np.asarray(pred, np.float64)[mask]
        t = np.asarray(target, np.float64)[mask]
        self.sse += float(np.square(p - t).sum())
        self.sy += float(t.sum())
        self.syy += float(np.square(t).sum())
        self.n += int(mask.sum())

    def result(self) -> dict[str, float]:
        if self.n == 0:
            return {"rmse": np.nan, "rmse_norm": np.nan, "r2": np.nan, "n_pixels": 0}
        sst = self.syy - self.sy**2 / self.n
        rmse = float(np.sqrt(self.sse / self.n))
        return {
            "rmse": rmse,
            "rmse_norm": rmse / self.lai_scale,
            "r2": float(1 - self.sse / sst) if sst > 0 else np.nan,
            "n_pixels": self.n,
        }


def pooled(pred, target, mask, lai_scale: float = 5.0) -> dict[str, float]:
    m = PooledMetrics(lai_scale)
    m.update(pred, target, mask)
    return m.result()


def per_tile(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, lai_scale: float = 5.0) -> list[dict[str, float]]:
    """Metrics of each tile (first axis) separately."""
    return [pooled(p, t, m, lai_scale) for p, t, m in zip(pred, target, mask)]
