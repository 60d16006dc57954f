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
from minilm.tasks.scoring import zero_shot_sts
from minilm.train.device_policy import cpu_features


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
    encoders, results = {}, []
    for name, model, corpus in rows:
        encoders[model] = encoders.get(model) or SentenceEncoder(model, "cpu")
        pairs, gold = held_out(seen_sentences(corpus))
        start = time.perf_counter()
        on_test = zero_shot_sts(encoders[model], test.texts, test.labels)["spearman"]
        seconds = time.perf_counter() - start
        results.append({"name": name, "model": model, "distilled_on": corpus, "stsb_test": on_test,
                        "held_out_pairs": len(gold), "held_out": zero_shot_sts(encoders[model], pairs, gold)["spearman"],
                        "teacher_held_out": zero_shot_sts(encoders[args.teacher], pairs, gold)["spearman"],
                        "test_seconds": seconds})
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
