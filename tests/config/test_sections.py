"""Configs: settings declare their own help and ranges, YAML and flags fill the same sections, shipped configs
parse, and the defaults are the recommended recipe."""

from __future__ import annotations

import pytest
from helpers.cli import REPO

from minilm import config as C
from minilm.cli import build_parser
from minilm.config.settings import flatten, load_config
from minilm.errors import MiniLMError


def test_the_earlier_version_spelling_still_runs(tmp_path):
    """`--minilm-variant v2` (`version` in earlier YAML files, before the objectives became a list) reads as
    `--objective minilmv2`."""
    args = build_parser().parse_args(["distill", "--minilm-variant", "v2", "--relation-heads", "12"])
    cfg = load_config(C.DistillConfig, None, {k: v for k, v in vars(args).items() if k not in ("command", "config")})
    assert cfg.objective.objective == ["minilmv2"]
    yaml_file = tmp_path / "old.yaml"
    yaml_file.write_text("version: v2\nobjective: [minilm, embedding]\n")
    assert load_config(C.DistillConfig, str(yaml_file)).objective.objective == ["minilmv2", "embedding"]
    assert C.Objective(minilm_variant="v1").objective == ["minilm"]
    assert C.Objective(objective="minilmv2", minilm_variant="v2").objective == ["minilmv2"]
    with pytest.raises(MiniLMError, match=r"--minilm-variant v2 belongs to the minilm objective .*, not to tinybert"):
        C.Objective(objective="tinybert", minilm_variant="v2")


def test_defaults_are_the_main_jobs_recipe():
    """A bare `minilm distill --data FILE` is the recipe docs/transfer_study.md found best (what the main job runs)."""
    from minilm.data.corpora import NAMED
    from minilm.models.loading import load_model_config
    from minilm.models.plan import resolve_init

    default = flatten(C.DistillConfig())
    main_job = flatten(load_config(C.DistillConfig, str(REPO / "configs" / "cpu_testbed.yaml"), command="distill"))
    differs = {k for k in default if default[k] != main_job[k]}
    assert differs <= {"output_dir", "data"}, differs
    assert (default["examples"], default["pair_fraction"], default["lr"], default["objective"]) == \
        ("packed", 0.5, None, ["minilm"])
    # the learning rate the rule gives the main job's 3x384 student of a 384-wide teacher: 2e-4, as that study found;
    # narrower students more, a static one most
    training = C.DistillConfig().training
    assert training.lr_for(384, 384) == 2e-4 and training.lr_for(128, 384) == pytest.approx(2e-4 * 3 ** 1.5)
    assert training.lr_for(256, 384) == pytest.approx(2e-4 * 1.5 ** 1.5) and training.lr_for(256, 384, True) == 1e-2
    assert C.Training(lr=5e-5).lr_for(128, 384) == 5e-5  # as given
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


def test_relation_heads_default_to_the_most_up_to_48_dividing_both_widths():
    from minilm.config.sections import Relations

    assert Relations().heads_for(384, 384) == 48 and Relations().heads_for(768, 384) == 48
    assert Relations().heads_for(384, 256) == 32 and Relations().heads_for(384, 128) == 32  # pruned students
    assert Relations().heads_for(384, 96) == 48 and Relations().heads_for(32, 24) == 8
    assert Relations(relation_heads=12).heads_for(384, 256) == 12  # as given (and checked by the objective)
