"""The PDF report of one run folder: numbers and sentences from Python, layout in a Typst template.

:func:`write_report` reads what the pipeline left in ``reports/<run>/`` (profile.yaml,
provenance.json, data.json, ``tables/<name>.csv`` for the names of :data:`REQUIRED_COLUMNS` and
``figures/<name>.png`` for those of ``lai.facts.FIGURE_NAMES``), decides the generated sentences (verdicts,
comparisons, warnings), formats the numbers and writes them all as ``report.json``. The
layout lives in ``lai/report.typ``, which reads that JSON with Typst's ``json()``; the
``typst`` package compiles it offline into ``report.pdf``. No Typst markup is produced here:
text is plain strings or lists of runs (:func:`strong`, :func:`emph`, :func:`mono`,
:func:`small`), so names and paths are printed as they are, without escaping.

What may be missing, and then shows as a plain "not available" note: a table, figure or
record file the run did not write (a stage that was not run, such as ``extras: false``). An
artefact that is present but unreadable or lacks the columns the report reads raises
:class:`ReportError` naming the file; an error in the code that builds a section propagates.
A test set without triplets is named at the top of the report, and a score that is exactly
perfect (RMSE 0 or R² 1) is flagged there as suspicious.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from lai.config import PROFILE_CONTENT, EncodingConfig
from lai.errors import LaiError
from lai.facts import BASELINES, FIGURE_NAMES, PAPER_BASELINES_R2, PAPER_TABLE1, ROWS, SET_TITLES, TEST_SETS
from lai.io import atomic_path, atomic_write_text, output_lock, read_yaml_mapping, remove_stale_partials

PAPER_TITLE = "Leaf Area Index Estimation from Multi-Temporal Sentinel 1 and 2 Satellite Data Using Deep Learning"
PAPER_AUTHORS = "C. Wang, A. Debouchage, V. Goldité, A. Wery, J. Salzinger"
PAPER_FINAL = PAPER_TABLE1["final"]
MINUS = "\u2212"
FLOOR_GOAL = 1.15  # the final model's non-cloudy RMSE within this factor of the noise floor
SET_PROSE = {"non_cloudy": "non-cloudy", "cloudy": "cloudy", "unique": "unique-areas"}
VERDICTS = ("better", "worse", "not resolved")  # of a paired comparison (lai.tables.comparisons)
TEMPLATE = "report.typ"  # the layout, shipped inside the package
DATA_FILE = "report.json"  # written next to report.pdf; the template reads it


class ReportError(LaiError, RuntimeError):
    """The report could not be built: an artefact is malformed, or Typst failed (its diagnostic is in the message)."""


# --------------------------------------------------------------------------- text, cells and tables as data


def strong(text) -> dict:
    return {"text": str(text), "style": "strong"}


def emph(text) -> dict:
    return {"text": str(text), "style": "emph"}


def mono(text) -> dict:
    """Monospace (paths, names, configuration values)."""
    return {"text": str(text), "style": "mono"}


def small(text) -> dict:
    """Small print (the 95% interval after a value)."""
    return {"text": str(text), "style": "small"}


def rich(*parts) -> list:
    """Text as a list of runs: plain strings and styled runs (nested lists flattened, None skipped)."""
    out: list = []
    for part in parts:
        if part is None:
            continue
        runs = rich(*part) if isinstance(part, (list, tuple)) else [part]
        for run in runs:
            if isinstance(run, str) and out and isinstance(out[-1], str):
                out[-1] += run
            elif run != "":
                out.append(run if isinstance(run, (str, dict)) else str(run))
    return out


def join(items, sep=", ") -> list:
    """Runs of ``items`` separated by ``sep``."""
    out: list = []
    for k, item in enumerate(items):
        out += ([sep] if k else []) + [item]
    return rich(*out)


def cell(body, bold: bool = False, colspan: int = 1, rowspan: int = 1, align: str | None = None):
    """A table cell: its text alone, or with its options."""
    body = rich(body) if isinstance(body, (list, tuple)) else body
    if not (bold or colspan > 1 or rowspan > 1 or align):
        return body
    return {"body": body, "strong": bold, "colspan": colspan, "rowspan": rowspan, **({"align": align} if align else {})}


RULE = {"rule": True}  # a thin line between groups of rows


def table(header: list[list], rows: list, columns: int, caption=None) -> dict:
    """A table of ``columns`` columns: header lines and ``rows`` (lists of cells, or :data:`RULE`); the
    template sets its type size and alignment."""
    return {"header": header, "rows": rows, "columns": columns, "caption": None if caption is None else rich(caption)}


def unavailable(what: str, why: str) -> dict:
    """Stands for a table whose artefact this run did not write."""
    return {"unavailable": {"what": what, "why": why}}


def fmt(value, digits: int = 3) -> str:
    """Numbers for tables: floats to ``digits`` decimals with a true minus sign, ints with separators,
    missing values as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "–"
    text = f"{x:.{digits}f}"
    return text.replace("-", MINUS) if x < 0 and float(text) != 0 else text.lstrip("-")


def _fmt_count(value) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "–" if not math.isfinite(x) else f"{int(round(x)):,}"


# --------------------------------------------------------------------------- reading the run folder

# The tables the report reads (tables/<name>.csv) and the columns each must have (others are optional: a dash
# where absent).
REQUIRED_COLUMNS = {
    "splits": (), "training": ("row",), "final_metrics": ("set",), "seeds": ("set", "seeds"),
    "table1": ("row", "set"), "baselines": ("baseline", "set"), "noise_floor": ("set",),
    "comparisons": ("set", "other", "verdict", "diff", "diff_lo", "diff_hi", "triplets"), "extras": ("title", "set"),
}


