"""What the report reads from a run folder: its records, tables and figures, and values looked up in them.

An artefact the run did not write is None (the report shows a plain "not available" note); one that is
present but unreadable, lacks the columns the report reads, or holds a value of the wrong kind in one
(``lai.facts.REPORT_VALUES``), raises :class:`ReportError` naming the file (and the column and row).
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd

from lai.config import PROFILE_CONTENT
from lai.errors import LaiError, shorten
from lai.facts import (
    FINAL,
    MIN_SCORED_TRIPLETS,
    ORACLE,
    REPORT_TABLES,
    REPORT_VALUES,
    ROWS,
    RUN_DATA_FILE,
    RUN_PROFILE_FILE,
    RUN_PROVENANCE_FILE,
    SELECTABLE,
    TABLE,
    TEST_SETS,
    TRAINED_BY_COLUMNS,
    VERDICTS,
    chosen_model,
    result_file,
    row_title,
)
from lai.records import LARGE_RECORD_BYTES, RECORD_BYTES, read_csv_record, read_json_record, read_record, read_yaml_mapping
from lai.report.text import fmt, fmt_interval, rich, small, unavailable


class ReportError(LaiError, RuntimeError):
    """The report could not be built: an artefact is malformed, or Typst failed (its diagnostic is in the message)."""


RERUN = "rerun the pipeline (lai run) to write it again"


def read_json(path: Path, limit: int = RECORD_BYTES) -> dict | None:
    """The object in ``path`` (a run-folder record of at most ``limit`` bytes, :func:`lai.records.read_record`);
    None if the file is absent."""
    if not path.exists():
        return None
    data = read_json_record(path, ReportError, RERUN, limit)
    if not isinstance(data, dict):
        raise ReportError(f"{path} holds a JSON {type(data).__name__}, expected an object")
    return data


def read_table(run_dir: Path, name: str) -> pd.DataFrame | None:
    """tables/<name>.csv; None if absent; an empty frame for a file without rows."""
    path = run_dir / result_file("table", name, ReportError)
    if not path.exists():
        return None
    frame = read_csv_record(path, ReportError, RERUN)
    if frame.columns.empty:  # an empty file
        return pd.DataFrame(columns=list(REPORT_TABLES[name]))
    missing = [c for c in REPORT_TABLES[name] if c not in frame]
    if missing:
        raise ReportError(f"{path} lacks the column(s) {', '.join(missing)} that the report reads "
                          f"(it has: {', '.join(map(str, frame.columns))})")
    for col, kind in REPORT_VALUES.get(name, {}).items():
        for k, value in enumerate(frame[col] if col in frame else ()):  # an optional column where present
            if not _valid(kind, value):
                raise ReportError(f"{path}: column {col}, row {k + 1} holds {shorten(repr(value))}; expected "
                                  f"{EXPECTED[kind]}; {RERUN}")
    return frame


MAX_COUNT = 10**12  # far above any count of triplets or pixels a run can hold
EXPECTED = {"count": f"a whole number from 0 to {MAX_COUNT:.0e}", "number": "a finite number or nothing",
            "model": f"one of {', '.join(SELECTABLE)}"}


def _valid(kind: str, value) -> bool:
    """Whether a cell of a column the report reads holds a value of its ``kind`` (lai.facts.REPORT_VALUES)."""
    if kind == "model":
        return value in SELECTABLE
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    if kind == "count":
        return not isinstance(value, bool) and 0 <= x <= MAX_COUNT and x.is_integer()
    return not math.isinf(x)


MAX_FIGURE_PIXELS = 40_000_000  # lai's figures are about 1-5 million pixels at 150 dpi


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG (a run-folder record, :func:`lai.records.read_record`) that decodes completely;
    ReportError otherwise."""
    return decoded_png_size(read_record(path, ReportError, PNG_REWRITE, LARGE_RECORD_BYTES), path)


PNG_REWRITE = "write it again (rerun its notebook)"
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"\0\0\0\0IEND\xaeB`\x82"  # a PNG's first and last bytes


def decoded_png_size(data: bytes, path: Path) -> tuple[int, int]:
    """(width, height) of the PNG image ``data`` (read from ``path``, which errors name) once its chunks check (their
    checksums, up to the end chunk, which must close the file) and its pixels decode, within
    :data:`MAX_FIGURE_PIXELS`; ReportError otherwise."""
    import struct
    import zlib

    from PIL import Image, UnidentifiedImageError

    rewrite = PNG_REWRITE
    if data.startswith(PNG_SIGNATURE) and not data.endswith(PNG_END):
        raise ReportError(f"{path} is not a readable PNG image (it does not end with the PNG end chunk: cut short?); "
                          f"{rewrite}")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt_name, size = im.format, im.size
            if size[0] * size[1] > MAX_FIGURE_PIXELS:  # from the header, before any pixel is decoded
                raise ReportError(f"{path} declares {size[0]}x{size[1]} pixels, more than the {MAX_FIGURE_PIXELS:,} a "
                                  f"figure of this report may have; {rewrite}")
            im.verify()  # chunks and checksums: a file cut short after its pixel data still loads
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, struct.error, zlib.error,
            Image.DecompressionBombError) as err:
        raise ReportError(f"{path} is not a readable PNG image ({err}); {rewrite}") from err
    if fmt_name != "PNG":
        raise ReportError(f"{path} is a {fmt_name} image, expected PNG")
    return size


