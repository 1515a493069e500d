"""What every package has: a version on the command line, a licence, a citation, a Jupyter kernel."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

import lai

ROOT = Path(__file__).resolve().parent.parent


def test_version_on_the_command_line():
    done = subprocess.run([sys.executable, "-m", "lai", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"lai {lai.__version__}"


def test_citation_cites_the_package_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"].startswith("1.2") and cff["version"] == lai.__version__
    titles = [ref["title"] for ref in cff["references"]]
    assert any("Multi-Temporal Sentinel 1 and 2" in t for t in titles)
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_set_up_installed_the_lai_kernel_in_this_environment():
    """`make setup` installs the kernel with --sys-prefix: it lives under this interpreter's prefix."""
    done = subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
                          capture_output=True, text=True, timeout=60)
    specs = json.loads(done.stdout)["kernelspecs"]
    assert "lai" in specs, "run `make setup`: it installs the `lai` kernel"
    assert Path(specs["lai"]["resource_dir"]).resolve().is_relative_to(Path(sys.prefix).resolve())
