"""Writing outputs safely: atomic replacement, one writer per output, stale leftovers removed.

* :func:`atomic_path`: every artefact appears complete under its final name or not at all, and it
  only ever replaces a regular file (or an empty folder), never a folder with content or a device.
* :func:`output_lock`: the process that writes an output holds an ``fcntl.flock`` on a lock file
  beside it (``.NAME.lock``, holding its pid and host); a second writer is refused with a message
  naming the output and the holder. The lock file is never followed through a symbolic link, and a
  path that holds anything but a regular file lai wrote (a link, a FIFO, a folder, a user's file) is
  refused, untouched. Taking the lock removes the hidden ``.NAME.partial-PID-XXXXXXXX`` leftovers of
  killed writers: a leftover whose lock is free belongs to no living process.
* :func:`claim_folder`: a folder that lai fills piece by piece (a run folder, a training stage) is
  lai's only if lai made it: it is new or empty when lai first writes into it, and lai leaves its
  marker (:data:`FOLDER_MARK`) there. lai never writes into, or sweeps, a folder without it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import socket
import stat
import uuid
from pathlib import Path

from lai.errors import ConfigError, LaiError, os_error_errno

_KEEP = 200  # characters of a long output name kept in its hidden temporary and lock names
FOLDER_MARK = ".lai-folder"  # written by lai into every folder it creates to fill piece by piece
FOLDER_MARK_TEXT = "This folder was made by lai; lai writes only into folders holding this file.\n"  # its content
_PARTIAL_TAIL = re.compile(r"\d+-[0-9a-f]{8}(\.[A-Za-z0-9]+)?")  # PID-RANDOM[.ext] after ".NAME.partial-"
_PARTIAL_NAME = re.compile(r"\..+\.partial-" + _PARTIAL_TAIL.pattern)
_LOCK_TEXT = re.compile(rb"(pid \d+ on host [^\n]*)?")  # what lai writes into its lock files (empty while taken)


class OutputLockedError(LaiError, RuntimeError):
    """Another process is writing the same output."""


class ForeignOutputError(LaiError, FileExistsError):
    """The output path holds something lai did not write (a folder with content, a device, a link)."""


def _hidden_stem(path: Path) -> str:
    """``.NAME``, shortened with a hash so that suffixes added to it stay within the 255-byte limit."""
    name = path.name
    if len(name.encode()) > _KEEP:
        name = name.encode()[:_KEEP].decode(errors="ignore") + "~" + hashlib.sha256(path.name.encode()).hexdigest()[:8]
    return "." + name


def _partial_prefix(path: Path) -> str:
    return _hidden_stem(path) + ".partial-"


def _partial_path(path: Path, suffix: str = "") -> Path:
    """A new hidden sibling of ``path`` to write it under (``.NAME.partial-PID-RANDOM``, ending ``suffix``)."""
    return path.with_name(f"{_partial_prefix(path)}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def lock_file(path: str | Path) -> Path:
    """The lock file of output ``path``: a hidden sibling."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise ConfigError(f"output path {str(path)!r} names no file or folder of its own ('', '.' or '..'); give the "
                          "output a new name, e.g. out/result")
    return path.with_name(_hidden_stem(path) + ".lock")


