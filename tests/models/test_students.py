"""Students built as their plan says: the config, teacher-layer copies, random starts, the saved model."""

from __future__ import annotations

import pytest
import torch
from helpers.models import tiny_bert

from minilm.errors import MiniLMError
from minilm.models.plan import student_shape
from minilm.models.students import count_parameters, student_config, student_from_teacher


def shape(layers, hidden, heads, ffn=None, init="random"):
    from minilm.config.sections import Student

    return Student(student_layers=layers, student_hidden=hidden, student_heads=heads, student_ffn=ffn,
                   student_init=init)


def test_student_config_defaults_and_errors():
    teacher = tiny_bert(hidden=32, heads=4, ffn=48)
    cfg = student_config(teacher.config, student_shape(shape(1, 16, 2), teacher.config), 0.1)
    # the FFN at the teacher's ratio to its width (48 / 32), as pruning needs it
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (1, 16, 2, 24)
    assert cfg.vocab_size == teacher.config.vocab_size
    assert teacher.config.hidden_size == 32  # the teacher's config is untouched
    with pytest.raises(MiniLMError, match="not divisible"):
        shape(1, 30, 4)
    with pytest.raises(MiniLMError, match="would be larger than its teacher"):
        student_config(teacher.config, student_shape(shape(8, 32, 4), teacher.config), 0.1)


def test_teacher_init_copies_chosen_layers_and_embeddings():
    teacher = tiny_bert(layers=4, seed=3)
    student = student_from_teacher(teacher, shape(2, 32, 4, ffn=64, init="teacher"))
    assert torch.equal(student.embeddings.word_embeddings.weight, teacher.embeddings.word_embeddings.weight)
    assert torch.equal(student.encoder.layer[0].attention.self.query.weight,
                       teacher.encoder.layer[1].attention.self.query.weight)  # teacher layer 2
    assert torch.equal(student.encoder.layer[1].output.dense.weight, teacher.encoder.layer[3].output.dense.weight)
    random = student_from_teacher(teacher, shape(2, 32, 4, ffn=64, init="random"))
    assert not torch.equal(random.encoder.layer[0].attention.self.query.weight,
                           teacher.encoder.layer[1].attention.self.query.weight)


def test_teacher_init_with_other_width_is_a_clear_error():
    with pytest.raises(MiniLMError, match="does not fit the student"):
        student_from_teacher(tiny_bert(hidden=32), shape(1, 16, 4, init="teacher"))


def test_student_is_a_plain_hf_model_that_round_trips(tmp_path, tokenizer):
    from transformers import AutoModel, AutoModelForSequenceClassification

    student = student_from_teacher(tiny_bert(), shape(1, 16, 2))
    assert count_parameters(student) < count_parameters(tiny_bert())
    student.save_pretrained(tmp_path)
    assert type(AutoModel.from_pretrained(tmp_path)).__name__ == "BertModel"
    head = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    assert head.config.num_hidden_layers == 1


def test_a_student_carries_its_plan_in_its_config_through_a_save(tmp_path):
    from transformers import AutoConfig

    from minilm.models.plan import read_plan

    student = student_from_teacher(tiny_bert(layers=4, seed=3), shape(2, 32, 4, ffn=64, init="teacher"))
    student.save_pretrained(tmp_path)
    plan = read_plan(AutoConfig.from_pretrained(tmp_path))
    assert (plan.start, plan.teacher_layers, plan.shape.layers, plan.shape.ffn) == ("teacher", [2, 4], 2, 64)
