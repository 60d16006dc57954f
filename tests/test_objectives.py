"""Distillation objectives: their pure losses by hand and against references, and their objects on tiny models."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from conftest import tiny_bert
from minilm.config import DistillConfig
from minilm.errors import MiniLMError
from minilm.losses import token_mse
from minilm.objectives import build_objective, distill_losses
from minilm.objectives.distilbert import cosine_loss, mask_tokens
from minilm.objectives.tinybert import attention_score_mse


def test_token_mse_by_hand_skips_padding():
    student = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    teacher = torch.tensor([[[0.0, 0.0], [3.0, 2.0], [-50.0, 7.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # real tokens: (1 + 4) + (0 + 4) = 9 over 2 tokens x 2 features
    assert token_mse(student, teacher, mask).item() == pytest.approx(9 / 4)


def test_attention_score_mse_by_hand_one_head():
    # seq 2 + a padded token, width 1, 1 head: scores are q_i k_j (d = 1).
    tq, tk = torch.tensor([[[1.0], [2.0], [9.0]]]), torch.tensor([[[1.0], [1.0], [9.0]]])
    sq, sk = torch.tensor([[[0.0], [1.0], [-9.0]]]), torch.tensor([[[1.0], [3.0], [5.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # teacher scores [[1, 1], [2, 2]]; student [[0, 0], [1, 3]]: squared differences 1, 1, 1, 1 over 4 pairs
    assert attention_score_mse(tq, tk, sq, sk, mask, heads=1).item() == pytest.approx(1.0)


def test_attention_score_mse_matches_a_float64_loop_and_ignores_padding():
    g = torch.Generator().manual_seed(0)
    tq, tk = torch.randn(2, 6, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    sq, sk = torch.randn(2, 6, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    heads, total, count = 2, 0.0, 0
    for b, n in enumerate((6, 4)):
        for h in range(heads):
            cols = slice(h * 4, (h + 1) * 4)
            t = tq[b, :n, cols].double() @ tk[b, :n, cols].double().T / 2.0
            s = sq[b, :n, cols].double() @ sk[b, :n, cols].double().T / 2.0
            total += float(((s - t) ** 2).sum())
            count += n * n
    got = attention_score_mse(tq, tk, sq, sk, mask, heads)
    assert got.item() == pytest.approx(total / count, rel=1e-6)
    pad = lambda x: torch.cat([x, 50 * torch.randn(2, 3, 8, generator=g)], 1)  # noqa: E731
    padded = attention_score_mse(pad(tq), pad(tk), pad(sq), pad(sk), torch.cat([mask, torch.zeros(2, 3)], 1), heads)
    assert padded.item() == pytest.approx(got.item(), rel=1e-6)


def test_cosine_loss_by_hand():
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0], [1.0, -1.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert cosine_loss(student, teacher, mask).item() == pytest.approx(((1 - 0) + (1 - 1)) / 2, abs=1e-6)


def test_mask_tokens_follows_bert_80_10_10_and_spares_specials_and_padding():
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (64, 256))
    ids[:, 0], ids[:, 200] = 101, 102  # [CLS] and [SEP]
    mask = torch.ones_like(ids)
    mask[:, 201:] = 0
    masked, chosen = mask_tokens(ids, mask, special_ids=[0, 101, 102, 103], mask_id=103, vocab_size=30522)
    real = mask.bool() & (ids != 101) & (ids != 102)
    assert not chosen[~real].any() and torch.equal(masked[~chosen], ids[~chosen])
    rate = chosen.sum().item() / real.sum().item()
    assert abs(rate - 0.15) < 0.01
    n = chosen.sum().item()
    as_mask = (masked[chosen] == 103).sum().item() / n
    unchanged = (masked[chosen] == ids[chosen]).sum().item() / n
    assert abs(as_mask - 0.8) < 0.03 and abs(unchanged - 0.1) < 0.02  # the rest (~10%) random tokens


def cfg(**kw):
    from minilm.settings import build

    return build(DistillConfig, kw)


def objective_for(config, teacher, student, tokenizer=None):
    return build_objective(config.objective, teacher, student, tokenizer, distilbert=config.distilbert)


def batch_of(seq=7):
    ids = torch.randint(1000, 2000, (3, seq))
    mask = torch.tensor([[1] * seq, [1] * 4 + [0] * (seq - 4), [1] * 2 + [0] * (seq - 2)])
    return {"input_ids": ids, "attention_mask": mask}


def test_tinybert_default_map_projections_and_zero_for_a_copy():
    teacher = tiny_bert(layers=4, seed=1).eval()
    objective = objective_for(cfg(objective="tinybert"), teacher, tiny_bert(layers=2, hidden=16, ffn=32))
    assert objective.layer_map == [2, 4]  # uniform: student layer m <- teacher layer m N / M
    assert set(objective.student_view.projections) == {"embedding", "hidden"}  # widths 16 -> 32
    same = objective_for(cfg(objective="tinybert", tinybert_layer_map=[1, 2, 3, 4]), teacher,
                           copy.deepcopy(teacher).eval())
    assert len(same.student_view.projections) == 0
    with torch.no_grad():
        losses = distill_losses(same, same.student_view, batch_of(), "fp32", "cpu")
    assert set(losses) == {"attention", "hidden", "embedding"}
    assert all(v.item() == pytest.approx(0.0, abs=1e-10) for v in losses.values())


def test_tinybert_losses_equal_the_pure_functions_on_mapped_layers():
    teacher, student = tiny_bert(layers=4, seed=1).eval(), tiny_bert(layers=2, seed=2).eval()
    objective = objective_for(cfg(objective="tinybert", tinybert_layer_map=[1, 4]), teacher, student)
    batch = batch_of()
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch, "fp32", "cpu")
        t = teacher(**batch, output_hidden_states=True).hidden_states
        s = student(**batch, output_hidden_states=True).hidden_states
    mask = batch["attention_mask"]
    want = token_mse(s[1], t[1], mask) + token_mse(s[2], t[4], mask)
    assert losses["hidden"].item() == pytest.approx(want.item(), rel=1e-5)
    assert losses["embedding"].item() == pytest.approx(token_mse(s[0], t[0], mask).item(), rel=1e-5)
    assert losses["attention"].item() > 0


@pytest.mark.parametrize("layer_map, message", [([1], "names 1 teacher layers but the student has 2"),
                                                ([1, 9], "the teacher has no layer 9")])
def test_tinybert_bad_layer_maps(layer_map, message):
    with pytest.raises(MiniLMError, match=message):
        objective_for(cfg(objective="tinybert", tinybert_layer_map=layer_map), tiny_bert(layers=4), tiny_bert())


def test_tinybert_needs_equal_head_counts():
    with pytest.raises(MiniLMError, match="needs equal head counts"):
        objective_for(cfg(objective="tinybert"), tiny_bert(heads=4), tiny_bert(heads=2))


def mlm_teacher(seed=3):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    return BertForMaskedLM(config).eval()


TOKENIZER = SimpleNamespace(all_special_ids=[0, 100, 101, 102, 103], mask_token_id=103)


def test_distilbert_with_an_mlm_teacher_has_three_terms_and_a_copy_scores_zero():
    teacher = mlm_teacher()
    student = copy.deepcopy(teacher.bert)  # same weights; the student's head is copied from the teacher's
    objective = objective_for(cfg(objective="distilbert"), teacher, student, TOKENIZER)
    assert objective.mlm and objective.notes == []
    head = objective.student_view.mlm_head
    assert head.predictions.decoder.weight is student.embeddings.word_embeddings.weight  # tied, trained with it
    torch.manual_seed(0)
    batch = batch_of(seq=40)
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch, "fp32", "cpu")
    assert set(losses) == {"ce", "mlm", "cosine"}
    assert losses["ce"].item() == pytest.approx(0.0, abs=1e-6) and losses["cosine"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["mlm"].item() > 2 * 5  # 2 x cross-entropy of a random model over 30k tokens (~ln 30522)


def test_distilbert_without_an_mlm_head_runs_the_cosine_term_and_says_so():
    objective = objective_for(cfg(objective="distilbert"), tiny_bert(seed=1).eval(), tiny_bert(seed=2), TOKENIZER)
    assert not objective.mlm and "only the cosine term runs" in objective.notes[0]
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch_of(), "fp32", "cpu")
    assert set(losses) == {"cosine"}
    with pytest.raises(MiniLMError, match="needs a teacher with a masked-LM head"):
        objective_for(cfg(objective="distilbert", distilbert_mlm="on"), tiny_bert(), tiny_bert(), TOKENIZER)


def test_hidden_mse_is_the_last_hidden_state_mse():
    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(layers=1, seed=2).eval()
    objective = objective_for(cfg(objective="hidden-mse"), teacher, student)
    batch = batch_of()
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch, "fp32", "cpu")
        want = token_mse(student(**batch).last_hidden_state, teacher(**batch).last_hidden_state,
                         batch["attention_mask"])
    assert losses["hidden"].item() == pytest.approx(want.item(), rel=1e-5)


def test_minilm_without_value_relation_has_the_attention_term_only():
    objective = objective_for(cfg(value_relation=False), tiny_bert(seed=1).eval(), tiny_bert(seed=2))
    with torch.no_grad():
        losses = distill_losses(objective, objective.student_view, batch_of(), "fp32", "cpu")
    assert set(losses) == {"attention"}
    assert math.isfinite(losses["attention"].item())


def test_objective_names():
    teacher, student = tiny_bert(), tiny_bert()
    assert objective_for(cfg(objective="minilmv2", relation_heads=4), teacher, student).version == "v2"
    assert objective_for(cfg(objective="minilm"), teacher, student).version == "v1"
    with pytest.raises(MiniLMError, match="objective must be one of minilm, minilmv2"):
        cfg(objective="pkd")
    # The earlier spelling builds the same objective (tests/test_config.py covers how it is read).
    assert objective_for(cfg(version="v2", relation_heads=4), teacher, student).version == "v2"


def test_embedding_objective_by_hand_with_and_without_projection_and_padding():
    """L_emb = mean over batch and dimensions of (e_S W - e_T)^2, e = the mean of the real tokens' states (a teacher
    built in memory has no sentence-transformers pipeline: mean pooling, no normalisation)."""
    from minilm.objectives.embedding import Embedding
    from minilm.config import EmbeddingLoss

    teacher, batch = tiny_bert(seed=1).eval(), batch_of()
    mask = batch["attention_mask"].float()[..., None]
    for student, projected in ((tiny_bert(seed=2), False), (tiny_bert(hidden=16, heads=4, ffn=32, seed=2), True)):
        objective = objective_for(cfg(objective="embedding"), teacher, student.eval())  # no dropout
        (part,) = objective.parts
        assert (part.projection is not None) == projected and isinstance(part, Embedding)
        with torch.no_grad():
            got = distill_losses(objective, objective.student_view, batch, "fp32", "cpu")["embedding"].item()
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}

            def mean_pool(model):
                states = model(**inputs).last_hidden_state.double()
                return (states * mask.double()).sum(1) / mask.double().sum(1)
            e_t = mean_pool(teacher)
            e_s = mean_pool(student.eval())
            if projected:
                e_s = e_s @ part.projection.weight.double().T + part.projection.bias.double()
        assert got == pytest.approx(float(((e_s - e_t) ** 2).mean()), rel=1e-5)
        cosine = Embedding(EmbeddingLoss(embedding_loss="cosine"), teacher, student)
        by_hand = 1 - (e_s * e_t).sum(-1) / (e_s.norm(dim=-1) * e_t.norm(dim=-1))
        assert cosine.loss(e_s.float(), e_t.float()).item() == pytest.approx(float(by_hand.mean()), rel=1e-5)
    # Padding more changes nothing; a copy of the teacher scores zero.
    objective = objective_for(cfg(objective="embedding"), teacher, tiny_bert(seed=1))
    wider = {"input_ids": torch.cat([batch["input_ids"], torch.zeros(3, 4, dtype=torch.long)], 1),
             "attention_mask": torch.cat([batch["attention_mask"], torch.zeros(3, 4, dtype=torch.long)], 1)}
    objective.student_view.eval()
    with torch.no_grad():
        same = distill_losses(objective, objective.student_view, batch, "fp32", "cpu")["embedding"].item()
        padded = distill_losses(objective, objective.student_view, wider, "fp32", "cpu")["embedding"].item()
    assert same == pytest.approx(0.0, abs=1e-12) and padded == pytest.approx(0.0, abs=1e-12)


def test_combined_objectives_sum_their_weighted_terms_from_one_forward():
    teacher, student = tiny_bert(seed=1).eval(), tiny_bert(seed=2).eval()
    batch = batch_of()
    # Each objective freezes what it leaves untrained: separate students (the same weights) for the separate ones.
    alone = objective_for(cfg(objective="minilm"), teacher, tiny_bert(seed=2).eval())
    embedding = objective_for(cfg(objective="embedding"), teacher, tiny_bert(seed=2).eval())
    both = objective_for(cfg(objective=["minilm", "embedding"], objective_weights=[0.5, 3.0]), teacher, student)
    assert not alone.student_view.model.encoder.layer[-1].output.dense.weight.requires_grad  # minilm alone froze it
    calls = []
    handle = student.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        separate = {**distill_losses(alone, alone.student_view, batch, "fp32", "cpu"),
                    **distill_losses(embedding, embedding.student_view, batch, "fp32", "cpu")}
        calls.clear()
        combined = distill_losses(both, both.student_view, batch, "fp32", "cpu")
    handle.remove()
    assert calls == [1]  # the student ran once for both objectives
    assert set(combined) == {"attention", "value", "embedding"}
    for name, weight in (("attention", 0.5), ("value", 0.5), ("embedding", 3.0)):
        assert combined[name].item() == pytest.approx(weight * separate[name].item(), rel=1e-5)
    # A parameter stays trainable when any objective trains it: minilm alone froze the last layer's FFN.
    last_ffn = student.encoder.layer[-1].output.dense.weight
    assert last_ffn.requires_grad and not student.pooler.dense.weight.requires_grad
    for bad, message in (({"objective": ["tinybert", "minilm"]}, "tinybert reads views of its own and runs alone"),
                         ({"objective": ["minilm", "minilm"]}, "each at most once"),
                         ({"objective": ["minilm", "embedding"], "objective_weights": [1.0]},
                          "gives 1 weight")):
        with pytest.raises(MiniLMError, match=message):
            cfg(**bad)
