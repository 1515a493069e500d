"""Errors that mean "your input is wrong": the command line prints them without a traceback."""
from __future__ import annotations

from pathlib import Path


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


class CubeError(LaiError, ValueError):
    """The cube file is missing, incomplete or of another schema."""


class RunFolderError(LaiError, RuntimeError):
    """The run folder holds another run, or a checkpoint that does not match."""


class ResidencyError(LaiError, MemoryError):
    """A requested device-resident split does not fit in memory."""


class PipelineError(LaiError, RuntimeError):
    """A notebook of the pipeline failed; the message names the notebook and the cell."""


USER_ERRORS = (LaiError, FileExistsError, FileNotFoundError)
