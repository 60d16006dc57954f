"""The package's shape: folders by role in layers, commands as siblings, no cycles, readable files, a module map
(docs/design.md) true to the tree, tests that mirror the package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from minilm.commands import COMMANDS

SRC = Path(__file__).resolve().parents[1] / "src" / "minilm"
TESTS = Path(__file__).resolve().parent

# Each folder (or top-level module) may import only from its own layer and the layers below it. The top: the
# command line and the package's face; the bottom: errors and the losses (pure functions of tensors).
LAYERS = [
    {"errors", "losses"},
    {"config"},
    {"data"},
    {"models"},
    {"deploy", "objectives"},
    {"tasks"},
    {"train", "measure"},
    {"commands"},
    {"cli", "__init__"},
]


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


def module_graph() -> dict[str, set[str]]:
    """minilm module -> the minilm modules it imports (at any depth: function-level imports count too)."""
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def role(module: str) -> str:
    """The folder (or top-level module) a module belongs to: minilm.train.loop -> train; minilm -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int:
    return next(i for i, roles in enumerate(LAYERS) if role(module) in roles)


def test_top_level_holds_only_the_cli_errors_and_the_face():
    top = {p.name for p in SRC.iterdir() if p.suffix == ".py"}
    assert top == {"__init__.py", "cli.py", "errors.py"}
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set().union(*LAYERS) - {"errors", "cli", "__init__"}
    for folder in folders:
        doc = ast.get_docstring(ast.parse((SRC / folder / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"{folder}/__init__.py says what lives there"


def test_lower_layers_never_import_upper_ones():
    for module, imports in module_graph().items():
        for other in imports:
            assert layer_of(other) <= layer_of(module), f"{module} (layer {role(module)}) imports {other}"


def test_only_commands_and_the_face_read_the_commands_configs():
    for module, imports in module_graph().items():
        if role(module) not in ("commands", "cli", "__init__", "config"):
            assert "minilm.config.commands" not in imports, f"{module} imports a command's config"


def test_no_command_module_imports_another():
    commands = {command.target.split(":")[0] for command in COMMANDS.values()}
    assert len(commands) == len(COMMANDS), "each command has a module of its own"
    graph = module_graph()
    for module in commands:
        others = graph[module] & (commands - {module})
        assert not others, f"{module} imports the command module(s) {sorted(others)}"


def test_source_files_stay_under_500_lines():
    for path in SRC.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, f"{path.relative_to(SRC)} grew past 500 lines"


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


# Test files about the package as a whole, or about a folder's own `__init__` (the objectives' builder).
WHOLE_PACKAGE = {"test_structure.py", "test_api.py", "objectives/test_build_objective.py"}


def test_tests_mirror_the_package():
    """Every test file but the integration ones sits in the folder of what it tests, named after a module there."""
    for path in TESTS.rglob("test_*.py"):
        folder, name = path.parent.relative_to(TESTS), str(path.relative_to(TESTS))
        if folder.parts[:1] == ("integration",) or name in WHOLE_PACKAGE:
            continue
        module = path.stem.removeprefix("test_")
        assert (SRC / folder / f"{module}.py").is_file() or (SRC / folder / module / "__init__.py").is_file(), \
            f"{name} tests no module of src/minilm/{folder}"


def test_commands_resolve_and_load_models_through_a_model_source():
    """A command resolves a model once (`models.source.resolve_model`) and loads it from that `ModelSource`; none
    calls the loaders beneath it, which would resolve the name again."""
    loaders = {f"minilm.models.loading.{name}" for name in ("load_encoder", "load_model_config", "load_tokenizer")}
    loaders.add("minilm.models.sentence.pipeline_of")
    for path in (SRC / "commands").glob("*.py"):
        used = imported_modules(path) & loaders
        assert not used, f"commands/{path.name} loads through {sorted(used)}, not a ModelSource"


# docs/design.md's module map is the package: every module it names exists, and every module is named there.
DESIGN = SRC.parents[1] / "docs" / "design.md"


def layer_rows() -> list[tuple[set[str], str]]:
    """(the folders and top-level files a row of the layer table holds, the text of its row)."""
    rows = []
    for line in DESIGN.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            rows.append((set(re.findall(r"`([\w.]+/?)`", cells[1])), cells[2]))
    return rows


def package_modules() -> list[Path]:
    """Every module of the package but the folders' `__init__.py`, relative to src/minilm."""
    return sorted(p.relative_to(SRC) for p in SRC.rglob("*.py")
                  if p.name != "__init__.py" or p.parent == SRC)


def test_every_module_named_in_the_design_exists():
    text = DESIGN.read_text()
    for path in set(re.findall(r"`([\w/]+/[\w]+\.py)`", text)):  # a path: folder/module.py
        assert any(str(p).endswith(path) for p in SRC.rglob("*.py")) or (SRC.parents[1] / path).is_file(), \
            f"docs/design.md names {path}, which is neither in src/minilm nor in the repository"
    rows = layer_rows()
    assert len(rows) >= 8, "docs/design.md has its table of layers"
    for folders, row in rows:
        for name in re.findall(r"`([\w]+\.py)`", row):
            places = [SRC / f for f in folders if f.endswith("/")]
            assert any(next(place.rglob(name), None) for place in places), \
                f"docs/design.md's row of {', '.join(sorted(folders))} names {name}, which is not there"


def test_every_module_appears_in_the_design():
    text, rows = DESIGN.read_text(), layer_rows()
    for module in package_modules():
        top = module.parts[0] if len(module.parts) > 1 else module.name
        row = next((r for folders, r in rows if top in folders or f"{top}/" in folders), None)
        assert row is not None, f"docs/design.md's table of layers has no row for {top}"
        if len(module.parts) > 2:  # a module of a subfolder (models/architectures/bert.py): the subfolder in the row,
            # the module in the text
            assert f"`{module.parts[1]}/`" in row and f"`{module.name}`" in text, \
                f"docs/design.md does not name {module}"
        elif len(module.parts) == 2:
            assert f"`{module.name}`" in row, f"docs/design.md's row of {top}/ does not name {module.name}"


def test_each_folders_table_names_its_modules():
    """A folder whose `__init__.py` tables its modules (`| module | what |`) names every one of them."""
    for init in SRC.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        if "| module | what |" not in doc:
            continue
        for module in sorted(init.parent.glob("*.py")):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in doc, f"{init.parent.name}/__init__.py's table leaves out {module.name}"
