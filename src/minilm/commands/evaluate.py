"""`minilm evaluate`: score a fine-tuned checkpoint on one split with the task's official metric, or with
`--zero-shot` any encoder's sentence embeddings: on a pair task with scores (STS-B: cosine, Spearman x 100), or on
SQuAD as question-to-passage retrieval (nDCG@10, MRR@10, recall@1 and @10, as MTEB scores retrieval).

Prints the scores; with `--output DIR` also writes them there: for sentence tasks `metrics.json` and
`predictions.tsv`; for SQuAD the official evaluation's files, `predictions.json` ({question id: answer, ""
for none}) and `null_odds.json` ({question id: null score minus best span score}), and `metrics.json`
with the official script's keys (exact, f1, total, HasAns_*, NoAns_*, best_exact, best_f1 and their
thresholds), in percent.
"""

from __future__ import annotations

import json
from pathlib import Path

from minilm.config.commands import EvaluateConfig
from minilm.data.files import check_writable, write_atomic
from minilm.deploy.layout import export_directory, is_exported
from minilm.deploy.runtime import load_inference_model, load_sentence_graph
from minilm.errors import MiniLMError, require
from minilm.models.loading import check_max_length
from minilm.models.sentence import SentenceEncoder
from minilm.models.source import ModelSource, resolve_model
from minilm.tasks import encode, load_task, max_length_for, task_kind_of
from minilm.tasks.glue import is_glue_task
from minilm.tasks.kinds import REGRESSION, SPAN, kind_of_model
from minilm.tasks.metrics import main_metric, task_metrics
from minilm.tasks.retrieval import score_retrieval, squad_retrieval
from minilm.tasks.scoring import predict, squad_results, zero_shot_sts
from minilm.train.device_policy import pick_device


def write_outputs(out: Path, files: dict[str, str]) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            write_atomic(out / name, text)
    except OSError as exc:
        raise MiniLMError(f"cannot write to --output {out}: {exc.strerror or exc}") from None
    print(f"wrote {', '.join(str(out / name) for name in files)}")


