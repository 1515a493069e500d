"""The longest chain of lai-internal imports, and any import circle.

Every ``import lai.x`` / ``from lai.x import ...`` / ``from lai import x`` in ``lai/*.py`` counts, at
module level or inside a function (``__main__.py`` included): a chain ``a -> b -> c`` of 3 modules is
3 floors. ``lai/__init__.py`` is the package itself and does not count as a floor.

    python tools/import_chain.py          # prints the length and one longest chain
"""
from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

LAI = Path(__file__).resolve().parent.parent / "lai"


def module_name(path: Path, root: Path = LAI) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path = LAI) -> dict[str, set[str]]:
    """Module -> the lai modules it imports anywhere in its source (the package ``lai`` itself left out)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve against this package
                base = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                mod = ".".join(base + ([node.module] if node.module else []))
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in files:  # "lai.cube.open_cube" -> "lai.cube"
                    t = t.rpartition(".")[0]
                if t and t != "lai" and t != name:
                    found.add(t)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles (each as a list of modules, first repeated at the end)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """One longest chain of imports (modules, importer first); the graph must have no circle."""

    @functools.cache
    def chain(node: str) -> tuple[str, ...]:
        below = [chain(n) for n in sorted(graph.get(node, ()))]
        return (node, *max(below, key=len, default=()))

    return list(max((chain(n) for n in sorted(graph)), key=len))


def main() -> int:
    graph = imports()
    circles = cycles(graph)
    if circles:
        for c in circles:
            print("import circle: " + " -> ".join(c))
        return 1
    chain = longest_chain(graph)
    print(f"{len(chain)} floors: " + " -> ".join(chain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
