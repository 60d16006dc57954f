"""Retrieval as sentence embedders are used for it: each question against every passage of its split, ranked by the
cosine of their embeddings, scored as MTEB and BEIR score retrieval (trec_eval's measures, binary relevance):

    nDCG@k   = DCG@k / IDCG@k,   DCG@k = sum_{i<=k} rel_i / log2(i + 1),   IDCG@k the DCG of the ideal ranking
    MRR@k    = 1 / (rank of the first relevant passage) when it is within the top k, else 0
    Recall@k = (relevant passages within the top k) / (relevant passages)

each averaged over the queries that have a relevant passage (a query with none is left out of the averages, as
trec_eval leaves out queries without judgements, and counted). Passages of equal score are ranked in corpus order.

`squad_retrieval` turns a SQuAD split into queries and a corpus: every answerable question is a query, every
distinct paragraph of the split a passage, and a question's relevant passage is the paragraph it was asked of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minilm.errors import require

CUTOFFS = (1, 10)


def rank(scores: np.ndarray, depth: int) -> np.ndarray:
    """The top `depth` passage indices of each query (queries, passages), best first, ties in corpus order."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :depth]


def retrieval_metrics(scores: np.ndarray, relevant: list[set[int]], cutoffs: tuple[int, ...] = CUTOFFS,
                      ndcg_at: int = 10, mrr_at: int = 10) -> dict[str, float]:
    """nDCG@`ndcg_at`, MRR@`mrr_at` and Recall@k for each k of `cutoffs`, in percent, from scores (queries,
    passages) and each query's relevant passage indices (module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    require(scores.ndim == 2 and len(relevant) == scores.shape[0],
            f"retrieval scores are {scores.shape} for {len(relevant)} queries")
    judged = [q for q, rel in enumerate(relevant) if rel]
    require(judged, "no query has a relevant passage: nothing to score")
    depth = min(scores.shape[1], max(ndcg_at, mrr_at, *cutoffs))
    top = rank(scores[judged], depth)
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    ndcg, mrr, recall = [], [], {k: [] for k in cutoffs}
    for row, q in zip(top, judged):
        hits = np.array([int(p) in relevant[q] for p in row], dtype=np.float64)
        ideal = discounts[:min(len(relevant[q]), ndcg_at)].sum()
        ndcg.append(float((hits[:ndcg_at] * discounts[:ndcg_at]).sum() / ideal))
        first = np.flatnonzero(hits[:mrr_at])
        mrr.append(1.0 / (first[0] + 1) if first.size else 0.0)
        for k in cutoffs:
            recall[k].append(float(hits[:k].sum() / len(relevant[q])))
    metrics = {f"ndcg@{ndcg_at}": 100 * float(np.mean(ndcg)), f"mrr@{mrr_at}": 100 * float(np.mean(mrr))}
    metrics.update({f"recall@{k}": 100 * float(np.mean(v)) for k, v in recall.items()})
    metrics["queries"], metrics["unjudged_queries"] = len(judged), len(relevant) - len(judged)
    return metrics


@dataclass
class RetrievalSet:
    """Queries, passages, and each query's relevant passage indices."""

    queries: list[str]
    passages: list[str]
    relevant: list[set[int]]
    source: str


def squad_retrieval(data) -> RetrievalSet:
    """A SQuAD split (`tasks.squad.QAData`) as retrieval: answerable questions against the split's distinct
    paragraphs."""
    passages: dict[str, int] = {}
    queries, relevant = [], []
    for example in data.examples:
        index = passages.setdefault(example.context, len(passages))
        if not example.impossible and example.answers:
            queries.append(example.question)
            relevant.append({index})
    require(queries, f"{data.source} has no answerable question to retrieve a passage for")
    return RetrievalSet(queries, list(passages), relevant, data.source)


def score_retrieval(encoder, retrieval: RetrievalSet, batch_size: int = 32) -> dict[str, float]:
    """The metrics of an encoder (`models.sentence.SentenceEncoder`) on a retrieval set: cosine of the normalised
    embeddings of each query and passage."""
    def normalised(texts):
        vectors = encoder.encode(texts, batch_size)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)

    scores = normalised(retrieval.queries) @ normalised(retrieval.passages).T
    return {**retrieval_metrics(scores, retrieval.relevant), "passages": len(retrieval.passages)}
