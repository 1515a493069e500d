"""Reading what lai wrote and what users give it: run-folder records (JSON, CSV) read only when they are the
regular, bounded files lai writes, and YAML (profiles, overrides, manifests) read safely.

Every reader raises the caller's error class with a message that names the file, what was expected and how to
recover; none follows a FIFO or device, reads without bound, or builds Python objects from YAML.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import stat
from pathlib import Path

import yaml

from lai.errors import ConfigError, shorten

# --------------------------------------------------------------------------- reading run-folder records

RECORD_BYTES = 64 * 2**20  # JSON and CSV records: lai's are kB to a few MB (per-triplet tables grow with the data)
LARGE_RECORD_BYTES = 256 * 2**20  # executed notebooks, figures, report.pdf (a few MB each)


NOT_A_FILE = "is not a regular file (a folder, FIFO or device?)"  # said of a path that exists but names no file


@contextlib.contextmanager
def open_record(path: Path, error: type[Exception], recover: str, follow: bool = True):
    """``path`` open for binary reading once it proved a regular file (or, with ``follow``, a link to one), else
    ``error`` naming it, what was expected and ``recover`` (how to get a good one). A FIFO or a device is refused
    before it is read (opened non-blocking and checked again with fstat), so it can neither hang lai nor fill its
    memory; without ``follow`` a symbolic link is refused too, never opened."""
    special = f"{path} {NOT_A_FILE}; expected the file lai writes; {recover}"
    link = f"{path} is not a regular file but a symbolic link, which lai does not follow here: put the file itself there"
    try:
        mode = os.stat(path, follow_symlinks=follow).st_mode
        if not stat.S_ISREG(mode):
            raise error(link if stat.S_ISLNK(mode) else special)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    except FileNotFoundError:
        raise error(f"{path} does not exist; {recover}") from None
    except OSError as err:
        if err.errno != errno.ELOOP:  # a link put there after the look
            raise
        raise error(link) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the two looks
            raise error(special)
        yield f


def read_record(path: Path, error: type[Exception], recover: str, limit: int = RECORD_BYTES) -> bytes:
    """The bytes of the run-folder record ``path`` (:func:`open_record`), at most ``limit``; ``error`` else."""
    with open_record(path, error, recover) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise error(f"{path} holds {max(size, len(data)):,} bytes, more than the {limit:,} a record lai writes there "
                    f"may have; {recover}")
    return data


def read_json_record(path: Path, error: type[Exception], recover: str, limit: int = RECORD_BYTES):
    """The JSON value in the record ``path`` (:func:`read_record`); ``error`` if it is not readable JSON (nested
    too deeply included)."""
    data = read_record(path, error, recover, limit)
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise error(f"{path} is not readable JSON (nested too deeply); {recover}") from None
    except ValueError as err:  # UnicodeDecodeError included
        raise error(f"{path} is not readable JSON ({shorten(str(err))}); {recover}") from None


def read_csv_record(path: Path, error: type[Exception], recover: str):
    """The table in the CSV record ``path`` (:func:`read_record`; an empty file is a frame without columns);
    ``error`` if it is not UTF-8 CSV or a row has another number of fields than the header (a file cut short)."""
    import pandas as pd

    data = read_record(path, error, recover)
    try:
        text = data.decode("utf-8")
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
        frame = pd.read_csv(io.StringIO(text)) if rows else pd.DataFrame()
    except (ValueError, csv.Error) as err:  # UnicodeDecodeError and pandas' errors included
        raise error(f"{path} is not a readable CSV table ({shorten(str(err))}); {recover}") from None
    short = next((i for i, row in enumerate(rows[1:], 1) if len(row) != len(rows[0])), None)
    if short is not None:
        raise error(f"{path}: data row {short} has {len(rows[short])} field(s), the header {len(rows[0])} "
                    f"(a file cut short or edited); {recover}")
    return frame


# --------------------------------------------------------------------------- reading YAML


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping repeats a key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that repeats a key (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(
                    f"key {key!r} appears twice in one mapping (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                    "YAML would keep the last silently"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node):
        """A date or time; an impossible one (2022-06-31) named with its line, not only Python's reason."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as err:
            raise ValueError(f"{node.value!r} at line {node.start_mark.line + 1} is not a date ({err})") from None


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_yaml_timestamp)


# YAML 1.2 floats: PyYAML (YAML 1.1) reads "1e-3" as a string; in profiles, overrides and manifests it is 0.001.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


MAX_YAML_NODES = 100_000  # values in a document with its aliases expanded: far above any profile or manifest


class YAMLTooLargeError(yaml.YAMLError):
    """A YAML document that would expand to too many values (an alias bomb) or nests too deeply."""


def _expanded_size(node, memo: dict) -> int:
    """Values ``node`` stands for once every alias is expanded (an alias is the node it names, counted again)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    if size > MAX_YAML_NODES:
        raise YAMLTooLargeError(f"its aliases expand to over {MAX_YAML_NODES:,} values (an alias bomb?)")
    memo[id(node)] = size
    return size


def yaml_load(text: str):
    """Parse YAML safely (no Python objects), refusing duplicate keys, documents whose aliases expand to over
    :data:`MAX_YAML_NODES` values, and nesting deeper than Python's recursion allows."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {})
        return loader.construct_document(node)
    except RecursionError:
        raise YAMLTooLargeError("it nests deeper than lai reads (hundreds of levels)") from None
    finally:
        loader.dispose()


def read_yaml_mapping(path: str | Path, what: str, expected: str = "a mapping",
                      error: type[Exception] = ConfigError) -> dict:
    """The mapping the YAML file ``path`` holds; ``what`` names the file in messages ("profile file", "scene
    manifest"). ``error`` with one line naming the file when it is missing, not UTF-8, not valid YAML, repeats a
    key, is empty or holds anything but a mapping (then ``expected`` says what it should hold)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        data = yaml_load(path.read_text())
    except (DuplicateKeyError, YAMLTooLargeError) as err:
        raise error(f"{what} {path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        if "tag:yaml.org,2002:merge" in str(err):  # valid YAML that this reader does not expand
            raise error(f"{what} {path} uses a YAML merge key (<<) at line {mark.line + 1 if mark else '?'}, which lai "
                        "does not read: write the keys out") from None
        reason = f"{err.problem} at line {mark.line + 1}" if mark is not None else str(err).splitlines()[0]
        raise error(f"{what} {path} is not valid YAML: {reason}") from None
    except UnicodeDecodeError as err:
        raise error(f"{what} {path} is not UTF-8 text: {err}") from None
    except ValueError as err:  # a value YAML recognises but cannot build, e.g. the date 2019-02-30
        raise error(f"{what} {path} holds an impossible value: {str(err)[:200]}") from None
    if data is None:
        raise error(f"{what} {path} is empty; expected {expected}")
    if not isinstance(data, dict):
        raise error(f"{what} {path} holds a {type(data).__name__}; expected {expected}")
    return data
