"""The PDF report of one run folder, typeset offline with Typst (the ``typst`` Python package).

:func:`write_report` reads what the pipeline left in ``reports/<run>/`` (profile.yaml,
provenance.json, data.json, tables/*.csv, figures/*.png), writes the Typst source
``report.typ`` next to it and compiles ``report.pdf`` atomically: the PDF is
compiled under a temporary name and renamed into place only when complete, so a
failure leaves no new ``report.pdf``.

Anything missing (a table, a figure, a file) becomes a visible "not available"
note, never a failure. Every piece of text that comes from data (paths, names,
YAML) enters the Typst source as a Typst string literal, so characters such as
``_``, ``#``, ``*`` or ``$`` are printed as they are.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from lai.errors import LaiError
from lai.facts import BASELINES, PAPER_BASELINES_R2, PAPER_TABLE1, ROWS, SET_TITLES, TEST_SETS
from lai.io import atomic_write_text

PAPER_TITLE = "Leaf Area Index Estimation from Multi-Temporal Sentinel 1 and 2 Satellite Data Using Deep Learning"
PAPER_AUTHORS = "C. Wang, A. Debouchage, V. Goldité, A. Wery, J. Salzinger"
PAPER_FINAL = PAPER_TABLE1["final"]
TEXT_WIDTH_CM = 17.0  # A4 minus 2 cm margins
MAX_FIGURE_HEIGHT_CM = 20.5
MINUS = "\u2212"


class ReportError(LaiError, RuntimeError):
    """The report could not be typeset; the message carries Typst's diagnostic."""


# --------------------------------------------------------------------------- Typst helpers


def typst_str(value) -> str:
    """A Typst string literal holding ``value`` verbatim (safe in code mode)."""
    text = str(value)
    text = "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{text}"'


def typst_text(value) -> str:
    """``value`` as literal text in Typst markup (the trailing ``;`` ends the embedded expression)."""
    return f"#{typst_str(value)};"


def _raw(value, lang: str | None = None, block: bool = False) -> str:
    """Monospace text, in code mode."""
    args = [typst_str(value)]
    if block:
        args.append("block: true")
    if lang:
        args.append(f"lang: {typst_str(lang)}")
    return f"raw({', '.join(args)})"


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


def _cell(text, bold: bool = False, colspan: int = 1, rowspan: int = 1, align: str | None = None) -> str:
    body = typst_str(text)
    if bold:
        body = f"strong({body})"
    args = [f"colspan: {colspan}"] if colspan > 1 else []
    args += [f"rowspan: {rowspan}"] if rowspan > 1 else []
    args += [f"align: {align}"] if align else []
    return f"table.cell({', '.join(args)}, {body})" if args else body


def _table(header_rows: list[list[str]], rows: list[list[str]], align: list[str], caption: str | None = None,
           size: str = "9pt", label: str | None = None) -> str:
    """A booktabs-style table; cells are Typst code (see :func:`_cell`); caption is markup."""
    n = len(align)
    body = [f"columns: {n}", f"align: ({', '.join(align)},)", "stroke: none", "inset: (x: 5pt, y: 3.2pt)",
            "table.hline(stroke: 0.9pt)"]
    header = [c for r in header_rows for c in r] + ["table.hline(stroke: 0.5pt)"]
    body.append(f"table.header({', '.join(header)})")
    for r in rows:
        body.append(", ".join(r))
    body.append("table.hline(stroke: 0.9pt)")
    table = "table(\n    " + ",\n    ".join(body) + "\n  )"
    code = f"{{\n  set text(size: {size})\n  set par(justify: false)\n  {table}\n}}"
    if caption is None:
        return f"#{code}\n"
    return f"#figure(kind: table, caption: [{caption}], {code}){(' <' + label + '>') if label else ''}\n"


def _note(what: str, why: str) -> str:
    return f"#notavail({typst_str(what)}, {typst_str(why)})\n"


PREAMBLE = r"""
#set document(title: TITLE, author: "lai")
#set page(paper: "a4", margin: (x: 2cm, top: 2.2cm, bottom: 2cm), numbering: "1 / 1",
  header: context { if counter(page).get().first() > 1 {
    set text(size: 8pt, fill: luma(110))
    HEADER
    h(1fr)
    "LAI from Sentinel-1 and Sentinel-2"
    line(length: 100%, stroke: 0.4pt + luma(180))
  } })
#set text(size: 10.5pt, lang: "en")
#set par(justify: true)
#set heading(numbering: "1.1")
#show heading.where(level: 1): it => { if it.outlined { pagebreak(weak: true) }; v(0.3em); it; v(0.4em) }
#show heading: set block(above: 1.2em, below: 0.8em)
#show figure.where(kind: table): set figure.caption(position: top)
#show figure.where(kind: table): set figure(numbering: none)
#show figure.caption: set text(size: 9pt)
#show figure: set block(breakable: false, above: 1.4em, below: 1.4em)
#show raw: set text(font: "DejaVu Sans Mono")
#let notavail(what, why) = block(width: 100%, inset: 10pt, radius: 3pt, fill: rgb("#fff4e5"),
  stroke: 0.6pt + rgb("#d08a2a"))[*#what: not available.* #why]
#let callout(body) = block(width: 100%, inset: 10pt, radius: 3pt, fill: rgb("#eef4fb"),
  stroke: 0.6pt + rgb("#5a8ac6"), body)
"""


# --------------------------------------------------------------------------- reading the run folder


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _read_csv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a PNG that decodes completely; None for a missing or broken file."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            if im.format != "PNG":
                return None
            im.load()
            return im.size
    except Exception:
        return None


