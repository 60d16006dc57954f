"""Configs: settings declare their own help and ranges, YAML and flags fill the same sections, shipped configs
parse, and the defaults are the recommended recipe."""

from __future__ import annotations

import pytest
from helpers.cli import REPO

from minilm import config as C
from minilm.cli import build_parser
from minilm.commands import COMMANDS
from minilm.config.settings import load_config, read_yaml
from minilm.errors import MiniLMError

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def help_of(command: str) -> str:
    return build_parser()._subparsers._group_actions[0].choices[command].format_help()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_configs_parse_and_name_their_command(path):
    command = read_yaml(str(path))["command"]
    cls = COMMANDS[command].config
    cfg = load_config(cls, str(path), command=command)
    assert isinstance(cfg, cls)
    relative = path.relative_to(REPO)
    assert f"--config {relative}" in path.read_text()  # its header says how to run it


def test_a_config_run_with_another_command_is_refused(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("command: finetune\nlr: 1.0e-4\n")
    with pytest.raises(MiniLMError, match=r"is for `minilm finetune`, not `minilm distill`"):
        load_config(C.DistillConfig, str(path), command="distill")


def test_help_shows_sections_and_each_flag_once_with_its_default():
    distill = help_of("distill")
    for title in ("training:", "student:", "objective:", "distilbert objective:", "corpus:", "task:",
                  "task-specific output loss:", "SQuAD windows and post-processing:"):
        assert title in distill, title
    assert "(default: 48 where it divides both widths" in distill and "dividing both widths" in distill  # --relation-heads' own help
    parser = build_parser()._subparsers._group_actions[0].choices["distill"]
    for action in parser._actions:
        if action.dest not in ("help", "version", "config"):
            assert action.help.count("(default:") == 1, action.dest
    finetune = help_of("finetune")
    assert "training:" in finetune and "task:" in finetune
    assert "student:" not in finetune and "objective:" not in finetune and "corpus:" not in finetune
    assert "(default: 5e-05)" in finetune  # fine-tuning's own learning rate
