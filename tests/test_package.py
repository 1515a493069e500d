"""What every package has: a version on the command line, a licence, a citation, a Jupyter kernel."""
import json
import re
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


def _import_chain_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("import_chain", ROOT / "tools" / "import_chain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_circle_and_at_most_ten_floors():
    """Every lai-internal import counts, function-level ones and ``__main__`` included (tools/import_chain.py):
    no circle, and the longest chain of imports is at most 10 modules."""
    tool = _import_chain_tool()
    graph = tool.imports()
    assert "lai.train" in graph["lai.cli"] and "lai.errors" in graph["lai.io"]  # the graph sees real imports
    assert tool.cycles(graph) == []
    chain = tool.longest_chain(graph)
    assert len(chain) <= 10, " -> ".join(chain)


def test_import_chain_tool_finds_circles_and_chains(tmp_path):
    tool = _import_chain_tool()
    pkg = tmp_path / "lai"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from lai.b import x\n")  # function-level imports count
    (pkg / "b.py").write_text("import lai.sub.c\n")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("from lai import d\n")
    (pkg / "d.py").write_text("")
    graph = tool.imports(pkg)
    assert tool.longest_chain(graph) == ["lai.a", "lai.b", "lai.sub.c", "lai.d"] and tool.cycles(graph) == []
    (pkg / "d.py").write_text("from lai.a import f\n")
    assert tool.cycles(tool.imports(pkg))


def test_the_readme_layout_and_the_module_map_name_every_module():
    """A reader finds the room for a change from the README's layout and docs/modules.md: no module missing."""
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    module_map = (ROOT / "docs" / "modules.md").read_text()
    diagram = module_map.split("```")[1]  # a plain word counts there only (io, provenance: words of prose too)
    modules = [p for p in sorted((ROOT / "lai").iterdir())
               if (p.suffix == ".py" and not p.name.startswith("__")) or (p.is_dir() and (p / "__init__.py").exists())]
    assert len(modules) > 30
    for path in modules:
        name = path.name if path.suffix == ".py" else f"{path.name}/"
        assert f"  {name}" in layout, f"README.md, Layout: lai/{name} is not listed"
        named = (re.search(rf"\b{path.stem}\b", diagram) or f"`{path.stem}`" in module_map
                 or f"lai/{path.stem}" in module_map)  # as a word of the diagram, or by its name or path in code
        assert named, f"docs/modules.md does not name lai/{name}"
