"""Check the package layout of issue L: short modules, no import cycles, no swallowed errors.

Run ``python tools/check_layout.py`` from the repository root; it prints every problem
and exits 1 if there is one. ``tests/test_layout.py`` runs the same checks.

- no module under ``thyronet/`` longer than ``MAX_LINES`` lines;
- no import cycle among ``thyronet`` modules (every ``import`` statement counts,
  function-level ones too, except those under ``if TYPE_CHECKING:``);
- no ``except Exception`` / ``except BaseException`` / bare ``except`` whose body
  does not re-raise, outside plugin loading (``thyronet/plugins.py``) and the
  contract checks of ``thyronet/testing/``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 700
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "thyronet"
#: Where a broad ``except`` that does not re-raise is allowed, and why.
BROAD_EXCEPT_ALLOWED = {
    "thyronet/plugins.py": "a broken third-party plugin is reported as a warning, not a crash",
}
BROAD_EXCEPT_ALLOWED_DIRS = {
    "thyronet/testing/": "contract checks turn a plugin's failure into an AssertionError",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def long_modules(max_lines: int = MAX_LINES) -> list[str]:
    out = []
    for path in modules().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > max_lines:
            out.append(f"{path.relative_to(ROOT)}: {n} lines (limit {max_lines})")
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The thyronet modules a module imports (the most specific known module per import)."""
    found: set[str] = set()

    def resolve(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "thyronet":
                        resolve(alias.name)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name if is_package else name.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        base = base.rpartition(".")[0]
                    mod = f"{base}.{child.module}" if child.module else base
                else:
                    mod = child.module or ""
                if mod.split(".")[0] != "thyronet":
                    continue
                for alias in child.names:  # "from pkg import submodule" imports the submodule
                    sub = f"{mod}.{alias.name}"
                    resolve(sub if sub in known else mod)
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {
        name: _imports(
            ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", known
        )
        for name, path in mods.items()
    }


def import_cycles() -> list[list[str]]:
    """Every strongly connected group of modules that import each other (Tarjan)."""
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def _reraises(handler: ast.ExceptHandler) -> bool:
    return any(isinstance(n, ast.Raise) for n in ast.walk(ast.Module(body=handler.body)))


def swallowed_errors() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in BROAD_EXCEPT_ALLOWED or any(rel.startswith(d) for d in BROAD_EXCEPT_ALLOWED_DIRS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ExceptHandler):
                continue
            names = []
            if node.type is None:
                names = ["<bare>"]
            else:
                types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
                names = [
                    t.id
                    for t in types
                    if isinstance(t, ast.Name) and t.id in ("Exception", "BaseException")
                ]
            if names and not _reraises(node):
                out.append(f"{rel}:{node.lineno}: except {names[0]} without re-raising")
    return out


def main() -> int:
    problems = long_modules()
    problems += ["import cycle: " + " <-> ".join(c) for c in import_cycles()]
    problems += swallowed_errors()
    for line in problems:
        print(line)
    if not problems:
        n = len(modules())
        print(f"layout ok: {n} modules, none over {MAX_LINES} lines, no cycle, no swallowed error")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
