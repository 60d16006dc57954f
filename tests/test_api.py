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

    assert all(isinstance(result, minilm.Result) for result in returned.values())
    assert str(returned["finetune"]) == str(returned["finetune"].path) and returned["evaluate"].path is None
    assert (tmp_path / returned["distill"]).resolve() == (tmp_path / "runs/try/model").resolve()
    assert (tmp_path / returned["distill"] / "config.json").is_file() and returned["distill"].training["loss"] > 0 and returned["distill"].metrics == {}
    assert (tmp_path / returned["finetune"] / "config.json").is_file() and returned["finetune"].path.name == "best"
    assert 0 <= returned["finetune"].metrics["main"] <= 100
    assert 0 <= returned["evaluate"].metrics["main"] <= 100 and returned["evaluate"].metrics["task"] == "sst2"
    assert (tmp_path / returned["export"] / "onnx" / "model.onnx").is_file() and returned["export"].metrics["graphs"]
    printed = capsys.readouterr().out
    assert f"{returned['evaluate'].metrics['main']}" in printed  # the README prints the score
    assert type(scope["classifier"]).__name__.endswith("ForSequenceClassification")  # best.load()


def test_settings_come_as_keywords_a_config_object_or_a_yaml_file(tmp_path, monkeypatch):
    """The three ways fill the same config, keywords over the config; what the command is handed is checked."""
    import minilm.commands as commands

    seen = []
    monkeypatch.setattr(commands, "run", lambda name, cfg: seen.append((name, cfg)) or {})
    minilm.distill(student_layers=2, lr=1e-4)
    config = DistillConfig()
    config.student.student_layers = 2
    minilm.distill(config, lr=1e-4)
    (tmp_path / "c.yaml").write_text("command: distill\nstudent_layers: 2\n")
    minilm.distill(tmp_path / "c.yaml", lr=1e-4)
    by_keywords, by_object, by_file = (cfg for _, cfg in seen)
    assert by_keywords == by_object == by_file
    assert by_keywords.student.student_layers == 2 and by_keywords.training.lr == 1e-4
    assert [name for name, _ in seen] == ["distill"] * 3


def test_bad_settings_raise_the_one_line_error():
    with pytest.raises(minilm.MiniLMError, match="student_layers must be >= 0"):
        minilm.distill(student_layers=-1)
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


def test_each_function_shows_its_settings_in_its_signature_and_help():
    """`inspect.signature(minilm.distill)` lists every setting of `minilm distill` with its default, and the docstring
    says each one's help: what an editor or a notebook shows."""
    import dataclasses
    import inspect

    from minilm.commands import COMMANDS
    from minilm.config.settings import default_of, settings_of

    faces = {"distill": minilm.distill, "student": minilm.student, "finetune": minilm.finetune,
             "evaluate": minilm.evaluate, "export": minilm.export, "report": minilm.report, "bench": minilm.bench}
    assert set(faces) == set(COMMANDS)
    for name, face in faces.items():
        parameters = inspect.signature(face).parameters
        settings = {f.name: f for _, f, _ in settings_of(COMMANDS[name].config)}
        assert list(parameters) == ["config", *settings], name
        for key, f in settings.items():
            assert parameters[key].default == default_of(f) and parameters[key].kind is inspect.Parameter.KEYWORD_ONLY
            assert f"    {key}: {f.metadata['help'][:40]}" in face.__doc__, (name, key)
    assert "student_layers: transformer layers of the student" in minilm.distill.__doc__
    assert inspect.signature(minilm.distill).return_annotation is minilm.Result
    assert dataclasses.is_dataclass(minilm.Result)


