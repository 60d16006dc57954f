"""Any encoder a user brings: every command, end to end, on a tiny sentence-transformers model of each family.

distill (a student pruned to half the teacher's width, MiniLMv2, the default examples: packed, half of them
sentence pairs, in the family's own pair format), the student saved as a sentence-transformers model, fine-tune, evaluate, export to ONNX and score the export. (A model of a
family without an adapter is one line: tests/test_cli.py.)"""

from __future__ import annotations

import pytest
from helpers.families import save_family_teacher

import minilm

FAMILIES = ["bert", "electra", "roberta", "mpnet", "deberta-v3", "modernbert", "distilbert"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_command_on_a_tiny_model_of_each_family(name, tmp_path, tokenizer, sst2_like, varied_corpus):
    from sentence_transformers import SentenceTransformer

    teacher = save_family_teacher(name, tmp_path / "teacher", tokenizer)
    tiny = dict(batch_size=4, max_length=32, precision="fp32", max_steps=2)
    # Half the teacher's width in whole heads of its size: pruned from the teacher on the corpus, MiniLMv2.
    student = minilm.distill(teacher=teacher, data=[str(varied_corpus)], student_layers=1, student_hidden=16,
                             objective=["minilmv2"], cache_dir=str(tmp_path), output_dir=str(tmp_path / "distill"),
                             **tiny)
    embeddings = SentenceTransformer(str(student), device="cpu").encode(["a good film", "the cat sat"])
    assert embeddings.shape[0] == 2 and abs(float((embeddings[0] ** 2).sum()) - 1) < 1e-4  # normalised, as its teacher
    task = dict(task="sst2", task_dir=str(sst2_like / "SST-2"), max_length=32)
    best = minilm.finetune(model=str(student), output_dir=str(tmp_path / "ft"), eval_every=2, **task,
                           **{k: v for k, v in tiny.items() if k != "max_length"})
    scores = minilm.evaluate(model=str(best), **task)
    exported = minilm.export(model=str(best), output_dir=str(tmp_path / "onnx"))
    assert minilm.evaluate(model=exported, **task).metrics["accuracy"] == scores.metrics["accuracy"]


def test_roberta_pairs_are_packed_in_its_own_format_without_token_types(tmp_path, tokenizer, varied_corpus):
    from minilm.config.sections import Corpus
    from minilm.data.token_cache import build_token_cache
    from minilm.models.source import resolve_model

    source = resolve_model(save_family_teacher("roberta", tmp_path / "teacher", tokenizer))
    cache = build_token_cache(source.tokenizer, 32, Corpus(data=[str(varied_corpus)], pair_fraction=1.0,
                                                           cache_dir=str(tmp_path / "cache")), progress=False)
    tok = source.tokenizer
    example = cache[0]
    ids = list(example["input_ids"] if isinstance(example, dict) else example)
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    seps = [i for i, t in enumerate(ids) if t == tok.sep_token_id]
    assert len(seps) == 3 and seps[1] == seps[0] + 1  # <s> A </s></s> B </s>
    assert not isinstance(example, dict) or not example["token_type_ids"].any()  # no token type 1 for RoBERTa
