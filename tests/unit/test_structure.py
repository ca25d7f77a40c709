"""The package's shape holds: layers import only downwards, no import loops, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "esa_lightning"

# lowest first; a module may import from its own layer or a lower one
LAYERS = [
    {"__init__", "errors", "install", "io", "progress", "run_folder", "settings"},
    {"metrics"},
    {"data"},
    {"postprocessing"},
    {"models"},
    {"runtime", "reporting"},
    {"artifact", "callbacks"},
    {"jobs"},
    # the configs' package: importing it (Hydra's initialize_config_module) registers the
    # resolvers the configs name (jobs.paths)
    {"conf"},
    {"api"},
    {"cli"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    room = module.split(".")[1] if "." in module else "__init__"
    for rank, rooms in enumerate(LAYERS):
        if room in rooms:
            return rank
    raise AssertionError(f"{module}: its room {room!r} has no layer in LAYERS")


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Package modules ``path`` imports anywhere (lazy imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("esa_lightning") and name in modules:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) - {name} for name, path in files.items()}


def test_every_import_goes_to_the_same_or_a_lower_layer():
    upward = [
        f"{a} -> {b}"
        for a, targets in import_graph().items()
        for b in targets
        if layer_of(b) > layer_of(a)
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(upward))


def test_metrics_is_a_leaf():
    """The metric suite imports nothing of the package but its one user-error type."""
    graph = import_graph()
    leaks = {
        f"{a} -> {b}"
        for a, targets in graph.items()
        if a.startswith("esa_lightning.metrics")
        for b in targets
        if not b.startswith("esa_lightning.metrics") and b != "esa_lightning.errors"
    }
    assert not leaks


def test_no_import_loops():
    graph = import_graph()
    # a package importing its own submodules (re-exports) is not a loop through them
    edges = {a: {b for b in t if not b.startswith(a + ".")} for a, t in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (loop := visit(nxt)):
                return loop
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (loop := visit(node)):
            pytest.fail("import loop: " + " -> ".join(loop))


def test_the_package_root_holds_at_most_eight_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 8, root


def test_no_module_is_over_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long


def test_the_detector_classes_of_the_registry_are_those_of_the_model_packages():
    from esa_lightning.models.registry import detector_families

    families = detector_families()
    assert families, "no detector family found"
    for path, cls in families.items():
        assert path.startswith("esa_lightning.models.")
        assert isinstance(cls.datamodule_kind, str) and cls.datamodule_kind


def _outside_functions(tree: ast.AST):
    """The nodes of ``tree`` run on import: everything but the bodies of functions."""
    for node in ast.iter_child_nodes(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield node
            yield from _outside_functions(node)


def test_matplotlib_is_imported_only_where_a_figure_is_drawn():
    """matplotlib (pyplot builds its font cache under $HOME on first import) is imported inside
    the drawing functions only, so a run drawing no figure (predict.py max_figures=0) does not
    import it through the package. Lightning imports torchmetrics, which imports pyplot where
    matplotlib is installed (torchmetrics.utilities.plot): that import is not the package's."""
    eager = []
    for path in PACKAGE.rglob("*.py"):
        for node in _outside_functions(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "matplotlib" for n in names):
                eager.append(f"{module_name(path)}:{node.lineno}")
    assert not eager, "matplotlib imported on import of: " + ", ".join(eager)