def is_partial(path: Path) -> bool:
    """Whether ``path`` is named as lai names its temporaries (``.NAME.partial-PID-XXXXXXXX[.ext]``)."""
    return _PARTIAL_NAME.fullmatch(path.name) is not None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _lock_held(lock: Path) -> bool:
    """Whether a living process holds the lock file ``lock`` (a killed holder's lock file is left unlocked)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False  # none (or not a file lai's locks would be): nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def remove_stale_partials(path: Path, inside: bool = False) -> list[Path]:
    """Remove the ``.partial-*`` leftovers of ``path`` (and, with ``inside``, those in the folder ``path`` whose own
    output's lock no living process holds: another command may be writing an output inside it).

    Call only while holding :func:`output_lock` on ``path``: then no living writer owns its own leftovers.
    """
    prefix = _partial_prefix(path)
    stale = [p for p in path.parent.glob(".*.partial-*")
             if p.name.startswith(prefix) and _PARTIAL_TAIL.fullmatch(p.name[len(prefix):])] if path.parent.is_dir() else []
    if inside and path.is_dir() and not path.is_symlink():
        stale += [p for p in path.rglob(".*.partial-*")
                  if is_partial(p) and not _lock_held(p.with_name(p.name[:p.name.rindex(".partial-")] + ".lock"))]
    for p in stale:
        _remove(p)
    return stale


def _open_lock(lock: Path, path: Path) -> int:
    """Open the lock file ``lock`` of output ``path``: create it, or open one a lai process left.

    Never through a symbolic link, never a FIFO, a device, a folder, a file with other names (hard
    links) or a file whose content lai did not write: those are refused, untouched.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        return os.open(lock, flags | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    except OSError as err:  # name the folder the user chose, not our hidden lock file
        raise OSError(err.errno, err.strerror, str(path.parent)) from None
    refusal = (f"{lock}, the lock file of {path}, is {{}}; lai neither writes through it nor removes it: "
               "remove it if nobody else uses it, or write elsewhere")
    try:
        fd = os.open(lock, flags)
    except FileNotFoundError:
        return -1  # removed meanwhile by its holder: try again
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ForeignOutputError(refusal.format("a symbolic link")) from None
        if err.errno == errno.EISDIR:
            raise ForeignOutputError(refusal.format("a folder")) from None
        if err.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket (or a device without a reader) cannot be opened
            raise ForeignOutputError(refusal.format("not a regular file (a socket or device?)")) from None
        raise OSError(err.errno, err.strerror, str(lock)) from None
    info = os.fstat(fd)
    what = (None if stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and _LOCK_TEXT.fullmatch(os.pread(fd, 512, 0))
            else "not a regular file (a FIFO or device?)" if not stat.S_ISREG(info.st_mode)
            else "a file with other names (hard links)" if info.st_nlink != 1
            else "a file that lai did not write")
    if what is not None:
        os.close(fd)
        raise ForeignOutputError(refusal.format(what))
    return fd


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` (not followed if a link) is still the file open as ``fd``."""
    try:
        return os.lstat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _holder(fd: int) -> str:
    """Who holds the lock file open as ``fd``, as its holder wrote it (:func:`lock_text`)."""
    return os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"


def _take_lock(lock: Path, path: Path) -> int:
    """Open and flock ``lock``; return its descriptor. Retries if the file was replaced meanwhile."""
    while True:
        fd = _open_lock(lock, path)
        if fd < 0:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputLockedError(
                f"{path} is being written by another lai process ({holder}; lock file {lock}); "
                "wait for it to finish or write elsewhere"
            ) from None
        if _same_file(lock, fd):
            return fd
        os.close(fd)  # the previous holder removed this file as we opened it: take the new one


_FILE = object()  # output_lock's default: path is a file


def lock_text() -> str:
    """What a lock file of this process says: "pid N on host H" (its holder, named to those it refuses)."""
    return f"pid {os.getpid()} on host {socket.gethostname()}"


def lock_holder(path: str | Path) -> str | None:
    """Who holds the write lock of output ``path`` now ("pid N on host H"), or None where nobody does. Only looks:
    a lock found free is left as it is, never taken or removed."""
    try:
        fd = os.open(lock_file(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:  # none (nobody holds it), or not a file lai would lock: output_lock says what it is
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # free: closing the descriptor gives it up again
        return None
    except BlockingIOError:
        return _holder(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(path: str | Path, folder: str | None | object = _FILE):
    """Hold the write lock of output ``path`` for the block; refuse if another process holds it.

    ``folder``: ``path`` is a folder written into piece by piece (a run folder) and ``folder`` the
    file a command reads first in such a folder (or None: no such file proves a folder lai's):
    the folder is claimed (:func:`claim_folder`) and its stale partial files are removed too. The lock file
    is removed on release (a killed holder leaves it behind, unlocked, and it is simply taken again).
    """
    path = Path(path)
    if folder is not _FILE and path.name in ("", ".", ".."):  # a folder filled in place may be named "." (the current one)
        path = path.resolve()
    made = [p for p in (path.parent, *path.parent.parents) if not (p.exists() or p.is_symlink())]  # deepest first
    new_folder = folder is not _FILE and not (path.exists() or path.is_symlink())  # claimed below by this call
    marked_before = folder is not _FILE and ((path / FOLDER_MARK).exists() or (path / FOLDER_MARK).is_symlink())
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_file(path)
    try:
        fd = _take_lock(lock, path)
    except BaseException:
        _remove_empty(made)
        raise
    failed = True
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, lock_text().encode(), 0)
        adopted = folder is not _FILE and _claim(path, folder)
        remove_stale_partials(path, inside=folder is not _FILE)
        yield path
        if adopted:  # the block read the signature file and found it lai's
            _mark(path)
        failed = False
    finally:
        if failed and folder is not _FILE and not marked_before:  # refused or stopped before writing anything: the
            _remove_unused(path, new_folder)  # marker it left, and the folder it made, are not left behind
        _release(lock, fd)
        if failed:  # the folders made for an output that never came are not left behind
            _remove_empty(made)


@contextlib.contextmanager
def reading_lock(path: str | Path):
    """Hold the write lock of ``path`` while a command reads it whole (``lai publish`` of a run folder): a writer
    that holds it is named and refused, and none can start meanwhile. Nothing of ``path`` is claimed or removed."""
    path = Path(path)
    lock = lock_file(path)
    fd = _take_lock(lock, path)
    try:
        yield path
    finally:
        _release(lock, fd)


def _release(lock: Path, fd: int) -> None:
    """Give up the lock ``fd`` of the lock file ``lock``, and remove that file."""
    if _same_file(lock, fd):  # while still holding it: a writer that opened it meanwhile sees it replaced
        with contextlib.suppress(OSError):
            lock.unlink()
    os.close(fd)


def _remove_unused(folder: Path, made: bool) -> None:
    """Where ``folder`` holds nothing but the marker this process wrote, remove the marker, and the folder where this
    process ``made`` it (an empty folder of the user's stays, as it was); keep everything otherwise."""
    try:
        if all(p.name == FOLDER_MARK for p in folder.iterdir()):
            (folder / FOLDER_MARK).unlink(missing_ok=True)
            if made:
                folder.rmdir()
    except OSError:  # gone, or something came meanwhile: kept as it is
        pass


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first, made by this process) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another output came meanwhile) or gone: the rest holds it
            return


def check_replaceable(path: Path, folder: bool = False) -> None:
    """Raise unless ``path`` is absent, a regular file, or (``folder``) an empty folder."""
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink():
        raise ForeignOutputError(f"{path} is a symbolic link; lai writes only regular files and replaces nothing else")
    if path.is_dir():
        if folder and os.path.ismount(path):  # a volume's root: a finished result cannot be renamed onto it
            raise ForeignOutputError(f"{path} is a mount point; lai writes its result beside the output and renames it "
                                     "into place, which a mount point cannot take: give a new folder inside it")
        if folder and not any(path.iterdir()):
            return
        raise ForeignOutputError(f"{path} is an existing folder; lai never replaces a folder: choose another output path")
    if not path.is_file():
        raise ForeignOutputError(f"{path} is not a regular file (a device or pipe?); choose another output path")


def claim_folder(folder: str | Path, signature: str | None) -> Path:
    """Make ``folder`` one lai may fill: create it (or take it while empty) and leave :data:`FOLDER_MARK`.

    A folder that holds the marker, with the text lai writes into it, is lai's. One that holds nothing but
    ``signature`` (the file a command reads first, e.g. a ``model.pt`` to evaluate, which the caller then
    reads and refuses unless lai wrote it) is taken too, and marked; ``signature=None`` takes no such folder.
    Any other folder is refused, naming it and what it holds: lai never writes into a user's folder (a
    copied ``profile.yaml`` or ``model.pt`` beside the user's own files proves nothing).
    """
    if _claim(folder, signature):
        _mark(Path(folder))
    return Path(folder)


def _mark(folder: Path) -> None:
    """Write the marker where there is none, or an empty one (lai stopped while writing it: :func:`_claim`)."""
    mark = folder / FOLDER_MARK
    if not (mark.exists() or mark.is_symlink()) or _is_empty_file(mark):
        mark.write_text(FOLDER_MARK_TEXT)


def _is_empty_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a link) of 0 bytes."""
    return path.is_file() and not path.is_symlink() and path.stat().st_size == 0


def _claim(folder: str | Path, signature: str | None) -> bool:
    """:func:`claim_folder`, marking a new or empty folder at once; True when it was taken for holding nothing but
    ``signature`` (the caller marks it once that file proved lai's)."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ForeignOutputError(f"{folder} is not a folder lai made (a file or a link); choose another folder")
    mark = folder / FOLDER_MARK
    # an empty marker in a folder holding nothing else: lai was stopped between creating the marker and writing its
    # text (the first thing it does in a new folder), so the folder is as good as empty and is taken as such
    interrupted = _is_empty_file(mark) and all(p.name == FOLDER_MARK for p in folder.iterdir())
    if mark.is_file() and not mark.is_symlink() and not interrupted:
        if _is_mark(mark):
            return False
        raise ForeignOutputError(f"{mark} does not hold the text lai writes into its marker, so {folder} is not taken "
                                 "for lai's; choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    held = sorted(p.name for p in folder.iterdir() if p.name != FOLDER_MARK)
    if signature is not None and held == [signature]:
        return True  # left unmarked until the caller has checked that file
    if held:
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        raise ForeignOutputError(
            f"{folder} is a folder lai did not make (it holds {shown}; no {FOLDER_MARK} marker): lai writes only into "
            "a new or empty folder, so choose another name or folder"
        )
    if mark.is_symlink() or (mark.exists() and not interrupted):
        raise ForeignOutputError(f"{mark} is not the marker lai writes (a link or a folder); choose another folder")
    _mark(folder)
    return False


def _is_mark(mark: Path) -> bool:
    """Whether ``mark`` holds what lai writes into a folder marker (read at most a few hundred bytes)."""
    try:
        with open(mark, "rb") as f:  # CRLF line ends too: a git checkout with core.autocrlf
            return f.read(len(FOLDER_MARK_TEXT) + 2).replace(b"\r\n", b"\n") == FOLDER_MARK_TEXT.encode()
    except OSError:
        return False


def check_outside(out: str | Path, source: str | Path, what: str, output: str) -> None:
    """Refuse an output ``out`` inside the input folder ``source``: inputs stay as they are.

    Inside means: as written (``lnb/s1/cube.nc``, even where ``lnb/s1`` links elsewhere), once links are resolved,
    or in the target of a folder that links from ``source`` (``lnb/s1 -> /data/s1``: ``/data/s1/cube.nc``).
    ``what`` names the input folder, ``output`` the output ("the cube")."""
    out, source = Path(out), Path(source)
    if Path(os.path.abspath(out)).is_relative_to(os.path.abspath(source)) or out.resolve().is_relative_to(source.resolve()):
        raise ForeignOutputError(f"{out} lies inside the {what} {source}; write {output} outside the input folder")
    try:
        with os.scandir(source) as entries:
            links = [Path(e.path) for e in entries if e.is_symlink() and e.is_dir()]
    except OSError:  # not a folder (yet): nothing links from it
        links = []
    for link in links:
        if out.resolve().is_relative_to(link.resolve()):
            raise ForeignOutputError(f"{out} lies inside {link.resolve()}, which {link} of the {what} links to; write "
                                     f"{output} outside the input folder and the folders it links to")


def own_subfolder(folder: str | Path, name: str) -> Path:
    """The subfolder ``name`` of a folder lai fills (``predictions``, ``notebooks``, ``tables``...): created if absent.
    A link or a file at that name is refused, untouched: lai follows no link inside a folder it fills."""
    sub = Path(folder) / name
    if sub.is_symlink() or (sub.exists() and not sub.is_dir()):
        raise ForeignOutputError(f"{sub} is a symbolic link or a file, not the folder lai made there; lai follows no "
                                 "link in a folder it fills: remove it or write elsewhere")
    sub.mkdir(parents=True, exist_ok=True)
    return sub


def check_new_folder(out: Path) -> None:
    """An output folder (``--out``) must be new or empty: lai never writes into a folder holding other files."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {out} already exists and is not an empty folder; choose a new folder")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yield a temporary sibling path (ending ``suffix``, e.g. ".ipynb"); rename it onto ``path`` only if the block
    succeeds: a file at ``path`` with other names (hard links) is replaced, never written through.

    Works for files and folders. An interrupted block leaves only a hidden
    ``.NAME.partial-*`` sibling, which no reader takes for a valid result and the
    next :func:`output_lock` holder removes. ``path`` may only be absent, a regular
    file, or an empty folder (see :func:`check_replaceable`).
    """
    path = Path(path)
    check_replaceable(path, folder=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_path(path, suffix)
    try:
        try:
            yield tmp
        except OSError as err:
            raise _about_output(err, tmp, path) from None
        check_replaceable(path, folder=tmp.is_dir())
        try:
            os.replace(tmp, path)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                raise ForeignOutputError(f"{path} appeared meanwhile and is not a file lai may replace") from None
            raise OSError(err.errno, f"the finished result could not be put in place ({err.strerror}); nothing was "
                                     "written there", str(path)) from None
    finally:
        if tmp.exists():
            _remove(tmp)


@contextlib.contextmanager
def atomic_new_files(*paths: str | Path):
    """Yield temporary siblings of the new files ``paths``; when the block succeeds, place them all or none.

    Each is placed by a hard link, which fails where a file appeared at its path meanwhile (another command's,
    or the user's): that is refused, never replaced, and the files already placed are removed again. For outputs
    that must be new and belong together, such as a scene's map and its source map. Leftovers as
    :func:`atomic_path`'s.
    """
    paths = [Path(p) for p in paths]
    tmps = [_partial_path(p) for p in paths]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    placed: list[tuple[Path, Path | None]] = []  # (path, its temporary while linked to it; None once renamed)
    try:
        try:
            yield tmps
        except OSError as err:
            named = str(err.filename or "")
            raise _about_output(err, *next(((t, p) for t, p in zip(tmps, paths) if named.startswith(str(t))),
                                           (tmps[0], paths[0]))) from None
        for tmp, path in zip(tmps, paths):
            try:
                os.link(tmp, path)
                placed.append((path, tmp))
                continue
            except FileExistsError:
                raise ForeignOutputError(f"{path} appeared meanwhile; lai replaces no file it did not write") from None
            except OSError as err:
                if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
            if path.exists() or path.is_symlink():  # a file system without hard links: checked, then renamed
                raise ForeignOutputError(f"{path} appeared meanwhile; lai replaces no file it did not write")
            os.rename(tmp, path)
            placed.append((path, None))
    except BaseException:
        for path, tmp in placed:  # ours (still the file of its temporary), not one that replaced it since
            with contextlib.suppress(OSError):
                if tmp is None or os.path.samefile(path, tmp):
                    path.unlink()
        raise
    finally:
        for tmp in tmps:
            if tmp.exists() or tmp.is_symlink():
                _remove(tmp)


def _about_output(err: OSError, tmp: Path, path: Path) -> OSError:
    """``err`` renamed to name the output ``path`` where it names (or mentions) the temporary ``tmp``."""
    if isinstance(err, (LaiError, FileExistsError, FileNotFoundError)):  # lai's own refusals say what they mean
        return err
    named = str(err.filename) if err.filename is not None else None
    if named is not None and not named.startswith(str(tmp)):
        return err  # about another file (an input, say)
    code = os_error_errno(err)
    if code is None and shutil.disk_usage(path.parent).free < 2**20:  # GDAL: "Write failed", the cause only logged
        code = errno.ENOSPC
    return OSError(code, os.strerror(code), str(path)) if code is not None else OSError(f"{path}: {err}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


# --------------------------------------------------------------------------- memory before allocation

MEMORY_SHARE = 0.5  # a single allocation may take at most this share of the memory available now


FREE_MEMORY_MAX_AGE_S = 0.5  # free_memory() reuses a reading this recent (a folder's checks ask once per file)
_free_memory_read: list[float] = []  # [monotonic time, bytes] of the last reading


def free_memory() -> int:
    """Bytes of memory available to a new allocation now (psutil's ``available``, read at most every
    :data:`FREE_MEMORY_MAX_AGE_S` seconds: reading it costs about 0.1 ms, as much as checking a small tile)."""
    import time

    now = time.monotonic()
    if not _free_memory_read or now - _free_memory_read[0] > FREE_MEMORY_MAX_AGE_S:
        import psutil

        _free_memory_read[:] = [now, psutil.virtual_memory().available]
    return int(_free_memory_read[1])


def memory_shortfall(nbytes: float, share: float = MEMORY_SHARE) -> str | None:
    """None if ``nbytes`` fit in ``share`` of the memory available now, else the reason, for an error message
    that also names the input: "needs about 429 GiB, more than 50% of the 22.8 GiB available"."""
    free = free_memory()
    if nbytes <= share * free:
        return None
    return f"needs about {nbytes / 2**30:.3g} GiB, more than {share:.0%} of the {free / 2**30:.3g} GiB available"
