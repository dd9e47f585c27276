"""The package layout is the architecture: data flows one way, from the
command line down to the PUMAS binding.

The import graph is built from the modules' own import statements (every
``import``/``from … import`` of a ``backtrace`` module, at module top or in
a function). It must have no cycle, and no module may import from a layer
above its own (:data:`LAYERS`, lowest first). Imports of the package's own
modules sit at module top; only :data:`LAZY_ALLOWED` may be deferred.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "backtrace"

#: Layers from the lowest (the PUMAS binding) to the highest (the command
#: line); a module belongs to the layer of its longest matching prefix.
LAYERS = [
    ("backtrace._version", "backtrace.pumas", "backtrace.data", "backtrace.resources"),
    ("backtrace.constants", "backtrace.io", "backtrace.executor", "backtrace.schemas"),
    ("backtrace.kinematics", "backtrace.rng", "backtrace.tracks", "backtrace.regions",
     "backtrace.paths"),
    ("backtrace.beamline",),
    ("backtrace.transport",),
    ("backtrace.source",),
    ("backtrace.interactions",),
    ("backtrace.detector",),
    ("backtrace.prompt",),
    ("backtrace.combinatorial",),
    ("backtrace.output",),
    ("backtrace.forward",),
    ("backtrace.magnets",),
    ("backtrace.bench", "backtrace.api"),
    ("backtrace.cli", "backtrace.__main__"),
]

#: Imports of the package's own code that stay inside a function: the
#: compiled C layer (a missing build becomes a one-line error). The public
#: names of ``backtrace/__init__`` load through ``importlib`` on first
#: access, so that ``import backtrace`` stays light.
LAZY_ALLOWED = {("backtrace.pumas._lib", "backtrace.pumas._core")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[tuple[str, bool]]]:
    """{module: {(imported backtrace module, inside a function)}}."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        in_function = {id(n) for f in ast.walk(tree)
                       if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(f)}
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, path, node)
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    sub = full if full in modules or full.endswith("._core") else target
                    edges.add((sub, id(node) in in_function))
            elif isinstance(node, ast.Import):
                edges |= {(a.name, id(node) in in_function) for a in node.names}
        graph[name] = {(t, lazy) for t, lazy in edges
                       if t.startswith("backtrace") and t != name}
    return graph


def layer(module: str) -> int:
    """The layer of ``module``; the package itself (the public API) is the top."""
    if module == "backtrace":
        return len(LAYERS) - 1
    best = (-1, None)
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), i)
    if best[1] is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best[1]


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w, _ in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_import_graph_has_no_cycle(graph):
    assert _cycles(graph) == []


def test_no_module_imports_from_a_layer_above(graph):
    upward = sorted(f"{m} -> {t}" for m, edges in graph.items() if m != "backtrace"
                    for t, _ in edges if layer(t) > layer(m))
    assert upward == []


def test_internal_imports_are_at_module_top(graph):
    lazy = sorted(f"{m} -> {t}" for m, edges in graph.items() for t, is_lazy in edges
                  if is_lazy and (m, t) not in LAZY_ALLOWED)
    assert lazy == []


def test_a_cycle_and_an_upward_import_are_caught():
    fake = {"backtrace.prompt.a": {("backtrace.prompt.b", False)},
            "backtrace.prompt.b": {("backtrace.prompt.a", True)},
            "backtrace.beamline.x": {("backtrace.prompt.a", False)}}
    assert _cycles(fake) == [["backtrace.prompt.a", "backtrace.prompt.b"]]
    assert layer("backtrace.prompt.a") > layer("backtrace.beamline.x")


def test_no_function_over_sixty_lines_outside_the_cli():
    long = []
    for name, path in _modules().items():
        if name.startswith("backtrace.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert long == []
