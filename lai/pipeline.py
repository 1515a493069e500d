"""The main job: run every notebook in order through papermill with one profile.

The profile is resolved once per run folder (:mod:`lai.run_profile`) and written to its profile.yaml;
`lai run` then hands each notebook only the run folder. Ctrl-C kills the notebooks' kernel at once.
What notebooks use is :class:`~lai.run_folder.RunContext`.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from lai.errors import PipelineError
from lai.facts import (
    DATA_FOLDER,
    REPORT_FILE,
    REPORTS_FOLDER,
    RUN_DATA_FILE,
    RUN_LOCK_HOLDER_ENV,
    RUN_PROFILE_FILE,
    RUN_SUBFOLDERS,
)
from lai.io import (
    atomic_path,
    atomic_write_text,
    check_outside,
    check_replaceable,
    lock_text,
    output_lock,
    own_subfolder,
)
from lai.progress import TEXT_BARS_ENV
from lai.provenance import code_digest
from lai.records import read_json_record
from lai.run_profile import DEFAULT_PROFILE, PROJECT_ROOT, check_run_name, open_run_folder, resolve_profile

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
# 00_preprocessing applies the trained final model to real patches, so it runs after 02_training
NOTEBOOKS = ("01_data.ipynb", "02_training.ipynb", "00_preprocessing.ipynb", "03_ablations.ipynb", "04_baselines.ipynb",
             "05_report.ipynb")


# The kernel's own log (a warning that it talks over local TCP, a "KeyboardInterrupt caught" line at
# every shutdown) is noise on the terminal; a failing cell still raises PapermillExecutionError.
KERNEL_QUIET = ["--IPKernelApp.log_level=CRITICAL"]


def run_pipeline(profile: str | Path = DEFAULT_PROFILE, overrides: list[str] | None = None, data: str | None = None,
                 run_name: str | None = None, reports_root: str | Path = REPORTS_FOLDER,
                 data_root: str | Path = DATA_FOLDER, progress: bool = True, force: bool = False) -> Path:
    """Execute every notebook in order with papermill; return the report's path.

    A notebook whose inputs did not change since it last ran here (the notebook, the profile, lai's code,
    and every file of the run folder and of its data in the data root it did not write itself) is not executed again
    unless ``force``; each notebook's line says "ran" or "reused" and why (:class:`NotebookInputs`).

    The profile is resolved here, once, and written to the run folder's profile.yaml; the notebooks get
    only the run folder (and the data root). The run folder is locked for the whole run: a second
    `lai run` into it is refused, naming the holder. A failing notebook raises :class:`PipelineError`
    naming the notebook and cell; its partly executed copy is kept under ``notebooks/`` for inspection.
    """
    import papermill as pm

    resolved = resolve_profile(profile, overrides, data)
    check_run_name(run_name or resolved.name)
    from lai.distributed import cpu_cost_warning  # torch: only for lai run, not for what imports the pipeline

    if (warning := cpu_cost_warning(resolved)) is not None:
        print(f"[lai run] warning: {warning}", flush=True)
    run_dir = (Path(reports_root) / (run_name or resolved.name)).resolve()
    if data:  # inputs stay as they are: nothing of the run is written inside the --data folder
        check_outside(run_dir, data, "LNB folder", "the run folder")
        check_outside(data_root, data, "LNB folder", "the data root (--data-root)")
    params = {"run_dir": str(run_dir), "data_root": str(Path(data_root).resolve())}
    with output_lock(run_dir, folder=RUN_PROFILE_FILE), _environment(RUN_LOCK_HOLDER_ENV, lock_text()), \
            _environment(TEXT_BARS_ENV, "1" if progress else "0"):
        open_run_folder(run_dir, resolved)  # claims the folder and writes its profile before any notebook
        for sub in RUN_SUBFOLDERS:  # a link planted there is refused before any notebook runs or record is removed
            own_subfolder(run_dir, sub)
        for nb in NOTEBOOKS:  # so is one planted where a later notebook is written, before the first one runs
            check_replaceable(run_dir / "notebooks" / nb)
        inputs = NotebookInputs(run_dir, Path(data_root).resolve(), Path(data).resolve() if data else None)
        for nb in NOTEBOOKS:
            out = run_dir / "notebooks" / nb
            before = inputs.snapshot(NOTEBOOK_DIR / nb)
            changed = "forced (--force)" if force else inputs.changed(nb, before, out)
            if not changed:
                print(f"[lai run] {nb}: reused (the notebook, profile, code and files it reads are unchanged since "
                      "its last run here)", flush=True)
                continue
            check_replaceable(out)  # never a link planted there (checked again: one may appear meanwhile)
            print(f"[lai run] {nb}: ran ({changed})", flush=True)
            inputs.forget(nb)
            failed = None
            # papermill writes a temporary beside it, moved into place (a failing notebook's too, for inspection):
            # a file with other names at `out` is replaced, never written through
            with atomic_path(out, suffix=".ipynb") as tmp:
                try:
                    # the notebooks' printed lines (per-epoch summaries, stage results) stream to the terminal, and
                    # so do their progress bars, as text on stderr (lai.progress), with any warning
                    with _notebook_kernel() as (km, out_stream, err_stream):
                        pm.execute_notebook(str(NOTEBOOK_DIR / nb), str(tmp), parameters=params, cwd=str(NOTEBOOK_DIR),
                                            kernel_name="python3", km=km, progress_bar=False,
                                            stdout_file=out_stream if progress else None,
                                            stderr_file=err_stream if progress else None, extra_arguments=KERNEL_QUIET)
                except pm.PapermillExecutionError as err:
                    failed = err
            if failed is not None:
                raise PipelineError(
                    f"notebook {nb} failed in cell {failed.cell_index} (execution count {failed.exec_count}): "
                    f"{failed.ename}: {failed.evalue}. The executed notebook is {out}"
                )
            inputs.record(nb, before, inputs.snapshot(NOTEBOOK_DIR / nb))
    return run_dir / REPORT_FILE


class NotebookInputs:
    """What each notebook of a run read and wrote, to tell a rerun which notebooks to execute again.

    A snapshot maps every file of the run folder (hidden files and ``notebooks/`` aside), of the simulation
    and cube in the data root that the run's data.json names (runs of other names share the data root), and
    of a real ``--data`` folder to a digest (sha256; size and modification time for files over 64 MB and
    for the data folders),
    plus the notebook file and lai's own code. After a notebook runs, the files it changed are its
    outputs and the rest its inputs, both stored in ``notebooks/.inputs/<notebook>.json``. It is reused
    when its executed copy exists and the snapshot equals its inputs plus its outputs.
    """

    HASH_LIMIT = 64 * 2**20

    def __init__(self, run_dir: Path, data_root: Path, data: Path | None = None):
        self.run_dir, self.data_root, self.data = run_dir, data_root, data
        self.folder = own_subfolder(run_dir / "notebooks", ".inputs")  # never a link: records are removed there
        self.code = code_digest()

    def _digest(self, path: Path, content: bool) -> str:
        import hashlib

        st = path.stat()
        if not content or st.st_size > self.HASH_LIMIT:
            return f"{st.st_size}:{st.st_mtime_ns}"
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def snapshot(self, notebook: Path) -> dict[str, str]:
        files = {"<notebook>": self._digest(notebook, True), "<lai code>": self.code}
        roots = [(self.run_dir, "run", True, None), (self.data_root, "data", False, self._own_data()),
                 (self.data, "input", False, None)]
        for root, key, content, within in roots:
            if root is None or not root.is_dir():
                continue
            for path in (p for top in (within if within is not None else [root])
                         for p in (top, *(top.rglob("*") if top.is_dir() else ()))):
                rel = path.relative_to(root)
                if path.is_file() and not path.is_symlink() and not any(p.startswith(".") for p in rel.parts) \
                        and not (key == "run" and rel.parts[0] == "notebooks"):
                    files[f"{key}/{rel.as_posix()}"] = self._digest(path, content)
        return files

    def _own_data(self) -> list[Path]:
        """The simulation and cube of the data root that this run's data.json names (the data root is shared by runs
        of other names, whose files are none of this run's inputs); none before a notebook has written it."""
        try:
            record = read_json_record(self.run_dir / RUN_DATA_FILE, PipelineError, "") \
                if (self.run_dir / RUN_DATA_FILE).is_file() else {}
        except PipelineError:
            return [self.data_root]  # unreadable: the whole data root watched, as before data.json named its files
        named = [Path(str(record[k])).resolve() for k in ("source", "cube") if isinstance(record, dict) and record.get(k)]
        return [p for p in named if p.exists() and p.is_relative_to(self.data_root)]

    def _read(self, nb: str) -> dict:
        """The record of ``nb``'s last run ({"inputs": ..., "outputs": ...}); PipelineError naming it if unreadable."""
        path = self.folder / f"{nb}.json"
        last = read_json_record(path, PipelineError, "it is run again")
        if not (isinstance(last, dict) and all(isinstance(last.get(part), dict) for part in ("inputs", "outputs"))):
            raise PipelineError(f"{path} is not the record of a notebook's inputs and outputs lai writes; it is run again")
        return last

    def changed(self, nb: str, now: dict[str, str], executed: Path) -> str:
        """Why ``nb`` must run (empty when it can be reused)."""
        if not (self.folder / f"{nb}.json").is_file() or not executed.is_file():
            return "no earlier run here"
        try:
            last = self._read(nb)
        except PipelineError as err:
            return f"its record of the last run is unreadable: {err}"
        expected = {**last["inputs"], **last["outputs"]}
        differ = sorted(k for k in expected if expected[k] != now.get(k))  # files made later by other notebooks aside
        if not differ:
            return ""
        shown = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
        return f"changed since its last run: {shown}"

    def forget(self, nb: str) -> None:
        (self.folder / f"{nb}.json").unlink(missing_ok=True)  # an interrupted run leaves no stale record

    def record(self, nb: str, before: dict[str, str], after: dict[str, str]) -> None:
        import json

        outputs = {k: v for k, v in after.items() if before.get(k) != v}
        removed = [k for k in before if k not in after]
        inputs = {k: v for k, v in before.items() if k not in outputs and k not in removed}
        own_subfolder(self.folder.parent, self.folder.name)
        # a file this notebook rewrote is no longer checked for the notebooks before it (a later one that read it
        # sees the change and runs again)
        earlier = NOTEBOOKS[:NOTEBOOKS.index(nb)] if nb in NOTEBOOKS else ()
        for other in (self.folder / f"{name}.json" for name in earlier):
            if not other.is_file():
                continue
            try:
                last = self._read(other.name.removesuffix(".json"))
            except PipelineError:
                other.unlink()  # unreadable: that notebook runs again next time
                continue
            kept = {part: {k: v for k, v in last[part].items() if k not in outputs} for part in ("inputs", "outputs")}
            atomic_write_text(other, json.dumps(kept, indent=0))
        atomic_write_text(self.folder / f"{nb}.json", json.dumps({"inputs": inputs, "outputs": outputs}, indent=0))


