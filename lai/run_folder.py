"""A run folder and what notebooks do in it: :class:`RunContext`, and the profile resolved once per folder.

Run folder ``<reports>/<run>/``: profile.yaml, provenance.json, data.json, tables/*.csv, figures/*.png
(their names: the schema in ``lai.facts``), runs/<row>/ (training), notebooks/*.ipynb (executed), report.pdf.
A notebook opens a :class:`RunContext` (from its ``parameters`` cell) and calls its methods, which do the
work idempotently: a stage whose results exist for the same configuration is reused, an interrupted one
resumes. :func:`open_run_folder` resolves the profile (name or YAML file, overrides, real data) once and
writes it to the folder's profile.yaml; later it is read back as it is.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from lai.config import SIMULATE, Profile
from lai.errors import ClusterStartError, ConfigError, LNBError, PipelineError, RunFolderError
from lai.facts import (
    DATA_FOLDER,
    DATA_ROOT_ENV,
    FINAL,
    ROWS,
    RUN_DATA_FILE,
    RUN_DIR_ENV,
    RUN_PROVENANCE_FILE,
    RUN_SUBFOLDERS,
    STAGE_HISTORY_FILE,
    STAGE_METRICS_FILE,
    STAGE_PER_TRIPLET_FILE,
    STAGE_RESULT_FILE,
    STAGE_WEIGHTS_FILE,
    TABLE,
    TRAIN,
    VAL,
    require_results,
    result_file,
)
from lai.io import OutputLockedError, atomic_path, atomic_write_text, own_subfolder
from lai.progress import PROGRESS_ENV
from lai.provenance import code_digest, environment, machine_text, revision_text
from lai.records import read_csv_record, read_json_record
from lai.run_profile import (  # noqa: F401 - the folder's profile, importable from here too
    DEFAULT_PROFILE,
    PROJECT_ROOT,
    check_run_name,
    open_run_folder,
    refuse_other_writer,
    resolve_profile,
    saved_profile,
)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _from_project(path: str | Path | None) -> Path | None:
    """A notebook's path parameter: ``~`` expanded, then an absolute path as it is, a relative one from the project
    folder."""
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def _override_list(overrides) -> list[str] | None:
    """The parameter ``overrides`` as a list: papermill's ``-p overrides X`` passes a string, one override
    (``train.epochs=3``) or a YAML list (``["train.epochs=3", "cube_float=float16"]``)."""
    if isinstance(overrides, str):
        import yaml

        try:
            parsed = yaml.safe_load(overrides) if overrides.lstrip().startswith("[") else [overrides]
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, list):
            raise ConfigError(f"the parameter overrides must be a list of 'section.key=value' strings (papermill: "
                              f"-y 'overrides: [...]'), or one such string; got {overrides!r}")
        overrides = parsed
    if overrides is not None and not (isinstance(overrides, (list, tuple)) and all(isinstance(o, str) for o in overrides)):
        raise ConfigError(f"the parameter overrides must be a list of 'section.key=value' strings, got {overrides!r}")
    return None if overrides is None else [_data_from_project(o) for o in overrides]


def _data_from_project(override: str) -> str:
    """An override ``data=PATH`` with a relative path taken from the project folder, as the parameter ``data`` is
    (not from the kernel's folder, notebooks/); any other override as it is."""
    import json

    import yaml

    from lai.records import yaml_load

    key, sep, raw = override.partition("=")
    if not sep or key.strip() != "data":
        return override
    try:
        value = yaml_load(raw)
    except (yaml.YAMLError, ValueError):  # refused, naming it, where the profile is built
        return override
    if not isinstance(value, str) or value in (SIMULATE, ""):
        return override
    return f"data={json.dumps(str(_from_project(value)))}"


PAPERMILL_MARK = "# Parameters\n"  # how the cell of parameters that papermill injects (-p, -y) begins


def _assigned_names(source: str) -> set[str]:
    """The names a cell's top-level statements assign (none where it is not plain Python)."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython syntax (magics): not a cell of assignments
        return set()
    targets = [t for node in body if isinstance(node, ast.Assign) for t in node.targets]
    targets += [node.target for node in body if isinstance(node, ast.AnnAssign)]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def unknown_notebook_parameters(history: list[str], parameters: set[str]) -> tuple[list[str], list[str]]:
    """(names, declared): the names in the last cell papermill injected (in ``history``, the kernel's executed
    cells, IPython's ``In``) that the notebook's parameters cell does not assign, and the names that cell
    assigns. The parameters cell: the last cell run before the injected one that assigns every name of
    ``parameters`` (whatever else ran between them). Empty where papermill injected nothing or no such cell ran."""
    marked = [k for k, source in enumerate(history) if source.startswith(PAPERMILL_MARK)]
    for k in reversed(range(marked[-1] if marked else 0)):
        declared = _assigned_names(history[k])
        if parameters <= declared:
            return sorted(_assigned_names(history[marked[-1]]) - declared), sorted(declared)
    return [], []


def _refuse_unknown_parameters() -> None:
    """:class:`ConfigError` naming a parameter papermill passed that the notebook does not have (``-p profil
    paper``): papermill only warns, and the run would go on with the default in its place. Outside a kernel
    (IPython not imported) nothing to check."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    history = getattr(shell, "user_ns", {}).get("In") if shell is not None else None
    if isinstance(history, list):
        import inspect

        parameters = set(inspect.signature(RunContext.open).parameters)  # what every notebook passes it
        names, declared = unknown_notebook_parameters(history, parameters)
        if names:
            raise ConfigError(f"unknown notebook parameter(s) {', '.join(names)} (papermill -p); this notebook's "
                              f"parameters are {', '.join(declared)}")


DATA_LOCK_POLL_S = 2.0  # how often a run waiting for another's data step looks again


def _when_free(step):
    """``step()``, waited for while another lai process writes the same data (a run of another name on this data
    root simulating or building the same cube): said once, then done again, when it reuses what the other wrote."""
    waiting = False
    while True:
        try:
            return step()
        except OutputLockedError as err:
            if not waiting:
                print(f"lai: waiting: {err}", file=sys.stderr, flush=True)
                waiting = True
            time.sleep(DATA_LOCK_POLL_S)


class RunContext:
    """Paths and idempotent stages of one pipeline run; what every notebook starts from
    (:meth:`open`; the profile is resolved as :func:`open_run_folder` says)."""

    def __init__(self, profile: str | Path | Profile | None = None, overrides: list[str] | None = None,
                 run_dir: str | Path | None = None, data_root: str | Path | None = None, data: str | Path | None = None,
                 progress: bool | None = None):
        self.profile, self.run_dir = open_run_folder(run_dir, profile, overrides, data, data_root)
        # the stages' default: progress bars and per-epoch lines (None: on unless LAI_PROGRESS=0)
        self.progress = os.environ.get(PROGRESS_ENV) != "0" if progress is None else bool(progress)
        self.data_root = Path(data_root or self._recorded_data_root() or PROJECT_ROOT / DATA_FOLDER)
        self._patches: list | None = None  # the real patches, extracted once (real_patches)
        for sub in RUN_SUBFOLDERS:
            own_subfolder(self.run_dir, sub)

    @classmethod
    def open(cls, run_dir: str | Path | None = None, profile: str | Path | Profile | None = None,
             overrides: list[str] | None = None, data: str | Path | None = None,
             data_root: str | Path | None = None, progress: bool | None = None) -> RunContext:
        """The run folder ``run_dir`` (holding profile.yaml: that profile, as it is); ``profile``, ``overrides``
        and ``data`` start a new folder, or must match the folder's profile. ``data_root`` holds simulated
        data and cubes (default: the one the folder's data step recorded in data.json, else data/). ``progress``:
        whether the stages show progress bars and per-epoch lines unless a call says otherwise (None: yes,
        unless the environment variable LAI_PROGRESS is 0, as it is for the notebooks under the tests).

        What a notebook's parameters give: relative ``run_dir``, ``data_root`` and ``data`` are taken from the
        project folder (the one holding notebooks/, reports/ and data/), as the defaults are, wherever the kernel
        runs (JupyterLab runs it in notebooks/), and so are a relative ``profile`` file (``*.yaml``) and the path of
        a ``data=`` override;
        ``overrides`` may be one string (papermill's ``-p``): one
        override, or a YAML list of them."""
        _refuse_unknown_parameters()
        for name, value in (("run_dir", run_dir), ("profile", profile), ("data", data), ("data_root", data_root)):
            if value is not None and not isinstance(value, (str, os.PathLike, Profile)) or (
                    name != "profile" and isinstance(value, Profile)):
                raise ConfigError(f"the parameter {name} must be {'a profile name or ' if name == 'profile' else ''}a "
                                  f"path (text), got {value!r} ({type(value).__name__}): papermill's -p reads "
                                  f"`-p {name} 20261207` as a number; pass text with -r {name} 20261207")
            if isinstance(value, (str, os.PathLike)) and not str(value).strip():  # "" would be the project folder
                env = {"data_root": DATA_ROOT_ENV, "run_dir": RUN_DIR_ENV}.get(name)
                where = f" (or the environment variable {env} set empty)" if env else ""
                raise ConfigError(f"the parameter {name} is empty{where}: give a path, or None for the default")
        if progress not in (None, True, False):  # e.g. papermill's -p progress maybe: a string, which bool() takes as True
            raise ConfigError(f"the parameter progress must be True, False or None, got {progress!r}")
        if isinstance(profile, (str, os.PathLike)) and str(profile).endswith((".yaml", ".yml")):
            profile = _from_project(profile)  # a profile file, like the other paths (a built-in name stays a name)
        return cls(profile, _override_list(overrides), _from_project(run_dir), _from_project(data_root),
                   _from_project(data), progress)

    def _recorded_data(self) -> dict:
        """What this run folder's data step recorded (data.json); {} where it has not run or is unreadable."""
        path = self.run_dir / RUN_DATA_FILE
        try:
            data = read_json_record(path, PipelineError, "") if path.exists() else {}
        except PipelineError:
            return {}
        return data if isinstance(data, dict) else {}

    def _recorded_data_root(self) -> str | None:
        """The data root this run folder's data step used (data.json), so a notebook opened alone finds its cube."""
        root = self._recorded_data().get("data_root")
        return root if isinstance(root, str) else None

    def _refuse_other_data(self, fingerprint: str) -> None:
        """Refuse data other than those this run folder's results come from (data.json's fingerprint): the source
        changed since, or another data root holds other data under the same settings; its tables and trained
        stages would mix two datasets."""
        data = self._recorded_data()
        recorded = data.get("fingerprint")
        if isinstance(recorded, str) and recorded and recorded != fingerprint:
            raise RunFolderError(
                f"{self.run_dir}: its results come from the data of fingerprint {recorded[:16]} ({data.get('source')}, "
                f"cube {data.get('cube')}), and the cube {self.cube_path} of {self.lnb_dir} now holds other data "
                f"(fingerprint {fingerprint[:16]}): the data changed since (an edited folder; simulated data made again "
                "on another CPU differ in their last bits: keep a run folder with its data root), or another data root "
                "holds other data; its tables, trained stages and data.json were left as they were. Start a new run "
                f"folder (`lai run --name NEW`, or the notebooks' run_dir) for these data, or delete {self.run_dir} to "
                "run it again from the start")

    # ------------------------------------------------------------------ paths
    @property
    def simulated(self) -> bool:
        return self.profile.data == SIMULATE

    @property
    def lnb_dir(self) -> Path:
        if self.simulated:
            from lai.simulate.write import SIM_VERSION  # another simulator version writes another folder

            return self.data_root / f"sim-{_digest([asdict(self.profile.simulate), SIM_VERSION])}"
        return Path(self.profile.data)

    @property
    def cube_path(self) -> Path:
        float16 = {"float": self.profile.cube_float} if self.profile.cube_float != "float32" else {}  # float32: names as before
        skip = {"skip_bad": True} if self.profile.skip_bad else {}  # another cube: the same folder without its bad triplets
        key = _digest({"lnb": str(self.lnb_dir.resolve()), "splits": asdict(self.profile.splits),
                       "valid": self.profile.encoding.valid_classes, **float16, **skip})
        return self.data_root / f"cube-{key}.nc"

    def table(self, name: str) -> Path:
        """tables/<name>.csv; a name not in the run folder's schema (``lai.facts.TABLES``) is refused."""
        return self.run_dir / result_file("table", name, PipelineError)

    def figure(self, name: str) -> Path:
        """figures/<name>.png; a name not in the run folder's schema (``lai.facts.FIGURES``) is refused."""
        return self.run_dir / result_file("figure", name, PipelineError)

    # ------------------------------------------------------------------ stages
    def _progress(self, progress: bool | None) -> bool:
        return self.progress if progress is None else progress

    def ensure_data(self, progress: bool | None = None):
        """Simulate (if the profile says so) and build the cube; both are reused when present."""
        from lai.cube import build_cube, run_cube_dask

        if self.simulated:
            from lai.simulate import simulate

            _when_free(lambda: simulate(self.profile.simulate, self.lnb_dir, progress=self._progress(progress)))

        # the cube is lai's own, named after its source and settings: rebuilt when the source's files changed
        def cube(dask):
            return _when_free(lambda: build_cube(
                self.lnb_dir, self.cube_path, self.profile.splits, self.profile.encoding,
                on_error="skip" if self.profile.skip_bad else "raise", overwrite=True,
                progress=self._progress(progress), cube_float=self.profile.cube_float, dask=dask))

        try:
            try:
                summary = cube(run_cube_dask())
            except ClusterStartError as err:  # the same cube, in this process
                print(f"lai: {err.what}; building the cube in this process", file=sys.stderr)
                summary = cube(None)
        except LNBError as err:
            if self.simulated:  # lai's own simulation, changed since it was written (a file removed or edited)
                raise LNBError(err.file, f"{err.problem} (the simulated folder {self.lnb_dir} is lai's: delete it to "
                               "simulate it again)") from None
            raise LNBError(err.file, f"{err.problem} (a run stops at a bad triplet of its LNB folder: `lai validate "
                           f"{self.lnb_dir} --skip-bad` lists them all; mend them or remove their rows from "
                           "image_series.csv, then run again, or leave them out: `lai run --skip-bad`, a new run "
                           "name)") from None
        self._refuse_other_data(summary.fingerprint)
        empty = [name for name in (TRAIN, VAL) if not summary.splits.get(name)]
        if empty:  # nothing could be trained: said here, naming the data and the settings, not by a later cell
            cfg = self.profile.splits
            settings = ", ".join(f"splits.{k}={getattr(cfg, k)}" for k in (
                "sampling", "block_size", "test_fraction", "val_fraction", "min_clear_target", "held_out_areas"))
            fix = {TRAIN: "lower splits.test_fraction and splits.val_fraction or hold out fewer areas",
                   VAL: "raise splits.val_fraction" + (" or lower splits.block_size" if cfg.sampling == "blocks" else "")}
            remedy = ("lower splits.test_fraction or hold out fewer areas (the test sets take every triplet)"
                      if len(empty) == 2 else fix[empty[0]])  # one remedy for both, not two that contradict
            raise ConfigError(f"{self.lnb_dir}: its {summary.n_triplets} triplet(s) leave the {' and '.join(empty)} "
                              f"split(s) empty with {settings}; training needs both: add triplets, or {remedy}")
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
        refuse_other_writer(self.run_dir)
        atomic_write_text(self.run_dir / RUN_DATA_FILE, json.dumps(info, indent=2))
        return summary

    def open_cube(self):
        from lai.cube import open_cube

        return open_cube(self.cube_path)

    def train(self, rows: list[str], progress: bool | None = None):
        from lai.train import train_rows

        return train_rows(self.profile, self.cube_path, self.run_dir / "runs", rows, resume=True, progress=self._progress(progress))

    def train_table1(self, progress: bool | None = None) -> list[str]:
        """Train Table 1's six rows (reused where trained) and list them in tables/training.csv with the candidates
        and the chosen model's seeds that notebook 02 trained; returns the runs listed, Table 1's first."""
        seeds = self.chosen()[1]  # notebook 02's choice, asked first: without it, nothing is trained in vain
        self.train(list(ROWS), progress)
        trained = [*ROWS, *self.profile.candidates, *seeds]
        self.save_training(trained)
        return trained

    def extras(self, baselines: pd.DataFrame, baseline_sums: pd.DataFrame) -> pd.DataFrame | None:
        """tables/extras.csv where the profile runs the rows beyond the paper (``extras: true``; None, nothing
        written, otherwise): each extra row (trained here, :meth:`train_extras`) and baseline without the LAI history
        beside the final model (:func:`lai.tables.extras_table`). ``baselines``, ``baseline_sums``: the scored
        baselines and their per-triplet sums (:func:`lai.baselines.evaluate_baselines` with ``extras``)."""
        from lai.facts import EXTRA_BASELINES, EXTRA_ROWS
        from lai.tables import extras_table

        if not self.profile.extras:
            return None
        self.train_extras()
        runs = {name: self.evaluate(name) for name in EXTRA_ROWS}
        sums = {name: self.per_triplet(name) for name in EXTRA_ROWS}
        sums.update({b: baseline_sums[baseline_sums["baseline"] == b] for b in EXTRA_BASELINES})
        table = extras_table(runs, baselines, self.per_triplet(FINAL), sums, self.noise_floor())
        self.save_table(table, TABLE.extras)
        return table

    def train_chosen(self, progress: bool | None = None):
        """Choose the run's model among the final model and ``profile.candidates`` from validation scores, train its
        seeds, save tables/selection.csv; returns (selection table, the chosen model's stages by run name)."""
        from lai.train import train_chosen

        selection, runs = train_chosen(self.profile, self.cube_path, self.run_dir / "runs", resume=True, progress=self._progress(progress))
        self.save_table(selection, TABLE.selection)
        return selection, runs

    def chosen(self) -> tuple[str, list[str]]:
        """The chosen model's name (tables/selection.csv, written by :meth:`train_chosen`) and its seeds' run names."""
        from lai.facts import chosen_model
        from lai.train import seed_runs

        self.require(TABLE.selection, "02_training", "chooses the model (and trains its seeds)")
        name = chosen_model(self.read_table(TABLE.selection).to_dict("records"))
        return name, list(seed_runs(name, self.profile.train))

    def train_extras(self, progress: bool | None = None):
        """Train the rows beyond the paper (``lai.facts.EXTRA_ROWS``) beside the Table 1 rows, and list them in
        tables/training.csv (how each stopped, its time: the report's training section covers them)."""
        from lai.facts import EXTRA_ROWS
        from lai.train import train_extras

        results = train_extras(self.profile, self.cube_path, self.run_dir / "runs", resume=True,
                               progress=self._progress(progress))
        self.save_training(list(EXTRA_ROWS))
        return results

    def evaluate(self, row: str) -> pd.DataFrame:
        """Metrics of a trained row on the three test sets (cached in its run folder)."""
        from lai.evaluate import evaluate_run, evaluated_on, evaluation_identity

        identity = evaluation_identity(self.cube_path)  # the cube's, read once for both checks
        self._refuse_other_data(identity["fingerprint"])
        run = self.run_dir / "runs" / row
        cached = run / STAGE_METRICS_FILE
        if (cached.exists() and cached.stat().st_mtime >= (run / STAGE_WEIGHTS_FILE).stat().st_mtime
                and evaluated_on(run) == identity):
            return read_csv_record(cached, PipelineError, f"delete it to evaluate {row} again")
        return evaluate_run(run, self.cube_path, batch_size=self.profile.train.batch_size, device=self.profile.train.device,
                            progress=self.progress)

    def evaluate_ensemble(self, name: str, runs: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
        """The mean prediction of the trained ``runs`` of model ``name`` (its seeds) on the validation split and the
        test sets (:func:`lai.evaluate.evaluate_ensemble`); saves tables/ensemble_metrics.csv (the ensemble's metrics
        per set) and tables/ensemble_per_triplet.csv (its per-triplet sums and each run's), ``model`` saying which:
        the ensemble (:func:`lai.facts.ensemble_names`) or the run. Returns the ensemble's metrics, its per-triplet sums and each run's."""
        from lai.evaluate import evaluate_ensemble
        from lai.facts import ensemble_names

        metrics, sums, members = evaluate_ensemble([self.run_dir / "runs" / run for run in runs], self.cube_path,
                                                   batch_size=self.profile.train.batch_size, device=self.profile.train.device,
                                                   progress=self.progress)
        label = ensemble_names(name)[0]
        self.save_table(metrics.assign(model=label), TABLE.ensemble_metrics)
        self.save_table(pd.concat([sums.assign(model=label), *(m.assign(model=run) for run, m in zip(runs, members))]),
                        TABLE.ensemble_per_triplet)
        return metrics, sums, members

    def ensemble(self, name: str, runs: list[str], others: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
        """tables/ensemble.csv: the mean prediction of model ``name``'s seeds ``runs`` (:meth:`evaluate_ensemble`)
        against its seeds and against ``others`` (per-triplet sums by name) and, on simulated data, the oracle
        (:func:`lai.tables.ensemble_comparisons`); None, and nothing written, with one seed."""
        from lai.facts import ORACLE
        from lai.tables import ensemble_comparisons

        if len(runs) < 2:
            return None
        _, ensemble_sums, seed_sums = self.evaluate_ensemble(name, runs)
        vs = others | ({ORACLE: self.noise_floor().attrs["per_triplet"]} if self.simulated else {})
        table = ensemble_comparisons(ensemble_sums, seed_sums, vs, name)
        self.save_table(table, TABLE.ensemble)
        return table

    def calibrate(self, run: str):
        """Recalibrate the predicted spread of a trained run on validation and measure it on the test sets
        (:func:`lai.evaluate.calibrate_run`; writes the run's ``calibration.json``)."""
        from lai.evaluate import calibrate_run

        return calibrate_run(self.run_dir / "runs" / run, self.cube_path, batch_size=self.profile.train.batch_size,
                             device=self.profile.train.device, progress=self.progress)

    def per_triplet(self, run: str) -> pd.DataFrame:
        """Per-triplet scores and sums of an evaluated run (set, triplet, ``lai.metrics.SUMS``, ...)."""
        self.evaluate(run)
        return read_csv_record(self.run_dir / "runs" / run / STAGE_PER_TRIPLET_FILE, PipelineError,
                               f"delete runs/{run}/{STAGE_METRICS_FILE} to evaluate {run} again")

    def noise_floor(self) -> pd.DataFrame | None:
        """tables/noise_floor.csv (:func:`lai.noise.noise_floor`, kept for the lai code that wrote it): per test set the RMSE of the
        observed LAI at t against the true LAI on the scored pixels (``floor_rmse``) and on strictly clear
        ones (``floor_rmse_strict``, SCL 4-6), and the oracle bound (``oracle_rmse``, its per-triplet sums in
        ``attrs["per_triplet"]`` and tables/oracle_per_triplet.csv); None for real data, which has no true LAI."""
        from lai.cube import cube_identity
        from lai.facts import TEST_SETS
        from lai.noise import FLOOR_COLUMNS, noise_floor

        if not self.simulated:
            return None
        # kept for the lai code and the cube that made it (the oracle's per-triplet sums pair with the cube's triplets)
        table, made = self.table(TABLE.noise_floor), {"lai_code": code_digest(), **cube_identity(self.cube_path)}
        if table.exists() and self.table(TABLE.oracle_per_triplet).exists() and self._was_made(table, made):
            floor = self.read_table(TABLE.noise_floor)
            floor = floor[[c for c in FLOOR_COLUMNS if c in floor]]  # the floor's own, not the model's notebook 04 adds
            floor.attrs["per_triplet"] = self.read_table(TABLE.oracle_per_triplet)
            return floor
        floor = noise_floor(self.cube_path, TEST_SETS, self.profile.encoding.valid_classes)
        self.save_table(floor, TABLE.noise_floor)
        self.save_table(floor.attrs["per_triplet"], TABLE.oracle_per_triplet)
        self._made(table, made)
        return floor

    # ------------------------------------------------------------------ real patches (notebook 00)

    def real_patches(self) -> list:
        """The real S1 + S2 L2A patches of :mod:`lai.examples`, extracted into the run folder's preprocessing/ (kept
        for the lai code that extracted them; :meth:`real_patch` reads the same list)."""
        from lai import examples

        if self._patches is None:
            target = self.run_dir / "preprocessing" / "bigearthnet"
            made = {"lai_code": code_digest()}
            if self._reusable(target, made, examples.EXTRACTED):
                self._patches = examples.patches(target)
            else:
                self._patches = examples.extract(target)
                self._made(target, made)
        return self._patches

    def real_patch(self, index):
        """The real patch (:class:`lai.examples.Patch`) the notebook parameter ``patch`` names: an index into
        :meth:`real_patches`."""
        patches = self.real_patches()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(patches):
            raise ConfigError(f"the parameter patch must be the index of one of the {len(patches)} real patches "
                              f"(0 to {len(patches) - 1}), got {index!r}")
        return patches[index]

    def preprocess_patch(self, patch) -> Path:
        """One real patch as an LNB folder (``lai preprocess``, 120-pixel tiles) under preprocessing/; kept for the lai
        code that wrote it, written again by any other."""
        from lai import examples
        from lai.config import PreprocessConfig
        from lai.preprocess import SUMMARY, preprocess

        work = self.run_dir / "preprocessing"
        lnb, made = work / f"lnb_{patch.name}", {"lai_code": code_digest()}
        if not self._reusable(lnb, made, SUMMARY):
            preprocess(examples.write_manifest(patch, work / f"{patch.name}.yaml"), lnb, PreprocessConfig(tile_size=120),
                       progress=False)
            self._made(lnb, made)
        return lnb

    def predict_patch(self, patch, row: str = FINAL) -> Path:
        """The maps of one real patch by the trained ``row`` (``lai predict``) under preprocessing/; kept for that
        model file, its spread's recalibration (``calibration.json``, which notebook 02 writes later than the model)
        and the lai code that wrote them, written again after any of them changed."""
        import hashlib

        from lai.predict import predict_folder
        from lai.uncertainty import CALIBRATION_FILE

        run = self.run_dir / "runs" / row
        weights, calibration = (run / STAGE_WEIGHTS_FILE).resolve(), run / CALIBRATION_FILE
        maps = self.run_dir / "preprocessing" / f"maps_{patch.name}"
        made = {"lai_code": code_digest(), "model": str(weights), "model_mtime_ns": weights.stat().st_mtime_ns,
                "calibration_sha256": hashlib.sha256(calibration.read_bytes()).hexdigest() if calibration.is_file() else None}
        if not self._reusable(maps, made, "summary.json"):
            predict_folder(run, self.preprocess_patch(patch), maps, progress=False)
            self._made(maps, made)
        return maps

    @staticmethod
    def _made_record(output: Path) -> Path:
        """The hidden record beside an output of this run folder of what made it (never published)."""
        return output.with_name(f".{output.name}.made.json")

    def _made(self, output: Path, made: dict) -> None:
        atomic_write_text(self._made_record(output), json.dumps(made))

    def _was_made(self, output: Path, made: dict) -> bool:
        """Whether the record beside ``output`` says it was made as ``made`` (lai's code, the model) says."""
        record = self._made_record(output)
        return record.is_file() and not record.is_symlink() and read_json_record(record, PipelineError, "delete it") == made

    def _reusable(self, folder: Path, made: dict, summary: str) -> bool:
        """Whether ``folder`` (lai's output under the run folder) was made as ``made`` says and still holds its
        ``summary`` (written last); one made otherwise or since cut short (its record, or ``summary``, shows it lai's)
        is removed, anything else there refused."""
        import shutil

        record = self._made_record(folder)
        present = folder.exists() or folder.is_symlink()
        if present and self._was_made(folder, made) and (folder / summary).is_file():
            return True
        refuse_other_writer(self.run_dir)  # before anything is removed or written under the run folder
        if not present:
            return False
        if folder.is_symlink() or not folder.is_dir() or not (record.is_file() or (folder / summary).is_file()):
            raise PipelineError(f"{folder} is not a folder lai wrote here; move it away to let notebook 00 write its own")
        shutil.rmtree(folder)
        return False

    def histories(self, rows) -> dict[str, pd.DataFrame]:
        """{row: its history.csv, checked (:func:`lai.stage_folder.read_history`)} of the rows that have one."""
        from lai.stage_folder import read_history

        return {r: read_history(self.run_dir / "runs" / r) for r in rows
                if (self.run_dir / "runs" / r / STAGE_HISTORY_FILE).exists()}

    def predictions(self, row: str) -> dict:
        """{test set: xarray Dataset of predictions} of an evaluated row."""
        import xarray as xr

        folder = self.run_dir / "runs" / row / "predictions"
        return {p.stem: xr.load_dataset(p, engine="h5netcdf") for p in sorted(folder.glob("*.nc"))}

    def training_summary(self, rows) -> pd.DataFrame:
        """Per trained run: epochs, the most it could run (``max_epochs``), total seconds, mean samples/s (the
        :data:`lai.facts.TIMING_COLUMNS`), last and
        best validation RMSE, the best epoch, the epoch it stopped at, the epochs validation stayed flat after the
        best one, whether validation had stopped improving (``converged``, see :func:`lai.train.convergence`), and
        the code and machine that trained it (:data:`lai.facts.TRAINED_BY_COLUMNS`, from its result.json: a stage
        is reused across later code, which the report's own provenance would not say)."""
        from lai.stage_folder import read_finished
        from lai.train import convergence

        out = []
        for row, h in self.histories(rows).items():
            stage = self.run_dir / "runs" / row
            env = read_finished(stage)[0].get("environment", {}) if (stage / STAGE_RESULT_FILE).exists() else {}
            out.append({"row": row, "epochs": int(h["epoch"].max()), "max_epochs": self.profile.train.epochs,
                        "seconds": float(h["seconds"].sum()),
                        "samples_per_s": float(h["samples_per_s"].mean()), "val_rmse": float(h["val_rmse"].iloc[-1]),
                        **convergence(h, self.profile.train.patience),
                        "trained_at": revision_text(env), "trained_on": machine_text(env)})
        return pd.DataFrame(out)

    def save_training(self, rows) -> pd.DataFrame:
        """tables/training.csv: :meth:`training_summary` of ``rows`` and of every run the table lists already
        (notebooks 02 and 03 each add theirs: rerunning one keeps the other's), Table 1's rows first."""
        path = self.table(TABLE.training)
        listed = list(self.read_table(TABLE.training)["row"].astype(str)) if path.exists() else []
        order = dict.fromkeys([*(r for r in ROWS if r in listed or r in rows), *listed, *rows])
        table = self.training_summary(order)
        self.save_table(table, TABLE.training)
        return table

    def require(self, name: str, notebook: str, does: str = "writes it") -> None:
        """Refuse (:class:`PipelineError`) to go on before table ``name``, which ``notebook`` writes (``does``: how the
        message says it), exists: a notebook asks first for what it compares with, before work of its own that would
        be lost."""
        if not self.table(name).exists():
            raise PipelineError(f"{self.table(name)} does not exist yet: notebook {notebook} {does}; run it first")

    def read_table(self, name: str) -> pd.DataFrame:
        path = self.table(name)
        if not path.exists():
            raise PipelineError(f"{path} does not exist yet: run the notebook that writes it first")
        return read_csv_record(path, PipelineError, "rerun the notebook that writes it")

    def show(self, fig, name: str):
        """Save a figure as figures/<name>.png and return it for display in the notebook."""
        from IPython.display import Image

        from lai.figures import save

        refuse_other_writer(self.run_dir)
        return Image(filename=str(save(fig, self.figure(name))))

    def save_table(self, frame: pd.DataFrame, name: str, index: bool = False) -> Path:
        path = self.table(name)
        refuse_other_writer(self.run_dir)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=index)
        return path

    def write_provenance(self, **extra) -> dict:
        """provenance.json: package versions, git revision, device and the data fingerprint of this run."""
        path = self.run_dir / RUN_DATA_FILE
        data = read_json_record(path, PipelineError, "rerun notebook 01 to write it again") if path.exists() else {}
        prov = {**environment(), "data_fingerprint": data.get("fingerprint", ""),
                "written": dt.datetime.now().isoformat(timespec="seconds"), **extra}
        refuse_other_writer(self.run_dir)
        require_results(self.run_dir, "provenance record", PipelineError)
        atomic_write_text(self.run_dir / RUN_PROVENANCE_FILE, json.dumps(prov, indent=2))
        return prov
