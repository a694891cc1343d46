"""The package is layered: a module imports (at module level) only from packages below its own,
never a private name of another package, and module-level imports form no cycle. Imports
inside functions are deferred on purpose (optional dependencies, torch-free --help) and exempt."""

from __future__ import annotations

import ast
from pathlib import Path

import fasterseg

ROOT = Path(fasterseg.__file__).resolve().parent

# Lowest first; a package may import only from packages of a lower rank (docs/overview.md).
RANKS = {
    "errors": 0,
    "layers": 1, "backends": 1, "config": 1,
    "utils": 2, "genotype": 2,
    "data": 3, "distributed": 3, "nets": 3,
    "evaluate": 4, "losses": 4, "space": 4, "modelfile": 4,
    "infer": 5,
    "latency": 6, "serve": 6,
    "search": 7, "train": 7,
    "__init__": 3,  # the package root: version, genotype types; load_model is imported on call
    "report": 8, "demo": 8, "commands": 8, "cli": 8, "models": 8,
}


def _module_imports() -> dict[str, set[tuple[str, tuple[str, ...]]]]:
    """module -> {(imported module, names)} for the module-level ``fasterseg`` imports."""
    graph = {}
    for path in ROOT.rglob("*.py"):
        module = ".".join(("fasterseg", *path.relative_to(ROOT).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fasterseg":
                found.add((node.module, tuple(a.name for a in node.names)))
            elif isinstance(node, ast.Import):
                found |= {(a.name, ()) for a in node.names if a.name.split(".")[0] == "fasterseg"}
        graph[module] = found
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_rank():
    packages = {_package(m) for m in _module_imports()}
    assert packages == set(RANKS), f"give each new package a rank here: {sorted(packages ^ set(RANKS))}"


def test_no_module_imports_upward_or_a_private_name_of_another_package():
    upward, private = [], []
    for module, imports in _module_imports().items():
        for target, names in imports:
            a, b = _package(module), _package(target)
            if a != b and RANKS[b] >= RANKS[a]:
                upward.append(f"{module} -> {target}")
            if a != b and any(n.startswith("_") and not n.endswith("__") for n in names):
                private.append(f"{module} -> {target}: {names}")
    assert upward == [] and private == []


def test_module_level_imports_have_no_cycle():
    graph = {m: {t for t, _ in imports if t != m} for m, imports in _module_imports().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in graph.get(m, ()):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
            if t in graph and not state.get(t):
                visit(t, path + [t])
        state[m] = 2

    for m in graph:
        if not state.get(m):
            visit(m, [m])