class _Run:
    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.data = _read_json(run_dir / "data.json")
        self.prov = _read_json(run_dir / "provenance.json")
        self.profile_text = self._text(run_dir / "profile.yaml")
        self.profile = self._yaml(self.profile_text)
        self.tables = {name: _read_csv(run_dir / "tables" / f"{name}.csv")
                       for name in ("splits", "table1", "baselines", "final_metrics", "training", "noise_floor",
                                    "comparisons", "seeds", "extras")}

    @staticmethod
    def _text(path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    @staticmethod
    def _yaml(text: str | None) -> dict:
        if not text:
            return {}
        try:
            import yaml

            data = yaml.safe_load(text)
            return data if isinstance(data, dict) else {}
        except Exception:
            return {}

    @property
    def name(self) -> str:
        return str(self.profile.get("name") or self.dir.name)

    @property
    def kind(self) -> str:
        kind = self.data.get("kind")
        if kind in ("simulated", "real"):
            return kind
        data = self.profile.get("data")
        if data == "simulate":
            return "simulated"
        return "real" if data else "unknown"

    @property
    def lai_scale(self) -> float:
        try:
            return float(self.profile.get("encoding", {}).get("lai_scale", 5.0))
        except (TypeError, ValueError, AttributeError):
            return 5.0

    def final_metrics(self) -> pd.DataFrame | None:
        """Final model per set: final_metrics.csv, else the 'final' rows of table1.csv."""
        fm = self.tables["final_metrics"]
        if fm is not None and len(fm):
            return fm
        t1 = self.tables["table1"]
        if t1 is not None and "row" in t1:
            part = t1[t1["row"] == "final"]
            if len(part):
                return part
        return None


def _metric(frame: pd.DataFrame | None, key: str, value: str, col: str) -> float:
    if frame is None or key not in frame or col not in frame:
        return float("nan")
    part = frame[frame[key] == value]
    if part.empty:
        return float("nan")
    try:
        return float(part[col].iloc[0])
    except (TypeError, ValueError):
        return float("nan")


def _with_ci(frame: pd.DataFrame | None, key: str, value: str, col: str) -> str:
    """``col`` with its 95% interval (``col_lo``, ``col_hi``) as "0.612 [0.571, 0.655]"."""
    return _ci_markup(*(_metric(frame, key, value, c) for c in (col, f"{col}_lo", f"{col}_hi")))


def _ci_markup(mid: float, lo: float, hi: float) -> str:
    """Markup of a value with its interval in small print (the value alone where the interval is missing)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return fmt(mid)
    return f"{fmt(mid)} #text(size: 7pt)[\\[{fmt(lo)}, {fmt(hi)}\\]]"


def _verdicts(run: _Run, s: str) -> list[dict]:
    """Paired comparisons of the final model on test set ``s`` (tables/comparisons.csv)."""
    comp = run.tables["comparisons"]
    if comp is None or "set" not in comp:
        return []
    return comp[comp["set"] == s].to_dict("records")


def _diff_text(c: dict) -> str:
    return f"{fmt(c['diff'])} LAI [{fmt(c['diff_lo'])}, {fmt(c['diff_hi'])}]"


# --------------------------------------------------------------------------- sections


class _Doc:
    def __init__(self, run: _Run):
        self.run = run
        self.parts: list[str] = []
        self.figure_count = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def para(self, *pieces: str) -> None:
        """A paragraph of markup pieces (already escaped)."""
        self.parts.append(" ".join(pieces) + "\n\n")

    def figure(self, name: str, caption: str, max_height_cm: float = MAX_FIGURE_HEIGHT_CM) -> None:
        path = self.run.dir / "figures" / f"{name}.png"
        if not path.is_file():
            self.add(f"#notavail({typst_str(f'Figure {name}')}, [{typst_text(f'figures/{name}.png was not produced by this run.')} "
                     f"It would show: {caption}])\n\n")
            return
        size = _png_size(path)
        if size is None:
            self.add(f"#notavail({typst_str(f'Figure {name}')}, [{typst_text(f'figures/{name}.png is not a readable PNG image.')} "
                     f"It would show: {caption}])\n\n")
            return
        w, h = size
        width_cm = min(TEXT_WIDTH_CM, max_height_cm * w / h)
        self.add(f"#figure(image({typst_str('/figures/' + path.name)}, width: {width_cm:.2f}cm), "
                 f"caption: [{caption}]) <fig-{name.replace('_', '-')}>\n\n")


def _title(doc: _Doc) -> None:
    run = doc.run
    kind = run.kind
    today = dt.date.today().isoformat()
    doc.add(
        "#align(center)[\n"
        "#v(1.5cm)\n"
        "#text(size: 20pt, weight: \"bold\")[Leaf Area Index from Sentinel-1 and Sentinel-2 with U-Nets]\n\n"
        f"#text(size: 13pt)[Run report: {_raw_inline(run.name)}"
        + (f" (folder {_raw_inline(run.dir.name)})" if run.dir.name != run.name else "") + "]\n\n"
        f"#text(size: 10pt, fill: luma(80))[A reproduction of {typst_text(PAPER_AUTHORS)}, "
        f"_{typst_text(PAPER_TITLE)}_ · generated by lai {typst_text(run.prov.get('lai_version', ''))} "
        f"on {today}]\n"
        "#v(0.6cm)\n"
        "]\n\n"
    )
    data_phrase = {
        "simulated": "*simulated data* (lai's simulator, with the true LAI known everywhere)",
        "real": "*real Sentinel data*",
    }.get(kind, "*data of unknown kind* (data.json missing)")
    doc.add(f"#callout[This run used {data_phrase}. "
            + ("Its numbers measure how well the pipeline recovers a known truth; they are not comparable "
               "one-to-one with the paper's, which come from the authors' real data."
               if kind == "simulated" else
               "The paper's own data set is not distributed with it: even on real data, the triplets, regions "
               "and test sets differ from the paper's." if kind == "real" else "")
            + "]\n\n")
    doc.add("#heading(level: 2, numbering: none, outlined: false)[Abstract]\n")
    doc.para(_abstract(run))
    doc.add("#v(0.5cm)\n#outline(depth: 1, indent: auto)\n")


def _raw_inline(text) -> str:
    """Monospace text in markup; long strings (paths) may break after '/' or '_'."""
    text = str(text)
    if len(text) > 60:
        text = re.sub(r"([/_\-.])", "\\1\u200b", text)
    return f"#{_raw(text)};"


def _abstract(run: _Run) -> str:
    d = run.data
    kind = run.kind
    n, tile = d.get("triplets"), d.get("tile_size")
    scale = run.lai_scale
    pieces = [
        "U-Nets predict the Leaf Area Index (LAI) of a date _t_ from Sentinel-1 backscatter (VV, VH) at _t-2_, _t-1_ "
        "and _t_ and from Sentinel-2 LAI with its scene classification (SCL) at _t-2_ and _t-1_, so that LAI can be "
        "estimated under clouds. This report reproduces the paper's ablation (Table 1), its per-pixel baselines and "
        "its figures."
    ]
    if kind == "simulated":
        pieces.append(f"The run used *simulated* data: {_fmt_count(n)} triplets of {tile}×{tile} pixels.")
    elif kind == "real":
        pieces.append(f"The run used *real* data: {_fmt_count(n)} triplets of {tile}×{tile} pixels from "
                      f"{typst_text(d.get('source', '?'))}.")
    fm = run.final_metrics()
    bits = []
    for s in TEST_SETS:
        r, q = _metric(fm, "set", s, "rmse"), _metric(fm, "set", s, "r2")
        if math.isfinite(r):
            pr, pq = PAPER_FINAL[s]
            bits.append(f"{SET_TITLES[s].lower()}: RMSE {fmt(r)} LAI ({fmt(r / scale)} in LAI/{scale:g} units; "
                        f"paper {fmt(pr)}), R² {fmt(q)} (paper {fmt(pq)})")
    if bits:
        pieces.append("The final model reaches, per test set, " + "; ".join(bits) + ".")
    else:
        pieces.append("No metrics of the final model are available in this run folder.")
    bl = run.tables["baselines"]
    pers = _metric_b(bl, "persistence", "non_cloudy", "r2")
    if math.isfinite(pers):
        pieces.append(f"Persisting the last clear LAI reaches R² {fmt(pers)} on the non-cloudy set.")
    return " ".join(pieces)


def _metric_b(bl: pd.DataFrame | None, name: str, s: str, col: str) -> float:
    if bl is None or "baseline" not in bl:
        return float("nan")
    part = bl[(bl["baseline"].astype(str).str.lower() == name.lower()) & (bl["set"] == s)]
    return float(part[col].iloc[0]) if len(part) and col in part and pd.notna(part[col].iloc[0]) else float("nan")


def _data_section(doc: _Doc) -> None:
    run = doc.run
    d = run.data
    doc.add("= Data\n\n")
    kind = run.kind
    if kind == "simulated":
        doc.add("#callout[*Simulated data.* These triplets were generated by lai's simulator in the real on-disk "
                "layout (Sentinel-1 backscatter, Sentinel-2 LAI and SCL per date), with the true LAI at _t_ kept "
                "beside them. They are not Sentinel observations.]\n\n")
    elif kind == "real":
        doc.add("#callout[*Real data.* The triplets are Sentinel-1/Sentinel-2 observations read from the folder "
                "named below.]\n\n")
    else:
        doc.add(_note("Data description", "data.json is missing, so the kind and origin of the data are unknown."))
    if d:
        splits_cfg = run.profile.get("splits", {}) if isinstance(run.profile.get("splits"), dict) else {}
        sampling = d.get("split_sampling", splits_cfg.get("sampling"))
        if sampling == "blocks":
            block = splits_cfg.get("block_size")
            how = ("by *tile blocks*: whole blocks of neighbouring tiles"
                   + (f" ({block}×{block} tiles)" if block else "")
                   + ", over all dates, go to one set, so that no test tile has a training neighbour or a training "
                     "copy of itself at another date (stricter than the paper)")
        elif sampling == "random":
            how = ("*at random* per triplet, like the paper: test tiles may have training neighbours and training "
                   "copies of the same place at other dates, which flatters the scores")
        else:
            how = "not recorded"
        items = [
            ("Kind", "simulated" if kind == "simulated" else kind),
            ("Source folder", _raw_inline(d.get("source", "–"))),
            ("Data cube", _raw_inline(d.get("cube", "–"))),
            ("Triplets", _fmt_count(d.get("triplets", float("nan")))),
            ("Tile size", f"{d.get('tile_size', '–')} × {d.get('tile_size', '–')} pixels"),
            ("True LAI available", "yes (simulation)" if d.get("has_truth") else "no"),
            ("Test-set sampling", how),
        ]
        splits = d.get("splits") or {}
        if splits:
            items.append(("Split counts", ", ".join(f"{typst_text(k)} {_fmt_count(v)}" for k, v in splits.items())))
        skipped = d.get("skipped") or []
        items.append(("Skipped triplets", f"{len(skipped)}" + (" (invalid input files, see data.json)" if skipped else "")))
        doc.add("#table(columns: (auto, 1fr), stroke: none, inset: (x: 4pt, y: 3pt),\n"
                + ",\n".join(f"  [*{k}*], [{v}]" for k, v in items) + "\n)\n\n")
    sp = run.tables["splits"]
    if sp is not None and len(sp):
        if "split" not in sp.columns:
            sp = sp.rename(columns={sp.columns[0]: "split"})
        cols = [c for c in ("split", "triplets", "regions", "clear_past", "cloud_past", "clear_t") if c in sp]
        names = {"split": "Split", "triplets": "Triplets", "regions": "Regions", "clear_past": "Clear, t-2 & t-1",
                 "cloud_past": "Cloud, t-2 & t-1", "clear_t": "Clear at t"}
        rows = []
        for _, r in sp.iterrows():
            rows.append([_cell(r[c]) if c == "split" else _cell(_fmt_count(r[c]) if c in ("triplets", "regions")
                                                                 else fmt(r[c])) for c in cols])
        doc.add(_table([[_cell(names[c], bold=True) for c in cols]], rows,
                       ["left"] + ["right"] * (len(cols) - 1),
                       caption="Splits of the cube: triplets, regions and mean fractions of each tile that are clear "
                               "(valid SCL and finite LAI) or cloudy (SCL 8–10). _non_cloudy_ and _cloudy_ are the "
                               "paper's two cloud-stratified test sets, _unique_ the held-out areas; _buffer_ tiles are "
                               "kept out of training and testing."))
    else:
        doc.add(_note("Splits table", "tables/splits.csv is missing."))
    doc.figure("sample_maps", "Sample triplets: Sentinel-1 VV and VH backscatter (dB), Sentinel-2 LAI and its scene "
                              "classification (SCL) at _t-2_, _t-1_ and _t_. The date of _t-1_ is estimated: the file "
                              "names carry only the dates of _t-2_ and _t_. Grey LAI: missing.", max_height_cm=23)
    doc.figure("cloud_statistics", "Clear and cloud fractions of the tiles per time step and per split. The "
                                   "cloud-stratified test sets are selected on the fractions of _t-2_ and _t-1_.",
               max_height_cm=15)
    doc.figure("seasonality_encoding", "Seasonality encoding fed to the models against day of year, with the cube's "
                                       "dates as a rug (top) and their distribution per split (bottom).",
               max_height_cm=12)
    doc.figure("s1_vs_lai", "Sentinel-1 backscatter against Sentinel-2 LAI of the same date on clear pixels: single "
                            "pixels (top) and block means (bottom), with Pearson's r. Radar speckle hides much of the "
                            "relation at the pixel scale, which motivates the U-Nets' spatial context.",
               max_height_cm=15)


def _table1_section(doc: _Doc) -> None:
    run = doc.run
    t1 = run.tables["table1"]
    doc.add("= Table 1: ablation study\n\n")
    doc.para(
        "The paper's Table 1 trains six models: encoder 1 alone on Sentinel-1 (with or without the SCL masks of "
        "_t-2_ and _t-1_ and the seasonality), encoder 2 alone on the past Sentinel-2 LAI, and the final model with "
        "both encoders and a fusion decoder. RMSE is in LAI/5 units (LAI divided by 5, the paper's normalisation), "
        "R² is pooled over all pixels clear at _t_ of a test set.",
        "*The data differ from the paper's*" + (
            " (simulated here, the authors' real Sentinel data there)" if run.kind == "simulated" else
            " (other triplets, regions and test sets)")
        + ": compare the pattern across rows and test sets, not the values one by one. "
        "Bold: the best of this run's rows per test set.")
    if t1 is None or not len(t1):
        doc.add(_note("Table 1", "tables/table1.csv is missing (no Table 1 row was evaluated)."))
    else:
        t1 = t1.copy()
        rows_present = [r for r in ROWS if r in set(t1["row"])] + [r for r in dict.fromkeys(t1["row"]) if r not in ROWS]
        for col, paper_col, _label, better, cap in (
            ("rmse_norm", "paper_rmse", "RMSE", "min",
             "Table 1, RMSE in LAI/5 units (lower is better): this run next to the paper."),
            ("r2", "paper_r2", "R²", "max", "Table 1, R² (higher is better): this run next to the paper."),
        ):
            header1 = [_cell("Input", bold=True, rowspan=2), _cell("Architecture", bold=True, rowspan=2)]
            header1 += [_cell(SET_TITLES[s], bold=True, colspan=2, align="center") for s in TEST_SETS]
            header2 = [_cell(h, bold=True) for _ in TEST_SETS for h in ("this run", "paper")]
            best = {}
            for s in TEST_SETS:
                vals = t1.loc[t1["set"] == s, col].astype(float)
                if vals.notna().any():
                    best[s] = vals.min() if better == "min" else vals.max()
            rows = []
            for r in rows_present:
                label_in, arch = _row_label(t1, r)
                line = [_cell(label_in), _cell(arch)]
                for s in TEST_SETS:
                    ours = _metric(t1[t1["row"] == r], "set", s, col)
                    paper = _metric(t1[t1["row"] == r], "set", s, paper_col)
                    line += [_cell(fmt(ours), bold=math.isfinite(ours) and s in best and np.isclose(ours, best[s])),
                             _cell(fmt(paper))]
                rows.append(line)
            doc.add(_table([header1, header2], rows, ["left", "left"] + ["right"] * 6, caption=cap))
        # RMSE in LAI units and pixel counts
        header1 = [_cell("Input", bold=True, rowspan=2), _cell("Architecture", bold=True, rowspan=2),
                   _cell("RMSE (LAI) [95% interval]", bold=True, colspan=3, align="center"),
                   _cell("R² [95% interval]", bold=True, colspan=3, align="center")]
        header2 = [_cell(SET_TITLES[s], bold=True) for s in TEST_SETS] * 2
        rows = []
        for r in rows_present:
            label_in, arch = _row_label(t1, r)
            sub = t1[t1["row"] == r]
            rows.append([_cell(label_in), _cell(arch)]
                        + [f"[{_with_ci(sub, 'set', s, 'rmse')}]" for s in TEST_SETS]
                        + [f"[{_with_ci(sub, 'set', s, 'r2')}]" for s in TEST_SETS])
        pixels = ", ".join(f"{SET_PROSE[s]} {_fmt_count(_metric(t1[t1['row'] == 'final'], 'set', s, 'n_pixels'))}"
                           for s in TEST_SETS)
        doc.add(_table([header1, header2], rows, ["left", "left"] + ["right"] * 6, size="8pt",
                       caption="Table 1, RMSE of this run in LAI units (m²/m²) and R², each with its 95% bootstrap "
                               "interval over the triplets of the test set (resampling whole tiles, not pixels). "
                               f"Clear pixels scored: {pixels}. The paper gives no RMSE in LAI units."))
    doc.figure("table1_comparison", "This run's Table 1 against the paper's, per row (colour) and test set (marker); "
                                    "the dashed line marks equality. The data differ: only the patterns compare.",
               max_height_cm=12)
    doc.figure("error_by_set", "RMSE (LAI units) and R² per test set for every Table 1 row and every baseline "
                               "(hatched). Very negative R² values are clipped and printed on the bar.",
               max_height_cm=12.5)


def _row_label(t1: pd.DataFrame, row: str) -> tuple[str, str]:
    sub = t1[t1["row"] == row]
    if len(sub) and "input" in sub and "architecture" in sub:
        return str(sub["input"].iloc[0]), str(sub["architecture"].iloc[0])
    spec = ROWS.get(row)
    return (spec.label, spec.architecture) if spec else (row, "")


def _baseline_section(doc: _Doc) -> None:
    run = doc.run
    bl = run.tables["baselines"]
    fm = run.final_metrics()
    doc.add("= Baselines\n\n")
    doc.para(
        "Four baselines put the U-Nets in perspective: a multiple linear regression (*MLR*) and a random forest "
        "(*RF*) trained on single pixels with the same inputs as the U-Nets (the paper's section 4.2), "
        "*persistence* (the last clear LAI of _t-1_ or _t-2_: what a user without any model would do) and linear "
        "*extrapolation* in time from _t-2_ and _t-1_. They are scored like the U-Nets, on the pixels clear at _t_. "
        f"The paper reports for MLR R² = {fmt(PAPER_BASELINES_R2['MLR'], 4)} and for RF "
        f"R² = {fmt(PAPER_BASELINES_R2['RF'], 4)} on non-cloudy data, against 0.930 for its final model.")
    has_truth = bl is not None and "truth_rmse_cloudy" in bl and bl["truth_rmse_cloudy"].notna().any()
    if bl is None or not len(bl):
        doc.add(_note("Baseline table", "tables/baselines.csv is missing."))
    else:
        header = ["Test set", "Model", "Triplets", "RMSE (LAI) [95%]", "RMSE (LAI/5)", "R² [95%]", "Pixels"]
        if has_truth:
            header.append("RMSE under clouds (LAI)")
        rows = []
        names = [b for b in BASELINES if b in set(bl["baseline"])] + \
            [b for b in dict.fromkeys(bl["baseline"]) if b not in BASELINES]
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
                rows.append(["table.hline(stroke: 0.3pt + luma(160))"])
            for k, (name, rec, is_model) in enumerate(entries):
                line = [_cell(SET_TITLES.get(s, s), rowspan=len(entries))] if k == 0 else []
                one = pd.DataFrame([rec])
                line += [_cell(name, bold=is_model),
                        _cell(_fmt_count(rec.get("triplets", float("nan")))), f"[{_with_ci(one, 'set', s, 'rmse')}]",
                        _cell(fmt(rec.get("rmse_norm"))), f"[{_with_ci(one, 'set', s, 'r2')}]",
                        _cell(_fmt_count(rec.get("n_pixels", float("nan"))))]
                if has_truth:
                    line.append(_cell(fmt(rec.get("truth_rmse_cloudy"))))
                rows.append(line)
        align = ["left", "left"] + ["right"] * (len(header) - 2)
        doc.add(_table([[_cell(h, bold=True) for h in header]], rows, align, size="8.5pt",
                       caption="Baselines next to the final U-Net (bold), per test set. RMSE and R² on pixels clear "
                               "at _t_, with 95% bootstrap intervals over triplets." + (" Last column: RMSE against the simulation's true LAI on the pixels "
                                            "*not* clear at _t_ (clouds, shadows, no data), which real data cannot "
                                            "score." if has_truth else "")))
    doc.add("#callout[*Reading.* " + _baseline_reading(run, bl, fm) + "]\n\n")


SET_PROSE = {"non_cloudy": "non-cloudy", "cloudy": "cloudy", "unique": "unique-areas"}


def _baseline_reading(run: _Run, bl: pd.DataFrame | None, fm: pd.DataFrame | None) -> str:
    """An honest paragraph generated from the numbers: where the U-Net beats the baselines and where not."""
    if bl is None or not len(bl) or "rmse" not in bl:
        return "No baseline was evaluated in this run, so the U-Nets cannot be put in perspective here."
    out = []
    for s in TEST_SETS:
        where = f"On the {SET_PROSE[s]} set"
        verdicts = _verdicts(run, s)
        if not verdicts:
            out.append(f"{where} no paired comparison of the final U-Net was made, so no difference is resolved.")
            continue
        groups = {v: [c for c in verdicts if c["verdict"] == v] for v in ("better", "worse", "not resolved")}
        said = []
        if groups["better"]:
            said.append("the final U-Net beats " + ", ".join(f"{typst_text(c['other'])} ({_diff_text(c)})" for c in groups["better"]))
        if groups["worse"]:
            said.append("*it loses to* " + ", ".join(f"{typst_text(c['other'])} ({_diff_text(c)})" for c in groups["worse"]))
        if groups["not resolved"]:
            said.append("its difference to " + ", ".join(f"{typst_text(c['other'])} ({_diff_text(c)})" for c in groups["not resolved"])
                        + " is *not resolved* (the interval includes 0)")
        out.append(f"{where} ({verdicts[0]['triplets']} triplets) " + "; ".join(said) + ".")
    out.append("Differences are the final U-Net's RMSE minus the other model's on the same triplets, with 95% "
               "paired-bootstrap intervals; negative means the U-Net is better.")
    mlr, rf = _metric_b(bl, "MLR", "non_cloudy", "r2"), _metric_b(bl, "RF", "non_cloudy", "r2")
    if math.isfinite(mlr) or math.isfinite(rf):
        ours = f"R² = {fmt(mlr)} (MLR) and {fmt(rf)} (RF)"
        paper = f"{fmt(PAPER_BASELINES_R2['MLR'], 4)} and {fmt(PAPER_BASELINES_R2['RF'], 4)}"
        gap = float(np.nanmax([mlr - PAPER_BASELINES_R2["MLR"], rf - PAPER_BASELINES_R2["RF"]]))
        if gap > 0.2:
            why = (" The simulator may make the link between a pixel's past LAI and its LAI at _t_ simpler than in "
                   "real data." if run.kind == "simulated" else "")
            out.append(f"The per-pixel models reach {ours} on non-cloudy data, far above the paper's {paper}: here a "
                       f"pixel's own inputs already explain much of its LAI at _t_.{why} A negative R² means worse "
                       "than predicting the test set's mean LAI, which would be surprising from inputs that include "
                       "the same pixel's past LAI; the paper's baselines may have used other features or another "
                       "evaluation, and its description is too short to tell.")
        elif gap < -0.2:
            out.append(f"The per-pixel models reach {ours} on non-cloudy data, below even the paper's {paper}.")
        else:
            out.append(f"The per-pixel models reach {ours} on non-cloudy data, close to the paper's {paper}: "
                       "single pixels carry little information about LAI at _t_, here as there.")
    if "truth_rmse_cloudy" in bl and fm is not None and "truth_rmse_cloudy" in fm:
        u = _metric(fm, "set", "cloudy", "truth_rmse_cloudy")
        p = _metric_b(bl, "persistence", "cloudy", "truth_rmse_cloudy")
        if math.isfinite(u) and math.isfinite(p):
            out.append(f"Under the clouds at _t_ of the cloudy set, which only the simulation can score, the U-Net's "
                       f"RMSE against the true LAI is {fmt(u)} LAI, persistence's {fmt(p)} LAI.")
    return " ".join(out)


FLOOR_GOAL = 1.15  # the final model's non-cloudy RMSE within this factor of the noise floor


def _noise_floor_section(doc: _Doc) -> None:
    run = doc.run
    floor, t1, bl = run.tables["noise_floor"], run.tables["table1"], run.tables["baselines"]
    if run.kind != "simulated":
        return
    doc.add("= Noise floor\n\n")
    doc.para(
        "Every score above compares a prediction with the *observed* Sentinel-2 LAI at _t_, which carries its own "
        "retrieval error. On simulated data the true LAI is known, so that error can be measured: the *noise floor* "
        "of a test set is the RMSE of the observation against the true LAI on the pixels a model is scored on. A "
        "model whose RMSE against the observation equals the floor is as close to it as the observation's own noise "
        "allows; against the true LAI a model may do better than the observation. The strict rule counts only SCL "
        "4–6 (vegetation, bare soil, water) as clear, so cloud shadows (SCL 3), valid under the reference rule, "
        "drop out.")
    if floor is None or not len(floor):
        doc.add(_note("Noise floor", "tables/noise_floor.csv is missing."))
        return
    models = []
    if t1 is not None:
        models += [(ROWS[r].title if r in ROWS else r, t1[t1["row"] == r]) for r in dict.fromkeys(t1["row"])]
    if bl is not None:
        models += [(b, bl[bl["baseline"] == b]) for b in dict.fromkeys(bl["baseline"])]
    header1 = [_cell("Model", bold=True, rowspan=2)] + [_cell(SET_TITLES[s], bold=True, colspan=3, align="center")
                                                         for s in TEST_SETS]
    header2 = [_cell(h, bold=True) for _ in TEST_SETS for h in ("÷ floor", "vs truth", "strict")]
    rows = [[_cell("Noise floor (observation vs truth)", bold=True)]
            + [c for s in TEST_SETS for c in (_cell("1"), _cell(fmt(_metric(floor, "set", s, "floor_rmse"))),
                                                _cell(fmt(_metric(floor, "set", s, "floor_rmse_strict"))))]]
    for name, part in models:
        rows.append([_cell(name)] + [c for s in TEST_SETS for c in (
            _cell(fmt(_metric(part, "set", s, "floor_ratio"), 2)), _cell(fmt(_metric(part, "set", s, "truth_rmse_clear"))),
            _cell(fmt(_metric(part, "set", s, "rmse_strict"))))])
    doc.add(_table([header1, header2], rows, ["left"] + ["right"] * 9, size="8pt",
                   caption="Per test set: each model's RMSE against the observation divided by the noise floor "
                           "(÷ floor), its RMSE against the true LAI on the same clear pixels (vs truth), and its RMSE "
                           "against the observation on strictly clear pixels (strict, SCL 4–6). First line: the floor "
                           "itself, under the reference rule and (strict column) under the strict rule, in LAI."))
    ratio = _metric(t1[t1["row"] == "final"] if t1 is not None else None, "set", "non_cloudy", "floor_ratio")
    if math.isfinite(ratio):
        reached = ratio <= FLOOR_GOAL
        doc.add(f"#callout[On the non-cloudy set the final U-Net's RMSE is {fmt(ratio, 2)} times the noise floor "
                f"({fmt(_metric(floor, 'set', 'non_cloudy', 'floor_rmse'))} LAI): "
                + (f"within the goal of {FLOOR_GOAL}×." if reached else
                   f"*the goal of {FLOOR_GOAL}× is missed* by {fmt(ratio - FLOOR_GOAL, 2)}, that is "
                   f"{fmt((ratio / FLOOR_GOAL - 1) * 100, 0)}% above it.") + "]\n\n")


def _extras_section(doc: _Doc) -> None:
    extras = doc.run.tables["extras"]
    doc.add("= Beyond the paper\n\n")
    doc.para("Extra rows, never part of Table 1: the final model trained with the cloud-weighted loss (the "
             "paper's proposed remedy for cloudy inputs) and as a residual model that predicts the change from the "
             "last clear LAI, and MLR and RF without the LAI history (Sentinel-1, masks and seasonality only).")
    if extras is None or not len(extras):
        doc.para("*Not run* in this profile (`extras: false`, to keep the CPU run within its time budget); the "
                 "`paper` profile runs them.")
        return
    header = ["Row", "Test set", "RMSE (LAI) [95%]", "R² [95%]", "Final − row (LAI) [95%]", "Final is"]
    rows = []
    for r in extras.to_dict("records"):
        one = pd.DataFrame([r])
        diff = f"[{_ci_markup(*(float(r.get(k, np.nan)) for k in ('diff', 'diff_lo', 'diff_hi')))}]"
        rows.append([_cell(r["title"]), _cell(SET_TITLES.get(r["set"], r["set"])), f"[{_with_ci(one, 'set', r['set'], 'rmse')}]",
                     f"[{_with_ci(one, 'set', r['set'], 'r2')}]", diff, _cell(str(r.get("verdict", "–")))])
    doc.add(_table([[_cell(h, bold=True) for h in header]], rows, ["left", "left", "right", "right", "right", "left"],
                   size="8pt", caption="Extra rows per test set, with the paired difference of the final model's RMSE "
                                       "minus the row's (negative: the final model is better); _better_ or _worse_ "
                                       "only where the interval excludes 0."))


def _training_section(doc: _Doc) -> None:
    run = doc.run
    doc.add("= Training\n\n")
    train = run.profile.get("train", {}) if isinstance(run.profile.get("train"), dict) else {}
    if train:
        if train.get("schedule") == "plateau":
            schedule = (f"at most {train.get('epochs', '?')} epochs: the learning rate is multiplied by "
                        f"{train.get('lr_decay', '?')} after {train.get('lr_patience', '?')} epochs without a better "
                        f"validation score, and the stage stops after {train.get('patience', '?')}")
        else:
            schedule = (f"{train.get('epochs', '?')} epochs, the learning rate multiplied by "
                        f"{train.get('lr_decay', '?')} at fixed epochs ({typst_text(train.get('milestones', '?'))} "
                        "milestones: the paper's protocol)")
        doc.para(f"Each stage trains with Adam for {schedule}; batch size {train.get('batch_size', '?')}, initial "
                 f"learning rate {train.get('lr', '?')}, loss weights α = {train.get('alpha', '?')} (encoder 1) and "
                 f"β = {train.get('beta', '?')} (encoder 2) for the final model, which starts from the pre-trained "
                 "encoders of rows 3 and 5. Training batches are "
                 + ("randomly rotated by multiples of 90° and flipped. " if train.get("augment", True) else
                    "*not* augmented. ")
                 + "Each stage keeps the weights of its best validation epoch. A stage whose best epoch lies "
                 f"within its last {train.get('patience', '?')} epochs was still improving: it is marked *not "
                 "converged*, and its scores understate what longer training would give.")
    doc.figure("learning_curves", "Training loss and validation RMSE (LAI units, pixels clear at _t_) per epoch for "
                                  "each training stage; dotted lines mark learning-rate decays.", max_height_cm=9)
    tr = run.tables["training"]
    if tr is None or not len(tr):
        doc.add(_note("Training time table", "tables/training.csv is missing."))
        return
    names = {"row": "Stage", "epochs": "Epochs", "seconds": "Time (s)", "samples_per_s": "Samples/s",
             "val_rmse": "Last val. RMSE (LAI)", "final_val_rmse": "Final val. RMSE (LAI)", "best_epoch": "Best epoch",
             "best_val_rmse": "Best val. RMSE (LAI)", "converged": "Converged",
             "parameters": "Parameters", "reused": "Reused"}
    cols = list(tr.columns)
    rows = []
    for _, r in tr.iterrows():
        line = []
        for c in cols:
            v = r[c]
            if c == "row":
                line.append(_cell(ROWS[str(v)].title if str(v) in ROWS else str(v)))
            elif c == "converged":
                line.append("[yes]" if str(v) == "True" else "[*not converged*]")
            elif c in ("seconds", "samples_per_s"):
                line.append(_cell(fmt(v, 1)))
            elif c in ("epochs", "parameters"):
                line.append(_cell(_fmt_count(v)))
            elif isinstance(v, (float, np.floating)):
                line.append(_cell(fmt(v)))
            else:
                line.append(_cell(str(v)))
        rows.append(line)
    total = pd.to_numeric(tr["seconds"], errors="coerce").sum() if "seconds" in tr else float("nan")
    device = run.prov.get("device")
    doc.add(_table([[_cell(names.get(c, c.replace("_", " ")), bold=True) for c in cols]], rows,
                   ["left"] + ["right"] * (len(cols) - 1),
                   caption="Training time per stage" + (f" on {typst_text(device)}" if device else "")
                           + (f"; {fmt(total / 60, 1)} minutes in all." if math.isfinite(total) else ".")))
    _seeds_part(doc, train)


def _seeds_part(doc: _Doc, train: dict) -> None:
    seeds = doc.run.tables["seeds"]
    n = train.get("seeds", 1)
    if seeds is None or not len(seeds):
        doc.add(_note("Seed table", "tables/seeds.csv is missing."))
        return
    if n == 1:
        doc.para("This profile trains the final model with *one* seed (`train.seeds = 1`, chosen to keep the run "
                 "within its time budget on a CPU), so the spread over training seeds is not measured here; the "
                 "`paper` profile trains three. The bootstrap intervals cover the choice of test triplets, not "
                 "the training seed.")
        return
    rows = [[_cell(SET_TITLES.get(r["set"], r["set"])), _cell(_fmt_count(r["seeds"])), _cell(fmt(r["rmse_mean"])),
             _cell(fmt(r["rmse_std"])), _cell(f"{fmt(r['rmse_min'])} – {fmt(r['rmse_max'])}"), _cell(fmt(r["r2_mean"]))]
            for r in seeds.to_dict("records")]
    doc.add(_table([[_cell(h, bold=True) for h in ("Test set", "Seeds", "RMSE mean", "RMSE s.d.", "RMSE range",
                                                    "R² mean")]], rows, ["left"] + ["right"] * 5,
                   caption=f"The final model fine-tuned with {n} training seeds from the same pre-trained encoders: "
                           "spread of its test scores (LAI). Table 1 shows the first seed."))


def _conclusions_section(doc: _Doc) -> None:
    """What the run shows, read from the intervals: the goals, convergence, seeds and the extra rows."""
    run = doc.run
    doc.add("= What this run shows\n\n")
    items = []
    for s in ("non_cloudy", "cloudy"):
        verdicts = {c["other"]: c for c in _verdicts(run, s)}
        for other in ("persistence", "MLR", "RF"):
            c = verdicts.get(other)
            if c is None:
                items.append(f"{SET_TITLES[s]}, final U-Net against {other}: not compared in this run.")
                continue
            word = {"better": "*beats*", "worse": "*loses to*", "not resolved": "is *not resolved* against"}[c["verdict"]]
            items.append(f"{SET_TITLES[s]}: the final U-Net {word} {other}, RMSE difference {_diff_text(c)}.")
    t1, floor = run.tables["table1"], run.tables["noise_floor"]
    ratio = _metric(t1[t1["row"] == "final"] if t1 is not None else None, "set", "non_cloudy", "floor_ratio")
    if math.isfinite(ratio):
        items.append(f"Non-cloudy: the final U-Net's RMSE is {fmt(ratio, 2)}× the noise floor of "
                     f"{fmt(_metric(floor, 'set', 'non_cloudy', 'floor_rmse'))} LAI (goal: at most {FLOOR_GOAL}×).")
    tr = run.tables["training"]
    if tr is not None and "converged" in tr:
        late = [str(r) for r, c in zip(tr["row"], tr["converged"]) if str(c) != "True"]
        items.append("Not converged (validation still improving at the end): " + ", ".join(typst_text(r) for r in late) + "."
                     if late else "Every training stage converged: validation had stopped improving before its end.")
    extras = run.tables["extras"]
    items.append("Extra rows beyond the paper (cloud-weighted loss, residual model, baselines without the LAI "
                 "history): " + ("see their table." if extras is not None and len(extras) else
                                 "*not run* in this profile (`extras: false`); the `paper` profile runs them."))
    doc.add("".join(f"- {i}\n" for i in items) + "\n")
    doc.para("A difference counts as resolved only where its 95% paired-bootstrap interval over test triplets "
             "excludes 0.")


def _results_section(doc: _Doc) -> None:
    run = doc.run
    doc.add("= The final model\n\n")
    fm = run.final_metrics()
    if fm is None:
        doc.add(_note("Final metrics", "tables/final_metrics.csv is missing."))
    else:
        truth = "truth_rmse_cloudy" in fm and fm["truth_rmse_cloudy"].notna().any()
        header = ["Test set", "Triplets", "RMSE (LAI)", "RMSE (LAI/5)", "R²", "Pixels"] + (
            ["RMSE under clouds (LAI)"] if truth else [])
        rows = []
        for s in [x for x in TEST_SETS if x in set(fm["set"])] + [x for x in dict.fromkeys(fm["set"]) if x not in TEST_SETS]:
            rec = fm[fm["set"] == s].iloc[0]
            line = [_cell(SET_TITLES.get(s, s)), _cell(_fmt_count(rec.get("triplets", float("nan")))),
                    _cell(fmt(rec.get("rmse"))), _cell(fmt(rec.get("rmse_norm"))), _cell(fmt(rec.get("r2"))),
                    _cell(_fmt_count(rec.get("n_pixels", float("nan"))))]
            if truth:
                line.append(_cell(fmt(rec.get("truth_rmse_cloudy"))))
            rows.append(line)
        doc.add(_table([[_cell(h, bold=True) for h in header]], rows, ["left"] + ["right"] * (len(header) - 1),
                       caption="Final model (both encoders and the fusion decoder) per test set, on the pixels clear "
                               "at _t_." + (" Last column: RMSE against the simulation's true LAI on the pixels not "
                                            "clear at _t_." if truth else "")))
    doc.figure("density", "Predicted against observed LAI at _t_ on the pixels clear at _t_, one panel per test set "
                          "(log colour scale); dashed: the 1:1 line.", max_height_cm=8)
    doc.figure("truth_vs_prediction_maps",
               "Ground truth and predictions of LAI at _t_ in the style of the paper's Fig. 3. Left: the observed "
               "Sentinel-2 LAI, grey and hatched where _t_ is not clear (clouds, shadows, no data); then the "
               "prediction" + (", the simulation's true LAI and the error against it, also under the clouds."
                               if run.kind == "simulated" else ", and its error on the clear pixels."),
               max_height_cm=21)


def _provenance_section(doc: _Doc) -> None:
    run = doc.run
    prov = run.prov
    doc.add("= Provenance\n\n")
    if not prov:
        doc.add(_note("Provenance", "provenance.json is missing."))
    else:
        keys = [k for k, v in prov.items() if not isinstance(v, (dict, list))]
        labels = {"lai_version": "lai version", "git_revision": "git revision", "git_dirty": "uncommitted changes",
                  "data_fingerprint": "data fingerprint"}
        items = []
        for k in keys:
            v = prov[k]
            text = ("yes" if v else "no") if isinstance(v, bool) else str(v)
            items.append(f"  [*{typst_text(labels.get(k, k.replace('_', ' ')))}*], [{_raw_inline(text)}]")
        fp = run.data.get("fingerprint")
        if fp and "data_fingerprint" not in prov:
            items.append(f"  [*data fingerprint*], [{_raw_inline(fp)}]")
        doc.add("#table(columns: (auto, 1fr), stroke: none, inset: (x: 4pt, y: 3pt),\n" + ",\n".join(items) + "\n)\n\n")
        packages = prov.get("packages") or {}
        if isinstance(packages, dict) and packages:
            pairs = sorted(packages.items())
            half = math.ceil(len(pairs) / 2)
            left, right = pairs[:half], pairs[half:]
            rows = []
            for i in range(half):
                line = [_cell(left[i][0]), _cell(str(left[i][1]))]
                line += [_cell(right[i][0]), _cell(str(right[i][1]))] if i < len(right) else ['""', '""']
                rows.append(line)
            doc.add(_table([[_cell(h, bold=True) for h in ("Package", "Version", "Package", "Version")]], rows,
                           ["left", "left", "left", "left"], caption="Package versions of the run."))
    if run.profile_text:
        left, right = _yaml_columns(run.profile, run.profile_text)
        doc.add("== Configuration (profile.yaml)\n\n")
        doc.add("#block(width: 100%, inset: 8pt, fill: luma(246), radius: 3pt)[\n"
                "#set text(size: 8pt)\n#set par(justify: false)\n"
                f"#grid(columns: (1fr, 1fr), gutter: 12pt, {_raw(left, lang='yaml', block=True)}, "
                f"{_raw(right, lang='yaml', block=True)})\n]\n")
    else:
        doc.add(_note("Configuration", "profile.yaml is missing."))


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


def build_source(run_dir: str | Path) -> str:
    """The Typst source of the report of ``run_dir`` (image paths relative to the run folder)."""
    run = _Run(Path(run_dir))
    doc = _Doc(run)
    preamble = PREAMBLE.replace("TITLE", typst_str(f"LAI run report: {run.name}")).replace(
        "HEADER", f"{typst_str('lai run report: ' + run.name + ' (' + run.kind + ' data)')}")
    doc.add(preamble)
    _title(doc)
    for section, title in SECTIONS:
        mark = len(doc.parts)
        try:
            section(doc)
        except Exception as err:  # a malformed artefact costs one section, not the report
            del doc.parts[mark:]
            doc.add(f"= {title}\n\n")
            doc.add(_note(f"Section '{title}'", f"it could not be built from this run's artefacts "
                                                f"({type(err).__name__}: {err})."))
    return "".join(doc.parts)


SECTIONS = (
    (_conclusions_section, "What this run shows"),
    (_data_section, "Data"),
    (_table1_section, "Table 1: ablation study"),
    (_baseline_section, "Baselines"),
    (_noise_floor_section, "Noise floor"),
    (_extras_section, "Beyond the paper"),
    (_training_section, "Training"),
    (_results_section, "The final model"),
    (_provenance_section, "Provenance"),
)


def _compile(source: Path, output: Path, root: Path) -> None:
    import typst

    typst.compile(str(source), output=str(output), root=str(root))


def write_report(run_dir: str | Path) -> Path:
    """Build ``run_dir/report.pdf`` (and its Typst source ``report.typ``); return the PDF's path.

    The PDF is compiled under a temporary name and renamed into place: if Typst fails,
    :class:`ReportError` is raised and no new report.pdf appears (an older one is left untouched).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    source = atomic_write_text(run_dir / "report.typ", build_source(run_dir))
    out = run_dir / "report.pdf"
    tmp = run_dir / f".report.pdf.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            _compile(source, tmp, run_dir)
        except Exception as err:  # typst.TypstError and friends
            message = re.sub(r"\s+\n", "\n", str(err)).strip()
            raise ReportError(f"Typst could not typeset {source}: {message}") from err
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise ReportError(f"Typst produced no PDF for {source}")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
