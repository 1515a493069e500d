"""Errors that mean "your input is wrong": the command line prints them without a traceback."""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path


def shorten(text, limit: int = 80) -> str:
    """``text`` as an error message quotes it: cut to ``limit`` characters, "..." marking the cut."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


_LONG_WORD = re.compile(r"\S{241,}")
MAX_MESSAGE = 2000


def escaped(text) -> str:
    """``text`` on one line, its control and bidirectional characters (newlines included) written as escapes, so a
    file name cannot clear the screen or reverse the text."""
    return "".join(c if c.isprintable() and not ("\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069")
                   else c.encode("unicode_escape").decode("ascii") for c in str(text))


def one_line(message: str) -> str:
    """``message`` as the command line prints it: one line (:func:`escaped`), each run of over 240 characters
    without a space (a long path) cut in its middle, and at most :data:`MAX_MESSAGE` characters in all."""
    text = _LONG_WORD.sub(lambda m: f"{m.group()[:160]}...{m.group()[-60:]}", escaped(message))
    return shorten(text, MAX_MESSAGE)


class LaiError(Exception):
    """Base class of every user-facing error of lai."""


class ConfigError(LaiError, ValueError):
    """A configuration value or key is invalid; the message names it."""


class LNBError(LaiError, ValueError):
    """Invalid input data; ``file`` names the offending file or CSV row."""

    def __init__(self, file: str | Path, problem: str):
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{file}: {problem}")


class SceneError(LaiError, ValueError):
    """A manifest (scene or preprocessing) or one of its rasters does not fit; the message names it."""


class CubeError(LaiError, ValueError):
    """The cube file is missing, incomplete or of another schema."""


class RunFolderError(LaiError, RuntimeError):
    """The run folder holds another run, or a checkpoint that does not match."""


class TrainingDivergedError(LaiError, FloatingPointError):
    """The training loss became NaN or infinite; the message names the stage, the epoch and the setting to lower."""


class ResidencyError(LaiError, MemoryError):
    """A requested device-resident split does not fit in memory."""


class WorkerLostError(LaiError, RuntimeError):
    """A dask worker died (killed, out of memory) while running a task, more often than the scheduler allows."""


class ClusterStartError(LaiError, RuntimeError):
    """A local dask cluster could not start its worker processes: ``what`` happened, then the command line's advice."""

    def __init__(self, what: str, advice: str = "run without --workers"):
        self.what = what
        super().__init__(f"{what}; {advice}")


class PipelineError(LaiError, RuntimeError):
    """A notebook of the pipeline failed; the message names the notebook and the cell."""


USER_ERRORS = (LaiError, OSError)

_CAUSES = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file grew past the size limit of this system or process",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENAMETOOLONG: "the file name is too long for the file system",
    errno.ENOENT: "no such file or folder",
    errno.EIO: "input/output error (failing disk or network share?)",
    errno.EEXIST: "already exists (a file where lai needs a new file or a folder?)",
    errno.ENOTDIR: "a path part is a file, not a folder",
}


def os_error_errno(err: OSError) -> int | None:
    """The errno of ``err``; h5py and GDAL often put it only in the message (``errno = 28``)."""
    if err.errno:
        return err.errno
    match = re.search(r"errno\s*=\s*(\d+)", str(err))
    return int(match.group(1)) if match else None


def describe_os_error(err: OSError) -> str:
    """One line naming the path and the cause of an operating-system error."""
    if not err.errno and not err.filename and not os_error_errno(err):
        return str(err) or type(err).__name__
    code = os_error_errno(err)
    cause = _CAUSES.get(code) or (os.strerror(code) if code else str(err).strip().splitlines()[0])
    path = err.filename
    if path is None:
        match = re.search(r"name = '([^']+)'", str(err))  # h5py: "unable to open file: name = '...'"
        path = match.group(1) if match else None
    where = f"{path}: " if path is not None else ""
    if err.filename2 is not None:
        where = f"{path} -> {err.filename2}: "
    return f"{where}{cause}"
