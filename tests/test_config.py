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
