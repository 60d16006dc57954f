"""Every family's adapter against transformers' own attention: tiny random models of each family (from transformers'
own configs, weights drawn large enough that attention is far from uniform), float32, a padded batch.

The attention distributions L_AT reads for a layer are the model's own `output_attentions=True` probabilities to
1e-5; the truncated forward gives the full forward's Q, K, V and bias and runs nothing above the layer; the fast
attention the family loads with gives the same; a student made from teacher layers is those layers."""

from __future__ import annotations

import pytest
import torch
from helpers.families import FAMILY_NAMES, TOKEN_TYPES, WITH_BIAS, family_batch, family_config, family_model

from minilm.config.sections import Student
from minilm.errors import MiniLMError
from minilm.models.architectures import family_of, inputs_for
from minilm.models.attention import layer_qkv, record_layer_calls, unused_by_relations
from minilm.models.plan import encoder_size, student_shape
from minilm.models.students import copy_teacher_layers, student_config


def real_probabilities(qkv, mask):
    """softmax over real keys of the adapter's scale * Q K^T + bias."""
    logits = qkv.attention_logits().masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    return logits.softmax(-1)


def assert_real_close(ours, theirs, mask, atol=1e-5, what=""):
    for b, n in enumerate(mask.sum(-1).tolist()):
        torch.testing.assert_close(ours[b, ..., :n, :n], theirs[b, ..., :n, :n], atol=atol, rtol=0,
                                   msg=lambda m: f"{what} example {b}: {m}")


