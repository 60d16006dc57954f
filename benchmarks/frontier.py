"""The frontier's measurements (docs/frontier.md), one JSON row per finished run under docs/frontier/rows/, so that
the study can be run in parts and the page rebuilt from its rows. `benchmarks/frontier.sh` drives it.

    frontier.py text OUT.txt CORPUS...                 the distillation text, one example a line (for the peers)
    frontier.py steps CAL_RUN MINUTES                  the steps that fit MINUTES, from a short calibration run
    frontier.py sentence NAME MODEL CORPUS... [--run R --speedup N --peer P --start S]
                                                       STS-B test, held-out pairs, SQuAD retrieval -> rows/NAME.json
    frontier.py sst2 NAME RUN TEACHER_RUN [--speedup N]  SST-2 dev of a task run -> rows/NAME.json
    frontier.py speed OUT.json TEACHER NAME=EXPORT ... [--model2vec NAME=DIR]
                                                       text in, embedding out, one thread, batch 1 and 32, in turn
    frontier.py page                                   the tables and the plot from the rows

Scores: zero-shot STS-B test (Spearman x 100, MTEB's figure for the teachers); the held-out pairs of
docs/seed_system.md (STS-B dev and test pairs none of whose sentences is in the text the model was distilled on);
SQuAD 2.0 dev retrieval nDCG@10 (each answerable question against every paragraph; the text holds no dev
paragraph). Each as a share of the teacher on the same pairs or queries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROWS = Path("docs/frontier/rows")
TEACHER = "packaged:all-MiniLM-L6-v2"


def cpu() -> str:
    from minilm.train.device_policy import cpu_features

    return cpu_features()["name"] or platform.processor()


def write_row(name: str, row: dict) -> None:
    ROWS.mkdir(parents=True, exist_ok=True)
    row = {"name": name, "cpu": cpu(), "date": time.strftime("%Y-%m-%d"), **row}
    (ROWS / f"{name}.json").write_text(json.dumps(row, indent=1))
    print(json.dumps(row))


def text(out: str, specs: list[str]) -> None:
    """The text minilm's sentence runs read (`--examples sentence`: a line an example), for a peer's trainer."""
    from minilm.data.corpora import resolve

    lines = [t.strip() for source in resolve(specs) for t in source.texts(None) if t.strip()]
    Path(out).write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} lines to {out}")


def steps(run: str, minutes: float) -> None:
    """Steps that fit `minutes` at the pace a timing run kept over its second half."""
    logged = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    timed = [r for r in logged if "elapsed_s" in r]
    first, last = timed[len(timed) // 2 - 1], timed[-1]
    per_step = (last["elapsed_s"] - first["elapsed_s"]) / (last["step"] - first["step"])
    print(int(minutes * 60 / per_step))


def run_record(run: str | None) -> dict:
    """Steps, training minutes, shape and start of a minilm run directory."""
    if not run:
        return {}
    from transformers import AutoConfig

    from minilm.models.architectures import family_of
    from minilm.models.plan import encoder_size, read_plan

    run = Path(run)
    model = run / "best" if (run / "best").is_dir() else run / "model"
    config = AutoConfig.from_pretrained(model)
    shape = family_of(config).shape(config)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = [r for r in logged if "elapsed_s" in r][-1]
    plan = read_plan(config)
    record = {"shape": f"{shape.layers}x{shape.hidden}", "parameters": encoder_size(config), "steps": last["step"],
              "train_minutes": last["elapsed_s"] / 60, "start": plan.start if plan else None}
    wall = run.parent / f"{run.name}.time"  # /usr/bin/time's line: the whole command, teacher readings included
    if wall.is_file():
        record.update(json.loads(wall.read_text()))
    return record


class Scorer:
    """The three sentence scores of a model, the teacher's on the same pairs and queries beside them."""

    def __init__(self, teacher: str):
        sys.path.insert(0, str(Path(__file__).parent))
        from sentence_table import Embedded

        from minilm.config import Task
        from minilm.tasks import load_task
        from minilm.tasks.retrieval import squad_retrieval

        self.test, self.dev = (load_task(Task(task="stsb"), split) for split in ("test", "dev"))
        self.squad = squad_retrieval(load_task(Task(task="squad2"), "dev"))
        self.sentences = sorted({s for pair in self.test.texts + self.dev.texts for s in pair})
        self.Embedded = Embedded
        self.teacher = self.embed(teacher)

    def embed(self, model: str):
        from minilm.models.sentence import SentenceEncoder
        from minilm.tasks.retrieval import retrieval_metrics

        embedded = self.Embedded(model, self.sentences)
        encoder = SentenceEncoder(model, "cpu", 384, say=lambda line: None)

        def normalised(texts):
            vectors = encoder.encode(texts, 32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
        scores = normalised(self.squad.queries) @ normalised(self.squad.passages).T
        embedded.retrieval = retrieval_metrics(scores, self.squad.relevant)
        return embedded

    def row(self, model: str, corpus: list[str]) -> dict:
        sys.path.insert(0, str(Path(__file__).parent))
        from sentence_table import held_out, seen_sentences

        pairs, gold = held_out(seen_sentences(corpus))
        mine, teacher = self.embed(model), self.teacher
        row = {"stsb_test": mine.spearman(self.test.texts, self.test.labels),
               "teacher_stsb_test": teacher.spearman(self.test.texts, self.test.labels),
               "held_out": mine.spearman(pairs, gold), "teacher_held_out": teacher.spearman(pairs, gold),
               "held_out_pairs": len(gold), "ndcg": mine.retrieval["ndcg@10"],
               "teacher_ndcg": teacher.retrieval["ndcg@10"], "mrr": mine.retrieval["mrr@10"],
               "recall1": mine.retrieval["recall@1"], "recall10": mine.retrieval["recall@10"]}
        for key in ("stsb_test", "held_out", "ndcg"):
            row[f"{key}_share"] = 100 * row[key] / row[f"teacher_{key}"]
        return row


def sentence(args) -> None:
    row = Scorer(args.teacher).row(args.model, args.corpus)
    write_row(args.name, {"part": args.part, "model": args.model, "corpus": args.corpus, "speedup": args.speedup,
                          "recipe": args.recipe, **run_record(args.run), **row, **extra(args.extra)})


def sst2(args) -> None:
    teacher = json.loads((Path(args.teacher_run) / "metrics.json").read_text())["best"]["main"]
    best = json.loads((Path(args.run) / "metrics.json").read_text())["best"]["main"]
    write_row(args.name, {"part": "b", "model": str(Path(args.run) / "best"), "speedup": args.speedup,
                          "recipe": args.recipe, "sst2_dev": best, "teacher_sst2_dev": teacher,
                          "sst2_share": 100 * best / teacher, **run_record(args.run), **extra(args.extra)})


def extra(items: list[str] | None) -> dict:
    """KEY=VALUE pairs a row also records (a peer's minutes, a start's name)."""
    out = {}
    for item in items or []:
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


# -- speed -------------------------------------------------------------------------------------------------------

def sst2_dev() -> list[str]:
    from minilm.tasks.glue import read_sentence_task

    return [t[0] for t in read_sentence_task("sst2", "dev").texts]


def time_encoder(encode, texts: list[str], batch: int) -> float:
    """Sentences/s of `encode(texts, batch)` over the texts, after a warm-up batch."""
    encode(texts[:batch], batch)
    start = time.perf_counter()
    encode(texts, batch)
    return len(texts) / (time.perf_counter() - start)


def speed(args) -> None:
    """Every model in turn, round after round, each cell's best round kept: text in, sentence embedding out, one
    thread. Ours through `deploy.serving.Embedder` (the pooled int8 graph and the tokenizer); the teacher's
    PyTorch model through sentence-transformers; Model2Vec in its own venv (`peers/model2vec_speed.py`)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from minilm.deploy.serving import Embedder
    from minilm.models.loading import resolve_model_path

    torch.set_num_threads(1)
    texts = sst2_dev()
    Path(args.texts_file).parent.mkdir(parents=True, exist_ok=True)
    Path(args.texts_file).write_text("\n".join(texts) + "\n")  # what the peer in its own venv reads
    sets = {1: texts[:256], 32: texts}
    models = {"teacher (PyTorch)": SentenceTransformer(resolve_model_path(args.teacher), device="cpu")}
    for item in args.models:
        name, path = item.split("=", 1)
        models[name] = Embedder(path, threads=1)
    best: dict[tuple[str, int], float] = {}
    for _ in range(args.rounds):
        for name, model in models.items():
            encode = (lambda t, b, m=model: m.encode(t, batch_size=b, show_progress_bar=False)) \
                if isinstance(model, SentenceTransformer) else (lambda t, b, m=model: m.encode(t, b))
            for batch, chosen in sets.items():
                best[(name, batch)] = max(best.get((name, batch), 0.0), time_encoder(encode, chosen, batch))
        for item in args.model2vec or []:
            name, path = item.split("=", 1)
            result = subprocess.run([args.model2vec_python, str(Path(__file__).parent / "peers" / "model2vec_speed.py"),
                                     path, "--texts", args.texts_file], capture_output=True, text=True, check=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
            for batch, rate in json.loads(result.stdout.strip().splitlines()[-1]).items():
                best[(name, int(batch))] = max(best.get((name, int(batch)), 0.0), rate)
    rows = [{"model": name, "batch_size": batch, "sentences_per_s": rate} for (name, batch), rate in best.items()]
    record = {"cpu": cpu(), "date": time.strftime("%Y-%m-%d"), "threads": 1, "rounds": args.rounds,
              "texts": f"SST-2 dev ({len(texts)} sentences; 256 at batch 1)", "rows": rows}
    Path(args.out).write_text(json.dumps(record, indent=1))
    for row in rows:
        print(row)


# -- the page ------------------------------------------------------------------------------------------------------

def page(args) -> None:
    """docs/frontier/*.md tables and frontier.png from the rows and the speed record."""
    rows = [json.loads(p.read_text()) for p in sorted(ROWS.glob("*.json"))]
    speeds = json.loads(Path(args.speed).read_text()) if Path(args.speed).is_file() else None
    rate = {(r["model"], r["batch_size"]): r["sentences_per_s"] for r in speeds["rows"]} if speeds else {}

    def ratio(name: str, batch: int, base: str) -> str:
        mine, theirs = rate.get((name, batch)), rate.get((base, batch))
        return f"{mine / theirs:.1f}x" if mine and theirs else ""

    out = [f"CPU: {rows[0]['cpu'] if rows else cpu()}; rows of `bash benchmarks/frontier.sh`", "",
           "| row | recipe | shape | steps | minutes | STS-B test | of teacher | held out | of teacher | SQuAD nDCG@10 "
           "| of teacher | x int8 teacher (b1 / b32) | x PyTorch teacher (b1 / b32) |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in (r for r in rows if r.get("part") == "a"):
        key = r.get("speed_as", r["name"])
        speed_int8 = f"{ratio(key, 1, 'teacher (int8)')} / {ratio(key, 32, 'teacher (int8)')}"
        speed_pt = f"{ratio(key, 1, 'teacher (PyTorch)')} / {ratio(key, 32, 'teacher (PyTorch)')}"
        out.append(f"| {r['name']} | {r.get('recipe', '')} | {r.get('shape', '')} | {r.get('steps', '')} | "
                   f"{r.get('wall_minutes', r.get('train_minutes', 0)):.1f} | {r['stsb_test']:.2f} | "
                   f"{r['stsb_test_share']:.1f}% | {r['held_out']:.2f} | {r['held_out_share']:.1f}% | {r['ndcg']:.2f} | "
                   f"{r['ndcg_share']:.1f}% | {speed_int8} | {speed_pt} |")
    Path("docs/frontier/sentence_table.md").write_text("\n".join(out) + "\n")
    sst = [f"CPU: {rows[0]['cpu'] if rows else cpu()}", "",
           "| row | recipe | shape | steps | minutes | SST-2 dev | of teacher |", "|---|---|---|---:|---:|---:|---:|"]
    for r in (r for r in rows if r.get("part") == "b"):
        sst.append(f"| {r['name']} | {r.get('recipe', '')} | {r.get('shape', '')} | {r.get('steps', '')} | "
                   f"{r.get('wall_minutes', r.get('train_minutes', 0)):.1f} | {r['sst2_dev']:.2f} | "
                   f"{r['sst2_share']:.1f}% |")
    Path("docs/frontier/sst2_table.md").write_text("\n".join(sst) + "\n")
    if speeds:
        plot([r for r in rows if r.get("part") == "a"], rate, Path("docs/frontier/frontier.png"))
    print("\n".join(out + [""] + sst))


def plot(rows: list[dict], rate: dict, out: Path) -> None:
    """Held-out STS share of the teacher against batch-1 speed over the teacher's int8 graph; peers marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = rate.get(("teacher (int8)", 1))
    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    styles = {"minilm": ("o", "black", "minilm"), "sentence-transformers MSE": ("s", "tab:blue",
              "sentence-transformers' MSE recipe"), "model2vec": ("^", "tab:red", "Model2Vec"),
              "teacher": ("*", "tab:green", "teacher")}
    seen = set()
    for r in rows:
        mine = rate.get((r.get("speed_as", r["name"]), 1))
        if not mine or not base:
            continue
        marker, color, label = styles.get(r.get("recipe", "minilm"), styles["minilm"])
        axes.scatter(mine / base, r["held_out_share"], marker=marker, color=color,
                     label=None if label in seen else label)
        axes.annotate(r.get("shape", ""), (mine / base, r["held_out_share"]), textcoords="offset points",
                      xytext=(4, 4), fontsize=7)
        seen.add(label)
    axes.set_xscale("log")
    axes.set_xlabel("sentences/s at batch 1, x the teacher's int8 graph (tokenization included)")
    axes.set_ylabel("held-out STS, % of the teacher")
    axes.set_title("Students of all-MiniLM-L6-v2 and the peers, 30 minutes each at most")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("text")
    p.add_argument("out")
    p.add_argument("corpus", nargs="+")
    p = sub.add_parser("steps")
    p.add_argument("run")
    p.add_argument("minutes", type=float)
    p = sub.add_parser("sentence")
    p.add_argument("name")
    p.add_argument("model")
    p.add_argument("corpus", nargs="*")
    p.add_argument("--run")
    p.add_argument("--part", default="a")
    p.add_argument("--speedup", type=float)
    p.add_argument("--recipe", default="minilm")
    p.add_argument("--teacher", default=TEACHER)
    p.add_argument("--extra", nargs="*")
    p = sub.add_parser("sst2")
    p.add_argument("name")
    p.add_argument("run")
    p.add_argument("teacher_run")
    p.add_argument("--speedup", type=float)
    p.add_argument("--recipe", default="minilm")
    p.add_argument("--extra", nargs="*")
    p = sub.add_parser("speed")
    p.add_argument("out")
    p.add_argument("models", nargs="+", help="NAME=EXPORT_DIR (pooled int8 graphs)")
    p.add_argument("--teacher", default=TEACHER)
    p.add_argument("--model2vec", nargs="*", help="NAME=DIR of a Model2Vec model, timed in its own venv")
    p.add_argument("--model2vec-python", default="runs/peers/m2v/bin/python")
    p.add_argument("--texts-file", default="runs/frontier/sst2_dev.txt")
    p.add_argument("--rounds", type=int, default=5)
    p = sub.add_parser("page")
    p.add_argument("--speed", default="docs/frontier/speed.json")
    args = parser.parse_args()
    {"text": lambda: text(args.out, args.corpus), "steps": lambda: steps(args.run, args.minutes),
     "sentence": lambda: sentence(args), "sst2": lambda: sst2(args), "speed": lambda: speed(args),
     "page": lambda: page(args)}[args.what]()


if __name__ == "__main__":
    main()
