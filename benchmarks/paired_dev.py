"""Is one fine-tuned run really better than another on the same dev set? Exact McNemar tests, paired per example.

Accuracy differences of a point or two on SST-2's 872 dev sentences are a dozen sentences: this scores every
run's best checkpoint on dev (`minilm evaluate`, predictions kept in RUN/dev_eval/), then for each run against
the baseline counts the sentences only one of the two gets right (b: only the run, c: only the baseline) and
gives the exact two-sided McNemar p-value, a binomial test of b against b + c at 1/2.
Run: .venv/bin/python benchmarks/paired_dev.py --baseline runs/objectives/c_teacher_layers --runs RUN ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import binomtest

from minilm.commands.evaluate import evaluate
from minilm.config import EvaluateConfig


def correct(run: Path, task: str) -> list[bool]:
    """Per dev example, whether the run's best checkpoint is right (scored once, then read back)."""
    out = run / "dev_eval"
    if not (out / "predictions.tsv").is_file():
        evaluate(EvaluateConfig(model=str(run / "best"), task=task, split="dev", output=str(out)))
    rows = (out / "predictions.tsv").read_text().splitlines()[1:]
    return [r.split("\t")[1] == r.split("\t")[2] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the run every other run is compared with")
    parser.add_argument("--runs", nargs="+", required=True)
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--output", help="also write the table to this Markdown file")
    args = parser.parse_args()
    base = correct(Path(args.baseline), args.task)
    lines = [f"| run | dev accuracy | vs {Path(args.baseline).name} | only run right | only baseline right | "
             "McNemar p (exact) |", "|---|---:|---:|---:|---:|---:|"]
    for run in map(Path, args.runs):
        ours = correct(run, args.task)
        if len(ours) != len(base):
            raise SystemExit(f"{run} scored {len(ours)} examples, the baseline {len(base)}: not the same dev set")
        only_run = sum(o and not b for o, b in zip(ours, base))
        only_base = sum(b and not o for o, b in zip(ours, base))
        p = binomtest(only_run, only_run + only_base, 0.5).pvalue if only_run + only_base else 1.0
        accuracy = 100 * sum(ours) / len(ours)
        lines.append(f"| {run.name} | {accuracy:.2f} | {accuracy - 100 * sum(base) / len(base):+.2f} | "
                     f"{only_run} | {only_base} | {p:.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n")
        print(json.dumps({"wrote": args.output}))


if __name__ == "__main__":
    main()
