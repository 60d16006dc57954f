"""Structured pruning (`models.pruning`) on tiny random models of every family: keeping everything is the teacher,
a permutation of channels, heads or neurons is the teacher (permuted), dropping FFN neurons equals zeroing them,
dropping heads equals zeroing their outputs, the importances rank what is most active, and a pruned student saves
and loads as a plain model of its family."""

from __future__ import annotations

import copy

import pytest
import torch

from minilm.config.sections import Student
from minilm.errors import MiniLMError
from minilm.models import pruning
from minilm.models.architectures import family_of, inputs_for
from minilm.models.architectures.base import submodule
from tests.helpers.families import FAMILY_NAMES, family_batch, family_config, family_model

TOL = 1e-5


def output(model, batch) -> torch.Tensor:
    with torch.no_grad():
        hidden = model(**inputs_for(model, batch)).last_hidden_state
    return hidden * batch["attention_mask"][..., None]


def new_model(config):
    from transformers import AutoModel

    return AutoModel.from_config(config, attn_implementation="eager").eval()


def everything(model) -> pruning.Kept:
    shape = family_of(model).shape(model.config)
    return pruning.Kept(list(range(shape.layers)), torch.arange(shape.hidden),
                        [torch.arange(shape.heads)] * shape.layers, [torch.arange(shape.ffn)] * shape.layers)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_keeping_everything_is_the_teacher(name):
    teacher = family_model(name, attn="eager")
    student = new_model(copy.deepcopy(teacher.config))
    pruning.prune_into(student, teacher, everything(teacher))
    batch = family_batch(teacher.config)
    assert torch.allclose(output(student, batch), output(teacher, batch), atol=TOL)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_permutation_of_channels_heads_and_neurons_is_the_teacher_permuted(name):
    """Every matrix is sliced consistently: reordering the hidden channels, each layer's heads (one order for all
    layers where a per-head parameter is shared) and FFN neurons leaves the function unchanged up to the order of
    the output channels. A slice missed or applied along the wrong axis breaks it."""
    teacher = family_model(name, attn="eager")
    family = family_of(teacher)
    kept = everything(teacher)
    g = torch.Generator().manual_seed(3)
    kept.hidden = torch.randperm(len(kept.hidden), generator=g)
    kept.heads = [torch.randperm(len(h), generator=g) for h in kept.heads]
    if family.uniform_heads:
        kept.heads = [kept.heads[0]] * len(kept.heads)
    kept.ffn = [torch.randperm(len(f), generator=g) for f in kept.ffn]
    student = new_model(copy.deepcopy(teacher.config))
    pruning.prune_into(student, teacher, kept)
    batch = family_batch(teacher.config)
    assert torch.allclose(output(student, batch), output(teacher, batch)[..., kept.hidden], atol=TOL)


