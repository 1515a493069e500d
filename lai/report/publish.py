"""Copy what a run folder shows (report, tables, figures, configuration) to a folder kept in version control,
without cubes, weights or executed notebooks: ``reports/reference/`` holds the ``standard`` profile's run
(``make reference``)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from lai.io import (
    LARGE_RECORD_BYTES,
    RECORD_BYTES,
    ForeignOutputError,
    atomic_write_bytes,
    atomic_write_text,
    check_outside,
    output_lock,
    own_subfolder,
    read_csv_record,
    read_record,
)
from lai.report.inputs import RERUN, ReportError, read_json

# what is published: files at the run folder's top, and the files of its subfolders matching a pattern
PUBLISHED_FILES = ("report.pdf", "report.json", "profile.yaml", "provenance.json")
PUBLISHED_GLOBS = (("tables", "*.csv"), ("figures", "*.png"))
INDEX = "README.md"
RECORD = ".lai-published"  # the files the last publish wrote (JSON, "files": relative paths): the only ones it replaces


def _earlier(dest: Path) -> list[str] | None:
    """The files an earlier publish into ``dest`` wrote (its record), or None where none recorded them (a new folder,
    or one published before the record existed)."""
    path = dest / RECORD
    if not (path.exists() or path.is_symlink()):
        return None
    record = (read_json(path) or {}).get("files") if path.is_file() and not path.is_symlink() else None
    if not isinstance(record, list) or not all(isinstance(name, str) for name in record):
        raise ReportError(f"{path} is not the list of files lai publish writes there; remove the folder's results by "
                          "hand, or publish elsewhere")
    return record


def _foreign(dest: Path, ours: set[str], earlier: list[str] | None) -> list[str]:
    """Files in ``dest``'s tables/ and figures/ that this publish would replace or delete but no earlier publish
    recorded writing: a user's. Without a record (published before it existed), files this run also has count as
    lai's, as they were then treated."""
    found = [str(p.relative_to(dest)) for sub, pattern in PUBLISHED_GLOBS for p in sorted((dest / sub).glob(pattern))]
    return [name for name in found if name not in (earlier or ()) and (earlier is not None or name not in ours)]


def _durations(run_dir: Path) -> dict[str, float]:
    """Seconds each executed notebook took (papermill's record in notebooks/*.ipynb); a notebook or a duration
    that cannot be read is a ReportError naming the notebook."""
    out = {}
    for nb in sorted((run_dir / "notebooks").glob("*.ipynb")):
        meta = read_json(nb, LARGE_RECORD_BYTES).get("metadata")
        papermill = meta.get("papermill") if isinstance(meta, dict) else None
        seconds = papermill.get("duration") if isinstance(papermill, dict) else None
        if seconds is None:
            continue
        try:
            out[nb.name] = float(seconds)
        except (TypeError, ValueError):
            raise ReportError(f"{nb}: papermill's duration is {str(seconds)[:40]!r}, not a number of seconds; rerun the "
                              "pipeline (lai run)") from None
    return out


def _training_time(run_dir: Path) -> str:
    """How long the training stages took when they were trained (tables/training.csv), which a rerun that reuses
    them does not repeat: the notebook times below can then be far shorter."""
    import pandas as pd

    path = run_dir / "tables" / "training.csv"
    try:
        stages = read_csv_record(path, ReportError, RERUN)
        total = float(pd.to_numeric(stages["seconds"], errors="coerce").sum())
    except (ReportError, KeyError):
        return "Training time: tables/training.csv has no `seconds` column."
    return (f"The {len(stages)} training stages took {total / 60:.0f} min when they were trained (tables/training.csv, "
            "`seconds`); a rerun reuses trained stages, so the notebook times below count only what that invocation did.")


def _read_sources(run_dir: Path) -> dict[Path, bytes]:
    """The contents of every file publish copies from ``run_dir``, each checked as a run-folder record (a regular
    file under its size limit), so that a bad one is refused before anything is copied."""
    sources = [run_dir / name for name in PUBLISHED_FILES]
    sources += [p for sub, pattern in PUBLISHED_GLOBS for p in sorted((run_dir / sub).glob(pattern))]
    return {src: read_record(src, ReportError, RERUN, LARGE_RECORD_BYTES if src.suffix in (".pdf", ".png") else RECORD_BYTES)
            for src in sources}


def publish(run_dir: str | Path, dest: str | Path, command: str) -> Path:
    """Copy the results of ``run_dir`` into ``dest`` (a folder lai made, or a new one), replacing what an earlier
    publish wrote there, and write ``dest/README.md``: the ``command`` that made the run, when and on what machine
    (provenance.json), and how long each notebook took."""
    run_dir, dest = Path(run_dir), Path(dest)
    missing = [name for name in PUBLISHED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ReportError(f"{run_dir} lacks {', '.join(missing)}: finish the run (lai run) before publishing it")
    check_outside(dest, run_dir, "run folder", "the published results")
    if run_dir.resolve().is_relative_to(dest.resolve()):
        raise ForeignOutputError(f"{run_dir} lies inside the destination {dest}; publish into a folder outside the run")
    prov, seconds = read_json(run_dir / "provenance.json"), _durations(run_dir)  # read before anything is copied
    contents = _read_sources(run_dir)
    with output_lock(dest, folder=None):  # lai's marker, or a new or empty folder: a README.md alone proves nothing
        for sub, _ in PUBLISHED_GLOBS:  # never through a link: files there are deleted and replaced
            own_subfolder(dest, sub)
        ours = {str(p.relative_to(run_dir)) for p in contents}
        foreign = _foreign(dest, ours, _earlier(dest))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise ForeignOutputError(f"{dest} holds {shown}, which no earlier lai publish wrote there; lai replaces and "
                                     "deletes only its own files: move them, or publish elsewhere")
        for sub, pattern in PUBLISHED_GLOBS:  # files of an earlier publish that this run no longer has
            for old in (dest / sub).glob(pattern):
                if str(old.relative_to(dest)) not in ours:
                    old.unlink()
        for src, data in contents.items():
            atomic_write_bytes(dest / src.relative_to(run_dir), data)
        lines = [f"# Reference results: the `{run_dir.name}` run", "",
                 f"Regenerate with `{command}` (then commit this folder). Published {dt.date.today().isoformat()}; run "
                 f"at git revision {prov.get('git_revision', '?')}{' (with uncommitted changes)' if prov.get('git_dirty') else ''} "
                 f"on {prov.get('device', '?')}, {prov.get('platform', '?')}; package versions in provenance.json.",
                 "", _training_time(run_dir), "",
                 "Notebook | seconds (this invocation)", "--- | ---", *[f"{name} | {s:.0f}" for name, s in seconds.items()],
                 f"all | {sum(seconds.values()):.0f}", "",
                 "report.pdf is the report; tables/ and figures/ are the run's, as the report read them. No cubes, "
                 "weights or executed notebooks are kept here."]
        atomic_write_text(dest / INDEX, "\n".join(lines) + "\n")
        atomic_write_text(dest / RECORD, json.dumps({"files": sorted(ours)}, indent=1) + "\n")
    return dest