def evaluate_squad(cfg: EvaluateConfig, source: ModelSource, max_length: int, device) -> dict:
    """SQuAD: answers from every window of each question, the official metrics, the official files."""
    tokenizer = source.tokenizer
    model = load_inference_model(cfg.model, SPAN.head, source=source).to(device)
    data = load_task(cfg.task, cfg.split)
    features = encode(data, tokenizer, max_length, cfg.qa.doc_stride)
    scores, predictions, null_odds, rate = squad_results(model, tokenizer, data, features, cfg.batch_size, device,
                                                         cfg.qa)
    print(f"{cfg.model} on {data.source} ({len(data.examples)} questions, {rate:,.1f} questions/s): "
          + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
    if cfg.output:
        write_outputs(Path(cfg.output), {"predictions.json": json.dumps(predictions, indent=1),
                                         "null_odds.json": json.dumps(null_odds, indent=1),
                                         "metrics.json": json.dumps(scores, indent=1)})
    return {"model": cfg.model, "task": cfg.task.task, "split": cfg.split, "source": data.source,
            "questions": len(data.examples), **scores, "main": scores["f1"], "questions_per_s": rate,
            "batch_size": cfg.batch_size, "device": str(device)}  # the keys every mode returns, `main` among them


def sentence_encoder(cfg: EvaluateConfig, max_length: int, device) -> SentenceEncoder:
    """The model's sentence embeddings as its users get them: its own pipeline when it is a sentence-transformers
    model, else mean pooling; an exported model runs its pooled graph where it has one, else its token-level graph
    pooled with the directory's pipeline."""
    if is_exported(cfg.model):
        graph = load_sentence_graph(cfg.model)
        print(f"{cfg.model}: {graph.graph_name} ({graph.describe()})")
        return SentenceEncoder(str(export_directory(cfg.model)), device, max_length, model=graph)
    return SentenceEncoder(cfg.model, device, max_length)


def evaluate_zero_shot(cfg: EvaluateConfig, max_length: int, device) -> dict:
    """A model's sentence embeddings without fine-tuning: on STS (a pair task with real-valued scores) the cosine
    of each pair against the gold scores, Spearman and Pearson x 100; on SQuAD, question-to-passage retrieval
    (`tasks.retrieval`: nDCG@10, MRR@10, recall@1 and @10); and sentences/s at --batch-size."""
    data = load_task(cfg.task, cfg.split)
    if data.kind is SPAN:
        return evaluate_retrieval(cfg, data, max_length, device)
    require(data.kind is REGRESSION and len(data.texts[0]) == 2,
            f"--zero-shot scores sentence pairs against real-valued scores, or SQuAD questions against their "
            f"passages; {data.source} is a {data.kind.name} task with {len(data.texts[0])} text column(s) (use "
            "--task stsb or squad2, or a custom task with two --text-columns and --regression)")
    encoder = sentence_encoder(cfg, max_length, device)
    scores = zero_shot_sts(encoder, data.texts, data.labels, cfg.batch_size)
    sentences = list(dict.fromkeys(t for pair in data.texts for t in pair))[:1024]
    result = {"model": cfg.model, "task": cfg.task.task, "split": cfg.split, "source": data.source, "zero_shot": True,
              "pairs": len(data.labels), **scores, "main": scores["spearman"],
              "sentences_per_s": encoder.rate(sentences, cfg.batch_size), "batch_size": cfg.batch_size,
              "device": str(device)}
    print(f"{cfg.model} on {data.source} ({len(data.labels)} pairs, zero-shot): spearman {scores['spearman']:.2f}, "
          f"pearson {scores['pearson']:.2f}; {result['sentences_per_s']:,.0f} sentences/s at batch {cfg.batch_size}")
    if cfg.output:
        write_outputs(Path(cfg.output), {"metrics.json": json.dumps(result, indent=1)})
    return result


def evaluate_retrieval(cfg: EvaluateConfig, data, max_length: int, device) -> dict:
    """SQuAD as retrieval: each answerable question against every paragraph of the split; nDCG@10 is `main`."""
    retrieval = squad_retrieval(data)
    encoder = sentence_encoder(cfg, max_length, device)
    scores = score_retrieval(encoder, retrieval, cfg.batch_size)
    result = {"model": cfg.model, "task": cfg.task.task, "split": cfg.split, "source": data.source, "zero_shot": True,
              **scores, "main": scores["ndcg@10"], "batch_size": cfg.batch_size, "device": str(device)}
    print(f"{cfg.model} on {data.source} ({scores['queries']} questions against {scores['passages']} passages, "
          "zero-shot retrieval): " + ", ".join(f"{k} {scores[k]:.2f}" for k in ("ndcg@10", "mrr@10", "recall@1",
                                                                               "recall@10")))
    if cfg.output:
        write_outputs(Path(cfg.output), {"metrics.json": json.dumps(result, indent=1)})
    return result


def is_sentence_only(name: str) -> bool:
    """A sentence-transformers model directory without a Hugging Face config (a static model of sentence-
    transformers' or Model2Vec's own making): only its sentence embeddings can be scored."""
    path = Path(name)
    return path.is_dir() and (path / "modules.json").is_file() and not (path / "config.json").is_file()


def evaluate(cfg: EvaluateConfig) -> dict:
    """Score a fine-tuned checkpoint; print the scores, and write them with the predictions to `output`."""
    if cfg.output:
        check_writable(cfg.output, "--output")
    exported = is_exported(cfg.model)  # runs with onnxruntime, on the CPU
    require(not exported or cfg.device in ("auto", "cpu"), "exported models run on the CPU: drop --device cuda")
    device = pick_device("cpu" if exported else cfg.device)
    max_length = max_length_for(cfg.max_length, cfg.task)
    if cfg.zero_shot and is_sentence_only(cfg.model):  # a sentence-transformers model of its own modules alone
        return evaluate_zero_shot(cfg, max_length, device)
    source = resolve_model(str(export_directory(cfg.model)) if exported else cfg.model)  # a graph: its directory's
    tokenizer, config = source.tokenizer, source.config
    check_max_length(max_length, config)
    if cfg.zero_shot:
        return evaluate_zero_shot(cfg, max_length, device)
    kind = kind_of_model(config)
    if task_kind_of(cfg.task) is SPAN:
        require(kind is SPAN, f"model '{cfg.model}' has no question-answering head; fine-tune it first with "
                              f"minilm finetune --task {cfg.task.task}")
        return evaluate_squad(cfg, source, max_length, device)
    require(kind is not None and kind is not SPAN,
            f"model '{cfg.model}' has no task head; fine-tune it first with minilm finetune")
    model = load_inference_model(cfg.model, "classification", config.num_labels, source=source).to(device)
    require(kind is REGRESSION or not cfg.task.regression,
            f"--regression given, but model '{cfg.model}' is a {config.num_labels}-class classifier; drop the flag")
    # A custom task's classes are ordered as the model was trained; a GLUE task's as the task defines them.
    glue = is_glue_task(cfg.task.task, cfg.task.text_columns)
    names = None if kind is REGRESSION or glue else tuple(model.config.id2label[i] for i in range(config.num_labels))
    data = load_task(cfg.task, cfg.split, label_names=names)
    require(data.num_labels == model.config.num_labels,
            f"model has {model.config.num_labels} outputs but {data.source} has {data.num_labels} labels")
    if data.unseen:
        print(f"warning: {data.source} has labels the model does not know: "
              + ", ".join(f"'{label}' ({n})" for label, n in data.unseen.most_common(5)) + "; left out of the score")
    predictions, rate = predict(model, tokenizer, data, max_length, cfg.batch_size, device)
    scores = task_metrics(data.metric, predictions, data.labels)
    result = {"model": cfg.model, "runtime": "onnxruntime" if exported else "pytorch", "task": cfg.task.task,
              "split": cfg.split, "source": data.source, "examples": len(data.labels), "skipped": data.skipped,
              **scores, "main": main_metric(scores),
              "examples_per_s": rate, "batch_size": cfg.batch_size, "device": str(device)}
    print(f"{cfg.model} on {data.source} ({len(data.labels)} examples): "
          + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
    if cfg.output:
        lines = ["index\tprediction\tlabel"]
        for i, (p, y) in enumerate(zip(predictions, data.labels)):
            lines.append(f"{i}\t{data.kind.shown(p, data)}\t{data.kind.shown(y, data)}")
        write_outputs(Path(cfg.output), {"predictions.tsv": "\n".join(lines) + "\n",
                                         "metrics.json": json.dumps(result, indent=1)})
    return result
