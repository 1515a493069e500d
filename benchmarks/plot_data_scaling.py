"""The learning curve of :mod:`data_scaling` as a figure: the final model against the oracle bound and persistence,
and its best validation RMSE, by number of training triplets::

    python benchmarks/plot_data_scaling.py JSON... --out curve.png

The committed figure, pixel for pixel (the JSONs' order sets markers, colours and legend)::

    python benchmarks/plot_data_scaling.py benchmarks/results/data-scaling-standard-{2026-12-05,subset-seed1-2026-12-05,\
wide-2026-12-05,extra-seed1-2026-12-05,extra-seed2-2026-12-05,extra-seed1-train-seed1-2026-12-05,\
extra-seed2-train-seed1-2026-12-05}.json --out benchmarks/results/data-scaling-standard-2026-12-05.png

Each JSON is one ``benchmarks/data_scaling.py`` run (one subset seed, one set of overrides); every point is drawn
with its 95 % paired-bootstrap interval, one marker per JSON, and the run's own final model (all its training
triplets) once. Only JSONs of the same run (same cube) can be drawn together: another run has other test sets.
Reads the JSONs only; trains nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.data_scaling import COMPARED_BASELINES, run_model_name  # noqa: E402
from lai.facts import NON_CLOUDY, ORACLE, SET_TITLES, UNIQUE  # noqa: E402
from lai.figures.common import save  # noqa: E402

PERSISTENCE = COMPARED_BASELINES[0]  # "persistence", as data_scaling.py scores it
PANELS = ((NON_CLOUDY, ORACLE), (UNIQUE, ORACLE), (NON_CLOUDY, PERSISTENCE))  # (test set, compared with)
MARKERS = "osD^v<>P"


def label(report: dict) -> str:
    """How one JSON's points were drawn and trained, for the legend."""
    extra = ", ".join(report.get("overrides") or [])
    scenes = report.get("extra_simulate_seed")
    return (f"subset seed {report['subset_seed']}" + (f" ({extra})" if extra else "")
            + (f", beyond the run's: + scenes of simulate.seed {scenes}" if scenes is not None else ""))


def load(paths: list[Path]) -> list[dict]:
    """The JSONs, refused unless they come from one run's cube (the test sets must be the same)."""
    reports = [json.loads(p.read_text()) for p in paths]
    other = [f"{p} ({r.get('script', 'no script named')})" for p, r in zip(paths, reports)
             if Path(r.get("script", "")).name != "data_scaling.py"]
    if other:  # e.g. pool_scaling.py's JSON, which a glob of data-scaling-*.json also finds
        raise SystemExit(f"not written by benchmarks/data_scaling.py, so no curve to draw: {', '.join(other)}")
    cubes = {r["cube"] for r in reports}
    if len(cubes) > 1:
        raise SystemExit(f"the JSONs come from different cubes ({', '.join(sorted(cubes))}): their test sets differ")
    return reports


def plot(reports: list[dict], out: Path) -> Path:
    fig, grid = plt.subplots(2, 2, figsize=(8.5, 6.5), constrained_layout=True)
    axes = grid.ravel()
    full = reports[0]["full_train_triplets"]
    for k, report in enumerate(reports):
        rows = report["comparisons"]
        own = [r for r in rows if r["model"] == run_model_name(full)]
        trained = [r for r in rows if r["model"] != run_model_name(full)]
        for ax, (test_set, other) in zip(axes, PANELS):
            pts = sorted((r for r in trained if r["set"] == test_set and r["other"] == other), key=lambda r: r["train_triplets"])
            x = [r["train_triplets"] + 35 * k for r in pts]  # side by side, not on top of each other
            ax.errorbar(x, [r["diff"] for r in pts], yerr=[[r["diff"] - r["diff_lo"] for r in pts],
                                                           [r["diff_hi"] - r["diff"] for r in pts]],
                        fmt=MARKERS[k % len(MARKERS)], ms=5, capsize=3, label=label(report))
            if k == 0:
                mine = [r for r in own if r["set"] == test_set and r["other"] == other]
                for r in mine:
                    ax.errorbar([r["train_triplets"]], [r["diff"]], yerr=[[r["diff"] - r["diff_lo"]], [r["diff_hi"] - r["diff"]]],
                                fmt="*", ms=10, capsize=3, color="k", label="the run's final model (seed 0)")
                ax.axhline(0, color="0.4", lw=0.8)
                ax.set_title(f"{SET_TITLES.get(test_set, test_set)}: final − {other}", fontsize=10)
                ax.set_xlabel("training triplets")
                ax.set_ylabel("RMSE difference, LAI")
        val = axes[-1]
        sizes = [p["train_triplets"] for p in report["points"]]
        val.plot(sizes, [p["final"]["best_val_rmse"] for p in report["points"]], MARKERS[k % len(MARKERS)] + "-",
                 label=label(report))
        if k == 0:
            val.plot([full], [report["full_final"]["best_val_rmse"]], "k*", ms=10, label="the run's final model (seed 0)")
            val.set_title("final model: best validation RMSE", fontsize=10)
            val.set_xlabel("training triplets")
            val.set_ylabel("RMSE, LAI")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)
    r0 = reports[0]
    fig.suptitle(f"The final model by training data ({r0['profile']} profile's cube, test sets fixed; 95 % paired intervals)\n"
                 f"{Path(r0['script']).name}, {', '.join(sorted({r['date'][:10] for r in reports}))}, "
                 f"{r0['machine']['cpu']}, {r0['machine']['cpu_count']} cores", fontsize=9)
    return save(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", type=Path, nargs="+", help="data_scaling.py outputs of one run")
    ap.add_argument("--out", type=Path, required=True, help="the figure (PNG)")
    args = ap.parse_args()
    print(plot(load(args.json), args.out))


if __name__ == "__main__":
    main()
