"""Atomic file writing: every artefact appears complete under its final name or not at all."""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    Works for files and folders. An interrupted block leaves only a hidden
    ``.NAME.partial-*`` sibling, which no reader takes for a valid result.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            old = _temp_sibling(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)

