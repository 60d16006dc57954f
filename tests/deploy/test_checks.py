"""The checks of a graph against PyTorch, with a stand-in graph (the PyTorch model itself, then one that moves an
output): the difference, the embedding cosine, labels and answer spans moved, and the line int8 owes."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from helpers.models import tiny_bert

from minilm.deploy.checks import FP32_TOLERANCE, SAMPLES, Reference, float32_holds, moved_line, summary
from minilm.models.sentence import Pipeline

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


class StandIn:
    """Called like an onnxruntime session; runs the PyTorch model, then `change` on its named outputs."""

    def __init__(self, model, change=None):
        self.model, self.change = model, change or (lambda outputs, feed: outputs)

    def get_inputs(self):
        return [SimpleNamespace(name=name) for name in INPUTS]

    def run(self, names, feed):
        with torch.no_grad():
            result = self.model(**{k: torch.from_numpy(v) for k, v in feed.items()})
        outputs = self.change({name: getattr(result, name).clone() for name in names}, feed)
        return [outputs[name].numpy() for name in names]


def test_the_model_itself_passes_and_a_shifted_output_fails_the_float32_check(tokenizer):
    model = tiny_bert(init_range=0.2).eval()
    reference = Reference(model, None, tokenizer, INPUTS, Pipeline(normalize=True))
    same = reference.check(StandIn(model))
    assert same["max_abs_diff"] == 0 and same["cosine_min"] > 0.99999 and same["samples"] == len(SAMPLES) == 16
    assert float32_holds(same) and "embedding cosine >= 1.0000" in summary(same)

    def shift(outputs, feed):
        outputs["last_hidden_state"] += 10 * FP32_TOLERANCE * max(1.0, same["max_abs_output"])
        return outputs
    shifted = reference.check(StandIn(model, shift))
    assert not float32_holds(shifted) and shifted["cosine_min"] < 1.0


def test_moved_labels_and_answer_spans_are_counted_per_sentence(tokenizer):
    from transformers import BertForQuestionAnswering

    classifier = tiny_bert(num_labels=3, init_range=0.2).eval()
    reference = Reference(classifier, "classification", tokenizer, INPUTS, None)
    assert reference.check(StandIn(classifier))["moved"] == 0

    def flip_first_alone(outputs, feed):  # the first sentence, run alone: its label moves to another class
        if feed["input_ids"].tolist() == [tokenizer(SAMPLES[0])["input_ids"]]:
            outputs["logits"][0, (int(outputs["logits"][0].argmax()) + 1) % 3] += 100
        return outputs
    checks = reference.check(StandIn(classifier, flip_first_alone))
    assert checks["moved"] == 1 and "15 of 16 predictions kept" in summary(checks)
    assert moved_line(checks, "classification") == "int8 moved the predicted label on 1 of 16 sample sentences"
    assert moved_line({"moved": 0, "samples": 16}, "classification") is None

    qa = BertForQuestionAnswering(tiny_bert(init_range=0.2).config).eval()
    reference = Reference(qa, "question-answering", tokenizer, INPUTS, None)

    def move_end_to_padding(outputs, feed):  # a padded position never counts; a real one does
        if feed["input_ids"].shape[0] > 1:
            outputs["end_logits"][feed["attention_mask"] == 0] += 100
            outputs["start_logits"][2, 1] += 100
        return outputs
    checks = reference.check(StandIn(qa, move_end_to_padding))
    assert checks["moved"] == 1, checks
    assert moved_line(checks, "question-answering") == \
        "int8 moved the answer's start or end on 1 of 16 sample sentences"
