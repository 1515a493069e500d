"""A run folder's profile: resolved once (name or YAML file, overrides, real data), written to the folder's
profile.yaml when lai makes the folder, and read back as it is; a folder holding another profile is refused.

What `lai run` needs before any notebook starts, below :mod:`lai.run_folder` (whose ``RunContext`` does the
notebooks' work and re-exports these names).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import yaml

from lai.config import (
    PROFILE_CONTENT,
    SIMULATE,
    ConfigError,
    Profile,
    describe_differences,
    load_profile,
    parse_overrides,
    profile_from_dict,
    saved_differences,
    variant,
)
from lai.errors import RunFolderError
from lai.facts import PROJECT_ROOT, PUBLISHED_RECORD, REPORTS_FOLDER, RUN_LOCK_HOLDER_ENV, RUN_PROFILE_FILE
from lai.io import OutputLockedError, atomic_write_text, check_outside, claim_folder, lock_holder, lock_text
from lai.records import read_yaml_mapping

DEFAULT_PROFILE = "quick"


def _with_data(overrides: list[str] | None, data: str | None) -> list[str]:
    """Overrides plus ``data=<path>`` when a real LNB folder is given."""
    return list(overrides or []) + ([f"data={data}"] if data else [])


def resolve_profile(profile: str | Path | Profile | None = None, overrides: list[str] | None = None,
                    data: str | Path | None = None) -> Profile:
    """A built-in profile's name or a YAML file (default quick), or a Profile, with overrides and a real LNB
    folder applied and validated; a relative data path is made absolute (from the current folder), so the
    profile means the same wherever it is read, and must hold an LNB folder's layout (checked before any run
    folder is claimed for it: a mistyped path would otherwise leave a folder that refuses the corrected one)."""
    if isinstance(profile, Profile):
        extra = _with_data(overrides, str(data) if data else None)
        resolved = variant(profile, parse_overrides(extra)) if extra else profile
    else:
        resolved = load_profile(profile or DEFAULT_PROFILE, _with_data(overrides, str(data) if data else None))
    if resolved.data != SIMULATE:
        from lai.lnb import check_layout

        resolved = replace(resolved, data=str(Path(resolved.data).resolve()))
        check_layout(Path(resolved.data))
    return resolved


def saved_profile(run_dir: str | Path) -> tuple[Profile, dict] | None:
    """The profile a run folder holds, with its profile.yaml as read, or None for a folder without one."""
    path = Path(run_dir) / RUN_PROFILE_FILE
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        raw = read_yaml_mapping(path, "run profile", PROFILE_CONTENT)
        return profile_from_dict(raw), raw
    except ConfigError as err:
        raise RunFolderError(
            f"{path}: not a configuration this lai can read ({err}); choose another folder: `lai run --name NEW`, "
            "or in a notebook set the parameter run_dir to a new folder"
        ) from None


def _refuse_as_run_folder(folder: Path) -> None:
    """A folder lai publish wrote (results kept in git, its profile.yaml a copy) is never taken as a run folder; nor
    one another lai process is writing (``lai run``), unless this process is that one or one of its notebooks."""
    if (folder / PUBLISHED_RECORD).exists() or (folder / PUBLISHED_RECORD).is_symlink():
        raise RunFolderError(f"{folder} holds results lai publish copied there ({PUBLISHED_RECORD}), kept without weights "
                             "or notebooks: lai never runs into it; run into another folder, then publish that one here")
    refuse_other_writer(folder)


def refuse_other_writer(folder: Path) -> None:
    """Refuse (:class:`OutputLockedError`) where another lai process holds ``folder``'s write lock (``lai run``),
    unless this process is that one or one of its notebooks: checked when a notebook opens the run folder and again
    before each table, figure or record it writes (a kernel that opened it before the run began)."""
    holder = lock_holder(folder.resolve())
    if holder and holder not in (lock_text(), os.environ.get(RUN_LOCK_HOLDER_ENV)):
        raise OutputLockedError(f"{folder} is being written by another lai process ({holder}; `lai run`, say): a "
                                "notebook run there meanwhile would mix its tables with that run's; wait for it to "
                                "finish, or give the notebook another run_dir")


def open_run_folder(run_dir: str | Path | None = None, profile: str | Path | Profile | None = None,
                    overrides: list[str] | None = None, data: str | Path | None = None,
                    data_root: str | Path | None = None) -> tuple[Profile, Path]:
    """The profile and folder of a run, resolved once per folder.

    * No ``profile``, ``overrides`` or ``data``: the folder's profile.yaml as it is (``run_dir`` defaults
      to reports/quick); a new folder starts with the default profile (quick).
    * Any of them given: they are resolved (:func:`resolve_profile`; ``run_dir`` defaults to
      reports/<profile name>; overrides or data without a profile apply to the folder's profile where it has
      one, else to quick) and must equal the profile of a folder that has one, else
      :class:`RunFolderError` (set ``run_dir`` to a new folder); a new folder starts with them.

    Starting a folder writes its profile.yaml. The default folder's name is the profile's, a plain folder name
    (:func:`check_run_name`); a profile of real data may not have its run folder, nor ``data_root`` where given,
    inside its LNB folder (as `lai run` refuses).
    """
    given = profile is not None or bool(overrides) or data is not None
    if not given:
        folder = Path(run_dir) if run_dir is not None else PROJECT_ROOT / REPORTS_FOLDER / DEFAULT_PROFILE
        _refuse_as_run_folder(folder)
        saved = saved_profile(folder)
        if saved is not None:
            _refuse_inside_data(folder, saved[0], data_root)
            return saved[0], folder
    held = saved_profile(run_dir) if profile is None and run_dir is not None else None
    resolved = resolve_profile(held[0] if held else profile, overrides, data)  # the field changed is the one named
    if run_dir is None:
        check_run_name(resolved.name)
    folder = Path(run_dir) if run_dir is not None else PROJECT_ROOT / REPORTS_FOLDER / resolved.name
    _refuse_as_run_folder(folder)
    _refuse_inside_data(folder, resolved, data_root)
    saved = held or saved_profile(folder)  # held: that folder's, read once
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


def _refuse_inside_data(folder: Path, profile: Profile, data_root: str | Path | None) -> None:
    """Nothing of a run of real data is written inside its LNB folder: neither the run folder nor the data root."""
    if profile.data and profile.data != SIMULATE:
        check_outside(folder, profile.data, "LNB folder", "the run folder")
        if data_root is not None:
            check_outside(data_root, profile.data, "LNB folder", "the data root (data_root)")


def check_run_name(name: str) -> None:
    """A run name is one plain folder name, so that results stay inside the reports folder."""
    if not name.strip() or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"run name {name!r} must be a plain folder name (no '/', not '.' or '..'): "
                          "results go to <reports>/<name>")
