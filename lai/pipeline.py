"""The main job: run every notebook in order through papermill with one profile.

The profile is resolved once per run folder (name or YAML file, overrides, real data) and written to
its profile.yaml; `lai run` then hands each notebook only the run folder. Notebooks stay thin: each
opens a :class:`RunContext` (from its ``parameters`` cell) and calls its methods, which do the work
idempotently: a stage whose results exist for the same configuration is reused, an interrupted one resumes.

Run folder ``<reports>/<run>/``: profile.yaml, provenance.json, data.json,
tables/*.csv, figures/*.png, runs/<row>/ (training), notebooks/*.ipynb
(executed), report.pdf.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import yaml

from lai.config import (
    ConfigError,
    Profile,
    describe_differences,
    load_profile,
    parse_overrides,
    profile_from_dict,
    saved_differences,
    variant,
    yaml_load,
)
from lai.errors import PipelineError, RunFolderError
from lai.facts import RUN_PROFILE_FILE
from lai.io import atomic_path, atomic_write_text, claim_folder, output_lock
from lai.provenance import environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
# 00_preprocessing applies the trained final model to real patches, so it runs after 02_training
NOTEBOOKS = ("01_data.ipynb", "02_training.ipynb", "00_preprocessing.ipynb", "03_ablations.ipynb", "04_baselines.ipynb",
             "05_report.ipynb")


DEFAULT_PROFILE = "quick"


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _with_data(overrides: list[str] | None, data: str | None) -> list[str]:
    """Overrides plus ``data=<path>`` when a real LNB folder is given."""
    return list(overrides or []) + ([f"data={data}"] if data else [])


def resolve_profile(profile: str | Path | Profile | None = None, overrides: list[str] | None = None,
                    data: str | Path | None = None) -> Profile:
    """A built-in profile's name or a YAML file (default quick), or a Profile, with overrides and a real LNB
    folder applied and validated; a relative data path is made absolute (from the current folder), so the
    profile means the same wherever it is read."""
    if isinstance(profile, Profile):
        extra = _with_data(overrides, str(data) if data else None)
        resolved = variant(profile, parse_overrides(extra)) if extra else profile
    else:
        resolved = load_profile(profile or DEFAULT_PROFILE, _with_data(overrides, str(data) if data else None))
    if resolved.data != "simulate":
        resolved = replace(resolved, data=str(Path(resolved.data).resolve()))
    return resolved


def saved_profile(run_dir: str | Path) -> tuple[Profile, dict] | None:
    """The profile a run folder holds, with its profile.yaml as read, or None for a folder without one."""
    path = Path(run_dir) / RUN_PROFILE_FILE
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        raw = yaml_load(path.read_text())
        if not isinstance(raw, dict):
            raise ConfigError(f"holds a {type(raw).__name__}, not a mapping of sections")
        return profile_from_dict(raw), raw
    except (ConfigError, yaml.YAMLError, UnicodeDecodeError, IsADirectoryError) as err:
        mark = getattr(err, "problem_mark", None)
        reason = f"not valid YAML: {err.problem} at line {mark.line + 1}" if mark is not None else str(err)
        raise RunFolderError(
            f"{path}: not a configuration this lai can read ({reason}); choose another folder: `lai run --name NEW`, "
            "or in a notebook set the parameter run_dir to a new folder"
        ) from None


def open_run_folder(run_dir: str | Path | None = None, profile: str | Path | Profile | None = None,
                    overrides: list[str] | None = None, data: str | Path | None = None) -> tuple[Profile, Path]:
    """The profile and folder of a run, resolved once per folder.

    * No ``profile``, ``overrides`` or ``data``: the folder's profile.yaml as it is (``run_dir`` defaults
      to reports/quick); a new folder starts with the default profile (quick).
    * Any of them given: they are resolved (:func:`resolve_profile`; ``run_dir`` defaults to
      reports/<profile name>) and must equal the profile of a folder that has one, else
      :class:`RunFolderError` (set ``run_dir`` to a new folder); a new folder starts with them.

    Starting a folder writes its profile.yaml.
    """
    given = profile is not None or bool(overrides) or data is not None
    if not given:
        folder = Path(run_dir) if run_dir is not None else PROJECT_ROOT / "reports" / DEFAULT_PROFILE
        saved = saved_profile(folder)
        if saved is not None:
            return saved[0], folder
    resolved = resolve_profile(profile, overrides, data)
    folder = Path(run_dir) if run_dir is not None else PROJECT_ROOT / "reports" / resolved.name
    saved = saved_profile(folder)
    if saved is None:
        claim_folder(folder, RUN_PROFILE_FILE)
        atomic_write_text(folder / RUN_PROFILE_FILE, yaml.safe_dump(resolved.to_dict(), sort_keys=False))
        return resolved, folder
    diffs = saved_differences(saved[1], saved[0], resolved)
    if diffs:
        raise RunFolderError(
            f"{folder} already holds a run with another configuration (see its {RUN_PROFILE_FILE}): "
            f"{describe_differences(diffs)}; choose another folder: `lai run --name NEW`, "
            "or in a notebook set the parameter run_dir to a new folder"
        )
    return saved[0], folder


class RunContext:
    """Paths and idempotent stages of one pipeline run; what every notebook starts from
    (:meth:`open`; the profile is resolved as :func:`open_run_folder` says)."""

    def __init__(self, profile: str | Path | Profile | None = None, overrides: list[str] | None = None,
                 run_dir: str | Path | None = None, data_root: str | Path | None = None, data: str | Path | None = None):
        self.profile, self.run_dir = open_run_folder(run_dir, profile, overrides, data)
        self.data_root = Path(data_root or self._recorded_data_root() or PROJECT_ROOT / "data")
        for sub in ("tables", "figures", "runs", "notebooks"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, run_dir: str | Path | None = None, profile: str | Path | Profile | None = None,
             overrides: list[str] | None = None, data: str | Path | None = None,
             data_root: str | Path | None = None) -> RunContext:
        """The run folder ``run_dir`` (holding profile.yaml: that profile, as it is); ``profile``, ``overrides``
        and ``data`` start a new folder, or must match the folder's profile. ``data_root`` holds simulated
        data and cubes (default: the one the folder's data step recorded in data.json, else data/)."""
        return cls(profile, overrides, run_dir, data_root, data)

    def _recorded_data_root(self) -> str | None:
        """The data root this run folder's data step used (data.json), so a notebook opened alone finds its cube."""
        try:
            return json.loads((self.run_dir / "data.json").read_text()).get("data_root")
        except (OSError, ValueError, AttributeError):
            return None

    # ------------------------------------------------------------------ paths
    @property
    def simulated(self) -> bool:
        return self.profile.data == "simulate"

    @property
    def lnb_dir(self) -> Path:
        if self.simulated:
            return self.data_root / f"sim-{_digest(asdict(self.profile.simulate))}"
        return Path(self.profile.data)

    @property
    def cube_path(self) -> Path:
        float16 = {"float": self.profile.cube_float} if self.profile.cube_float != "float32" else {}  # float32: names as before
        key = _digest({"lnb": str(self.lnb_dir.resolve()), "splits": asdict(self.profile.splits),
                       "valid": self.profile.encoding.valid_classes, **float16})
        return self.data_root / f"cube-{key}.nc"

    def table(self, name: str) -> Path:
        return self.run_dir / "tables" / f"{name}.csv"

    def figure(self, name: str) -> Path:
        return self.run_dir / "figures" / f"{name}.png"

    # ------------------------------------------------------------------ stages
    def ensure_data(self, progress: bool = True):
        """Simulate (if the profile says so) and build the cube; both are reused when present."""
        from lai.cube import build_cube

        if self.simulated:
            from lai.simulate import simulate

            simulate(self.profile.simulate, self.lnb_dir, progress=progress)
        # the cube is lai's own, named after its source and settings: rebuilt when the source's files changed
        summary = build_cube(self.lnb_dir, self.cube_path, self.profile.splits, self.profile.encoding,
                             overwrite=True, progress=progress, float_dtype=self.profile.cube_float)
        info = {
            "kind": "simulated" if self.simulated else "real",
            "source": str(self.lnb_dir),
            "cube": str(self.cube_path),
            "data_root": str(self.data_root.resolve()),
            "triplets": summary.n_triplets,
            "tile_size": summary.height,
            "splits": summary.splits,
            "split_sampling": self.profile.splits.sampling,
            "has_truth": summary.has_truth,
            "skipped": summary.skipped,
            "fingerprint": summary.fingerprint,
        }
        atomic_write_text(self.run_dir / "data.json", json.dumps(info, indent=2))
        return summary

    def open_cube(self):
        from lai.cube import open_cube

        return open_cube(self.cube_path)

    def train(self, rows: list[str], progress: bool = True):
        from lai.train import train_rows

        return train_rows(self.profile, self.cube_path, self.run_dir / "runs", rows, resume=True, progress=progress)

    def train_extras(self, progress: bool = True):
        """Train the rows beyond the paper (``lai.facts.EXTRA_ROWS``) beside the Table 1 rows."""
        from lai.train import train_extras

        return train_extras(self.profile, self.cube_path, self.run_dir / "runs", resume=True, progress=progress)

    def evaluate(self, row: str) -> pd.DataFrame:
        """Metrics of a trained row on the three test sets (cached in its run folder)."""
        from lai.cube import cube_identity
        from lai.evaluate import evaluate_run, evaluated_on

        run = self.run_dir / "runs" / row
        cached = run / "metrics.csv"
        if (cached.exists() and cached.stat().st_mtime >= (run / "model.pt").stat().st_mtime
                and evaluated_on(run) == cube_identity(self.cube_path)):
            return pd.read_csv(cached)
        return evaluate_run(run, self.cube_path, batch_size=self.profile.train.batch_size, device=self.profile.train.device)

    def per_triplet(self, run: str) -> pd.DataFrame:
        """Per-triplet scores and sums of an evaluated run (set, triplet, ``lai.metrics.SUMS``, ...)."""
        self.evaluate(run)
        return pd.read_csv(self.run_dir / "runs" / run / "per_tile.csv")

    def noise_floor(self) -> pd.DataFrame | None:
        """tables/noise_floor.csv (written once, :func:`lai.noise.noise_floor`): per test set the RMSE of the
        observed LAI at t against the true LAI on the scored pixels (``floor_rmse``) and on strictly clear
        ones (``floor_rmse_strict``, SCL 4-6); None for real data, which has no true LAI."""
        from lai.facts import TEST_SETS
        from lai.noise import noise_floor

        if not self.simulated:
            return None
        if self.table("noise_floor").exists():
            return self.read_table("noise_floor")
        floor = noise_floor(self.cube_path, TEST_SETS, self.profile.encoding.valid_classes)
        self.save_table(floor, "noise_floor")
        return floor

    def histories(self, rows) -> dict[str, pd.DataFrame]:
        return {r: pd.read_csv(self.run_dir / "runs" / r / "history.csv") for r in rows
                if (self.run_dir / "runs" / r / "history.csv").exists()}

    def predictions(self, row: str) -> dict:
        """{test set: xarray Dataset of predictions} of an evaluated row."""
        import xarray as xr

        folder = self.run_dir / "runs" / row / "predictions"
        return {p.stem: xr.load_dataset(p, engine="h5netcdf") for p in sorted(folder.glob("*.nc"))}

    def training_summary(self, rows) -> pd.DataFrame:
        """Per trained run: epochs, total seconds, mean samples/s, last and best validation RMSE, the best
        epoch and whether validation had stopped improving (``converged``, see :func:`lai.train.convergence`)."""
        from lai.train import convergence

        out = []
        for row, h in self.histories(rows).items():
            out.append({"row": row, "epochs": int(h["epoch"].max()), "seconds": float(h["seconds"].sum()),
                        "samples_per_s": float(h["samples_per_s"].mean()), "val_rmse": float(h["val_rmse"].iloc[-1]),
                        **convergence(h, self.profile.train.patience)})
        return pd.DataFrame(out)

    def read_table(self, name: str) -> pd.DataFrame:
        path = self.table(name)
        if not path.exists():
            raise PipelineError(f"{path} does not exist yet: run the notebook that writes it first")
        return pd.read_csv(path)

    def show(self, fig, name: str):
        """Save a figure as figures/<name>.png and return it for display in the notebook."""
        from IPython.display import Image

        from lai.figures import save

        return Image(filename=str(save(fig, self.figure(name))))

    def save_table(self, frame: pd.DataFrame, name: str, index: bool = False) -> Path:
        path = self.table(name)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=index)
        return path

    def write_provenance(self, **extra) -> dict:
        """provenance.json: package versions, git revision, device and the data fingerprint of this run."""
        data = json.loads((self.run_dir / "data.json").read_text()) if (self.run_dir / "data.json").exists() else {}
        prov = {**environment(), "data_fingerprint": data.get("fingerprint", ""),
                "written": dt.datetime.now().isoformat(timespec="seconds"), **extra}
        atomic_write_text(self.run_dir / "provenance.json", json.dumps(prov, indent=2))
        return prov


def check_run_name(name: str) -> None:
    """A run name is one plain folder name, so that results stay inside the reports folder."""
    if not name.strip() or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"run name {name!r} must be a plain folder name (no '/', not '.' or '..'): "
                          "results go to <reports>/<name>")


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
        RunContext(resolved, run_dir=run_dir, data_root=params["data_root"])  # claims the folder before any notebook
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
