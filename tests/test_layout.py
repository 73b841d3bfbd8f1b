"""The package's shape: no import cycles between our modules, no oversized module without a stated reason."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "veritas_rl"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every veritas_rl module that ``path`` imports, at top level or inside a function."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # the module itself, or the deepest known package/module above it
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_no_module_imports_one_that_imports_it_back():
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}

    # a package importing its own submodules (registration, re-exports) is its public face, not a cycle;
    # a submodule importing its parent package back *is* (it runs the parent's __init__ mid-import)
    def edges(name: str) -> set[str]:
        return {t for t in graph[name] if not t.startswith(name + ".")}

    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges(node)):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "veritas_rl" / "x"
    pkg.mkdir(parents=True)
    (tmp_path / "veritas_rl" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from veritas_rl.x import b\n")
    (pkg / "b.py").write_text("from .a import f\n")
    me = sys.modules[__name__]
    monkeypatch.setattr(me, "SRC", tmp_path)
    monkeypatch.setattr(me, "PKG", tmp_path / "veritas_rl")
    with pytest.raises(AssertionError, match=r"veritas_rl\.x\.a -> veritas_rl\.x\.b -> veritas_rl\.x\.a"):
        test_no_module_imports_one_that_imports_it_back()


def test_large_modules_say_why_in_their_docstring():
    too_big = []
    for path in sorted(PKG.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            if "Why this module is long" not in doc:
                too_big.append(f"{path.relative_to(SRC)}: {n} lines")
    assert not too_big, f"modules over {MAX_LINES} lines without a 'Why this module is long' note: {too_big}"
