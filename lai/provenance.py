"""Where a result comes from: package versions, git revision, machine."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from lai import __version__
from lai.facts import PROJECT_ROOT

PACKAGES = ("torch", "numpy", "scipy", "pandas", "xarray", "h5netcdf", "h5py", "rasterio", "scikit-learn",
            "matplotlib", "seaborn", "papermill", "typst")


def code_digest() -> str:
    """SHA-256 of lai's own code (its .py, .typ and .yaml files, by path inside the package): what a cached
    result computed by lai depends on beside its inputs."""
    import hashlib

    import lai

    root = Path(lai.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".typ", ".yaml") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def git_revision() -> tuple[str, bool]:
    """(commit, dirty) of the project checkout, or ("unknown", False) outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        # --no-optional-locks: git status would otherwise take .git/index.lock to refresh the index, and a run killed
        # meanwhile (lai run under SIGKILL) left that lock behind, blocking every later git command in the checkout
        dirty = bool(subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip())
        return rev, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo's "model name"), or what the platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def revision_text(env: dict) -> str:
    """A record's code as one short text: "<git revision> (lai <version>)", "+ uncommitted changes" where the tree had
    them; "unknown" without a revision."""
    rev = env.get("git_revision") if isinstance(env, dict) else None
    if not isinstance(rev, str) or not rev:
        return "unknown"
    return f"{rev[:12]}{' + uncommitted changes' if env.get('git_dirty') is True else ''} (lai {env.get('lai_version', '?')})"


def machine_text(env: dict) -> str:
    """A record's machine as one short text: "<cpu> (<kernels>), <device>"."""
    env = env if isinstance(env, dict) else {}
    return f"{env.get('cpu', '?')} ({env.get('cpu_kernels', '?')}), {env.get('device', '?')}"


def environment() -> dict:
    """lai version, git revision (and whether the tree had uncommitted changes), Python, packages, device, and
    the CPU with the vector kernels torch picked on it (trained weights differ in their last digits between CPUs
    whose kernels differ, e.g. AVX2 against AVX-512, and so do the metrics of a retrained model)."""
    import torch

    rev, dirty = git_revision()
    return {
        "lai_version": __version__,
        "git_revision": rev,
        "git_dirty": dirty,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)",
        "cpu": cpu_model(),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
    }
