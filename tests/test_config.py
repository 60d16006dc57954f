"""Configs: settings declare their own help and ranges, YAML and flags fill the same sections, shipped configs
parse, and the defaults are the recommended recipe."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from minilm import config as C
from minilm.cli import COMMANDS, build_parser
from minilm.errors import MiniLMError
from minilm.settings import flatten, item_type, load_config, read_yaml, settings_of

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def help_of(command: str) -> str:
    return build_parser()._subparsers._group_actions[0].choices[command].format_help()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_configs_parse_and_name_their_command(path):
    command = read_yaml(str(path))["command"]
    cls = COMMANDS[command][0]
    cfg = load_config(cls, str(path), command=command)
    assert isinstance(cfg, cls)
    relative = path.relative_to(REPO)
    assert f"--config {relative}" in path.read_text()  # its header says how to run it


def test_a_config_run_with_another_command_is_refused(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("command: finetune\nlr: 1.0e-4\n")
    with pytest.raises(MiniLMError, match=r"is for `minilm finetune`, not `minilm distill`"):
        load_config(C.DistillConfig, str(path), command="distill")


def test_flags_override_yaml_and_land_in_their_sections(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("student_layers: 4\nlr: 1.0e-4\ndata: [a.txt, b.txt]\n")
    args = build_parser().parse_args(["distill", "--config", str(yaml_file), "--lr", "3e-4", "--no-resume"])
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    cfg = load_config(C.DistillConfig, str(yaml_file), overrides)
    assert cfg.student.student_layers == 4 and cfg.training.lr == 3e-4 and cfg.corpus.data == ["a.txt", "b.txt"]
    assert cfg.training.resume is False
    assert flatten(cfg)["lr"] == 3e-4


def test_the_earlier_version_spelling_still_runs(tmp_path):
    """`--version v2` (a flag before the objectives became a list) reads as `--objective minilmv2`."""
    args = build_parser().parse_args(["distill", "--version", "v2", "--relation-heads", "12"])
    cfg = load_config(C.DistillConfig, None, {k: v for k, v in vars(args).items() if k not in ("command", "config")})
    assert cfg.objective.objective == ["minilmv2"]
    yaml_file = tmp_path / "old.yaml"
    yaml_file.write_text("version: v2\nobjective: [minilm, embedding]\n")
    assert load_config(C.DistillConfig, str(yaml_file)).objective.objective == ["minilmv2", "embedding"]
    assert C.Objective(version="v1").objective == ["minilm"]
    assert C.Objective(objective="minilmv2", version="v2").objective == ["minilmv2"]
    with pytest.raises(MiniLMError, match=r"--version v2 belongs to the minilm objective .*, not to tinybert"):
        C.Objective(objective="tinybert", version="v2")


@pytest.mark.parametrize("text,message", [("lr: fast\n", "expects float"), ("nope: 1\n", "unknown config key"),
                                          ("- a\n- b\n", "must hold a mapping"), ("a: [\n", "not valid YAML"),
                                          ("student_layers: 2.5\n", "expects int")])
def test_bad_yaml(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MiniLMError, match=message):
        load_config(C.DistillConfig, str(path))


def every_setting():
    for command, (cls, _, _, _) in COMMANDS.items():
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
    for command, (cls, _, _, _) in COMMANDS.items():
        names = [f.name for _, f, _ in settings_of(cls)]
        assert len(names) == len(set(names)), command


def test_help_shows_sections_and_each_flag_once_with_its_default():
    distill = help_of("distill")
    for title in ("training:", "student:", "objective:", "distilbert objective:", "corpus:", "task:",
                  "task-specific output loss:", "SQuAD windows and post-processing:"):
        assert title in distill, title
    assert "(default: 48)" in distill and "dividing both widths" in distill  # --relation-heads' own help
    parser = build_parser()._subparsers._group_actions[0].choices["distill"]
    for action in parser._actions:
        if action.dest not in ("help", "config"):
            assert action.help.count("(default:") == 1, action.dest
    finetune = help_of("finetune")
    assert "training:" in finetune and "task:" in finetune
    assert "student:" not in finetune and "objective:" not in finetune and "corpus:" not in finetune
    assert "(default: 5e-05)" in finetune  # fine-tuning's own learning rate


def test_configuration_code_reads_no_source():
    for module in ("config.py", "settings.py", "cli.py"):
        text = (REPO / "src" / "minilm" / module).read_text()
        assert "getsource" not in text and "inspect" not in text, module


def test_defaults_are_the_main_jobs_recipe():
    """A bare `minilm distill --data FILE` is the recipe docs/transfer_study.md found best (what the main job runs)."""
    from minilm.corpora import NAMED
    from minilm.models import load_model_config, resolve_init

    default = flatten(C.DistillConfig())
    main_job = flatten(load_config(C.DistillConfig, str(REPO / "configs" / "cpu_testbed.yaml"), command="distill"))
    differs = {k for k in default if default[k] != main_job[k]}
    assert differs <= {"output_dir", "data"}, differs
    assert (default["examples"], default["pair_fraction"], default["lr"], default["objective"]) == \
        ("packed", 0.5, 2e-4, ["minilm"])
    assert (default["max_steps"], default["batch_size"], default["precision"]) == (1000, 32, "auto")
    teacher = load_model_config(default["teacher"])
    assert resolve_init(C.DistillConfig().student, teacher) == "teacher"  # the packaged teacher's layers 2, 4, 6
    assert NAMED["wikitext-2"].boundary == "heading"  # document_boundary auto: one WikiText article a document
    # No default corpus holds text of an evaluated task.
    for name in default["data"]:
        assert not any(task in f for f in NAMED[name].files for task in ("glue", "squad", "stsb")), name


def test_each_section_checks_its_own_rules():
    with pytest.raises(MiniLMError, match="student_hidden 30 is not divisible by student_heads 4"):
        C.Student(student_hidden=30, student_heads=4)
    with pytest.raises(MiniLMError, match="betas takes two values"):
        C.Training(betas=[0.9])
    with pytest.raises(MiniLMError, match="value_relation applies to the minilm objective"):
        C.Objective(objective="tinybert", value_relation=False)
    with pytest.raises(MiniLMError, match="warmup_steps 50 is longer than the run"):
        C.Training(warmup_steps=50, max_steps=0, epochs=1).total_steps(per_epoch=10)
    assert C.Training(max_steps=0, epochs=2.5).total_steps(per_epoch=10) == 25


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

    from clirun import run_main

    for _, target, _, _ in COMMANDS.values():
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
    for command, (cls, _, _, _) in COMMANDS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            assert "help" in f.metadata or dataclasses.is_dataclass(hints[f.name]), (command, f.name)