def _read_json(path: Path) -> dict | None:
    """The object in ``path``; None if the file is absent."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{path} is not readable JSON ({err})") from err
    if not isinstance(data, dict):
        raise ReportError(f"{path} holds a JSON {type(data).__name__}, expected an object")
    return data


def _read_table(run_dir: Path, name: str) -> pd.DataFrame | None:
    """tables/<name>.csv; None if absent; an empty frame for a file without rows."""
    path = run_dir / "tables" / f"{name}.csv"
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS[name]))
    except (OSError, ValueError) as err:
        raise ReportError(f"{path} is not a readable CSV table ({err})") from err
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in frame]
    if missing:
        raise ReportError(f"{path} lacks the column(s) {', '.join(missing)} that the report reads "
                          f"(it has: {', '.join(map(str, frame.columns))})")
    return frame


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG that decodes completely; ReportError otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt_name = im.format
            im.load()
            size = im.size
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise ReportError(f"{path} is not a readable PNG image ({err}); write it again (rerun its notebook)") from err
    if fmt_name != "PNG":
        raise ReportError(f"{path} is a {fmt_name} image, expected PNG")
    return size


class _Run:
    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.data = _read_json(run_dir / "data.json")
        self.prov = _read_json(run_dir / "provenance.json")
        path = run_dir / "profile.yaml"
        self.profile_text = path.read_text() if path.exists() else None
        self.profile = self._yaml(path, self.profile_text)
        self.tables = {name: _read_table(run_dir, name) for name in REQUIRED_COLUMNS}

    @staticmethod
    def _yaml(path: Path, text: str | None) -> dict:
        return {} if text is None else read_yaml_mapping(path, "run profile", PROFILE_CONTENT, error=ReportError)

    @property
    def name(self) -> str:
        return str(self.profile.get("name") or self.dir.name)

    @property
    def kind(self) -> str:
        kind = (self.data or {}).get("kind")
        if kind in ("simulated", "real"):
            return kind
        data = self.profile.get("data")
        if data == "simulate":
            return "simulated"
        return "real" if data else "unknown"

    @property
    def lai_scale(self) -> float:
        return float((self.profile.get("encoding") or {}).get("lai_scale", EncodingConfig().lai_scale))

    def final_metrics(self) -> pd.DataFrame | None:
        """Final model per set: final_metrics.csv, else the 'final' rows of table1.csv; None if neither exists."""
        fm, t1 = self.tables["final_metrics"], self.tables["table1"]
        if fm is not None:
            return fm
        return t1[t1["row"] == "final"] if t1 is not None else None

    def empty_sets(self) -> list[str]:
        """The test sets without triplets (data.json's split counts, else tables/splits.csv)."""
        counts = (self.data or {}).get("splits")
        if not isinstance(counts, dict):
            sp = self.tables["splits"]
            counts = {}
            if sp is not None and len(sp.columns) and "triplets" in sp:
                key = "split" if "split" in sp else sp.columns[0]
                counts = dict(zip(sp[key].astype(str), sp["triplets"]))
        return [s for s in TEST_SETS if s in counts and _num(counts[s]) == 0]

    def lacking(self, name: str, what: str, missing: str = "") -> dict:
        """The note for table ``name`` where the run wrote none (``missing`` says why) or one without rows."""
        if self.tables[name] is None:
            return unavailable(what, f"tables/{name}.csv is missing{missing}.")
        every = len(self.empty_sets()) == len(TEST_SETS)
        return unavailable(what, f"tables/{name}.csv has no rows" + (": every test set is empty." if every else "."))


def _num(value) -> float:
    """``value`` as a float; NaN for a missing or non-numeric value."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _metric(frame: pd.DataFrame | None, key: str, value: str, col: str) -> float:
    if frame is None or key not in frame or col not in frame:
        return float("nan")
    part = frame[frame[key] == value]
    return float("nan") if part.empty else _num(part[col].iloc[0])


def _metric_b(bl: pd.DataFrame | None, name: str, s: str, col: str) -> float:
    if bl is None or col not in bl:
        return float("nan")
    part = bl[(bl["baseline"].astype(str).str.lower() == name.lower()) & (bl["set"] == s)]
    return _num(part[col].iloc[0]) if len(part) else float("nan")


def _ci(mid: float, lo: float, hi: float) -> list:
    """A value with its interval in small print (the value alone where the interval is missing)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return rich(fmt(mid))
    return rich(f"{fmt(mid)} ", small(f"[{fmt(lo)}, {fmt(hi)}]"))


def _with_ci(frame: pd.DataFrame | None, key: str, value: str, col: str) -> list:
    """``col`` with its 95% interval (``col_lo``, ``col_hi``) as "0.612 [0.571, 0.655]"."""
    return _ci(*(_metric(frame, key, value, c) for c in (col, f"{col}_lo", f"{col}_hi")))


def _verdicts(run: _Run, s: str) -> list[dict]:
    """Paired comparisons of the final model on test set ``s`` (tables/comparisons.csv); a line on no triplet
    (an empty set, whatever its verdict says) compares nothing and is left out."""
    comp = run.tables["comparisons"]
    out = []
    for c in [] if comp is None else comp[comp["set"] == s].to_dict("records"):
        if c["verdict"] in VERDICTS:
            out.append(c)
        elif _num(c["triplets"]) != 0:
            raise ReportError(f"{run.dir / 'tables' / 'comparisons.csv'}: verdict {c['verdict']!r} against {c['other']} on "
                              f"the {s} set; expected one of {', '.join(VERDICTS)}")
    return out


def _diff_text(c: dict) -> str:
    return f"{fmt(c['diff'])} LAI [{fmt(c['diff_lo'])}, {fmt(c['diff_hi'])}]"


# --------------------------------------------------------------------------- sections


def _title(run: _Run) -> dict:
    return {"run": run.name, "folder": run.dir.name if run.dir.name != run.name else None,
            "paper_title": PAPER_TITLE, "paper_authors": PAPER_AUTHORS,
            "lai_version": str((run.prov or {}).get("lai_version", "")), "date": dt.date.today().isoformat(),
            "header": f"lai run report: {run.name} ({run.kind} data)", "document": f"LAI run report: {run.name}"}


def _warnings(run: _Run) -> list:
    """Sentences the reader must see first: test sets without triplets and exactly perfect scores."""
    out = []
    empty = run.empty_sets()
    if empty:
        names = [SET_PROSE[s] for s in empty]
        out.append(rich(strong("Empty test sets. "),
                        f"The {_and(names)} test set{'s' if len(names) > 1 else ''} "
                        f"{'have' if len(names) > 1 else 'has'} no triplets in this run, so no model is scored on "
                        f"{'them' if len(names) > 1 else 'it'}: "
                        "the tables below show dashes or no line for them. The split settings in the configuration "
                        "(Provenance) decide which triplets each test set gets."))
    for model, s, what in _perfect_scores(run, set(empty)):
        out.append(rich(strong("Suspicious perfect score. "),
                        f"{model[:1].upper()}{model[1:]} on the {SET_PROSE.get(s, s)} set scores {what} exactly. A perfect score usually "
                        "means that the inputs and the target are identical (the same image given as a past date and "
                        "as the date to predict), not a perfect model: check the data before trusting this run."))
    return out


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _perfect_scores(run: _Run, empty: set[str]) -> list[tuple[str, str, str]]:
    """(model, set, "RMSE 0.000 LAI" / "R² = 1.000") of every exactly perfect score on a non-empty set."""
    found: dict[tuple[str, str], str] = {}
    sources = []
    t1, bl, extras, fm = run.tables["table1"], run.tables["baselines"], run.tables["extras"], run.final_metrics()
    if fm is not None:
        sources.append(("the final U-Net", fm))
    if t1 is not None:
        sources += [(ROWS[r].title if r in ROWS else str(r), t1[t1["row"] == r]) for r in dict.fromkeys(t1["row"])]
    if bl is not None:
        sources += [(str(b), bl[bl["baseline"] == b]) for b in dict.fromkeys(bl["baseline"])]
    if extras is not None:
        sources += [(str(t), extras[extras["title"] == t]) for t in dict.fromkeys(extras["title"])]
    for model, part in sources:
        model = "the final U-Net" if model == ROWS["final"].title else model
        for rec in part.to_dict("records"):
            s = str(rec["set"])
            rmse, r2 = _num(rec.get("rmse")), _num(rec.get("r2"))
            what = [w for w, hit in ((f"RMSE {fmt(rmse)} LAI", rmse == 0), (f"R² = {fmt(r2)}", r2 == 1)) if hit]
            if what and s not in empty:
                found.setdefault((model, s), " and ".join(what))
    return [(m, s, w) for (m, s), w in found.items()]


def _abstract(run: _Run) -> list:
    d = run.data or {}
    n, tile = d.get("triplets"), d.get("tile_size")
    scale = run.lai_scale
    pieces: list = []
    if run.kind == "simulated":
        pieces.append(rich("The run used ", strong("simulated"), f" data: {_fmt_count(n)} triplets of {tile}×{tile} pixels."))
    elif run.kind == "real":
        pieces.append(rich("The run used ", strong("real"), f" data: {_fmt_count(n)} triplets of {tile}×{tile} pixels from "
                           f"{d.get('source', '?')}."))
    fm = run.final_metrics()
    bits = []
    for s in TEST_SETS:
        r, q = _metric(fm, "set", s, "rmse"), _metric(fm, "set", s, "r2")
        if math.isfinite(r):
            pr, pq = PAPER_FINAL[s]
            bits.append(f"{SET_TITLES[s].lower()}: RMSE {fmt(r)} LAI ({fmt(r / scale)} in LAI/{scale:g} units; "
                        f"paper {fmt(pr)}), R² {fmt(q)} (paper {fmt(pq)})")
    pieces.append("The final model reaches, per test set, " + "; ".join(bits) + "." if bits else
                  "No metrics of the final model are available in this run folder.")
    pers = _metric_b(run.tables["baselines"], "persistence", "non_cloudy", "r2")
    if math.isfinite(pers):
        pieces.append(f"Persisting the last clear LAI reaches R² {fmt(pers)} on the non-cloudy set.")
    return join(pieces, " ")


def _conclusions(run: _Run) -> list:
    """What the run shows, read from the intervals: the goals, convergence, seeds and the extra rows."""
    items = []
    word = {"better": ("the final U-Net ", strong("beats"), " "), "worse": ("the final U-Net ", strong("loses to"), " "),
            "not resolved": ("the final U-Net is ", strong("not resolved"), " against ")}
    empty = run.empty_sets()
    for s in ("non_cloudy", "cloudy"):
        if s in empty:
            items.append(rich(f"{SET_TITLES[s]}: nothing compared, the test set has no triplets."))
            continue
        verdicts = {c["other"]: c for c in _verdicts(run, s)}
        for other in ("persistence", "MLR", "RF"):
            c = verdicts.get(other)
            if c is None:
                items.append(rich(f"{SET_TITLES[s]}, final U-Net against {other}: not compared in this run."))
            else:
                items.append(rich(f"{SET_TITLES[s]}: ", word[c["verdict"]], f"{other}, RMSE difference {_diff_text(c)}."))
    t1, floor = run.tables["table1"], run.tables["noise_floor"]
    ratio = _metric(t1[t1["row"] == "final"] if t1 is not None else None, "set", "non_cloudy", "floor_ratio")
    if math.isfinite(ratio):
        items.append(rich(f"Non-cloudy: the final U-Net’s RMSE is {fmt(ratio, 2)}× the noise floor of "
                          f"{fmt(_metric(floor, 'set', 'non_cloudy', 'floor_rmse'))} LAI (goal: at most {FLOOR_GOAL}×)."))
    tr = run.tables["training"]
    if tr is not None and "converged" in tr:
        late = [str(r) for r, c in zip(tr["row"], tr["converged"]) if str(c) != "True"]
        items.append(rich("Not converged (validation still improving at the end): " + ", ".join(late) + "." if late else
                          "Every training stage converged: validation had stopped improving before its end."))
    extras = run.tables["extras"]
    items.append(rich("Extra rows beyond the paper (cloud-weighted loss, residual model, baselines without the LAI "
                      "history): ", "see their table." if extras is not None else
                      [strong("not run"), " in this profile (", mono("extras: false"), "); the ", mono("paper"),
                       " profile runs them."]))
    return items


def _data(run: _Run) -> dict:
    d = run.data
    out: dict = {"items": None, "splits": None}
    if d is not None:
        splits_cfg = run.profile.get("splits") if isinstance(run.profile.get("splits"), dict) else {}
        sampling = d.get("split_sampling", splits_cfg.get("sampling"))
        if sampling == "blocks":
            block = splits_cfg.get("block_size")
            how = rich("by ", strong("tile blocks"), ": whole blocks of neighbouring tiles",
                       f" ({block}×{block} tiles)" if block else "",
                       ", over all dates, go to one set, so that no test tile has a training neighbour or a training "
                       "copy of itself at another date (stricter than the paper)")
        elif sampling == "random":
            how = rich(strong("at random"), " per triplet, like the paper: test tiles may have training neighbours and "
                       "training copies of the same place at other dates, which flatters the scores")
        else:
            how = rich("not recorded")
        items = [
            ("Kind", rich(run.kind)),
            ("Source folder", rich(mono(d.get("source", "–")))),
            ("Data cube", rich(mono(d.get("cube", "–")))),
            ("Triplets", rich(_fmt_count(d.get("triplets", float("nan"))))),
            ("Tile size", rich(f"{d.get('tile_size', '–')} × {d.get('tile_size', '–')} pixels")),
            ("True LAI available", rich(("yes (simulation)" if run.kind == "simulated" else "yes") if d.get("has_truth") else "no")),
            ("Test-set sampling", how),
        ]
        splits = d.get("splits") or {}
        if splits:
            items.append(("Split counts", rich(", ".join(f"{k} {_fmt_count(v)}" for k, v in splits.items()))))
        skipped = d.get("skipped") or []
        items.append(("Skipped triplets", rich(f"{len(skipped)}" + (" (invalid input files, see data.json)" if skipped else ""))))
        out["items"] = [[k, v] for k, v in items]
    sp = run.tables["splits"]
    if sp is None or not len(sp):
        out["splits"] = run.lacking("splits", "Splits table")
    else:
        if "split" not in sp.columns:
            sp = sp.rename(columns={sp.columns[0]: "split"})
        cols = [c for c in ("split", "triplets", "regions", "clear_past", "cloud_past", "clear_t") if c in sp]
        names = {"split": "Split", "triplets": "Triplets", "regions": "Regions", "clear_past": "Clear, t-2 & t-1",
                 "cloud_past": "Cloud, t-2 & t-1", "clear_t": "Clear at t"}
        rows = [[str(r[c]) if c == "split" else _fmt_count(r[c]) if c in ("triplets", "regions") else fmt(r[c]) for c in cols]
                for r in sp.to_dict("records")]
        out["splits"] = table([[names[c] for c in cols]], rows, len(cols),
                              caption=["Splits of the cube: triplets, regions and mean fractions of each tile that are "
                                       "clear (valid SCL and finite LAI) or cloudy (SCL 8–10). ", emph("non_cloudy"),
                                       " and ", emph("cloudy"), " are the paper’s two cloud-stratified test sets, ",
                                       emph("unique"), " the held-out areas; ", emph("buffer"),
                                       " tiles are kept out of training and testing."])
    return out


def _row_label(t1: pd.DataFrame, row: str) -> tuple[str, str]:
    sub = t1[t1["row"] == row]
    if len(sub) and "input" in sub and "architecture" in sub:
        return str(sub["input"].iloc[0]), str(sub["architecture"].iloc[0])
    spec = ROWS.get(row)
    return (spec.label, spec.architecture) if spec else (row, "")


def _table1(run: _Run) -> dict:
    """Table 1 three times: RMSE (LAI/5) and R² next to the paper's, then RMSE (LAI) and R² with intervals."""
    t1 = run.tables["table1"]
    if t1 is None or not len(t1):
        return run.lacking("table1", "Table 1", " (no Table 1 row was evaluated)")
    out = {}
    rows_present = [r for r in ROWS if r in set(t1["row"])] + [r for r in dict.fromkeys(t1["row"]) if r not in ROWS]
    for key, col, paper_col, better, cap in (
        ("rmse", "rmse_norm", "paper_rmse", "min", "Table 1, RMSE in LAI/5 units (lower is better): this run next to the paper."),
        ("r2", "r2", "paper_r2", "max", "Table 1, R² (higher is better): this run next to the paper."),
    ):
        header1 = [cell("Input", rowspan=2), cell("Architecture", rowspan=2)]
        header1 += [cell(SET_TITLES[s], colspan=2, align="center") for s in TEST_SETS]
        header2 = [h for _ in TEST_SETS for h in ("this run", "paper")]
        best = {}
        for s in TEST_SETS:
            vals = pd.to_numeric(t1.loc[t1["set"] == s, col], errors="coerce") if col in t1 else pd.Series(dtype=float)
            if vals.notna().any():
                best[s] = vals.min() if better == "min" else vals.max()
        rows = []
        for r in rows_present:
            sub = t1[t1["row"] == r]
            line = list(_row_label(t1, r))
            for s in TEST_SETS:
                ours, paper = _metric(sub, "set", s, col), _metric(sub, "set", s, paper_col)
                line += [cell(fmt(ours), bold=math.isfinite(ours) and s in best and bool(np.isclose(ours, best[s]))), fmt(paper)]
            rows.append(line)
        out[key] = table([header1, header2], rows, 8, caption=cap)
    header1 = [cell("Input", rowspan=2), cell("Architecture", rowspan=2),
               cell("RMSE (LAI) [95% interval]", colspan=3, align="center"),
               cell("R² [95% interval]", colspan=3, align="center")]
    header2 = [SET_TITLES[s] for s in TEST_SETS] * 2
    rows = []
    for r in rows_present:
        sub = t1[t1["row"] == r]
        rows.append(list(_row_label(t1, r)) + [_with_ci(sub, "set", s, "rmse") for s in TEST_SETS]
                    + [_with_ci(sub, "set", s, "r2") for s in TEST_SETS])
    pixels = ", ".join(f"{SET_PROSE[s]} {_fmt_count(_metric(t1[t1['row'] == 'final'], 'set', s, 'n_pixels'))}"
                       for s in TEST_SETS)
    out["intervals"] = table([header1, header2], rows, 8,
                             caption="Table 1, RMSE of this run in LAI units (m²/m²) and R², each with its 95% bootstrap "
                                     "interval over the triplets of the test set (resampling whole tiles, not pixels). "
                                     f"Clear pixels scored: {pixels}. The paper gives no RMSE in LAI units.")
    return out


def _baselines(run: _Run) -> dict:
    bl, fm = run.tables["baselines"], run.final_metrics()
    out = {"paper_mlr_r2": fmt(PAPER_BASELINES_R2["MLR"], 4), "paper_rf_r2": fmt(PAPER_BASELINES_R2["RF"], 4),
           "paper_final_r2": fmt(PAPER_FINAL["non_cloudy"][1]), "reading": _baseline_reading(run, bl, fm)}
    if bl is None or not len(bl):
        out["table"] = run.lacking("baselines", "Baseline table")
        return out
    has_truth = "truth_rmse_cloudy" in bl and bl["truth_rmse_cloudy"].notna().any()
    header = ["Test set", "Model", "Triplets", "RMSE (LAI) [95%]", "RMSE (LAI/5)", "R² [95%]", "Pixels"]
    if has_truth:
        header.append("RMSE under clouds (LAI)")
    rows: list = []
    names = [b for b in BASELINES if b in set(bl["baseline"])] + [b for b in dict.fromkeys(bl["baseline"]) if b not in BASELINES]
    for s in TEST_SETS:
        part = bl[bl["set"] == s]
        entries = []
        if fm is not None:
            f = fm[fm["set"] == s]
            if len(f):
                entries.append(("final U-Net", f.iloc[0], True))
        for b in names:
            p = part[part["baseline"] == b]
            if len(p):
                entries.append((b, p.iloc[0], False))
        if rows and entries:
            rows.append(RULE)
        for k, (name, rec, is_model) in enumerate(entries):
            line = [cell(SET_TITLES.get(s, s), rowspan=len(entries))] if k == 0 else []
            one = pd.DataFrame([rec])
            line += [cell(name, bold=is_model), _fmt_count(rec.get("triplets", float("nan"))), _with_ci(one, "set", s, "rmse"),
                     fmt(rec.get("rmse_norm")), _with_ci(one, "set", s, "r2"), _fmt_count(rec.get("n_pixels", float("nan")))]
            if has_truth:
                line.append(fmt(rec.get("truth_rmse_cloudy")))
            rows.append(line)
    out["table"] = table([header], rows, len(header), caption=rich(
        "Baselines next to the final U-Net (bold), per test set. RMSE and R² on pixels clear at ", emph("t"),
        ", with 95% bootstrap intervals over triplets.",
        [" Last column: RMSE against the simulation’s true LAI on the pixels ", strong("not"), " clear at ", emph("t"),
         " (clouds, shadows, no data), which real data cannot score."] if has_truth else None))
    return out


def _baseline_reading(run: _Run, bl: pd.DataFrame | None, fm: pd.DataFrame | None) -> list:
    """An honest paragraph generated from the numbers: where the U-Net beats the baselines and where not."""
    if bl is None or not len(bl) or "rmse" not in bl:
        return rich("No baseline was evaluated in this run, so the U-Nets cannot be put in perspective here.")
    out: list = []
    for s in TEST_SETS:
        where = f"On the {SET_PROSE[s]} set"
        verdicts = _verdicts(run, s)
        if s in run.empty_sets():
            out.append(f"{where} there is no triplet, so nothing is compared.")
            continue
        if not verdicts:
            out.append(f"{where} no paired comparison of the final U-Net was made, so no difference is resolved.")
            continue
        groups = {v: [c for c in verdicts if c["verdict"] == v] for v in ("better", "worse", "not resolved")}
        said = []
        if groups["better"]:
            said.append("the final U-Net beats " + ", ".join(f"{c['other']} ({_diff_text(c)})" for c in groups["better"]))
        if groups["worse"]:
            said.append(rich(strong("it loses to"), " " + ", ".join(f"{c['other']} ({_diff_text(c)})" for c in groups["worse"])))
        if groups["not resolved"]:
            said.append(rich("its difference to " + ", ".join(f"{c['other']} ({_diff_text(c)})" for c in groups["not resolved"])
                             + " is ", strong("not resolved"), " (the interval includes 0)"))
        out.append(rich(f"{where} ({verdicts[0]['triplets']} triplets) ", join(said, "; "), "."))
    out.append("Differences are the final U-Net’s RMSE minus the other model’s on the same triplets, with 95% "
               "paired-bootstrap intervals; negative means the U-Net is better.")
    mlr, rf = _metric_b(bl, "MLR", "non_cloudy", "r2"), _metric_b(bl, "RF", "non_cloudy", "r2")
    if math.isfinite(mlr) or math.isfinite(rf):
        ours = f"R² = {fmt(mlr)} (MLR) and {fmt(rf)} (RF)"
        paper = f"{fmt(PAPER_BASELINES_R2['MLR'], 4)} and {fmt(PAPER_BASELINES_R2['RF'], 4)}"
        gap = float(np.nanmax([mlr - PAPER_BASELINES_R2["MLR"], rf - PAPER_BASELINES_R2["RF"]]))
        if gap > 0.2:
            why = ([" The simulator may make the link between a pixel’s past LAI and its LAI at ", emph("t"),
                    " simpler than in real data."] if run.kind == "simulated" else None)
            out.append(rich(f"The per-pixel models reach {ours} on non-cloudy data, far above the paper’s {paper}: here "
                            "a pixel’s own inputs already explain much of its LAI at ", emph("t"), ".", why,
                            " A negative R² means worse than predicting the test set’s mean LAI, which would be "
                            "surprising from inputs that include the same pixel’s past LAI; the paper’s baselines may "
                            "have used other features or another evaluation, and its description is too short to tell."))
        elif gap < -0.2:
            out.append(f"The per-pixel models reach {ours} on non-cloudy data, below even the paper’s {paper}.")
        else:
            out.append(rich(f"The per-pixel models reach {ours} on non-cloudy data, close to the paper’s {paper}: "
                            "single pixels carry little information about LAI at ", emph("t"), ", here as there."))
    if "truth_rmse_cloudy" in bl and fm is not None and "truth_rmse_cloudy" in fm:
        u = _metric(fm, "set", "cloudy", "truth_rmse_cloudy")
        p = _metric_b(bl, "persistence", "cloudy", "truth_rmse_cloudy")
        if math.isfinite(u) and math.isfinite(p):
            out.append(rich("Under the clouds at ", emph("t"), " of the cloudy set, which only the simulation can score, "
                            f"the U-Net’s RMSE against the true LAI is {fmt(u)} LAI, persistence’s {fmt(p)} LAI."))
    return join(out, " ")


def _noise_floor(run: _Run) -> dict | None:
    """None for real data (no true LAI, no floor)."""
    if run.kind != "simulated":
        return None
    floor, t1, bl = run.tables["noise_floor"], run.tables["table1"], run.tables["baselines"]
    if floor is None or not len(floor):
        return {"table": run.lacking("noise_floor", "Noise floor"), "verdict": None}
    models = []
    if t1 is not None:
        models += [(ROWS[r].title if r in ROWS else r, t1[t1["row"] == r]) for r in dict.fromkeys(t1["row"])]
    if bl is not None:
        models += [(b, bl[bl["baseline"] == b]) for b in dict.fromkeys(bl["baseline"])]
    header1 = [cell("Model", rowspan=2)] + [cell(SET_TITLES[s], colspan=3, align="center") for s in TEST_SETS]
    header2 = [h for _ in TEST_SETS for h in ("÷ floor", "vs truth", "strict")]
    rows = [[cell("Noise floor (observation vs truth)", bold=True)]
            + [c for s in TEST_SETS for c in ("1", fmt(_metric(floor, "set", s, "floor_rmse")),
                                              fmt(_metric(floor, "set", s, "floor_rmse_strict")))]]
    for name, part in models:
        rows.append([str(name)] + [c for s in TEST_SETS for c in (
            fmt(_metric(part, "set", s, "floor_ratio"), 2), fmt(_metric(part, "set", s, "truth_rmse_clear")),
            fmt(_metric(part, "set", s, "rmse_strict")))])
    out = {"table": table([header1, header2], rows, 10,
                          caption="Per test set: each model’s RMSE against the observation divided by the noise floor "
                                  "(÷ floor), its RMSE against the true LAI on the same clear pixels (vs truth), and its "
                                  "RMSE against the observation on strictly clear pixels (strict, SCL 4–6). First line: "
                                  "the floor itself, under the reference rule and (strict column) under the strict rule, "
                                  "in LAI."), "verdict": None}
    ratio = _metric(t1[t1["row"] == "final"] if t1 is not None else None, "set", "non_cloudy", "floor_ratio")
    if math.isfinite(ratio):
        out["verdict"] = rich(
            f"On the non-cloudy set the final U-Net’s RMSE is {fmt(ratio, 2)} times the noise floor "
            f"({fmt(_metric(floor, 'set', 'non_cloudy', 'floor_rmse'))} LAI): ",
            f"within the goal of {FLOOR_GOAL}×." if ratio <= FLOOR_GOAL else
            [strong(f"the goal of {FLOOR_GOAL}× is missed"), f" by {fmt(ratio - FLOOR_GOAL, 2)}, that is "
             f"{fmt((ratio / FLOOR_GOAL - 1) * 100, 0)}% above it."])
    return out


def _extras(run: _Run) -> dict | None:
    """The extra rows' table; None where the profile did not run them."""
    extras = run.tables["extras"]
    if extras is None:
        return None
    if not len(extras):
        return run.lacking("extras", "Extra rows")
    header = ["Row", "Test set", "RMSE (LAI) [95%]", "R² [95%]", "Final − row (LAI) [95%]", "Final is"]
    rows = []
    for r in extras.to_dict("records"):
        one = pd.DataFrame([r])
        rows.append([str(r["title"]), SET_TITLES.get(r["set"], str(r["set"])), _with_ci(one, "set", r["set"], "rmse"),
                     _with_ci(one, "set", r["set"], "r2"), _ci(*(_num(r.get(k)) for k in ("diff", "diff_lo", "diff_hi"))),
                     str(r.get("verdict", "–"))])
    return table([header], rows, len(header), caption=rich(
        "Extra rows per test set, with the paired difference of the final model’s RMSE minus the row’s (negative: the "
        "final model is better); ", emph("better"), " or ", emph("worse"), " only where the interval excludes 0."))


def _training(run: _Run) -> dict:
    train = run.profile.get("train") if isinstance(run.profile.get("train"), dict) else {}
    out: dict = {"text": None}
    if train:
        if train.get("schedule") == "plateau":
            schedule = (f"at most {train.get('epochs', '?')} epochs: the learning rate is multiplied by "
                        f"{train.get('lr_decay', '?')} after {train.get('lr_patience', '?')} epochs without a better "
                        f"validation score, and the stage stops after {train.get('patience', '?')}")
        else:
            schedule = (f"{train.get('epochs', '?')} epochs, the learning rate multiplied by "
                        f"{train.get('lr_decay', '?')} at fixed epochs ({train.get('milestones', '?')} "
                        "milestones: the paper’s protocol)")
        out["text"] = rich(
            f"Each stage trains with Adam for {schedule}; batch size {train.get('batch_size', '?')}, initial "
            f"learning rate {train.get('lr', '?')}, loss weights α = {train.get('alpha', '?')} (encoder 1) and "
            f"β = {train.get('beta', '?')} (encoder 2) for the final model, which starts from the pre-trained "
            "encoders of rows 3 and 5. Training batches are ",
            "randomly rotated by multiples of 90° and flipped. " if train.get("augment", True) else [strong("not"), " augmented. "],
            "Each stage keeps the weights of its best validation epoch. A stage whose best epoch lies within its last "
            f"{train.get('patience', '?')} epochs was still improving: it is marked ", strong("not converged"),
            ", and its scores understate what longer training would give.")
    tr = run.tables["training"]
    if tr is None or not len(tr):
        out["table"] = run.lacking("training", "Training time table")
        out["seeds"] = None
        return out
    names = {"row": "Stage", "epochs": "Epochs", "seconds": "Time (s)", "samples_per_s": "Samples/s",
             "val_rmse": "Last val. RMSE (LAI)", "final_val_rmse": "Final val. RMSE (LAI)", "best_epoch": "Best epoch",
             "best_val_rmse": "Best val. RMSE (LAI)", "converged": "Converged", "parameters": "Parameters", "reused": "Reused"}
    cols = list(tr.columns)
    rows = []
    for r in tr.to_dict("records"):
        line = []
        for c in cols:
            v = r[c]
            if c == "row":
                line.append(ROWS[str(v)].title if str(v) in ROWS else str(v))
            elif c == "converged":
                line.append("yes" if str(v) == "True" else rich(strong("not converged")))
            elif c in ("seconds", "samples_per_s"):
                line.append(fmt(v, 1))
            elif c in ("epochs", "parameters"):
                line.append(_fmt_count(v))
            elif isinstance(v, (float, np.floating)):
                line.append(fmt(v))
            else:
                line.append(str(v))
        rows.append(line)
    total = pd.to_numeric(tr["seconds"], errors="coerce").sum() if "seconds" in tr else float("nan")
    device = (run.prov or {}).get("device")
    out["table"] = table([[names.get(c, c.replace("_", " ")) for c in cols]], rows, len(cols),
                         caption="Training time per stage" + (f" on {device}" if device else "")
                         + (f"; {fmt(total / 60, 1)} minutes in all." if math.isfinite(total) else "."))
    out["seeds"] = _seeds(run, train)
    return out


def _seeds(run: _Run, train: dict) -> dict:
    """The spread over training seeds: a table, or why there is none ({"one_seed": true} or unavailable)."""
    seeds = run.tables["seeds"]
    n = train.get("seeds", 1)
    if seeds is None or not len(seeds):
        return run.lacking("seeds", "Seed table")
    if n == 1:
        return {"one_seed": True}
    rows = [[SET_TITLES.get(r["set"], str(r["set"])), _fmt_count(r["seeds"]), fmt(r.get("rmse_mean")), fmt(r.get("rmse_std")),
             f"{fmt(r.get('rmse_min'))} – {fmt(r.get('rmse_max'))}", fmt(r.get("r2_mean"))] for r in seeds.to_dict("records")]
    return table([["Test set", "Seeds", "RMSE mean", "RMSE s.d.", "RMSE range", "R² mean"]], rows, 6,
                 caption=f"The final model fine-tuned with {n} training seeds from the same pre-trained encoders: "
                         "spread of its test scores (LAI). Table 1 shows the first seed.")


def _results(run: _Run) -> dict:
    fm = run.final_metrics()
    if fm is None:
        return unavailable("Final metrics", "tables/final_metrics.csv is missing.")
    truth = "truth_rmse_cloudy" in fm and fm["truth_rmse_cloudy"].notna().any()
    header = ["Test set", "Triplets", "RMSE (LAI)", "RMSE (LAI/5)", "R²", "Pixels"] + (["RMSE under clouds (LAI)"] if truth else [])
    empty = set(run.empty_sets())
    rows = []
    for s in [x for x in TEST_SETS if x in set(fm["set"]) or x in empty] + [x for x in dict.fromkeys(fm["set"]) if x not in TEST_SETS]:
        part = fm[fm["set"] == s]
        rec = part.iloc[0].to_dict() if len(part) else {"triplets": 0}
        line = [SET_TITLES.get(s, str(s)), _fmt_count(rec.get("triplets", float("nan"))), fmt(rec.get("rmse")),
                fmt(rec.get("rmse_norm")), fmt(rec.get("r2")), _fmt_count(rec.get("n_pixels", float("nan")))]
        if truth:
            line.append(fmt(rec.get("truth_rmse_cloudy")))
        rows.append(line)
    return table([header], rows, len(header), caption=rich(
        "Final model (both encoders and the fusion decoder) per test set, on the pixels clear at ", emph("t"), ".",
        [" Last column: RMSE against the simulation’s true LAI on the pixels not clear at ", emph("t"), "."] if truth else None))


def _provenance(run: _Run) -> dict:
    prov = run.prov
    out: dict = {"items": None, "packages": None, "config": None}
    if prov is not None:
        labels = {"lai_version": "lai version", "git_revision": "git revision", "git_dirty": "uncommitted changes",
                  "data_fingerprint": "data fingerprint"}
        items = [[labels.get(k, k.replace("_", " ")), ("yes" if v else "no") if isinstance(v, bool) else str(v)]
                 for k, v in prov.items() if not isinstance(v, (dict, list))]
        fp = (run.data or {}).get("fingerprint")
        if fp and "data_fingerprint" not in prov:
            items.append(["data fingerprint", str(fp)])
        out["items"] = items
        packages = prov.get("packages") or {}
        if isinstance(packages, dict) and packages:
            pairs = sorted(packages.items())
            half = math.ceil(len(pairs) / 2)
            left, right = pairs[:half], pairs[half:]
            rows = [[left[i][0], str(left[i][1])] + ([right[i][0], str(right[i][1])] if i < len(right) else ["", ""])
                    for i in range(half)]
            out["packages"] = table([["Package", "Version", "Package", "Version"]], rows, 4,
                                    caption="Package versions of the run.")
    if run.profile_text is not None:
        out["config"] = list(_yaml_columns(run.profile, run.profile_text))
    return out


def _yaml_columns(profile: dict, text: str) -> tuple[str, str]:
    """The configuration as YAML (lists of scalars inline), cut in two at a top-level key near the middle."""
    if profile:
        import yaml

        class _Dumper(yaml.SafeDumper):
            pass

        def _list(dumper, data):
            flow = all(not isinstance(v, (dict, list)) for v in data) and len(", ".join(map(str, data))) < 40
            return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

        _Dumper.add_representer(list, _list)
        text = yaml.dump(profile, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=50)
    lines = text.rstrip().splitlines()
    tops = [i for i, line in enumerate(lines) if line and not line[0].isspace() and i > 0]
    if not tops or len(lines) < 20:
        return "\n".join(lines), ""
    cut = min(tops, key=lambda i: abs(i - len(lines) / 2))
    return "\n".join(lines[:cut]), "\n".join(lines[cut:])


def _figures(run: _Run) -> dict:
    """Per figure name: its file and aspect ratio, or why it is not available (the run did not write it)."""
    out = {}
    for name in FIGURE_NAMES:
        path = run.dir / "figures" / f"{name}.png"
        if path.is_file():
            w, h = _png_size(path)
            out[name] = {"available": True, "file": f"/figures/{name}.png", "aspect": w / h}
        else:
            out[name] = {"available": False, "reason": f"figures/{name}.png was not produced by this run."}
    return out


# Sections of report.json, each built from the run folder by one function; the template lays them out.
SECTIONS = {
    "title": _title, "warnings": _warnings, "abstract": _abstract, "conclusions": _conclusions, "data": _data,
    "table1": _table1, "baselines": _baselines, "noise_floor": _noise_floor, "extras": _extras,
    "training": _training, "results": _results, "provenance": _provenance, "figures": _figures,
}


def build_data(run_dir: str | Path) -> dict:
    """Everything the template prints for ``run_dir``, as JSON-ready data (no markup)."""
    run = _Run(Path(run_dir))
    return {"kind": run.kind, **{key: build(run) for key, build in SECTIONS.items()}}


def template_source() -> bytes:
    """The Typst template shipped with the package."""
    return resources.files("lai").joinpath(TEMPLATE).read_bytes()


def _compile(template: bytes, output: Path, root: Path, data: str) -> None:
    import typst

    typst.compile(template, output=str(output), root=str(root), sys_inputs={"data": data})


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.json`` and compile ``run_dir/report.pdf`` from it; return the PDF's path.

    Both are written atomically, while holding the report's write lock (a second writer is refused,
    leftovers of an interrupted one are removed first). If Typst fails, :class:`ReportError` is raised
    and no new report.pdf appears (an older one is left untouched).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    out, data_path = run_dir / "report.pdf", run_dir / DATA_FILE
    with output_lock(out):
        remove_stale_partials(data_path)
        atomic_write_text(data_path, json.dumps(build_data(run_dir), indent=1, ensure_ascii=False, allow_nan=False))
        with atomic_path(out) as tmp:
            try:
                _compile(template_source(), tmp, run_dir, f"/{DATA_FILE}")
            except Exception as err:  # typst.TypstError and friends: re-raised with the diagnostic
                message = re.sub(r"\s+\n", "\n", str(err)).strip()
                raise ReportError(f"Typst could not typeset the report of {run_dir} (template lai/{TEMPLATE}, "
                                  f"data {data_path}): {message}") from err
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise ReportError(f"Typst produced no PDF for {run_dir}")
    return out

