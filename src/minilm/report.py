"""`minilm report`: the runs side by side, in the shape of the MiniLM paper's table, plus plots.

Reads each run directory's `metrics.json` (written by `minilm finetune` and by task-specific
`minilm distill`) and `metrics.jsonl`; writes `report.md`, `loss.png` and `dev.png` to `output`.
Retention is the run's dev metric over the teacher run's; speed-up is its inference examples/s
(batch 32, measured when the run ended) over the teacher's.
"""

from __future__ import annotations

import json
from pathlib import Path

from minilm.config import ReportConfig
from minilm.errors import MiniLMError, require


def load_run(directory: str) -> dict:
    path = Path(directory)
    require(path.is_dir(), f"run directory not found: {directory}")
    summary_file = path / "metrics.json"
    require(summary_file.is_file(), f"{directory} has no metrics.json (is it a finished finetune or task distill run?)")
    try:
        summary = json.loads(summary_file.read_text())
        history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()] \
            if (path / "metrics.jsonl").is_file() else []
    except json.JSONDecodeError as exc:
        raise MiniLMError(f"{directory}: metrics file is not valid JSON ({exc.msg})") from None
    return {"name": path.name, "dir": str(path), "summary": summary, "history": history}


def table(runs: list[dict], teacher: dict | None) -> str:
    """Markdown table: model, layers x hidden, parameters, dev metric, retention, examples/s, speed-up."""
    metric = runs[0]["summary"]["metric"]
    lines = [f"| model | layers x hidden | parameters | dev {metric} | retention | examples/s | speed-up |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for run in runs:
        s = run["summary"]
        score = s["best"]["main"]
        retention = speedup = "-"
        if teacher is not None:
            t = teacher["summary"]
            retention = f"{100 * score / t['best']['main']:.1f}%"
            speedup = f"{s['examples_per_s'] / t['examples_per_s']:.2f}x"
        lines.append(f"| {run['name']} | {s['layers']}x{s['hidden']} | {s['parameters'] / 1e6:.1f}M | "
                     f"{score:.2f} | {retention} | {s['examples_per_s']:,.0f} | {speedup} |")
    return "\n".join(lines)


def plot(runs: list[dict], key: str, ylabel: str, path: Path) -> bool:
    """One line per run of `key` over steps; False when no run logged it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for run in runs:
        points = [(r["step"], r[key]) for r in run["history"] if key in r]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, label=run["name"], marker="o" if len(points) < 20 else None)
            drawn = True
    if drawn:
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn


def report(cfg: ReportConfig) -> Path:
    require(len(cfg.runs) > 0, "no runs given: pass run directories with --runs")
    runs = [load_run(r) for r in cfg.runs]
    metrics = {r["summary"]["metric"] for r in runs}
    require(len(metrics) == 1, f"the runs use different metrics ({', '.join(sorted(metrics))}); report one task at a time")
    teacher = load_run(cfg.teacher_run) if cfg.teacher_run else None
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    text = ["# Runs", "", table(runs, teacher), ""]
    if plot(runs, "loss", "training loss", out / "loss.png"):
        text.append("![training loss](loss.png)")
    if plot(runs, "dev_main", f"dev {runs[0]['summary']['metric']}", out / "dev.png"):
        text.append("![dev metric](dev.png)")
    (out / "report.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return out / "report.md"