def zero_ffn(model, layer: int, dropped: torch.Tensor):
    """The model with FFN neurons `dropped` of block `layer` silenced: their input rows and output columns zero."""
    model = copy.deepcopy(model)
    family = family_of(model)
    block = family.layers(model)[layer]
    with torch.no_grad():
        for name, roles in pruning.block_roles(family, block).items():
            linear = submodule(block, name)
            if roles.out == "ffn":
                rows = pruning.chunked(dropped, linear.out_features // roles.chunks, roles.chunks)
                linear.weight[rows] = 0
                if linear.bias is not None:
                    linear.bias[rows] = 0
            if roles.inp == "ffn":
                linear.weight[:, dropped] = 0
    return model


def resize(family, block, role: str, width: int, head_size: int = 1) -> None:
    """Give a block's Linears whose rows or columns are `role` units that many units (`width` x `head_size`), and
    its attention module the head count that goes with them: the shape a block with units removed has (a config
    cannot say it when the width per layer differs, or for heads apart from the model's width)."""
    for name, roles in pruning.block_roles(family, block).items():
        linear = submodule(block, name)
        out = width * head_size * roles.chunks if roles.out == role else linear.out_features
        inp = width * head_size if roles.inp == role else linear.in_features
        parent_name, _, leaf = name.rpartition(".")
        parent = submodule(block, parent_name) if parent_name else block
        setattr(parent, leaf, torch.nn.Linear(inp, out, bias=linear.bias is not None))
        if role == "heads":
            for attribute in ("num_attention_heads", "num_heads", "n_heads"):
                if hasattr(parent, attribute):
                    setattr(parent, attribute, width)
            if hasattr(parent, "all_head_size"):
                parent.all_head_size = width * head_size


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_dropping_ffn_neurons_equals_zeroing_them(name):
    teacher = family_model(name, attn="eager")
    family = family_of(teacher)
    shape = family.shape(teacher.config)
    kept = everything(teacher)
    keep = torch.tensor([1, 4, 5, 9, 20, 33, 40, 63])
    dropped = torch.tensor([i for i in range(shape.ffn) if i not in set(keep.tolist())])
    kept.ffn = [keep, torch.arange(shape.ffn), keep]
    zeroed = zero_ffn(zero_ffn(teacher, 0, dropped), 2, dropped)
    student = new_model(copy.deepcopy(teacher.config))
    for i, width in enumerate([len(keep), shape.ffn, len(keep)]):  # each block's FFN as wide as it keeps
        resize(family, family.layers(student)[i], "ffn", width)
    pruning.prune_into(student, teacher, kept)
    batch = family_batch(teacher.config)
    assert torch.allclose(output(student.eval(), batch), output(zeroed, batch), atol=TOL)
    assert not torch.allclose(output(teacher, batch), output(zeroed, batch), atol=1e-3)  # the neurons mattered


def zero_heads(model, layer: int, dropped: torch.Tensor, head_size: int):
    """The model with heads `dropped` of block `layer` silenced: their columns of the output projection zero."""
    model = copy.deepcopy(model)
    family = family_of(model)
    block = family.layers(model)[layer]
    with torch.no_grad():
        for name, roles in pruning.block_roles(family, block).items():
            if roles.inp == "heads":
                submodule(block, name).weight[:, pruning.channels(dropped, head_size)] = 0
    return model


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_dropping_heads_equals_zeroing_their_outputs(name):
    """Heads alone removed (the width kept: blocks resized by hand, as no config says it) equal the teacher with
    those heads' columns of W_O zeroed: each head's Q, K, V rows and O columns go together. MPNet keeps one head set
    in every layer, and its shared relative bias keeps those heads' columns."""
    teacher = family_model(name, attn="eager")
    family = family_of(teacher)
    size = family.head_size(teacher.config)
    kept = everything(teacher)
    if family.uniform_heads:
        kept.heads = [torch.tensor([0, 2])] * 3
    else:
        kept.heads = [torch.tensor([0, 2]), torch.arange(4), torch.tensor([1, 3])]
    zeroed = teacher
    student = new_model(copy.deepcopy(teacher.config))
    for i, heads in enumerate(kept.heads):
        if len(heads) < 4:
            zeroed = zero_heads(zeroed, i, torch.tensor([h for h in range(4) if h not in heads.tolist()]), size)
            resize(family, family.layers(student)[i], "heads", len(heads), size)
    for dotted, dim in family.head_parameters().items():  # (buckets, heads) -> the kept heads' columns
        parent_name, _, leaf = dotted.rpartition(".")[0].rpartition(".")
        table = submodule(student, dotted.rpartition(".")[0])
        setattr(submodule(student, parent_name), leaf, torch.nn.Embedding(table.num_embeddings, 2))
    pruning.prune_into(student, teacher, kept)
    batch = family_batch(teacher.config)
    assert torch.allclose(output(student, batch), output(zeroed, batch), atol=TOL)
    assert not torch.allclose(output(teacher, batch), output(zeroed, batch), atol=1e-3)  # the heads mattered


def test_importance_ranks_the_most_active_units_first():
    """A head whose values are scaled up, an FFN neuron whose input row is, and a channel the embeddings make large
    come out on top; `choose` keeps them, in ascending order."""
    teacher = family_model("bert", attn="eager")
    block = teacher.encoder.layer[1]
    with torch.no_grad():
        block.attention.self.value.weight[8:16] *= 20  # head 1
        block.intermediate.dense.weight[37] *= 30
        block.intermediate.dense.bias[37] = 10
        teacher.embeddings.LayerNorm.weight[5] = 40
    batches = [family_batch(teacher.config)]
    importance = pruning.measure_importance(teacher, batches)
    assert int(importance.heads[1].argmax()) == 1
    assert int(importance.ffn[1].argmax()) == 37
    assert int(importance.hidden.argmax()) == 5
    kept = pruning.choose(importance, [0, 2], hidden=8, heads=2, ffn=16)
    assert 5 in kept.hidden.tolist() and kept.hidden.tolist() == sorted(kept.hidden.tolist())
    assert kept.layers == [0, 2] and all(len(h) == 2 for h in kept.heads) and all(len(f) == 16 for f in kept.ffn)


def test_padding_does_not_count_in_the_importances():
    teacher = family_model("bert", attn="eager")
    batch = family_batch(teacher.config)
    padded = dict(batch)
    padded["input_ids"] = batch["input_ids"].clone()
    padded["input_ids"][batch["attention_mask"] == 0] = 999  # other ids on the padded positions only
    a, b = pruning.measure_importance(teacher, [batch]), pruning.measure_importance(teacher, [padded])
    assert torch.allclose(a.hidden, b.hidden, atol=1e-5)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a.ffn + a.heads, b.ffn + b.heads))


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_a_pruned_student_saves_and_loads_as_a_plain_model(name, tmp_path):
    from transformers import AutoModel

    from minilm.models.plan import resolve_init
    from minilm.models.students import student_from_teacher

    teacher = family_model(name, attn="eager")
    section = Student(student_layers=2, student_hidden=16, student_ffn=32)
    assert resolve_init(section, teacher.config) == "prune"
    notes = []
    student = student_from_teacher(teacher, section, calibration=[family_batch(teacher.config)],
                                   attn_implementation="eager", say=notes.append).eval()
    shape = family_of(student).shape(student.config)
    assert (shape.layers, shape.hidden, shape.heads, shape.ffn) == (2, 16, 2, 32)
    assert notes and "16 of 32 channels, 2 of 4 heads" in notes[0]
    student.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    batch = family_batch(teacher.config)
    assert torch.allclose(output(loaded, batch), output(student, batch), atol=TOL)
    if family_of(teacher).uniform_heads:  # MPNet: one head set, and the bias columns that go with it
        assert student.encoder.relative_attention_bias.weight.shape[1] == 2


