"""Every exported graph checked against the PyTorch model before the export is called done.

The PyTorch model runs the sample sentences once (`Reference`: a padded batch of all of them, then each alone);
each graph runs the same inputs and is compared where a user would look: the largest |graph - PyTorch| over real
tokens, and the task's outputs: the predicted label of a classifier, the answer start and end (argmax over the
real tokens) of a question-answering model, the sentence embedding's cosine for an encoder (pooled as the
model's sentence-transformers pipeline pools, mean pooling for a plain encoder) or a pooled graph. A float32 graph
must match to `FP32_TOLERANCE`; an int8 graph is recorded as it is, and what it moved is said in one line
(`moved_line`).
"""

from __future__ import annotations

import numpy as np
import torch

from minilm.deploy.onnx_export import OUTPUTS, PER_TOKEN, POOLED_OUTPUTS
from minilm.models.architectures import family_of
from minilm.models.sentence import Pipeline, embed

SAMPLES = ["a gripping, beautifully shot film.", "dull.", "The committee met on Tuesday and, after a long debate "
           "about the budget, voted to postpone the decision until the spring session.", "what a waste of time",
           "It is neither as funny nor as clever as it thinks it is, but the cast is game.", "yes",
           "Paris is the capital of France.", "Who wrote the novel, and when was it first published?",
           "The service was slow and the soup arrived cold.", "An absolute joy from the first scene to the last.",
           "Shares fell by three percent after the company cut its forecast for the year.", "not bad at all",
           "How many people live in the city today?", "The river floods every spring, when the snow melts.",
           "I would not recommend it to anyone.", "A man is playing a guitar on the street."]
# Largest |float32 graph - PyTorch| allowed, relative to the largest output (at least 1). Measured: about 1e-6
# (plain) and 5e-6 (fused) on the packaged teacher; bigger is a wrong graph, never rounding.
FP32_TOLERANCE = 1e-3


class Reference:
    """The PyTorch model's outputs on `SAMPLES` (a padded batch, then one sentence at a time), computed once, that
    every graph of an export is checked against. `inputs`: the inputs the model takes (`inputs_for`);
    `pipeline`: how an encoder's tokens become a sentence embedding (None for a model with a task head)."""

    def __init__(self, model, head: str | None, tokenizer, inputs: list[str], pipeline: Pipeline | None):
        self.head, self.inputs, self.config = head, inputs, model.config
        self.labels = head == "question-answering" or (head == "classification" and model.config.num_labels > 1)
        self.feeds = [tokenizer(SAMPLES, padding=True, return_tensors="pt")]
        self.feeds += [tokenizer([text], return_tensors="pt") for text in SAMPLES]
        self.rows = [list(range(len(SAMPLES)))] + [[i] for i in range(len(SAMPLES))]  # the sentences of each feed
        self.pipeline_or_mean = pipeline or Pipeline()  # a plain encoder's embedding: mean pooling
        self.token, self.pooled = [], []
        with torch.no_grad():
            for feed in self.feeds:
                result = model(**{k: feed[k] for k in inputs})
                self.token.append({name: getattr(result, name).float() for name in OUTPUTS[head]})
                if head is None:
                    self.pooled.append(embed(result.last_hidden_state, self.mask(feed), self.pipeline_or_mean))

    def mask(self, feed) -> torch.Tensor:
        """The tokens a sentence embedding pools over (`Family.pooling_mask`: a static model leaves out special
        tokens)."""
        return family_of(self.config).pooling_mask(self.config, feed["input_ids"], feed["attention_mask"])

    def check(self, graph, pooled: bool = False) -> dict:
        """`graph` (an onnxruntime session of a token-level graph, or with `pooled` of a pooled one) on the samples:
        max_abs_diff, max_abs_output, samples, and cosine_min (encoders) or moved (sentences whose label, or answer
        start or end, differs from PyTorch's in any of the runs)."""
        names = [i.name for i in graph.get_inputs()]
        outputs = list(POOLED_OUTPUTS if pooled else OUTPUTS[self.head])
        largest, scale, cosine, moved = 0.0, 0.0, 1.0, set()
        for i, feed in enumerate(self.feeds):
            got = dict(zip(outputs, graph.run(outputs, {k: feed[k].numpy().astype(np.int64) for k in names})))
            mask = feed["attention_mask"].bool()
            expected = {POOLED_OUTPUTS[0]: self.pooled[i]} if pooled else self.token[i]
            for name, want in expected.items():
                have = torch.from_numpy(got[name])
                real = mask if name in PER_TOKEN else torch.ones(len(want), dtype=torch.bool)
                largest = max(largest, float((have - want).abs()[real].max()))  # padded positions are nobody's
                scale = max(scale, float(want.abs()[real].max()))
            if self.head is None:
                have = torch.from_numpy(got[POOLED_OUTPUTS[0]]) if pooled else \
                    embed(torch.from_numpy(got["last_hidden_state"]), self.mask(feed), self.pipeline_or_mean)
                want = self.pooled[i]
                cosine = min(cosine, float(torch.nn.functional.cosine_similarity(have, want, dim=-1).min()))
            elif self.labels:
                for name, want in expected.items():
                    have = torch.from_numpy(got[name])
                    if name != "logits":  # answer start and end: over the real tokens only
                        want, have = want.masked_fill(~mask, -torch.inf), have.masked_fill(~mask, -torch.inf)
                    differ = (want.argmax(-1) != have.argmax(-1)).tolist()
                    moved |= {self.rows[i][row] for row, d in enumerate(differ) if d}
        checks = {"max_abs_diff": largest, "max_abs_output": scale, "samples": len(SAMPLES)}
        if self.head is None:
            checks["cosine_min"] = cosine
        elif self.labels:
            checks["moved"] = len(moved)
        return checks


def float32_tolerance(checks: dict) -> float:
    """The largest difference a float32 graph may show: `FP32_TOLERANCE` of its largest output (at least 1)."""
    return FP32_TOLERANCE * max(1.0, checks["max_abs_output"])


def float32_holds(checks: dict) -> bool:
    """Whether a float32 graph's checks show it computes what PyTorch does."""
    return checks["max_abs_diff"] <= float32_tolerance(checks)


def moved_line(checks: dict, head: str | None) -> str | None:
    """One line when an int8 graph moved a task output on a sample sentence, else None."""
    if not checks.get("moved"):
        return None
    what = "the predicted label" if head == "classification" else "the answer's start or end"
    return f"int8 moved {what} on {checks['moved']} of {checks['samples']} sample sentences"


def summary(checks: dict) -> str:
    """The checks in words: the largest difference, and the cosine or the task outputs kept."""
    words = f"largest difference from PyTorch {checks['max_abs_diff']:.2e}"
    if "cosine_min" in checks:
        words += f", embedding cosine >= {checks['cosine_min']:.4f}"
    if "moved" in checks:
        words += f", {checks['samples'] - checks['moved']} of {checks['samples']} predictions kept"
    return words
