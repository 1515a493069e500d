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
from lai.facts import RUN_PROFILE_FILE
from lai.io import output_lock
from lai.run_profile import DEFAULT_PROFILE, PROJECT_ROOT, check_run_name, open_run_folder, resolve_profile

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
# 00_preprocessing applies the trained final model to real patches, so it runs after 02_training
NOTEBOOKS = ("01_data.ipynb", "02_training.ipynb", "00_preprocessing.ipynb", "03_ablations.ipynb", "04_baselines.ipynb",
             "05_report.ipynb")


# The kernel's own log (a warning that it talks over local TCP, a "KeyboardInterrupt caught" line at
# every shutdown) is noise on the terminal; a failing cell still raises PapermillExecutionError.
KERNEL_QUIET = ["--IPKernelApp.log_level=CRITICAL"]


def run_pipeline(profile: str | Path = DEFAULT_PROFILE, overrides: list[str] | None = None, data: str | None = None,
                 run_name: str | None = None, reports_root: str | Path = "reports",
                 data_root: str | Path = "data", progress: bool = True) -> Path:
    """Execute every notebook in order with papermill; return the report's path.

    The profile is resolved here, once, and written to the run folder's profile.yaml; the notebooks get
    only the run folder (and the data root). The run folder is locked for the whole run: a second
    `lai run` into it is refused, naming the holder. A failing notebook raises :class:`PipelineError`
    naming the notebook and cell; its partly executed copy is kept under ``notebooks/`` for inspection.
    """
    import papermill as pm

    resolved = resolve_profile(profile, overrides, data)
    check_run_name(run_name or resolved.name)
    run_dir = (Path(reports_root) / (run_name or resolved.name)).resolve()
    params = {"run_dir": str(run_dir), "data_root": str(Path(data_root).resolve())}
    with output_lock(run_dir, folder=RUN_PROFILE_FILE):
        open_run_folder(run_dir, resolved)  # claims the folder and writes its profile before any notebook
        (run_dir / "notebooks").mkdir(exist_ok=True)
        for nb in NOTEBOOKS:
            out = run_dir / "notebooks" / nb
            print(f"[lai run] {nb}", flush=True)
            try:
                # the notebooks' printed lines (per-epoch summaries, stage results) stream to the terminal;
                # their progress bars stay in the notebook (widgets in JupyterLab)
                with _notebook_kernel() as (km, terminal):
                    pm.execute_notebook(str(NOTEBOOK_DIR / nb), str(out), parameters=params, cwd=str(NOTEBOOK_DIR),
                                        kernel_name="python3", km=km, progress_bar=False,
                                        stdout_file=terminal if progress else None, extra_arguments=KERNEL_QUIET)
            except pm.PapermillExecutionError as err:
                raise PipelineError(
                    f"notebook {nb} failed in cell {err.cell_index} (execution count {err.exec_count}): "
                    f"{err.ename}: {err.evalue}. The executed notebook is {out}"
                ) from None
    return run_dir / "report.pdf"


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
    terminal = _Terminal(sys.stdout)
    interrupted = False

    def on_interrupt(signum, frame):
        nonlocal interrupted
        interrupted = terminal.muted = True
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # the killed kernel's pending replies
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main else None
    try:
        yield km, terminal
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
