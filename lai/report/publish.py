"""Copy what a run folder shows (report, tables, figures, configuration) to a folder kept in version control,
without cubes, weights or executed notebooks: ``reports/reference/`` holds the ``standard`` profile's run
(``make reference``)."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path
from typing import BinaryIO

from lai.errors import shorten
from lai.facts import (
    DATA_FOLDER,
    FIGURES,
    PUBLISHED_RECORD,
    REPORT_DATA_FILE,
    REPORT_FILE,
    REPORTS_FOLDER,
    RUN_DATA_FILE,
    RUN_PROFILE_FILE,
    RUN_PROVENANCE_FILE,
    TABLE,
    TABLES,
    result_file,
)
from lai.io import (
    FOLDER_MARK,
    ForeignOutputError,
    atomic_path,
    atomic_write_text,
    check_outside,
    is_partial,
    output_lock,
    own_subfolder,
    reading_lock,
)
from lai.records import LARGE_RECORD_BYTES, NOT_A_FILE, open_record, read_csv_record, read_json_record
from lai.report.inputs import (
    REPORTED_FILES,
    RERUN,
    RESULT_GLOBS,
    ReportError,
    decoded_png_size,
    read_json,
    result_files,
    trained_by,
)
from lai.report.prose import printed_provenance

# what is published: files at the run folder's top, and the schema's tables and figures (lai.facts), no other file
PUBLISHED_FILES = (REPORT_FILE, REPORT_DATA_FILE, RUN_PROFILE_FILE, RUN_PROVENANCE_FILE)
SCHEMA = {result_file("table", name) for name in TABLES} | {result_file("figure", name) for name in FIGURES}
PUBLISH_BYTES = 512 * 2**20  # all files together: a folder kept in git (reports/reference holds about 7 MB)
MAX_SECONDS = 10**9  # a notebook's or a training stage's duration: about 30 years
INDEX = "README.md"
# PUBLISHED_RECORD (lai.facts), in the destination: the files publish wrote (JSON, "files": relative paths), the only
# ones it replaces, and "finished": false while it writes them (the record is written first, listing what was there
# and what comes, so an interrupted publish leaves nothing unrecorded)
ELSEWHERE = "remove the folder (or the files lai published there) by hand, or publish elsewhere"


def _few(names: list[str]) -> str:
    """Up to five ``names``, and how many more."""
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _earlier(dest: Path) -> list[str] | None:
    """The files an earlier publish into ``dest`` wrote or was writing (its record), or None where there is no record.
    A record of an earlier lai (no "finished", written last) implies the README.md written before it."""
    path = dest / PUBLISHED_RECORD
    if not (path.exists() or path.is_symlink()):
        return None
    record = read_json_record(path, ReportError, ELSEWHERE) if path.is_file() and not path.is_symlink() else None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise ReportError(f"{path} is not the list of files lai publish writes there; {ELSEWHERE}")
    return files if "finished" in record else [*files, INDEX]


def _check_dest(dest: Path, earlier: list[str] | None) -> None:
    """Refuse ``dest`` unless each file there that publish replaces or deletes is in the record of an earlier publish.
    Without a record ``dest`` may hold nothing but lai's marker: another folder lai made (a run folder, a training
    stage) holds that marker too."""
    held = sorted(p.name for p in dest.iterdir() if p.name != FOLDER_MARK)
    if earlier is None and held:
        raise ForeignOutputError(f"{dest} holds {_few(held)} but no {PUBLISHED_RECORD}: it is a folder lai made for something "
                                 "else (a run folder or a training stage?), not one lai publish wrote; publish into a "
                                 "new or empty folder")
    for sub, _ in RESULT_GLOBS:  # never through a link: files there are deleted and replaced
        own_subfolder(dest, sub)
    foreign = [name for name in [*(n for n in (*PUBLISHED_FILES, INDEX) if n in held), *result_files(dest)]
               if name not in (earlier or ())]
    if foreign:
        raise ForeignOutputError(f"{dest} holds {_few(foreign)}, which no earlier lai publish wrote there; lai replaces "
                                 "and deletes only its own files: move them, or publish elsewhere")
    replaced = {*PUBLISHED_FILES, INDEX, *result_files(dest)}
    for name in [n for n in earlier or () if n in replaced]:  # replaced or deleted: only as the file lai wrote there
        path = dest / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            what = "is a symbolic link" if path.is_symlink() else NOT_A_FILE
            raise ForeignOutputError(f"{path} {what}, where an earlier lai publish wrote a file ({PUBLISHED_RECORD} lists it); "
                                     "lai replaces and deletes only its own files: move it, or publish elsewhere")


def _durations(run_dir: Path) -> dict[str, float]:
    """Seconds each executed notebook took (papermill's record in notebooks/*.ipynb); a notebook or a duration
    that cannot be read (not a number from 0 to MAX_SECONDS) is a ReportError naming the notebook."""
    out = {}
    for nb in sorted(p for p in (run_dir / "notebooks").glob("*.ipynb") if not is_partial(p)):  # not a killed run's
        meta = read_json(nb, LARGE_RECORD_BYTES).get("metadata")
        papermill = meta.get("papermill") if isinstance(meta, dict) else None
        seconds = papermill.get("duration") if isinstance(papermill, dict) else None
        if seconds is None:
            continue
        try:
            value = math.nan if isinstance(seconds, bool) else float(seconds)
        except (TypeError, ValueError):
            value = math.nan
        if not 0 <= value <= MAX_SECONDS:  # NaN and inf included
            raise ReportError(f"{nb}: papermill's duration is {str(seconds)[:40]!r}, not a number of seconds (0 to "
                              f"{MAX_SECONDS:,.0f}); rerun the pipeline (lai run)")
        out[nb.name] = value
    return out


def _training_time(run_dir: Path) -> str:
    """How long the training stages took when they were trained (tables/training.csv), which a rerun that reuses
    them does not repeat: the notebook times below can then be far shorter."""
    import pandas as pd

    path = run_dir / result_file("table", TABLE.training)
    try:
        stages = read_csv_record(path, ReportError, RERUN)
        seconds = pd.to_numeric(stages["seconds"], errors="coerce")
    except (ReportError, KeyError):
        return "Training time: tables/training.csv has no `seconds` column."
    if not seconds.between(0, MAX_SECONDS).all():  # text, NaN, negative or huge: no sum (nor numpy's overflow warning)
        return f"Training time: unknown (tables/training.csv, `seconds`, holds values that are not 0 to {MAX_SECONDS:,.0f})."
    by = "; ".join(f"{n} at git revision {_plain(at)} on {_plain(on)}" for at, on, n in trained_by(stages))
    return (f"The {len(stages)} training stages took {float(seconds.sum()) / 60:.0f} min when they were trained "
            f"(tables/training.csv, `seconds`{f'; trained {by}' if by else ''}); a rerun reuses trained stages, so "
            "the notebook times below count only what that invocation did, and the revision above is the one that "
            "wrote the report.")


def _open_sources(run_dir: Path, stack: contextlib.ExitStack) -> tuple[dict[str, BinaryIO], dict[str, int]]:
    """Every file publish copies from ``run_dir`` (relative name: open file) and its size, refused before anything is
    read or copied unless it is a regular file (no link is followed), a name of the run folder's schema, a PNG where a
    figure, and all together within PUBLISH_BYTES."""
    for sub, _ in RESULT_GLOBS:  # read through no link either
        if (run_dir / sub).is_symlink():
            raise ReportError(f"{run_dir / sub} is a symbolic link, which lai publish does not follow: a run folder's "
                              f"{sub}/ is the folder lai made there")
    found = result_files(run_dir)
    unknown = [name for name in found if name not in SCHEMA]
    if unknown:  # a user's own table or figure in the run folder: left where it is, and said
        print(f"lai publish: not published, not in the run folder's schema (lai.facts: TABLES, FIGURES): {_few(unknown)}",
              file=sys.stderr)
    names = [*PUBLISHED_FILES, *(name for name in found if name in SCHEMA)]
    files = {name: stack.enter_context(open_record(run_dir / name, ReportError, RERUN, follow=False)) for name in names}
    sizes = {name: os.fstat(f.fileno()).st_size for name, f in files.items()}
    if sum(sizes.values()) > PUBLISH_BYTES:
        largest = max(sizes, key=sizes.get)
        raise ReportError(f"{run_dir}: the files to publish hold {sum(sizes.values()):,} bytes (the largest, {largest}, "
                          f"{sizes[largest]:,}), more than the {PUBLISH_BYTES:,} a folder kept in git may have (lai's are a few MB): "
                          "check those files")
    for name in names:  # a figure that does not decode completely is no figure (within PUBLISH_BYTES, checked above)
        if name.endswith(".png"):
            decoded_png_size(files[name].read(sizes[name]), run_dir / name)
            files[name].seek(0)
    return files, sizes


def _check_reported(run_dir: Path, report, sources: dict[str, BinaryIO]) -> None:
    """Refuse tables and figures that are not those the report read (its ``files``: SHA-256 each): a notebook run
    again alone after the report rewrote them, and the published figure would not be the one in report.pdf. A
    report.json of an earlier lai, without them, is not checked."""
    import hashlib

    recorded = report.get(REPORTED_FILES) if isinstance(report, dict) else None
    if not isinstance(recorded, dict):
        return
    now = {}
    for name, src in sources.items():
        if name.startswith(tuple(f"{sub}/" for sub, _ in RESULT_GLOBS)):
            now[name] = hashlib.sha256(src.read()).hexdigest()
            src.seek(0)
    differ = sorted(name for name in {*now, *recorded} if now.get(name) != recorded.get(name))
    if differ:
        raise ReportError(f"{run_dir}: {_few(differ)} changed since the report was written (a notebook run again on its "
                          "own?), so report.pdf shows other tables or figures than those beside it; make the report "
                          "again (lai run continues the run, reusing what is done) before publishing")


def _copy(src: BinaryIO, out: BinaryIO, size: int, path: Path) -> None:
    """Copy the ``size`` bytes ``src`` held when it was checked, a bounded buffer at a time; a file that grew or
    shrank meanwhile (a run still writing it) is a ReportError naming it."""
    left = size
    while left:
        chunk = src.read(min(left, 1 << 20))
        if not chunk:
            break
        out.write(chunk)
        left -= len(chunk)
    if left or src.read(1):
        raise ReportError(f"{path} changed while lai publish copied it ({size:,} bytes when checked): is a run still "
                          f"writing it? Publish again once the run has finished")


def _plain(value) -> str:
    """A provenance.json string as README.md shows it: printable characters only (no escapes, no new line), at most
    200; "?" for anything else (absent, a number, a list)."""
    return shorten("".join(c for c in value if c.isprintable()), 200) if isinstance(value, str) else "?"


def _data_line(run_dir: Path) -> str:
    """What data the run read (its data.json): lai's simulator, or a real LNB folder named by its path."""
    try:
        data = read_json(run_dir / RUN_DATA_FILE)
    except ReportError:
        data = None
    if not isinstance(data, dict) or data.get("kind") not in ("simulated", "real"):
        return "Data: unknown (the run folder's data.json is missing or unreadable)."
    if data["kind"] == "simulated":
        return "Data: simulated by lai's built-in simulator (the true LAI known); not an observation of any place."
    return f"Data: real, the LNB folder {_plain(data.get('source'))} (no true LAI: scores against the observation only)."


def _shown(path: Path) -> str:
    """``path`` as a command line gives it: relative to the working folder where it lies inside it, else absolute."""
    full = Path(path).resolve()
    try:
        return _plain(str(full.relative_to(Path.cwd().resolve())) or ".")
    except ValueError:
        return _plain(str(full))


def default_command(run_dir: Path, dest: Path) -> str:
    """The commands that make ``run_dir`` again and publish it, from the working folder: ``lai run`` of the profile
    the run resolved (the published ``profile.yaml``: its overrides and, for real data, its LNB folder), its name,
    reports root and data root (where not the defaults), then this publish."""
    try:
        data = read_json(run_dir / RUN_DATA_FILE) or {}
    except ReportError:
        data = {}
    parts = [f"lai run --profile {_shown(dest / RUN_PROFILE_FILE)} --name {_plain(run_dir.name)}"]
    if run_dir.resolve().parent != (Path.cwd() / REPORTS_FOLDER).resolve():
        parts.append(f"--reports {_shown(run_dir.parent)}")
    root = data.get("data_root")
    if isinstance(root, str) and Path(root).resolve() != (Path.cwd() / DATA_FOLDER).resolve():
        parts.append(f"--data-root {_shown(Path(root))}")
    return " ".join(parts) + f" && lai publish {_shown(run_dir)} {_shown(dest)}"


def _index(run_dir: Path, command: str, prov: dict, seconds: dict[str, float]) -> str:
    """README.md of the published folder: ``command`` that regenerates it, when and on what machine, the data, the
    times."""
    lines = [f"# Results of the `{_plain(run_dir.name)}` run", "",
             f"Regenerate with `{command}` (then commit this folder). Published {dt.date.today().isoformat()}; run "
             f"at git revision {_plain(prov.get('git_revision'))}{' (with uncommitted changes)' if prov.get('git_dirty') is True else ''} "
             f"on {_plain(prov.get('device'))}, {_plain(prov.get('platform'))}; package versions in provenance.json.",
             "", _data_line(run_dir), "", _training_time(run_dir), "",
             "Notebook | seconds (this invocation)", "--- | ---", *[f"{name} | {s:.0f}" for name, s in seconds.items()],
             f"all | {sum(seconds.values()):.0f}", "",
             "report.pdf is the report; tables/ and figures/ are the run's, as the report read them. No cubes, "
             "weights or executed notebooks are kept here."]
    return "\n".join(lines) + "\n"


def _record(dest: Path, files: list[str], finished: bool) -> None:
    """Write ``dest``'s :data:`PUBLISHED_RECORD`."""
    atomic_write_text(dest / PUBLISHED_RECORD, json.dumps({"files": sorted(files), "finished": finished}, indent=1) + "\n")


def publish(run_dir: str | Path, dest: str | Path, command: str) -> Path:
    """Copy the results of ``run_dir`` into ``dest`` (new or empty, or one lai published into before), replacing what
    an earlier publish wrote there, and write ``dest/README.md``: the ``command`` that made the run, when and on what
    machine (provenance.json), and how long each notebook took."""
    run_dir, dest = Path(run_dir), Path(dest)
    missing = [name for name in PUBLISHED_FILES if not (run_dir / name).is_file()]
    if missing:
        raise ReportError(f"{run_dir} lacks {', '.join(missing)}: finish the run (lai run) before publishing it")
    check_outside(dest, run_dir, "run folder", "the published results")
    if run_dir.resolve().is_relative_to(dest.resolve()):
        raise ForeignOutputError(f"{run_dir} lies inside the destination {dest}; publish into a folder outside the run")
    with reading_lock(run_dir), contextlib.ExitStack() as stack:  # no lai run into it meanwhile (nor one going on)
        prov, seconds = read_json(run_dir / RUN_PROVENANCE_FILE), _durations(run_dir)  # read before anything is copied
        sources, sizes = _open_sources(run_dir, stack)  # regular files only, not links
        report = read_json(run_dir / REPORT_DATA_FILE)
        printed = printed_provenance(report, "written")
        if printed != prov.get("written"):  # notebook 01 writes it again, the report notebook once more, then the report
            raise ReportError(f"{run_dir}/report.json was written from the provenance of {_plain(printed)}, but "
                              f"provenance.json is of {_plain(prov.get('written'))}: notebook 01 ran again after the "
                              "report, alone or in a lai run that stopped before its report; make the report again "
                              "(lai run continues the run, reusing what is done) before publishing")
        _check_reported(run_dir, report, sources)
        index = _index(run_dir, command, prov, seconds)
        with output_lock(dest, folder=None):  # lai's marker, or a new or empty folder: a README.md alone proves nothing
            earlier = _earlier(dest)
            _check_dest(dest, earlier)
            ours = [*sources, INDEX]
            _record(dest, list({*(earlier or ()), *ours}), finished=False)
            (dest / INDEX).unlink(missing_ok=True)  # lai's (the record says so): a folder cut short has no README
            for old in result_files(dest):  # files of an earlier publish that this run no longer has
                if old not in ours:
                    (dest / old).unlink()
            for name, src in sources.items():  # file by file, a bounded buffer at a time
                with atomic_path(dest / name) as tmp, open(tmp, "wb") as out:
                    _copy(src, out, sizes[name], run_dir / name)
            atomic_write_text(dest / INDEX, index)
            _record(dest, ours, finished=True)
    return dest
