"""The package's shape: commands are siblings, and files stay readable."""

from __future__ import annotations

import ast
from pathlib import Path

from minilm.cli import COMMANDS

SRC = Path(__file__).resolve().parents[1] / "src" / "minilm"


def imported_modules(path: Path) -> set[str]:
    """Every `minilm.*` module a file imports, at any depth (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("minilm"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("minilm"))
    return names


def test_no_command_module_imports_another():
    commands = {target.split(":")[0] for _, target, _, _ in COMMANDS.values()}
    assert len(commands) == len(COMMANDS), "each command has a module of its own"
    for module in commands:
        path = SRC / (module.split(".", 1)[1].replace(".", "/") + ".py")
        others = imported_modules(path) & (commands - {module})
        assert not others, f"{module} imports the command module(s) {sorted(others)}"


def test_source_files_stay_under_500_lines():
    for path in SRC.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, f"{path.relative_to(SRC)} grew past 500 lines"


def module_graph() -> dict[str, set[str]]:
    """minilm module -> the minilm modules it imports (at any depth: function-level imports count too)."""
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_cycles():
    graph, done, path = module_graph(), set(), []

    def visit(name):
        assert name not in path, "import cycle: " + " -> ".join(path[path.index(name):] + [name])
        if name in done:
            return
        path.append(name)
        for other in sorted(graph[name]):
            visit(other)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert len(graph) > 30