def test_a_pruned_student_starts_closer_to_its_teacher_than_a_random_one():
    """The point of pruning: before any training, a pruned student's token-to-token similarities (cosines of its
    last hidden states, a width-free view) are closer to its teacher's than a random student's of the same shape."""
    from minilm.models.students import student_from_teacher

    teacher = family_model("bert", attn="eager")
    batch = family_batch(teacher.config)
    shape = dict(student_layers=2, student_hidden=24, student_ffn=48)
    pruned = student_from_teacher(teacher, Student(**shape), calibration=[batch], attn_implementation="eager")
    random = student_from_teacher(teacher, Student(**shape, student_init="random"), attn_implementation="eager")

    def similarities(model):
        h = torch.nn.functional.normalize(output(model.eval(), batch), dim=-1)
        return h @ h.transpose(1, 2)

    def distance(model):
        return float((similarities(model) - similarities(teacher)).pow(2).mean())

    assert distance(pruned) < 0.5 * distance(random)


@pytest.mark.parametrize("section, words", [
    (Student(student_layers=2, student_hidden=64, student_init="prune"), "larger than its teacher"),
    (Student(student_layers=2, student_hidden=16, student_heads=4, student_init="prune"), "whole heads"),
])
def test_a_student_pruning_cannot_make_is_one_line(section, words):
    from minilm.models.students import student_from_teacher

    teacher = family_model("bert", attn="eager")
    with pytest.raises(MiniLMError, match=words):
        student_from_teacher(teacher, section, calibration=[family_batch(teacher.config)])


def test_auto_prunes_only_whole_heads_of_the_teachers_size():
    from minilm.models.plan import resolve_init

    config = family_config("bert")  # 32 wide, 4 heads of 8
    assert resolve_init(Student(student_layers=1, student_hidden=32, student_ffn=64), config) == "teacher"
    assert resolve_init(Student(student_layers=1, student_hidden=24, student_ffn=64), config) == "prune"
    assert resolve_init(Student(student_layers=1, student_hidden=16, student_heads=4), config) == "random"
    assert resolve_init(Student(student_layers=1, student_hidden=16, student_ffn=128), config) == "random"


@pytest.mark.parametrize("name", ["mpnet", "bert"])
def test_a_pruned_student_with_a_task_head_takes_the_teachers_head(name):
    """Task-specific distillation: a teacher with a classifier, a student of the same head class: the head's
    input columns are sliced with the hidden channels, and keeping everything gives the teacher's logits."""
    from transformers import AutoModelForSequenceClassification

    teacher = family_model(name, attn="eager", head=AutoModelForSequenceClassification, num_labels=3)
    student = AutoModelForSequenceClassification.from_config(copy.deepcopy(teacher.config),
                                                             attn_implementation="eager").eval()
    pruning.prune_into(student, teacher, everything(teacher))
    batch = family_batch(teacher.config)
    with torch.no_grad():
        expected = teacher(**inputs_for(teacher, batch)).logits
        assert torch.allclose(student(**inputs_for(student, batch)).logits, expected, atol=TOL)