def test_a_loaded_model_goes_where_a_path_does(tiny_teacher_dir, tmp_path, monkeypatch):
    """A transformers model (its tokenizer from where it was loaded), a (model, tokenizer) pair: each is saved once
    under a name of its contents, and the command runs on it as on its directory; the Result loads what it wrote."""
    from transformers import AutoModel, AutoTokenizer

    monkeypatch.chdir(tmp_path)
    model, tokenizer = AutoModel.from_pretrained(tiny_teacher_dir), AutoTokenizer.from_pretrained(tiny_teacher_dir)
    small = dict(student_layers=1, student_hidden=32, student_heads=4)
    by_path = minilm.student(teacher=tiny_teacher_dir, output_dir="from_path", **small)
    by_model = minilm.student(teacher=model, output_dir="from_model", **small)
    by_pair = minilm.student(teacher=(model, tokenizer), output_dir="from_pair", **small)
    saved = sorted((tmp_path / ".cache" / "minilm" / "models").iterdir())
    assert len(saved) == 1 and not saved[0].name.startswith(".tmp")  # the same model, saved once
    loaded = [result.load() for result in (by_path, by_model, by_pair)]
    for student in loaded[1:]:
        assert all((a == b).all() for a, b in zip(loaded[0].state_dict().values(), student.state_dict().values()))
    assert by_model.tokenizer().get_vocab() == tokenizer.get_vocab()
    with pytest.raises(minilm.MiniLMError, match="takes a path, a transformers model"):
        minilm.student(teacher=object(), output_dir="nothing")


def test_a_sentence_transformer_goes_where_a_teacher_path_does(sentence_teacher, tmp_path, monkeypatch):
    """A loaded SentenceTransformer is saved in its own layout: the student keeps its teacher's pooling."""
    from sentence_transformers import SentenceTransformer

    monkeypatch.chdir(tmp_path)
    result = minilm.student(teacher=SentenceTransformer(sentence_teacher, device="cpu"), output_dir="s",
                                 student_layers=1, student_hidden=32, student_heads=4)
    assert (result.path / "modules.json").is_file()
    assert result.sentence_transformer().encode(["a sentence"]).shape[0] == 1


def test_sections_pass_whole_and_settings_override_them(monkeypatch):
    import minilm.commands as commands
    from minilm.config import Student, Training

    seen = []
    monkeypatch.setattr(commands, "run", lambda name, cfg: seen.append(cfg) or {})
    minilm.distill(training=Training(lr=3e-4, max_steps=7), student=Student(student_layers=2), max_steps=9)
    cfg = seen[-1]
    assert (cfg.training.lr, cfg.training.max_steps, cfg.student.student_layers) == (3e-4, 9, 2)
    minilm.distill(task="sst2")  # `task` the setting, not the section: a string is a setting's value
    assert seen[-1].task.task == "sst2"


def test_errors_raised_to_python_name_keywords_not_flags():
    with pytest.raises(minilm.MiniLMError) as error:
        minilm.distill(speedup=2, student_hidden=256)
    assert "student_hidden=" in str(error.value) and "--" not in str(error.value)
    with pytest.raises(minilm.MiniLMError) as error:
        minilm.student(student_layers=True)
    assert "keyword 'student_layers' expects int, got a boolean" in str(error.value) and "YAML" not in str(error.value)
    with pytest.raises(minilm.MiniLMError, match="keyword 'data' expects str, got a dict"):
        minilm.distill(data={"text": ["a line"]})


def test_a_loaded_model_is_saved_under_cache_dir_and_errors_name_its_keyword(sentence_teacher, tmp_path,
                                                                              monkeypatch):
    from sentence_transformers import SentenceTransformer

    monkeypatch.chdir(tmp_path)
    model = SentenceTransformer(sentence_teacher, device="cpu")
    result = minilm.student(teacher=model, output_dir="s", student_layers=1, student_hidden=32, student_heads=4,
                            cache_dir=str(tmp_path / "mine"))
    assert result.path.is_dir() and (tmp_path / "mine" / "models").is_dir() and not (tmp_path / ".cache").exists()
    with pytest.raises(minilm.MiniLMError) as error:  # a sentence encoder has no task head to score sst2 with
        minilm.evaluate(model=model, task="sst2")
    assert "model 'the model passed as model=' has no task head" in str(error.value), str(error.value)


def test_the_package_shows_its_api_and_the_losses_their_functions():
    import warnings

    assert set(dir(minilm)) == set(minilm.__all__) and "os" not in dir(minilm) and "Path" not in dir(minilm)
    from minilm.losses import attention_relation_losses, output_kl, relation_kl

    assert all(callable(f) for f in (relation_kl, attention_relation_losses, output_kl))
    import minilm.losses as losses

    modules = {p.stem for p in (REPO / "src" / "minilm" / "losses").glob("*.py")}
    assert not modules & set(losses.__all__), "a function and a module of minilm.losses share a name"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert minilm.make_student is minilm.student  # the earlier name, said to be so
    assert "minilm.student" in str(caught[0].message)
