"""The layout holds: no import cycle among kit's modules (imports inside functions counted, as
they hide a cycle rather than remove it), no kit import deferred into a function, and no module
over 400 lines without its reason. import-linter (`make lint`) holds the layers themselves."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

KIT = Path(__file__).resolve().parents[1] / "kit"
MAX_LINES = 400


def _modules(root: Path = KIT) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _target(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, module: str, path: Path) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from the module's own package upward
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([node.module] if node.module else [])])
    return [base, *(f"{base}.{a.name}" for a in node.names)]


def import_graph(root: Path = KIT) -> dict[str, set[str]]:
    """Module -> the kit modules it imports anywhere in its text (functions included)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _imported(node, module, path):
                target = _target(name, modules)
                if target and target != module and not module.startswith(target + "."):
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    package = tmp_path / "kit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from kit.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from kit.a import x\n    return x\n")
    (package / "c.py").write_text("from . import a\n")
    assert cycles(import_graph(package)) == [["kit.a", "kit.b"]]


def test_no_import_cycle_counting_imports_inside_functions():
    assert cycles(import_graph()) == []


def test_only_the_commands_defer_kit_imports_into_functions():
    """A command imports the core when it runs, so that `kit --help` and completion load only
    the CLI (tests/test_startup.py); everywhere else a kit import is at the top of its module,
    where the layers contract and the cycle finder see it."""
    deferred = []
    for module, path in _modules().items():
        if module.startswith("kit.cli."):
            continue
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                names = _imported(node, module, path)
                if any(n == "kit" or n.startswith("kit.") for n in names):
                    deferred.append(f"{module}:{node.lineno}")
    assert deferred == []


def test_a_module_over_400_lines_says_why():
    unexplained = []
    for path in _modules().values():
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_LINES and "over 400 lines" not in doc:
            unexplained.append(f"{path.relative_to(KIT.parent)}: {text.count(chr(10))} lines")
    assert unexplained == []
