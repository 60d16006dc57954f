"""`EncoderView`: one forward of a model, and what the objectives read of it.

MiniLM reads the Q/K/V of a layer, so a view that needs no hidden states (and no logits) runs only the blocks up to
the highest layer read (`models.attention.truncated_forward`): the layer's attention output and feed-forward, and
the blocks above, never run. TinyBERT, DistilBERT and the hidden-state and embedding objectives read hidden states
of several layers, attention scores, or masked-LM logits, so their views run the whole encoder once with
`output_hidden_states=True`.
"""

from __future__ import annotations

from torch import nn

from minilm.models.architectures import family_of, inputs_for
from minilm.models.attention import layer_index, layers_qkv, record_layer_calls, truncated_forward
from minilm.models.heads import task_logits


class EncoderView(nn.Module):
    """forward(input_ids, attention_mask, token_type_ids=None, masked_positions=None) -> (features, logits).

    features:
      "hidden": [embeddings, layer 1, ..., layer L], each (batch, seq, width); with `projections` (a
          ModuleDict of training-only Linear maps to the teacher's width) "embedding" maps the first and
          "hidden" the others;
      "qkv": {layer: `models.architectures.QKV`} of each layer in `qk_layers` (1-based): Q, K, V (batch, seq, width,
          heads concatenated) and the layer's own attention scale and bias;
      "query", "key": [the Q and K of those layers, in order];
      "mlm_logits": (masked tokens, vocabulary) from `mlm_head`, when masked_positions (batch, seq) bool
          is given;
      "pooling_mask": (batch, seq), the tokens a sentence embedding pools over (`Family.pooling_mask`).
    logits: the task scores when `full` (a model with a task head; `models.heads.task_logits`), else None. When not
    `full`, the base encoder runs without its pooler's output being read; with `hidden=False` as well it stops once
    the highest of `qk_layers` has its inputs ("hidden" is then empty).
    """

    def __init__(self, model: nn.Module, full: bool = False, qk_layers: list[int] | None = None,
                 mlm_head: nn.Module | None = None, projections: nn.ModuleDict | None = None, hidden: bool = True):
        super().__init__()
        self.model, self.full, self.qk_layers = model, full, list(qk_layers or [])
        self.mlm_head, self.hidden = mlm_head, hidden or full or mlm_head is not None or not self.qk_layers
        self.projections = projections if projections is not None else nn.ModuleDict()

    def forward(self, input_ids, attention_mask, token_type_ids=None, masked_positions=None):
        inputs = inputs_for(self.model, dict(input_ids=input_ids, attention_mask=attention_mask,
                                             token_type_ids=token_type_ids))
        if self.hidden:
            runner = self.model if self.full else self.model.base_model
            with record_layer_calls(self.model, self.qk_layers) as record:
                out = runner(**inputs, output_hidden_states=True)
            hidden = list(out.hidden_states)
        else:  # the Q, K, V alone: the blocks above the highest layer read never run
            record, out = truncated_forward(self.model, inputs, self.qk_layers)
            hidden = []
        qkv = layers_qkv(self.model, record)
        features = {"qkv": qkv, "query": [qkv[i].query for i in self.qk_layers],
                    "key": [qkv[i].key for i in self.qk_layers]}
        if self.mlm_head is not None and masked_positions is not None:
            features["mlm_logits"] = self.mlm_head(hidden[-1][masked_positions])
        if "embedding" in self.projections:
            hidden[0] = self.projections["embedding"](hidden[0])
        if "hidden" in self.projections:
            hidden[1:] = [self.projections["hidden"](h) for h in hidden[1:]]
        features["hidden"] = hidden
        # the tokens a sentence embedding of this model pools over (a static model leaves out special tokens)
        features["pooling_mask"] = family_of(self.model).pooling_mask(self.model.config, input_ids, attention_mask)
        return features, (task_logits(out) if self.full else None)


def layer_number(model: nn.Module, layer: int) -> int:
    """The 1-based number of a layer given as 1-based or -1 (the last)."""
    return layer_index(model, layer) + 1


def model_inputs(batch: dict) -> dict:
    """The inputs both models take from a batch (the labels stay out)."""
    return dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                token_type_ids=batch.get("token_type_ids"))


def projection(student_width: int, teacher_width: int) -> nn.Linear | None:
    """A learned map W from the student's width to the teacher's (TinyBERT's W_h, W_e), or None when
    the widths are equal and the hidden states compare directly."""
    return None if student_width == teacher_width else nn.Linear(student_width, teacher_width)


def pooler_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The pooler runs in a base forward but no baseline loss reads it: `build_objective` freezes it, so that DDP
    waits for no gradient of its and weight decay does not shrink it for nothing."""
    pooler = getattr(model.base_model, "pooler", None)
    return list(pooler.parameters()) if pooler is not None else []

