"""The report's text as data: runs of styled text, cells, tables and numbers formatted for print.

No Typst markup is produced: text is plain strings or lists of runs (:func:`strong`, :func:`emph`,
:func:`mono`, :func:`small`), so names and paths are printed as they are, without escaping; the
template ``lai/report.typ`` lays them out.
"""
from __future__ import annotations

import math

import numpy as np

MINUS = "\u2212"


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


def plain(runs) -> str:
    """The text of rich runs (:func:`rich`) without their styles."""
    if isinstance(runs, dict):
        return str(runs.get("text", ""))
    if isinstance(runs, (list, tuple)):
        return "".join(plain(r) for r in runs)
    return "" if runs is None else str(runs)


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


HUGE = 1e9  # numbers of this magnitude and more print in scientific notation ("1.000e+308"), not as hundreds of digits


def _huge(x: float, digits: int) -> str:
    text = f"{abs(x):.{digits}e}"
    return MINUS + text if x < 0 else text


def fmt(value, digits: int = 3) -> str:
    """Numbers for tables: floats to ``digits`` decimals with a true minus sign, ints with separators,
    magnitudes from :data:`HUGE` in scientific notation, missing values as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        x = float(value)
    except OverflowError:  # an int beyond any float
        return "–"
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "–"
    if abs(x) >= HUGE:
        return _huge(x, digits)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    text = f"{x:.{digits}f}"
    return text.replace("-", MINUS) if x < 0 and float(text) != 0 else text.lstrip("-")


def fmt_bound(value, digits: int = 3, nominal: float = 0.0) -> str:
    """An interval's bound: :func:`fmt`, except that a bound which is not ``nominal`` (the value its interval is
    judged against: 0 for a difference, 0.95 for a 95 % coverage) never prints as it: where ``digits`` decimals would
    round it to ``nominal``, it gets two significant digits of its distance to it (-0.00015 prints as −0.00015, not
    0.000; a coverage bound of 0.9495 as 0.94950, not 0.950)."""
    text = fmt(value, digits)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return text
    if (isinstance(value, (bool, np.bool_, int, np.integer)) or not math.isfinite(x) or x == nominal
            or float(f"{x:.{digits}f}") != round(nominal, digits)):
        return text
    return fmt(x, 1 - math.floor(math.log10(abs(x - nominal))))


def fmt_interval(lo, hi, digits: int = 3, nominal: float = 0.0) -> str:
    """"[lo, hi]" with :func:`fmt_bound` (``nominal``: the value the interval is judged against)."""
    return f"[{fmt_bound(lo, digits, nominal)}, {fmt_bound(hi, digits, nominal)}]"


def fmt_count(value) -> str:
    try:
        x = float(value)
    except OverflowError:
        return "–"
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "–"
    return _huge(x, 3) if abs(x) >= HUGE else f"{int(round(x)):,}"


def fmt_share(value, digits: int = 0) -> str:
    """A share as a percentage to ``digits`` decimals ("37.5%"); a missing one as an en dash."""
    text = fmt(value, digits + 2)
    return text if text == "–" else f"{float(value):.{digits}%}"
