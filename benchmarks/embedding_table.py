"""The embedding study's table (docs/embedding_study.md): each student's zero-shot STS-B Spearman x 100 (dev, and
test for the final rows), its retention of the teacher's test score, how far its embedding space agrees with the
teacher's on text no student saw (Spearman x 100 between the teacher's and the student's cosines of 2,000 random
pairs of SQuAD 2.0 dev questions: a held-out check that the space carried over, not a similarity benchmark),
sentences/s at batch 32 measured side by side in this one process (the models take turns, round after round, on
the same STS-B dev sentences; the best round of each is kept), and its SST-2 dev accuracy after the shared
fine-tuning (read from RUN_sst2/metrics.json).

Run: .venv/bin/python benchmarks/embedding_table.py --runs runs/embedding --output docs/embedding_study/table.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from scipy.stats import spearmanr

from minilm.config import Task
from minilm.models.sentence import SentenceEncoder
from minilm.tasks import load_task
from minilm.tasks.scoring import zero_shot_sts
from minilm.train.device_policy import cpu_features

ROWS = [  # (label, model directory under --runs or the teacher, its SST-2 fine-tuning run, final: scored on test)
    ("(a) teacher all-MiniLM-L6-v2 (6x384)", "packaged:all-MiniLM-L6-v2", "teacher_sst2", True),
    ("(c) teacher layers 2/4/6, no distillation", "c_init", "c_init_sst2", True),
    ("MiniLM (attention + value relation)", "minilm/model", "minilm_sst2", True),
    ("embedding MSE", "embedding/model", "embedding_sst2", True),
    ("MiniLM + 100 x embedding MSE", "minilm_embedding_w100/model", "minilm_embedding_w100_sst2", True),
    ("MiniLM + 1000 x embedding MSE", "minilm_embedding_w1000/model", "minilm_embedding_w1000_sst2", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/embedding")
    parser.add_argument("--output", default="docs/embedding_study/table.md")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs = Path(args.runs)
    split = {s: load_task(Task(task="stsb"), s) for s in ("dev", "test")}
    sentences = list(dict.fromkeys(t for pair in split["dev"].texts for t in pair))[:1024]
    questions = list(dict.fromkeys(e.question for e in load_task(Task(task="squad2"), "dev").examples))
    rng = np.random.default_rng(0)
    pairs = rng.choice(len(questions), size=(2000, 2))
    rows = []
    for label, where, sst2_run, final in ROWS:
        model = where if where.startswith("packaged:") else str(runs / where)
        if not where.startswith("packaged:") and not Path(model).is_dir():
            print(f"skipped (not run): {label}")
            continue
        encoder = SentenceEncoder(model, "cpu")
        row = {"label": label, "model": model, "encoder": encoder,
               "dev": zero_shot_sts(encoder, split["dev"].texts, split["dev"].labels)["spearman"],
               "test": zero_shot_sts(encoder, split["test"].texts, split["test"].labels)["spearman"] if final else None,
               "rate": 0.0}
        vectors = encoder.encode(questions)
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        row["cosines"] = (vectors[pairs[:, 0]] * vectors[pairs[:, 1]]).sum(1)
        sst2 = runs / sst2_run / "metrics.json"
        row["sst2"] = json.loads(sst2.read_text())["best"]["main"] if sst2.is_file() else None
        rows.append(row)
        print(f"{label}: dev {row['dev']:.2f}" + (f", test {row['test']:.2f}" if final else ""), flush=True)
    for _ in range(args.rounds):  # turns, so that a drift in the machine's speed reaches every model alike
        for row in rows:
            row["rate"] = max(row["rate"], row["encoder"].rate(sentences, 32, repeats=1))
    teacher = rows[0]
    for row in rows:
        row["agreement"] = 100.0 * float(spearmanr(row["cosines"], teacher["cosines"])[0])
    cpu = cpu_features()
    flags = [name for name, key in (("AVX512-BF16", "avx512_bf16"), ("AMX", "amx_bf16")) if cpu[key]]
    lines = [f"Measured on {cpu['name'] or platform.processor()} ({', '.join(flags) or 'no native bf16'}), "
             f"{torch.get_num_threads()} threads, torch {torch.__version__}; sentences/s at batch 32 on "
             f"{len(sentences)} STS-B dev sentences, best of {args.rounds} interleaved rounds.", "",
             "| model | STS-B dev | STS-B test | retention (test) | agreement with the teacher (held out) | "
             "sentences/s | speed-up | SST-2 dev |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        test = f"{row['test']:.2f}" if row["test"] is not None else "-"
        retention = f"{100 * row['test'] / teacher['test']:.1f}%" if row["test"] is not None else "-"
        sst2 = f"{row['sst2']:.2f}" if row["sst2"] is not None else "-"
        lines.append(f"| {row['label']} | {row['dev']:.2f} | {test} | {retention} | {row['agreement']:.1f} | "
                     f"{row['rate']:,.0f} | "
                     f"{row['rate'] / teacher['rate']:.2f}x | {sst2} |")
    text = "\n".join(lines) + "\n"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