class Run:
    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.data = read_json(run_dir / RUN_DATA_FILE)
        splits = (self.data or {}).get("splits")
        if splits is not None and not (isinstance(splits, dict) and all(_valid("count", v) for v in splits.values())):
            raise ReportError(f"{run_dir / RUN_DATA_FILE}: 'splits' must map each split to its number of triplets "
                              f"({EXPECTED['count']}), got "
                              f"{shorten(json.dumps(splits))}; write it again (rerun notebook 01)")
        self.prov = read_json(run_dir / RUN_PROVENANCE_FILE)
        path = run_dir / RUN_PROFILE_FILE
        self.profile_text = read_record(path, ReportError, RERUN).decode(errors="replace") if path.exists() else None
        self.profile = self._yaml(path, self.profile_text)
        self.tables = {name: read_table(run_dir, name) for name in REPORT_TABLES}

    @staticmethod
    def _yaml(path: Path, text: str | None) -> dict:
        return {} if text is None else read_yaml_mapping(path, "run profile", PROFILE_CONTENT, error=ReportError)

    @property
    def name(self) -> str:
        return str(self.profile.get("name") or self.dir.name)

    def changed_settings(self) -> list[str]:
        """The settings (``section.key``) of the run's profile that differ from lai's built-in profile of its name
        (``--set`` overrides, ``--data``); none where no built-in profile has that name."""
        from lai.config import PROFILE_DIR, load_profile, profile_from_dict
        from lai.config_engine import NOT_SAVED, saved_differences

        if not self.profile or not (PROFILE_DIR / f"{self.name}.yaml").is_file():
            return []
        try:
            own, builtin = profile_from_dict(self.profile), load_profile(self.name)
        except LaiError:
            return []
        # a field the run's profile lacks was added to lai since it ran: not a change the run made
        return [key for key, there, _ in saved_differences(self.profile, own, builtin) if there is not NOT_SAVED]

    @property
    def kind(self) -> str:
        kind = (self.data or {}).get("kind")
        if kind in ("simulated", "real"):
            return kind
        data = self.profile.get("data")
        if data == "simulate":
            return "simulated"
        return "real" if data else "unknown"

    def final_metrics(self) -> pd.DataFrame | None:
        """Final model per set: final_metrics.csv, else the 'final' rows of table1.csv; None if neither exists."""
        fm, t1 = self.tables[TABLE.final_metrics], self.tables[TABLE.table1]
        if fm is not None:
            return fm
        return t1[t1["row"] == FINAL] if t1 is not None else None

    @property
    def n_seeds(self) -> int:
        """How many trainings (seeds) of the chosen model the run pooled (tables/seeds.csv; 1 without it)."""
        seeds = self.tables[TABLE.seeds]
        return int(num(seeds["seeds"].max())) if seeds is not None and len(seeds) else 1

    @property
    def trained_by(self) -> list[tuple[str, str, int]]:
        """:func:`trained_by` of the run's training table."""
        return trained_by(self.tables[TABLE.training])

    @property
    def seeds_drawn(self) -> bool:
        """Whether the comparisons' intervals draw the seeds too (two-stage bootstrap; tables/comparisons.csv's
        ``trainings_resampled``, absent from runs before it: the seeds held fixed)."""
        comp = self.tables[TABLE.comparisons]
        return comp is not None and "trainings_resampled" in comp and bool(comp["trainings_resampled"].astype(str)
                                                                          .str.lower().eq("true").any())

    @property
    def chosen(self) -> str:
        """The run's chosen model (tables/selection.csv: the final model or a variant, chosen by validation RMSE);
        "final" where no selection was made (a run folder of an earlier lai)."""
        sel = self.tables[TABLE.selection]
        return chosen_model([] if sel is None else sel.to_dict("records"))

    def empty_sets(self) -> list[str]:
        """The test sets without triplets (data.json's split counts, else tables/splits.csv)."""
        counts = (self.data or {}).get("splits")
        if not isinstance(counts, dict):
            sp = self.tables[TABLE.splits]
            counts = {}
            if sp is not None and len(sp.columns) and "triplets" in sp:
                key = "split" if "split" in sp else sp.columns[0]
                counts = dict(zip(sp[key].astype(str), sp["triplets"]))
        return [s for s in TEST_SETS if s in counts and num(counts[s]) == 0]

    def lacking(self, name: str, what: str, missing: str = "") -> dict:
        """The note for table ``name`` where the run wrote none (``missing`` says why) or one without rows."""
        if self.tables[name] is None:
            return unavailable(what, f"tables/{name}.csv is missing{missing}.")
        every = len(self.empty_sets()) == len(TEST_SETS)
        return unavailable(what, f"tables/{name}.csv has no rows" + (": every test set is empty." if every else "."))


