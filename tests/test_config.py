"""Config dataclasses: YAML and flags fill the same schema; shipped configs parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from minilm import config as C
from minilm.cli import COMMANDS, build_parser
from minilm.errors import MiniLMError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def command_of(path: Path) -> str:
    """The command named in the config's header comment (`# Run: minilm <command> --config ...`)."""
    for line in path.read_text().splitlines():
        if "minilm " in line and "--config" in line:
            return line.split("minilm ", 1)[1].split()[0]
    raise AssertionError(f"{path} names no command in its header")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_configs_parse_and_name_their_command(path):
    command = command_of(path)
    cls = COMMANDS[command][0]
    cfg = C.load_config(cls, str(path))
    assert isinstance(cfg, cls)
    relative = path.relative_to(path.parents[len(path.relative_to(REPO).parts) - 1])
    assert f"--config {relative}" in path.read_text()


def test_there_are_shipped_configs():
    assert len(CONFIGS) >= 3


def test_flags_override_yaml(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("student_layers: 4\nlr: 1.0e-4\ndata: [a.txt, b.txt]\n")
    args = build_parser().parse_args(["distill", "--config", str(yaml_file), "--lr", "3e-4", "--no-resume"])
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    cfg = C.load_config(C.DistillConfig, str(yaml_file), overrides)
    assert cfg.student_layers == 4 and cfg.lr == 3e-4 and cfg.data == ["a.txt", "b.txt"] and cfg.resume is False


@pytest.mark.parametrize("text,message", [("lr: fast\n", "expects float"), ("nope: 1\n", "unknown config key"),
                                          ("- a\n- b\n", "must hold a mapping"), ("a: [\n", "not valid YAML"),
                                          ("student_layers: 2.5\n", "expects int")])
def test_bad_yaml(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MiniLMError, match=message):
        C.load_config(C.DistillConfig, str(path))


def test_help_shows_field_comments():
    text = build_parser()._subparsers._group_actions[0].choices["distill"].format_help()
    assert "MiniLMv2 uses 48" in text and "--relation-heads" in text


def numeric_fields():
    """(command, field, element type) for every int/float field (or list of them) of every command."""
    import typing

    from minilm.config import _strip_optional

    for command, (cls, _, _) in COMMANDS.items():
        hints = typing.get_type_hints(cls)
        for f in __import__("dataclasses").fields(cls):
            base, _ = _strip_optional(hints[f.name])
            item = typing.get_args(base)[0] if typing.get_origin(base) is list else base
            if item in (int, float):
                yield command, f.name, item


def documented_answers() -> dict:
    """docs/errors.md's numeric-field table: {(command, field): [answer for 0, negative, NaN, huge]}."""
    text = (REPO / "docs" / "errors.md").read_text().split("## Numeric fields")[1]
    answers = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[2] in ("error", "accepted"):
            for command in cells[1].split(", "):
                answers[(command, cells[0].split(" (")[0])] = cells[2:6]
    return answers


def test_every_numeric_field_answers_bad_values_as_documented(monkeypatch):
    """0, a negative number, NaN and a huge value for each numeric field of each command, on the command line:
    a one-line `minilm: error:` naming the field (exit 2), or an acceptance that docs/errors.md documents;
    never a traceback. Accepted values stop at the command function (stubbed): they are the config's to take."""
    import importlib

    from clirun import run_main

    for _, target, _ in COMMANDS.values():
        module, function = target.split(":")
        monkeypatch.setattr(importlib.import_module(module), function, lambda cfg: None)
    documented = documented_answers()
    checked = 0
    for command, name, item in numeric_fields():
        assert (command, name) in documented, f"docs/errors.md has no row for {command} {name}"
        values = ["0", "-5", "nan", "1000000000000" if item is int else "1e12"]
        for value, expected in zip(values, documented[(command, name)]):
            result = run_main(command, f"--{name.replace('_', '-')}={value}")
            assert "Traceback" not in result.stderr, result.stderr
            if expected == "error":
                lines = [line for line in result.stderr.splitlines() if line.strip()]
                assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("minilm: error:"), \
                    f"{command} --{name}={value}: {result.stderr}"
                assert name in lines[0] or "expects" in lines[0], lines[0]
            else:
                assert result.returncode == 0, f"{command} --{name}={value} was refused: {result.stderr}"
            checked += 1
    assert checked >= 4 * 40
