"""The sentence students' table of docs/seed_system.md: zero-shot STS Spearman x 100 of each model, on STS-B test
(MTEB's figure) and on held-out pairs: STS-B dev and test pairs none of whose sentences is in the text the model
was distilled on (`--distilled-on`: one corpus spec list per row, as `--data` takes it), so that a recipe whose
text holds the STS benchmark's training sentences is scored on sentences it never saw. Retention is of the
teacher's score on the same pairs.

Run: .venv/bin/python benchmarks/sentence_table.py --rows NAME=MODEL[@CORPUS+CORPUS] ... --teacher MODEL
     --output docs/seed_system/sentence_table.md
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from minilm.config import Task
from minilm.data.corpora import resolve
from minilm.models.sentence import SentenceEncoder
from minilm.tasks import load_task
from minilm.train.device_policy import cpu_features


class Embedded:
    """A model's embeddings of the STS benchmark's dev and test sentences, encoded once; scores pairs from them as
    `tasks.scoring.zero_shot_sts` does (cosine, Spearman x 100)."""

    def __init__(self, model: str, sentences: list[str]):
        import numpy as np

        vectors = SentenceEncoder(model, "cpu").encode(sentences, batch_size=32)
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
        self.vectors = dict(zip(sentences, vectors))

    def spearman(self, pairs, gold) -> float:
        from scipy.stats import spearmanr

        cosine = [float(self.vectors[a] @ self.vectors[b]) for a, b in pairs]
        return 100.0 * float(spearmanr(cosine, gold)[0])


def seen_sentences(specs: list[str]) -> set[str]:
    """Every text line of the corpora a model was distilled on (as `--examples sentence` reads them)."""
    return {text.strip() for source in resolve(specs) for text in source.texts(None)} if specs else set()


def held_out(seen: set[str]) -> tuple[list, list]:
    """STS-B dev and test pairs none of whose sentences is in `seen`."""
    pairs, scores = [], []
    for split in ("dev", "test"):
        data = load_task(Task(task="stsb"), split)
        for (a, b), y in zip(data.texts, data.labels):
            if a.strip() not in seen and b.strip() not in seen:
                pairs.append((a, b))
                scores.append(y)
    return pairs, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", required=True, help="NAME=MODEL or NAME=MODEL@CORPUS+CORPUS")
    parser.add_argument("--teacher", required=True, help="the teacher (a row of its own, retention's reference)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    test = load_task(Task(task="stsb"), "test")
    rows = [("teacher", args.teacher, [])] + [
        (name, spec.split("@")[0], spec.split("@")[1].split("+") if "@" in spec else [])
        for name, spec in (row.split("=", 1) for row in args.rows)]
    dev = load_task(Task(task="stsb"), "dev")
    sentences = sorted({s for pair in test.texts + dev.texts for s in pair})
    embedded, results = {}, []
    for name, model, corpus in rows:
        start = time.perf_counter()
        embedded[model] = embedded.get(model) or Embedded(model, sentences)
        seconds = time.perf_counter() - start
        pairs, gold = held_out(seen_sentences(corpus))
        results.append({"name": name, "model": model, "distilled_on": corpus,
                        "stsb_test": embedded[model].spearman(test.texts, test.labels), "held_out_pairs": len(gold),
                        "held_out": embedded[model].spearman(pairs, gold),
                        "teacher_held_out": embedded[args.teacher].spearman(pairs, gold),
                        "encode_seconds": seconds, "sentences": len(sentences)})
        print(json.dumps(results[-1]), flush=True)
    teacher = results[0]
    lines = [f"CPU: {cpu_features()['name'] or platform.processor()}, {time.strftime('%Y-%m-%d')}", "",
             "| model | STS-B test | of teacher | held-out pairs | held-out | of teacher (same pairs) | distilled on |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['stsb_test']:.2f} | {100 * r['stsb_test'] / teacher['stsb_test']:.1f}% | "
                     f"{r['held_out_pairs']:,} | {r['held_out']:.2f} | {100 * r['held_out'] / r['teacher_held_out']:.1f}% "
                     f"| {' + '.join(r['distilled_on']) or '-'} |")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    Path(args.output).with_suffix(".json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
