"""The tables of docs/frontier.md from what benchmarks/frontier.sh wrote (Markdown to stdout).

    frontier_tables.py shapes runs/frontier/shapes/student_shapes.json     the --speedup candidates
    frontier_tables.py runs RUN ...                                        shape, parameters, steps, minutes
    frontier_tables.py sst2 TEACHER_RUN RUN ...                            SST-2 dev of task runs, share of teacher
    frontier_tables.py speed runs/frontier/speed.json                      int8 speed against both teachers
    frontier_tables.py plot SPEED_JSON SENTENCE_TABLE_JSON OUT.png         held-out quality against speed
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from minilm.models.speed_table import SpeedTable
from minilm.train.device_policy import cpu_features


def header() -> str:
    return f"CPU: {cpu_features()['name'] or platform.processor()}, {time.strftime('%Y-%m-%d')}\n"


def shape(run: Path) -> tuple[str, int]:
    """'LxH' and the parameters of a run's model."""
    from transformers import AutoConfig

    from minilm.models.architectures import family_of
    from minilm.models.plan import encoder_size

    model = run / "best" if (run / "best").is_dir() else run / "model"
    config = AutoConfig.from_pretrained(model)
    s = family_of(config).shape(config)
    return f"{s.layers}x{s.hidden}", encoder_size(config)


def minutes(run: Path) -> tuple[int, float]:
    """(steps, minutes) of a run's training, from its metrics.jsonl (the last line's elapsed time)."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = [line for line in lines if "elapsed_s" in line][-1]
    return last["step"], last["elapsed_s"] / 60


def runs(paths: list[str]) -> str:
    lines = [header(), "| run | shape | parameters | steps | minutes |", "|---|---|---:|---:|---:|"]
    for path in map(Path, paths):
        name, params = shape(path)
        steps, mins = minutes(path)
        lines.append(f"| {path.name} | {name} | {params / 1e6:.1f}M | {steps} | {mins:.1f} |")
    return "\n".join(lines)


def sst2(teacher_run: str, paths: list[str]) -> str:
    teacher = json.loads((Path(teacher_run) / "metrics.json").read_text())["best"]["main"]
    lines = [header(), f"Teacher ({teacher_run}): SST-2 dev {teacher:.2f}.", "",
             "| run | shape | parameters | SST-2 dev | of teacher | steps | minutes |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for path in map(Path, paths):
        best = json.loads((path / "metrics.json").read_text())["best"]["main"]
        name, params = shape(path)
        steps, mins = minutes(path)
        lines.append(f"| {path.name} | {name} | {params / 1e6:.1f}M | {best:.2f} | {100 * best / teacher:.1f}% | "
                     f"{steps} | {mins:.1f} |")
    return "\n".join(lines)


def speed(path: str) -> str:
    """Each graph's examples/s against the teacher's int8 graph and its PyTorch model, per batch size."""
    result = json.loads(Path(path).read_text())
    rows = result["inference"]
    pytorch = {r["batch_size"]: r["examples_per_s"] for r in rows if r["form"].startswith("pytorch")}
    int8 = {r["batch_size"]: r["examples_per_s"] for r in rows if r["model"].endswith("/teacher")}
    lines = [f"CPU: {result['cpu'].get('name')}, int8 target {result['int8_target']}, threads "
             f"{', '.join(map(str, result['threads']))}; {result['texts']}", "",
             "| model | batch | examples/s | x teacher int8 | x teacher PyTorch | size MB |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["batch_size"], -r["examples_per_s"])):
        size = r["batch_size"]
        lines.append(f"| {r['model']} ({r['form']}) | {size} | {r['examples_per_s']:,.1f} | "
                     f"{r['examples_per_s'] / int8[size]:.2f}x | {r['examples_per_s'] / pytorch[size]:.2f}x | "
                     f"{r['size_mb']:.1f} |")
    return "\n".join(lines)


def plot(speed_json: str, table_json: str, out: str) -> None:
    """Held-out STS share of the teacher against int8 batch-1 speed-up over the teacher's int8 graph, one point per
    student (a shape's speed is its pruned run's export: random and assistant starts share it), one marker per
    start."""
    import re

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = json.loads(Path(speed_json).read_text())["inference"]
    ones = {r["model"]: r["examples_per_s"] for r in rows if r["batch_size"] == 1}
    teacher = next(v for k, v in ones.items() if k.endswith("/teacher"))
    by_shape = {re.search(r"(\d+x\d+)", k).group(1): v / teacher for k, v in ones.items()
                if re.search(r"a_(\d+x\d+)", k)}
    starts = {"prune": ("o", "pruned"), "copy": ("s", "teacher layers"), "random": ("x", "random"),
              "assistant": ("^", "pruned, through an assistant")}
    figure, axes = plt.subplots(figsize=(6, 4))
    seen = set()
    for r in json.loads(Path(table_json).read_text()):
        match = re.search(r"a_(\d+x\d+)_(\w+?)/model", r["model"])
        if not match or match.group(1) not in by_shape:
            continue
        marker, label = starts[match.group(2)]
        axes.scatter(by_shape[match.group(1)], 100 * r["held_out"] / r["teacher_held_out"], marker=marker,
                     color="black", label=None if label in seen else label)
        axes.annotate(match.group(1), (by_shape[match.group(1)], 100 * r["held_out"] / r["teacher_held_out"]),
                      textcoords="offset points", xytext=(4, 4), fontsize=8)
        seen.add(label)
    axes.set_xscale("log")
    axes.set_xlabel("int8 speed at batch 1, x the teacher's int8 graph")
    axes.set_ylabel("held-out STS, % of the teacher")
    axes.set_title("Students of all-MiniLM-L6-v2 at one training budget")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=120)


def main() -> None:
    what, args = sys.argv[1], sys.argv[2:]
    if what == "shapes":
        record = json.loads(Path(args[0]).read_text())
        print(header())
        print(f"Batch 1, {record['sequence_tokens']} tokens, {record['threads']} thread; int8 graphs of random "
              "weights (as `minilm export --quantize int8` writes them); deeper shapes from the one-layer and the "
              "full-depth graph of each width.\n")
        print(SpeedTable.from_dict(record).format())
    elif what == "runs":
        print(runs(args))
    elif what == "sst2":
        print(sst2(args[0], args[1:]))
    elif what == "speed":
        print(speed(args[0]))
    elif what == "plot":
        plot(*args)
    else:
        raise SystemExit(f"unknown table {what}: shapes, runs, sst2 or speed")


if __name__ == "__main__":
    main()