def depth(model) -> int:
    return len(family_of(model).layers(model))


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_attention_distributions_are_the_models_own(name):
    """For every layer: softmax(scale Q K^T + bias) over real keys equals the model's own eager attention
    probabilities on real rows to 1e-5; and the bias is no decoration where a family has one."""
    model = family_model(name, attn="eager")
    inputs = family_batch(model.config)
    mask = inputs["attention_mask"]
    worst_without_bias = 0.0
    for layer in range(1, depth(model) + 1):
        qkv, _ = layer_qkv(model, **inputs, layer=layer, full=True)
        theirs = model(**inputs_for(model, inputs), output_attentions=True).attentions[layer - 1]
        assert_real_close(real_probabilities(qkv, mask), theirs, mask, what=f"{name} layer {layer}")
        if qkv.bias is not None:
            plain = real_probabilities(qkv._replace(bias=None), mask) - theirs
            worst_without_bias = max(worst_without_bias, max(plain[b, :, :n, :n].abs().max().item()
                                                             for b, n in enumerate(mask.sum(-1).tolist())))
    assert (worst_without_bias > 1e-2) == (name in WITH_BIAS), worst_without_bias


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_the_truncated_forward_stops_at_the_layer_and_agrees_with_the_full_one(name):
    model = family_model(name, attn="eager")
    inputs = family_batch(model.config)
    blocks = family_of(model).layers(model)
    for layer in range(1, depth(model) + 1):
        ran = [0] * len(blocks)
        handles = [block.register_forward_hook(lambda m, i, o, j=j: ran.__setitem__(j, ran[j] + 1))
                   for j, block in enumerate(blocks)]
        try:
            cut, outputs = layer_qkv(model, **inputs, layer=layer)
        finally:
            for handle in handles:
                handle.remove()
        assert outputs is None and ran == [1] * (layer - 1) + [0] * (len(blocks) - layer + 1)
        full, _ = layer_qkv(model, **inputs, layer=layer, full=True)
        for key in ("query", "key", "value", "bias"):
            if getattr(cut, key) is not None or getattr(full, key) is not None:
                torch.testing.assert_close(getattr(cut, key), getattr(full, key), atol=0, rtol=0)
    assert all(len(block._forward_pre_hooks) == 0 for block in blocks)  # nothing left behind


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_the_fast_attention_below_gives_the_same_qkv(name):
    """The model as the family loads it by default (SDPA where transformers offers it) gives the eager model's
    Q, K, V and bias at every layer, on real positions."""
    eager = family_model(name, attn="eager")
    fast = family_model(name, state=eager.state_dict())
    assert fast.config._attn_implementation == ("sdpa" if family_of(fast).supports_sdpa else "eager")
    inputs = family_batch(eager.config)
    mask = inputs["attention_mask"]
    for layer in range(1, depth(eager) + 1):
        a, _ = layer_qkv(eager, **inputs, layer=layer)
        b, _ = layer_qkv(fast, **inputs, layer=layer)
        for key in ("query", "key", "value"):
            for e, n in enumerate(mask.sum(-1).tolist()):
                torch.testing.assert_close(getattr(a, key)[e, :n], getattr(b, key)[e, :n], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_token_types_reach_only_models_that_have_them(name):
    model = family_model(name)
    inputs = family_batch(model.config)
    assert ("token_type_ids" in inputs_for(model, inputs)) == (name in TOKEN_TYPES)
    layer_qkv(model, **inputs)  # pairs' token types of 1 never reach a model with one token type: no IndexError


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_gradients_reach_below_the_layer_and_nothing_above_is_trained(name):
    model = family_model(name).train()
    qkv, _ = layer_qkv(model, **family_batch(model.config), layer=2)
    (qkv.attention_logits().logsumexp(-1).mean() + qkv.value.pow(2).mean()).backward()
    assert model.base_model.get_input_embeddings().weight.grad.abs().sum() > 0
    above = {id(p) for p in family_of(model).layers(model)[2].parameters()}
    unused = {id(p) for p in unused_by_relations(model, layer=2)}
    assert above <= unused and all(p.grad is None for p in family_of(model).layers(model)[2].parameters())
    assert not unused & {id(p) for p in model.base_model.get_input_embeddings().parameters()}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_student_from_every_teacher_layer_is_the_teacher(name):
    """Same shape, every layer copied: the student computes the teacher's last hidden state (embeddings, blocks,
    and the family's shared modules: MPNet's position bias, DeBERTa's relative embeddings, ModernBERT's final norm)."""
    teacher = family_model(name, attn="eager")
    shape = family_of(teacher).shape(teacher.config)
    section = Student(student_layers=shape.layers, student_hidden=shape.hidden, student_heads=shape.heads,
                      student_ffn=shape.ffn, student_init="teacher")
    from minilm.models.students import student_from_teacher

    student = student_from_teacher(teacher, section, attn_implementation="eager").eval()
    inputs = inputs_for(teacher, family_batch(teacher.config))
    torch.testing.assert_close(student(**inputs).last_hidden_state, teacher(**inputs).last_hidden_state,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_narrower_shallower_student_has_the_shape_asked_and_its_exact_size(name):
    teacher_config = family_config(name)
    config = student_config(teacher_config, student_shape(Student(student_layers=2, student_hidden=16, student_heads=2,
                                                                  student_ffn=24), teacher_config), dropout=0.05)
    from transformers import AutoModel

    student = AutoModel.from_config(config)
    family = family_of(student)
    assert family.shape(config) == family.shape(student.config) and family.shape(config).layers == 2
    assert (family.shape(config).hidden, family.shape(config).heads, family.shape(config).ffn) == (16, 2, 24)
    assert {m.p for m in student.modules() if isinstance(m, torch.nn.Dropout)} <= {0.05, 0.0}
    assert encoder_size(config) == sum(p.numel() for p in student.parameters())
    qkv, _ = layer_qkv(student.eval(), **family_batch(config))
    assert qkv.query.shape[-1] == 16 and qkv.heads == 2


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_copied_layers_compute_what_the_teacher_layers_do(name):
    """Teacher layers [1, 3] into a 2-layer student: its layer 2 computes teacher layer 3's Q, K, V and bias on the
    same input."""
    teacher = family_model(name, attn="eager")
    shape = family_of(teacher).shape(teacher.config)
    section = Student(student_layers=2, student_hidden=shape.hidden, student_heads=shape.heads, student_ffn=shape.ffn,
                      student_init="teacher", student_init_layers=[1, 3])
    from minilm.models.students import student_from_teacher

    student = student_from_teacher(teacher, section, attn_implementation="eager").eval()
    inputs = family_batch(teacher.config)
    with record_layer_calls(student, [2]) as record:
        student(**inputs_for(student, inputs))
    family = family_of(teacher)
    mine, theirs = family.layer_qkv(student, 1, record[2]), family.layer_qkv(teacher, 2, record[2])
    for key in ("query", "key", "value", "bias"):
        if getattr(mine, key) is not None:
            torch.testing.assert_close(getattr(mine, key), getattr(theirs, key), atol=1e-6, rtol=1e-6)
    assert mine.scale == theirs.scale


def test_a_family_without_an_adapter_is_one_line_naming_the_supported_ones():
    from transformers import AlbertConfig

    with pytest.raises(MiniLMError, match="no adapter for albert models; supported: BERT, DeBERTa") as error:
        family_of(AlbertConfig())
    assert "ModernBERT" in str(error.value) and "\n" not in str(error.value)


def test_a_teacher_layer_that_does_not_fit_is_one_line():
    teacher = family_model("bert")
    student = student_config(teacher.config, student_shape(Student(student_layers=2, student_hidden=16,
                                                                   student_heads=2), teacher.config), 0.1)
    from transformers import AutoModel

    with pytest.raises(MiniLMError, match="does not fit the student"):
        copy_teacher_layers(AutoModel.from_config(student), teacher, [1, 3])


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_the_size_of_a_deep_model_is_counted_exactly_without_building_it(name):
    from transformers import AutoModel

    deep = family_of(family_config(name)).with_depth(family_config(name), 5)
    assert encoder_size(deep) == sum(p.numel() for p in AutoModel.from_config(deep).parameters())
    huge = family_of(deep).with_depth(deep, 100_000)  # counted, not built: a student "larger than its teacher" check
    assert encoder_size(huge) > 100_000 * 32 * 32
