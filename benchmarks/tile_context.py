"""Seams between adjacent per-triplet maps: ``lai predict --data`` with and without ``--context``.

Predicts the simulated LNB folder of a finished lai run (its ``data.json``) with the run's chosen model, once per
``--context`` value, and compares the maps (band ``lai_model``) with the simulator's true LAI at t::

    python benchmarks/tile_context.py reports/quick --context 0 16 32 --json FILE.json

Per context:

- **Seam jump**: across every edge shared by two maps of the same dates (placed side by side by their
  georeferencing), the mean absolute difference between the two pixels facing each other, divided by the true
  LAI's at the same pixels. The same ratio across the middle line of each map (a line inside one prediction) is
  the reference: maps without seams have a seam ratio near it.
- **RMSE against the truth** in the band of ``--band`` pixels along the edges that have a neighbour, and inside it,
  with the paired bootstrap interval over triplets (``lai.metrics.paired_difference``) of each context minus 0.
- Seconds per triplet (wall time of the prediction, disturbed by other jobs on a shared machine).

Needs a run on simulated data (the truth). Writes the JSON to ``--json`` (or prints it) and the maps under
``--out`` (a temporary folder unless given).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import report_header, run_chosen  # noqa: E402
from lai.facts import RUN_DATA_FILE  # noqa: E402
from lai.lnb import TRUTH_DIR, read_series  # noqa: E402
from lai.metrics import paired_difference, triplet_sums  # noqa: E402


def read_maps(folder: Path, names: list[str]) -> tuple[np.ndarray, list]:
    """(N, H, W) band ``lai_model`` of the maps of ``names`` (t file names) in ``folder``, and their (CRS, transform)."""
    import rasterio

    from lai.lnb import crs_text

    maps, georef = [], []
    for name in names:
        with rasterio.open(folder / (Path(name).stem + ".tif")) as src:
            maps.append(src.read(2))
            georef.append((crs_text(src.crs), tuple(src.transform)[:6]))
    return np.stack(maps), georef


def read_truth(lnb: Path, names: list[str]) -> np.ndarray:
    import rasterio

    out = []
    for name in names:
        with rasterio.open(lnb / TRUTH_DIR / name) as src:
            out.append(src.read(1))
    return np.stack(out).astype(np.float32)


def pairs(names: list[str], georef: list, shape: tuple[int, int]) -> list[tuple[int, int, str]]:
    """(i, j, "x" or "y") for maps j directly right of (x) or below (y) map i, of the same dates (lai.predict's
    rule: names one tile apart, placed so by their transforms)."""
    from lai.predict import Neighbours, beside

    neighbours = Neighbours([(n, n, n) for n in names])
    out = []
    for i, tile in enumerate(georef):
        for step, axis in (((0, 1), "x"), ((1, 0), "y")):
            j = neighbours.named(i).get(step)
            if j is not None and beside(tile, georef[j], step, shape):
                out.append((i, j, axis))
    return out


def seam_ratio(pred: np.ndarray, truth: np.ndarray, seams: list[tuple[int, int, str]]) -> dict:
    """Mean |jump| of the predictions across the seams over the truth's, and the same across each map's middle line."""
    def jumps(a_edge, b_edge):
        ok = np.isfinite(a_edge) & np.isfinite(b_edge)
        return np.abs(a_edge - b_edge)[ok]

    pj, tj = [], []
    for i, j, axis in seams:
        if axis == "x":
            pj.append(jumps(pred[i][:, -1], pred[j][:, 0]))
            tj.append(jumps(truth[i][:, -1], truth[j][:, 0]))
        else:
            pj.append(jumps(pred[i][-1], pred[j][0]))
            tj.append(jumps(truth[i][-1], truth[j][0]))
    h, w = pred.shape[1:]
    mid = [jumps(pred[:, :, w // 2 - 1], pred[:, :, w // 2]), jumps(pred[:, h // 2 - 1], pred[:, h // 2])]
    mid_t = [jumps(truth[:, :, w // 2 - 1], truth[:, :, w // 2]), jumps(truth[:, h // 2 - 1], truth[:, h // 2])]
    seam = float(np.concatenate(pj).mean() / np.concatenate(tj).mean())
    inner = float(np.concatenate(mid).mean() / np.concatenate(mid_t).mean())
    return {"seam_jump_model": float(np.concatenate(pj).mean()), "seam_jump_truth": float(np.concatenate(tj).mean()),
            "seam_ratio": seam, "middle_line_ratio": inner, "seams": len(seams)}


def border_band(shape: tuple[int, int], n: int, seams: list[tuple[int, int, str]], band: int) -> np.ndarray:
    """(N, H, W) True on the ``band`` pixels along each map's edges that face another map."""
    h, w = shape
    mask = np.zeros((n, h, w), bool)
    for i, j, axis in seams:
        if axis == "x":
            mask[i, :, -band:] = mask[j, :, :band] = True
        else:
            mask[i, -band:] = mask[j, :band] = True
    return mask


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished lai run on simulated data (e.g. reports/quick)")
    parser.add_argument("--context", type=int, nargs="+", default=[0, 16, 32])
    parser.add_argument("--band", type=int, default=8, help="pixels along a shared edge counted as its border band")
    parser.add_argument("--out", type=Path, help="folder for the maps (new; default a temporary one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from lai.predict import predict_folder

    lnb = Path(json.loads((args.run / RUN_DATA_FILE).read_text())["source"])
    if not (lnb / TRUTH_DIR).is_dir():
        parser.error(f"{lnb}: no {TRUTH_DIR}/ folder; the seams are measured against the simulator's true LAI")
    model = args.run / "runs" / run_chosen(args.run)
    out = args.out or Path(tempfile.mkdtemp(prefix="tile_context-"))
    report = {**report_header(__file__), "run": str(args.run), "model": str(model), "lnb": str(lnb), "band": args.band,
              "contexts": {}}
    names = [t.names[2] for t in read_series(lnb)]
    truth = read_truth(lnb, names)
    sums = {}
    for context in args.context:
        t0 = time.perf_counter()
        summary = predict_folder(model, lnb, out / f"context{context}", progress=True, context=context)
        seconds = time.perf_counter() - t0
        pred, georef = read_maps(out / f"context{context}", names)
        if context == args.context[0]:
            seams = pairs(names, georef, pred.shape[1:])
            band = border_band(pred.shape[1:], len(pred), seams, args.band)
        finite = np.isfinite(pred) & np.isfinite(truth)
        sums[context] = {"border": triplet_sums(pred, truth, finite & band), "inside": triplet_sums(pred, truth, finite & ~band)}
        report["contexts"][context] = {
            "seconds_per_triplet": seconds / len(names), "maps_with_neighbours": summary["maps_with_neighbours"],
            "neighbours_off_grid": summary["neighbours_off_grid"], **seam_ratio(pred, truth, seams),
            **{f"rmse_{part}": float(np.sqrt(s[:, 0].sum() / s[:, 3].sum())) for part, s in sums[context].items()}}
    base = args.context[0]
    for context in args.context[1:]:
        report["contexts"][context].update({f"{part}_minus_context{base}": paired_difference(sums[context][part], sums[base][part])
                                            for part in ("border", "inside")})
    text = json.dumps(report, indent=2, default=float)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
