"""relation_kl and friends: hand-computed values, an independent float64 reference, and properties."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.models import tiny_bert
from helpers.objectives import batch_of, cfg, objective_for
from helpers.references import ragged, reference_relation_kl

from minilm.errors import MiniLMError
from minilm.losses.chunked_kl import attention_relation_losses, relation_kl
from minilm.objectives import build_objective, distill_losses


def test_v1_names_and_head_mismatch_error():
    from minilm.losses.relations import V1_RELATIONS
    from minilm.objectives.minilm import check_heads

    t, s, mask = ragged(hidden_t=16, hidden_s=16)
    teacher = dict(query=t[0], key=t[1], value=t[2])
    student = dict(query=s[0], key=s[1], value=s[2])
    losses = attention_relation_losses(teacher, student, mask, V1_RELATIONS, 4)
    assert set(losses) == {"attention", "value"}
    assert losses["attention"].item() == pytest.approx(relation_kl(t[0], t[1], s[0], s[1], mask, 4).item())
    assert losses["value"].item() == pytest.approx(relation_kl(t[2], t[2], s[2], s[2], mask, 4).item())
    from transformers import BertConfig

    heads = lambda n, width=16: BertConfig(num_attention_heads=n, hidden_size=width)  # noqa: E731
    with pytest.raises(MiniLMError, match="use --objective minilmv2"):
        check_heads("v1", heads(4), heads(2), 48)
    with pytest.raises(MiniLMError, match="relation_heads 3 does not divide the teacher hidden size 16"):
        check_heads("v2", heads(4), heads(2), 3)


def test_v2_relations_with_own_head_count():
    t, s, mask = ragged(hidden_t=24, hidden_s=16)
    teacher = dict(query=t[0], key=t[1], value=t[2])
    student = dict(query=s[0], key=s[1], value=s[2])
    from minilm.losses.relations import V2_RELATIONS

    pairs = {r: V2_RELATIONS[r] for r in ("qq", "vv")}
    losses = attention_relation_losses(teacher, student, mask, pairs, 8)
    assert set(losses) == {"qq", "vv"}
    want = reference_relation_kl(t[0], t[0], s[0], s[0], mask, 8)
    assert losses["qq"].item() == pytest.approx(want, rel=1e-5)


def test_relation_kernel_flag_reaches_the_loss():
    from helpers.models import tiny_bert

    from minilm.config.sections import Objective, Relations

    objective = build_objective(Objective(), tiny_bert(), tiny_bert(), relations=Relations(relation_kernel="torch"))
    assert objective.parts[0].kernel == "torch"
    with pytest.raises(MiniLMError, match="relation_kernel must be one of auto, torch, triton"):
        Relations(relation_kernel="fast")


def test_minilm_without_value_relation_has_the_attention_term_only():
    objective = objective_for(cfg(value_relation=False), tiny_bert(seed=1).eval(), tiny_bert(seed=2))
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch_of())
    assert set(losses) == {"attention"}
    assert math.isfinite(losses["attention"].item())


@pytest.mark.parametrize("name", ["bert", "electra", "roberta", "mpnet", "deberta-v3", "deberta-v2", "modernbert",
                                  "distilbert"])
def test_the_relation_losses_of_every_family_equal_a_float64_reference_from_the_models_own_attention(name):
    """L_AT from the adapters' Q, K, scale and bias equals the KL of the attention probabilities each model returns
    itself (eager, `output_attentions`), in float64, per example over real tokens; L_VR the KL of
    softmax(V V^T / sqrt(d)) of the layers' own value projections; padding changes neither."""
    from helpers.families import family_batch, family_model

    from minilm.config.sections import Student
    from minilm.models.architectures import family_of, inputs_for
    from minilm.models.students import student_from_teacher

    teacher = family_model(name, attn="eager")
    shape = family_of(teacher).shape(teacher.config)
    student = student_from_teacher(teacher, Student(student_layers=2, student_hidden=shape.hidden,
                                                    student_heads=shape.heads, student_ffn=shape.ffn,
                                                    student_init="random"), attn_implementation="eager").eval()
    objective = build_objective(cfg().objective, teacher, student)
    batch = family_batch(teacher.config)
    mask = batch["attention_mask"]
    def own_run(model):
        """The model's own attention probabilities and last-layer values (a hook on its projection: ModernBERT's
        value is the third part of its fused Wqkv), from one eager forward."""
        (kind, module), = [(k, m) for k, m in family_of(model).projections(family_of(model).layers(model)[-1]).items()
                           if k in ("value", "qkv")]
        seen = []
        handle = module.register_forward_hook(lambda m, i, o: seen.append(o))
        try:
            attentions = model(**inputs_for(model, batch), output_attentions=True).attentions[-1].double()
        finally:
            handle.remove()
        value = seen[0] if kind == "value" else seen[0].view(*seen[0].shape[:2], 3, -1)[:, :, 2]
        return attentions, value

    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch)
        (p, t_value), (q, s_value) = own_run(teacher), own_run(student)
    expected = 0.0
    for b, n in enumerate(mask.sum(-1).tolist()):
        expected += float((p[b, :, :n, :n] * (p[b, :, :n, :n].log() - q[b, :, :n, :n].log())).sum()) / (shape.heads * n)
    assert losses["attention"].item() == pytest.approx(expected / len(mask), rel=1e-4, abs=1e-7)
    value = reference_relation_kl(t_value, t_value, s_value, s_value, mask, shape.heads)
    assert losses["value"].item() == pytest.approx(value, rel=1e-4, abs=1e-7)
    padded = {k: torch.cat([v, torch.full((v.shape[0], 5), 0 if k != "input_ids" else 3)], 1) for k, v in batch.items()}
    with torch.no_grad():
        again = distill_losses(objective, objective.student_view, padded)
    assert again["attention"].item() == pytest.approx(losses["attention"].item(), rel=1e-5)


def test_an_attention_bias_takes_the_torch_path_and_the_run_is_told_once(monkeypatch):
    from helpers.families import family_model

    import minilm.objectives.minilm as minilm_objective
    from minilm.config.sections import Relations, Student
    from minilm.models.students import student_from_teacher

    monkeypatch.setattr(minilm_objective, "resolve_kernel", lambda kernel, device, *a, **k: "triton")  # a GPU, say
    teacher = family_model("mpnet")
    student = student_from_teacher(teacher, Student(student_layers=1, student_hidden=32, student_heads=4))
    notes = build_objective(cfg().objective, teacher, student).notes
    assert len(notes) == 1 and "torch path" in notes[0] and "MPNet's relative position bias" in notes[0]
    plain = family_model("bert")
    bert_student = student_from_teacher(plain, Student(student_layers=1, student_hidden=32, student_heads=4))
    assert build_objective(cfg().objective, plain, bert_student).notes == []
    assert build_objective(cfg().objective, teacher, student, relations=Relations(relation_kernel="torch")).notes == []
