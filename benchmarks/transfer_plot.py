"""The transfer study's table and plot (docs/transfer_study.md), from the run directories of benchmarks/transfer_study.sh.

For each distilled student: how its text became examples, the MiniLM version, steps, real tokens distilled on,
training time, and the dev scores of its fine-tuned copies (SST-2 accuracy, SQuAD 2.0 F1), next to the
teacher-layer baseline (c) and the teacher. The plot puts each dev score against distillation tokens, with (c)
and the teacher as horizontal lines.
Run: .venv/bin/python benchmarks/transfer_plot.py --output docs/transfer_study
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minilm.commands.report import load_run

ROWS = [  # run name (under --runs), examples, version, corpus
    ("line_v1_1000", "one line", "v1", "WikiText-2"),
    ("packed_nopairs_v1_1000", "packed, no pairs", "v1", "WikiText-2"),
    ("packed_v1_250", "packed + 50% pairs", "v1", "WikiText-2"),
    ("packed_v1_1000", "packed + 50% pairs", "v1", "WikiText-2"),
    ("packed_v1_3000", "packed + 50% pairs", "v1", "WikiText-2"),
    ("packed_v2_1000", "packed + 50% pairs", "v2 (layer 5, 12 rel. heads)", "WikiText-2"),
    ("packed_v1_1000_sst2text", "packed + 50% pairs", "v1", "WikiText-2 + SST-2 train text"),
]
# The objectives study's MiniLM row (docs/objectives.md) is the one-line recipe with SST-2's training sentences
# in the corpus, otherwise the same: the in-domain variant of line_v1_1000. Name, distill run, SST-2 run, and a
# run of the same study that logged its token count (the MiniLM run predates that log; both read the same
# batches: same corpus, examples, seed and steps).
IN_DOMAIN = ("objectives: minilm", "minilm", "ft_minilm", "minilmv2", "one line", "v1",
             "WikiText-2 + SST-2 train text")


def best(directory: Path, key: str) -> float | None:
    """The run's best dev score `key`, or None while it has not finished (no metrics.json yet)."""
    finished = (directory / "metrics.json").is_file()
    return load_run(str(directory))["summary"]["best"][key] if finished else None


def last_log(directory: Path) -> dict:
    """The last training-log record of a run (step, tokens, elapsed_s, ...)."""
    return [r for r in load_run(str(directory))["history"] if "loss" in r][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/transfer")
    parser.add_argument("--objectives", default="runs/objectives", help="the teacher and (c) on SST-2")
    parser.add_argument("--squad", default="runs/squad2", help="the SQuAD 2.0 testbed: teacher and (c)")
    parser.add_argument("--output", default="docs/transfer_study")
    args = parser.parse_args()
    runs, objectives, out = Path(args.runs), Path(args.objectives), Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    baselines = {"teacher": (best(objectives / "a_teacher", "main"), best(Path(args.squad) / "a_teacher", "f1")),
                 "(c) teacher layers 2/4/6": (best(objectives / "c_teacher_layers", "main"),
                                              best(Path(args.squad) / "c_teacher_layers", "f1"))}
    rows = []

    def add(name, distill, sst2, squad, examples, version, corpus, tokens_from=None):
        if (distill / "metrics.jsonl").is_file():
            log = last_log(distill)
            tokens = log["tokens"] if "tokens" in log else last_log(tokens_from)["tokens"]
            rows.append(dict(name=name, examples=examples, version=version, corpus=corpus, steps=log["step"],
                             tokens=tokens, minutes=log["elapsed_s"] / 60,
                             sst2=best(sst2, "main"), squad=best(squad, "f1") if squad else None,
                             has_answer=best(squad, "HasAns_f1") if squad else None))

    for name, examples, version, corpus in ROWS:
        add(name, runs / name, runs / f"{name}_sst2", runs / f"{name}_squad", examples, version, corpus)
    label, distill, sst2, tokens_from, *kind = IN_DOMAIN
    add(label, objectives / distill, objectives / sst2, None, *kind, tokens_from=objectives / tokens_from)
    c_sst2, c_squad = baselines["(c) teacher layers 2/4/6"]
    has_answer = {"teacher": best(Path(args.squad) / "a_teacher", "HasAns_f1"),
                  "(c) teacher layers 2/4/6": best(Path(args.squad) / "c_teacher_layers", "HasAns_f1")}

    def cell(value, base=None):
        if value is None:
            return "-"
        return f"{value:.2f}" + (f" ({value - base:+.2f})" if base is not None else "")

    lines = ["| student | examples | MiniLM | corpus | steps | tokens | minutes | SST-2 dev acc. (vs c) | "
             "SQuAD 2.0 dev F1 (vs c) | SQuAD HasAns F1 |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, (sst2, squad) in baselines.items():
        lines.append(f"| {label} | - | - | - | - | - | - | {cell(sst2)} | {cell(squad)} | {cell(has_answer[label])} |")
    for r in rows:
        lines.append(f"| {r['name']} | {r['examples']} | {r['version']} | {r['corpus']} | {r['steps']:,} | "
                     f"{r['tokens'] / 1e6:.2f}M | {r['minutes']:.0f} | {cell(r['sst2'], c_sst2)} | "
                     f"{cell(r['squad'], c_squad)} | {cell(r['has_answer'])} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lowest = min((r["tokens"] / 1e6 for r in rows), default=1.0)
    highest = max((r["tokens"] / 1e6 for r in rows), default=1.0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title, index in ((axes[0], "sst2", "SST-2 dev accuracy", 0), (axes[1], "squad", "SQuAD 2.0 dev F1", 1)):
        for label, style in (("teacher", "k--"), ("(c) teacher layers 2/4/6", "r:")):
            value = baselines[label][index]
            if value is not None:
                ax.axhline(value, color=style[0], linestyle=style[1:], label=label)
        for (examples, version, corpus), marker in ((("packed + 50% pairs", "v1", "WikiText-2"), "o-"),
                                                    (("one line", "v1", "WikiText-2"), "s-"),
                                                    (("packed, no pairs", "v1", "WikiText-2"), "^"),
                                                    (("packed + 50% pairs", "v2 (layer 5, 12 rel. heads)",
                                                      "WikiText-2"), "D"),
                                                    (("packed + 50% pairs", "v1", "WikiText-2 + SST-2 train text"),
                                                     "x"),
                                                    (("one line", "v1", "WikiText-2 + SST-2 train text"), "+")):
            points = sorted((r["tokens"] / 1e6, r[key]) for r in rows if r[key] is not None and
                            (r["examples"], r["version"], r["corpus"]) == (examples, version, corpus))
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker, label=f"{examples}, {version.split(' ')[0]}"
                        + (", +SST-2 text" if "SST-2" in corpus else ""))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([t for t in (0.25, 0.5, 1, 2, 4, 8, 16, 32) if lowest / 2 <= t <= highest * 2])
        ax.set_xlabel("distillation tokens (millions, log scale)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, 0.96))
    fig.tight_layout()
    fig.savefig(out / "plot.png", dpi=120)
    print(f"wrote {out / 'table.md'} and {out / 'plot.png'}")


if __name__ == "__main__":
    main()
