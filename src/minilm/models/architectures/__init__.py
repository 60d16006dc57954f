"""Architecture families: one small adapter per family says where a layer's queries, keys and values are, how its
attention logits are formed, which inputs the model takes, and how a student is made from a teacher.

| family | `model_type` | module |
|---|---|---|
| BERT | bert | `bert.py` (the default layout, `base.Family`) |
| ELECTRA | electra | `bert.py` |
| RoBERTa, XLM-R, CamemBERT | roberta, xlm-roberta, camembert | `bert.py` |
| MPNet | mpnet | `mpnet.py` |
| DeBERTa v2 and v3 | deberta-v2 | `deberta.py` |
| ModernBERT | modernbert | `modernbert.py` |
| DistilBERT | distilbert | `distilbert.py` |
| static (a student of no layers) | minilm-static | `static.py` (`models.static`) |

`family_of(model or config)` is the only door: everything that reads inside a model's attention goes through it,
and a model of another family gets one line naming these. Adding a family is one adapter (a subclass of
`base.Family` overriding what differs) registered in `FAMILIES`, and its rows in the tests
(`tests/models/test_architectures.py`: the model's own attention probabilities, a student from its layers, the
commands end to end); docs/design.md says how.
"""

from __future__ import annotations

from minilm.models.architectures.base import QKV, Family, LayerCall, Shape, unsupported
from minilm.models.architectures.bert import Bert, Electra, Roberta
from minilm.models.architectures.deberta import DebertaV2
from minilm.models.architectures.distilbert import DistilBert
from minilm.models.architectures.modernbert import ModernBert
from minilm.models.architectures.mpnet import MPNet
from minilm.models.architectures.static import Static

FAMILIES: dict[str, Family] = {model_type: family for family in (Bert(), Electra(), Roberta(), MPNet(), DebertaV2(),
                                                                  ModernBert(), DistilBert(), Static())
                               for model_type in family.model_types}


def family_of(model_or_config) -> Family:
    """The adapter of a model (bare or with a head) or of its config."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None) or type(config).__name__
    if model_type not in FAMILIES:
        raise unsupported(model_type, sorted({f.name for f in FAMILIES.values()}, key=str.lower))
    return FAMILIES[model_type]


def inputs_for(model, inputs: dict) -> dict:
    """The inputs of a batch that `model` takes: token types only where it has token-type embeddings of more than
    one type (RoBERTa, MPNet, DeBERTa-v3, ModernBERT and DistilBERT get none); None values and labels left out."""
    keep = {"input_ids", "attention_mask"} | ({"token_type_ids"} if family_of(model).takes_token_types(
        getattr(model, "config", model)) else set())
    return {k: v for k, v in inputs.items() if k in keep and v is not None}


__all__ = ["FAMILIES", "family_of", "inputs_for", "Family", "QKV", "LayerCall", "Shape"]
