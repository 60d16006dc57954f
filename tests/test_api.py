"""The package's face: `minilm.distill(...)` and friends take the commands' settings and return what they wrote;
the README's Python example runs as written."""

from __future__ import annotations

import builtins
import re
import types

import pytest
from helpers.cli import REPO

import minilm
from minilm.config import DistillConfig


def readme_python_example() -> str:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "the README shows one Python example"
    return blocks[0]


def test_the_readmes_python_example_runs_on_a_tiny_model(tmp_path, monkeypatch, tiny_teacher_dir, sst2_like, capsys):
    """The README's code, verbatim, with a tiny teacher, student and budget added to each call (what a test can
    afford): it distils, fine-tunes, evaluates and exports, and each call returns what the README says."""
    tiny = {"distill": dict(teacher=tiny_teacher_dir, student_layers=1, student_hidden=32, student_heads=4,
                            batch_size=4, max_length=32, max_steps=2, cache_dir=str(tmp_path / "cache")),
            "finetune": dict(task_dir=str(sst2_like / "SST-2"), batch_size=8, max_length=32, max_steps=2,
                             eval_every=2),
            "evaluate": dict(task_dir=str(sst2_like / "SST-2"), max_length=32),
            "export": {}}
    returned = {}
    face = types.ModuleType("minilm")
    for name, extra in tiny.items():
        def call(_name=name, _extra=extra, **settings):
            returned[_name] = getattr(minilm, _name)(**{**settings, **_extra})
            return returned[_name]
        setattr(face, name, call)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_corpus.txt").write_text("the cat sat on the mat while the dog ran under the old tree\n" * 30)

    def importer(name, *args, **kwargs):  # the README's own `import minilm` gets the stand-in, nothing else does
        return face if name == "minilm" else builtins.__import__(name, *args, **kwargs)
    scope = {"__builtins__": {**vars(builtins), "__import__": importer}}
    exec(compile(readme_python_example(), "README.md", "exec"), scope)

    assert (tmp_path / returned["distill"]).resolve() == (tmp_path / "runs/try/model").resolve()
    assert (tmp_path / returned["distill"] / "config.json").is_file()
    assert (tmp_path / returned["finetune"] / "config.json").is_file() and returned["finetune"].name == "best"
    assert 0 <= returned["evaluate"]["main"] <= 100 and returned["evaluate"]["task"] == "sst2"
    assert (tmp_path / returned["export"] / "onnx" / "model.onnx").is_file()
    printed = capsys.readouterr().out
    assert f"{returned['evaluate']['main']}" in printed  # the README prints the score


def test_settings_come_as_keywords_a_config_object_or_a_yaml_file(tmp_path, monkeypatch):
    """The three ways fill the same config, keywords over the config; what the command is handed is checked."""
    import minilm.commands as commands

    seen = []
    monkeypatch.setattr(commands, "run", lambda name, cfg: seen.append((name, cfg)) or cfg)
    by_keywords = minilm.distill(student_layers=2, lr=1e-4)
    config = DistillConfig()
    config.student.student_layers = 2
    by_object = minilm.distill(config, lr=1e-4)
    (tmp_path / "c.yaml").write_text("command: distill\nstudent_layers: 2\n")
    by_file = minilm.distill(tmp_path / "c.yaml", lr=1e-4)
    assert by_keywords == by_object == by_file
    assert by_keywords.student.student_layers == 2 and by_keywords.training.lr == 1e-4
    assert [name for name, _ in seen] == ["distill"] * 3


def test_bad_settings_raise_the_one_line_error():
    with pytest.raises(minilm.MiniLMError, match="student_layers must be >= 1"):
        minilm.distill(student_layers=0)
    with pytest.raises(minilm.MiniLMError, match="unknown config key"):
        minilm.finetune(no_such_setting=1)
    with pytest.raises(minilm.MiniLMError, match="is for `minilm distill`"):
        minilm.evaluate(str(REPO / "configs" / "cpu_testbed.yaml"))


def test_importing_the_package_does_not_import_torch():
    """`import minilm` stays light (torch comes with the first command or loss), so the process answers at once."""
    import subprocess
    import sys

    code = "import minilm, sys; assert 'torch' not in sys.modules, 'torch imported'; minilm.relation_kl"
    subprocess.run([sys.executable, "-c", code], check=True)