class _Terminal:
    """The notebooks' streamed output, muted once the run is interrupted: the closing line stays the last."""

    def __init__(self, stream):
        self.stream, self.muted = stream, False

    def write(self, text: str) -> int:
        if not self.muted:
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        if not self.muted:
            self.stream.flush()


@contextlib.contextmanager
def _environment(name: str, value: str):
    """The environment variable ``name`` set to ``value`` for the block (the notebooks' kernels inherit it)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def _notebook_kernel():
    """A kernel manager owned here, so that Ctrl-C kills the kernel at once.

    Left to nbclient, an interrupted run first interrupts the kernel, whose KeyboardInterrupt
    traceback (or a "Kernel died" task error) then reaches the terminal after lai's own last line.
    """
    import logging
    import signal
    import threading

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name="python3")
    out_stream, err_stream = _Terminal(sys.stdout), _Terminal(sys.stderr)
    interrupted = False

    def on_interrupt(signum, frame):
        nonlocal interrupted
        interrupted = out_stream.muted = err_stream.muted = True
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # the killed kernel's pending replies
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main else None
    try:
        yield km, out_stream, err_stream
    except BaseException:
        if interrupted:  # whatever nbclient raised while unwinding, the run was interrupted
            raise KeyboardInterrupt from None
        raise
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        if km.has_kernel:
            if interrupted:
                with contextlib.suppress(OSError):
                    os.killpg(km.provisioner.pgid, signal.SIGKILL)
            run_sync(km.shutdown_kernel)(now=interrupted)
