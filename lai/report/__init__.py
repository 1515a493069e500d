"""The PDF report of one run folder: numbers and sentences from Python, layout in a Typst template.

:func:`write_report` reads what the pipeline left in ``reports/<run>/`` (profile.yaml,
provenance.json, data.json, ``tables/<name>.csv`` for the names of ``lai.facts.REPORT_TABLES`` and
``figures/<name>.png`` for those of ``lai.facts.FIGURE_NAMES``), decides the generated sentences (verdicts,
comparisons, warnings), formats the numbers and writes them all as ``report.json``. The
layout lives in ``lai/report.typ``, which reads that JSON with Typst's ``json()``; the
``typst`` package compiles it offline into ``report.pdf``. No Typst markup is produced here:
text is plain strings or lists of runs (:func:`strong`, :func:`emph`, :func:`mono`,
:func:`small`), so names and paths are printed as they are, without escaping.

What may be missing, and then shows as a plain "not available" note: a table, figure or
record file the run did not write (a stage that was not run, such as ``extras: false``). An
artefact that is present but unreadable, lacks the columns the report reads or holds a value of the wrong kind in one
(``lai.facts.REPORT_VALUES``) raises :class:`ReportError` naming the file; an error in the code that builds a section propagates.
A test set without triplets is named at the top of the report, and a score that is exactly
perfect (RMSE 0 or R² 1) is flagged there as suspicious.

Modules: :mod:`lai.report.text` (runs of text, cells, tables, numbers), :mod:`lai.report.inputs` (reading
the run folder), :mod:`lai.report.prose` and :mod:`lai.report.results` (the sections); here the sections
are gathered into report.json and Typst compiles the PDF.
"""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from lai.facts import REPORT_DATA_FILE, REPORT_FILE, require_results
from lai.io import atomic_path, atomic_write_text, output_lock, remove_stale_partials
from lai.report import prose, results
from lai.report.inputs import REPORTED_FILES, ReportError, Run, read_json, result_digests
from lai.report.text import (
    cell,
    emph,
    fmt,
    fmt_bound,
    fmt_interval,
    join,
    mono,
    plain,
    rich,
    small,
    strong,
    table,
    unavailable,
)

__all__ = [
    "SECTIONS",
    "TEMPLATE",
    "ReportError",
    "build_data",
    "conclusions_text",
    "cell",
    "emph",
    "fmt",
    "fmt_bound",
    "fmt_interval",
    "join",
    "mono",
    "rich",
    "render",
    "small",
    "strong",
    "table",
    "template_source",
    "unavailable",
    "write_report",
]

TEMPLATE = "report.typ"  # the layout, shipped inside the package


# Sections of report.json, each built from the run folder by one function; the template lays them out.
_BUILDERS = {**prose.SECTIONS, **results.SECTIONS}
SECTIONS = {key: _BUILDERS[key] for key in (
    "title", "warnings", "abstract", "conclusions", "data", "table1", "baselines", "noise_floor", "extras", "extras_rows",
    "extras_pending", "training", "results", "large_errors", "uncertainty", "real_patches", "provenance", "figures")}


# control characters (terminal escapes, bell) and bidirectional overrides (U+202A-E, U+2066-9): never printed
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _printable(obj):
    """``obj`` with every string cleared of :data:`_UNPRINTABLE` characters (a file name or a value read from the
    run folder reaches the PDF as text, never as a control sequence or a reordering of what follows)."""
    if isinstance(obj, str):
        return _UNPRINTABLE.sub("", obj)
    if isinstance(obj, dict):
        return {k: _printable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_printable(v) for v in obj]
    return obj


def build_data(run_dir: str | Path) -> dict:
    """Everything the template prints for ``run_dir``, as JSON-ready data (no markup, no control characters)."""
    run = Run(Path(run_dir))
    return _printable({"kind": run.kind, **{key: build(run) for key, build in SECTIONS.items()}})


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
    require_results(run_dir, "report", ReportError)
    out, data_path = run_dir / REPORT_FILE, run_dir / REPORT_DATA_FILE
    with output_lock(out):
        remove_stale_partials(data_path)
        data = {**build_data(run_dir), REPORTED_FILES: result_digests(run_dir)}  # what lai publish checks it copies
        atomic_write_text(data_path, json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False))
        _render(run_dir, out)
    return out


def conclusions_text(run_dir: str | Path) -> str:
    """The report's "What this run shows" as plain text, one item per line (from report.json, as the PDF prints it):
    what notebook 05 displays, so that its committed output holds the report's sentences and numbers."""
    data = read_json(Path(run_dir) / REPORT_DATA_FILE)
    items = data.get("conclusions") if isinstance(data, dict) else None
    return "\n".join(f"- {plain(item)}" for item in items or [])


def render(folder: str | Path) -> Path:
    """Compile ``folder/report.pdf`` again from the ``report.json`` and figures already there, with this version's
    template: the same numbers and sentences, this version's layout (e.g. a published reference folder, whose run
    folder is gone, after a change of wording in the template). Return the PDF's path."""
    folder = Path(folder)
    if not (folder / REPORT_DATA_FILE).is_file():
        raise ReportError(f"{folder} holds no {REPORT_DATA_FILE}: nothing to render (write_report builds it from a run folder)")
    out = folder / REPORT_FILE
    with output_lock(out):
        _render(folder, out)
    return out


def _render(folder: Path, out: Path) -> None:
    """Typeset ``folder/report.json`` into ``out`` atomically (no new PDF where Typst fails)."""
    with atomic_path(out) as tmp:
        try:
            _compile(template_source(), tmp, folder.resolve(), f"/{REPORT_DATA_FILE}")
        except Exception as err:  # typst.TypstError and friends: re-raised with the diagnostic
            message = re.sub(r"\s+\n", "\n", str(err)).strip()
            raise ReportError(f"Typst could not typeset the report of {folder} (template lai/{TEMPLATE}, "
                              f"data {folder / REPORT_DATA_FILE}): {message}") from err
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise ReportError(f"Typst produced no PDF for {folder}")