def num(value) -> float:
    """``value`` as a float; NaN for a missing or non-numeric value."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def metric(frame: pd.DataFrame | None, key: str, value: str, col: str) -> float:
    if frame is None or key not in frame or col not in frame:
        return float("nan")
    part = frame[frame[key] == value]
    return float("nan") if part.empty else num(part[col].iloc[0])


def baseline_metric(bl: pd.DataFrame | None, name: str, s: str, col: str) -> float:
    if bl is None or col not in bl:
        return float("nan")
    part = bl[(bl["baseline"].astype(str).str.lower() == name.lower()) & (bl["set"] == s)]
    return num(part[col].iloc[0]) if len(part) else float("nan")


def ci(mid: float, lo: float, hi: float, digits: int = 3, nominal: float = 0.0) -> list:
    """A value with its interval in small print (the value alone where the interval is missing); a bound that is
    not ``nominal`` never prints as it (:func:`lai.report.text.fmt_bound`)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return rich(fmt(mid, digits))
    return rich(f"{fmt(mid, digits)} ", small(fmt_interval(lo, hi, digits, nominal)))


def with_ci(frame: pd.DataFrame | None, key: str, value: str, col: str) -> list:
    """``col`` with its 95% interval (``col_lo``, ``col_hi``) as "0.612 [0.571, 0.655]"."""
    return ci(*(metric(frame, key, value, c) for c in (col, f"{col}_lo", f"{col}_hi")))


def trained_by(training: pd.DataFrame | None) -> list[tuple[str, str, int]]:
    """(code, machine, number of stages) that trained the stages of a training table (tables/training.csv's
    ``trained_at``, ``trained_on``; empty for tables written before them), the most stages first."""
    if training is None or not len(training) or not set(TRAINED_BY_COLUMNS) <= set(training.columns):
        return []
    counts = training.groupby(list(TRAINED_BY_COLUMNS), sort=False).size().sort_values(ascending=False, kind="stable")
    return [(str(at), str(on), int(n)) for (at, on), n in counts.items()]


def comparisons_on(run: Run, s: str) -> list[dict]:
    """Paired comparisons of the final model on test set ``s`` (tables/comparisons.csv); a line on no triplet
    (an empty set, whatever its verdict says) compares nothing and is left out."""
    comp = run.tables[TABLE.comparisons]
    out = []
    for c in [] if comp is None else comp[comp["set"] == s].to_dict("records"):
        if c["verdict"] in VERDICTS:
            out.append(c)
        elif num(c["triplets"]) != 0:
            raise ReportError(f"{run.dir / 'tables' / 'comparisons.csv'}: verdict {c['verdict']!r} against {c['other']} on "
                              f"the {s} set; expected one of {', '.join(VERDICTS)}")
    return out


def no_interval_reason(c: dict) -> str | None:
    """Why a comparison row has no interval (too few triplets hold a scored pixel), or None where it has one."""
    if math.isfinite(num(c.get("diff_lo"))) and math.isfinite(num(c.get("diff_hi"))):
        return None
    scored, triplets = num(c.get("scored_triplets")), num(c.get("triplets"))
    if math.isfinite(scored) and math.isfinite(triplets):
        return f"{int(scored)} of {int(triplets)} triplets hold a scored pixel, fewer than {MIN_SCORED_TRIPLETS}"
    return f"fewer than {MIN_SCORED_TRIPLETS} triplets hold a scored pixel"


def diff_text(c: dict, reason: bool = True) -> str:
    """A comparison row's difference with its interval, or why it has none (``reason``: said here, not once for
    a list: :func:`shared_no_interval`)."""
    why = no_interval_reason(c)
    if why is None:
        return f"{fmt(c['diff'])} LAI {fmt_interval(c['diff_lo'], c['diff_hi'])}"
    return f"{fmt(c['diff'])} LAI" + (f", no interval: {why}" if reason else "")


def shared_no_interval(rows: list[dict]) -> str | None:
    """The one reason every row of ``rows`` has no interval (then said once for the list), else None."""
    reasons = {no_interval_reason(c) for c in rows}
    return reasons.pop() if len(reasons) == 1 and None not in reasons else None


def other_name(other: str) -> str:
    """How prose names the other side of a comparison: a baseline by its name, a Table 1 row by its title."""
    if other == ORACLE:
        return "the oracle bound"
    return f"the S2 encoder ({row_title(other)})" if other in ROWS else other


# the files of a run that its report reads and lai publish copies beside it: tables and figures
RESULT_GLOBS = (("tables", "*.csv"), ("figures", "*.png"))
REPORTED_FILES = "files"  # report.json's key: the SHA-256 of each result file as the report read it


def result_files(folder: Path) -> list[str]:
    """The tables/*.csv and figures/*.png in ``folder`` (relative names), without lai's hidden partial leftovers."""
    from lai.io import is_partial

    return [str(p.relative_to(folder)) for sub, pattern in RESULT_GLOBS for p in sorted((folder / sub).glob(pattern))
            if not is_partial(p)]


def result_digests(folder: Path) -> dict[str, str]:
    """The SHA-256 of each of :func:`result_files` (what report.json records, so that lai publish can tell a table or
    figure rewritten after the report)."""
    import hashlib

    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in result_files(folder)}
