"""Configs: settings declare their own help and ranges, YAML and flags fill the same sections, shipped configs
parse, and the defaults are the recommended recipe."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from helpers.cli import REPO

from minilm import config as C
from minilm.cli import build_parser
from minilm.commands import COMMANDS
from minilm.config.settings import flatten, item_type, load_config, settings_of
from minilm.errors import MiniLMError


def test_flags_override_yaml_and_land_in_their_sections(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("student_layers: 4\nlr: 1.0e-4\ndata: [a.txt, b.txt]\n")
    args = build_parser().parse_args(["distill", "--config", str(yaml_file), "--lr", "3e-4", "--no-resume"])
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    cfg = load_config(C.DistillConfig, str(yaml_file), overrides)
    assert cfg.student.student_layers == 4 and cfg.training.lr == 3e-4 and cfg.corpus.data == ["a.txt", "b.txt"]
    assert cfg.training.resume is False
    assert flatten(cfg)["lr"] == 3e-4


@pytest.mark.parametrize("text,message", [("lr: fast\n", "expects float"), ("nope: 1\n", "unknown config key"),
                                          ("- a\n- b\n", "must hold a mapping"), ("a: [\n", "not valid YAML"),
                                          ("student_layers: 2.5\n", "expects int")])
def test_bad_yaml(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MiniLMError, match=message):
        load_config(C.DistillConfig, str(path))


def every_setting():
    for command, cls in ((n, c.config) for n, c in COMMANDS.items()):
        for section, f, tp in settings_of(cls):
            yield command, section, f, tp


def test_every_setting_has_its_own_help_and_every_number_a_range_or_a_reason():
    checked = 0
    for command, section, f, tp in every_setting():
        meta = f.metadata
        assert len(meta.get("help", "")) >= 10, f"{command} {f.name} has no help"
        assert "default" not in meta["help"].lower(), f"{command} {f.name}: the help repeats its default"
        if item_type(tp) in (int, float):
            assert meta["range"] is not None or meta["unbounded"], f"{command} {f.name}: no range and no reason"
        checked += 1
    assert checked >= 100


def test_setting_names_are_unique_within_a_command():
    for command, cls in ((n, c.config) for n, c in COMMANDS.items()):
        names = [f.name for _, f, _ in settings_of(cls)]
        assert len(names) == len(set(names)), command


def test_configuration_code_reads_no_source():
    for module in ("config/sections.py", "config/commands.py", "config/settings.py", "cli.py"):
        text = (REPO / "src" / "minilm" / module).read_text()
        assert "getsource" not in text and "inspect" not in text, module


def numeric_fields():
    """(command, field, element type) for every int/float setting (or list of them) of every command."""
    for command, _, f, tp in every_setting():
        if item_type(tp) in (int, float):
            yield command, f.name, item_type(tp)


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

    from helpers.cli import run_main

    for target in (c.target for c in COMMANDS.values()):
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


def test_dataclass_fields_are_sections_or_settings():
    """Every field of a command config is a section or a setting with help: nothing undeclared slips in."""
    for command, cls in ((n, c.config) for n, c in COMMANDS.items()):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            assert "help" in f.metadata or dataclasses.is_dataclass(hints[f.name]), (command, f.name)
