"""`minilm report`: the runs side by side, in the shape of the MiniLM paper's table, plus plots.

Reads each run directory's `metrics.json` (written by `minilm finetune` and by task-specific
`minilm distill`) and `metrics.jsonl`; writes `report.md`, `loss.png` and `dev.png` to `output`. A run
without a dev score (task-agnostic `minilm distill`) joins the loss plot, not the table. The objective
column names how each model was distilled (read from the run, or from the run its model came from).
Retention is the run's dev metric over the teacher run's; speed-up is its inference examples/s
(batch 32) over the teacher's: as measured when each run ended, or, with `speed_data`, re-measured for
every model one after another in this run (the fair comparison). `exported` adds rows for `minilm export`
directories (onnxruntime, float32 or int8), scored on the runs' dev split and timed with the others.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from minilm.config.commands import ReportConfig
from minilm.config.sections import EVAL_BATCH_SIZE
from minilm.data.files import check_writable
from minilm.errors import MiniLMError, require
from minilm.models.architectures import family_of
from minilm.train.run_dir import read_run
from minilm.train.summary import RunSummary


def load_run(directory: str) -> dict:
    path = Path(directory)
    require(path.is_dir(), f"run directory not found: {directory}")
    summary_file, history_file = path / "metrics.json", path / "metrics.jsonl"
    require(summary_file.is_file() or history_file.is_file(),
            f"{directory} has neither metrics.json nor metrics.jsonl: is it a minilm run directory?")
    summary = RunSummary.read(summary_file) if summary_file.is_file() else None
    try:
        history = [json.loads(line) for line in history_file.read_text().splitlines() if line.strip()] \
            if history_file.is_file() else []
    except json.JSONDecodeError as exc:
        raise MiniLMError(f"{directory}: metrics file is not valid JSON ({exc.msg})") from None
    return {"name": path.name, "dir": str(path), "model_dir": str(path / "best"), "summary": summary,
            "history": history, "objective": objective_of(path, summary)}


def load_exported(directory: str, like: RunSummary) -> dict:
    """A `minilm export` directory as a row: scored on the dev split of the task the runs share (`like`, a run's
    summary: its task, length and QA settings), with the size and parameters of the checkpoint it came from."""
    from minilm.deploy.layout import is_exported, read_export
    from minilm.deploy.runtime import load_task_model
    from minilm.models.source import resolve_model
    from minilm.models.plan import encoder_size
    from minilm.tasks import load_task
    from minilm.tasks.scoring import evaluate_model

    require(is_exported(directory), f"{directory} is not a directory written by minilm export")
    record, source = read_export(directory), resolve_model(directory)
    config = source.config
    dev = load_task(like.task_settings(), "dev")
    model = load_task_model(directory, dev)
    scores = evaluate_model(model, source.tokenizer, dev, like.max_length, EVAL_BATCH_SIZE, "cpu", like.windows())
    source = Path(record["source"]).parent / "metrics.json"
    parameters = RunSummary.read(source).parameters if source.is_file() else encoder_size(config)
    shape = family_of(config).shape(config)
    summary = dataclasses.replace(like, best=scores, layers=shape.layers, hidden=shape.hidden,
                                  parameters=parameters, examples_per_s=scores["examples_per_s"])
    return {"name": Path(directory).name, "dir": directory, "model_dir": directory, "summary": summary,
            "history": [], "objective": f"exported, {record['quantize']}"}


def objective_of(path: Path, summary: RunSummary | None) -> str:
    """How the run's model was distilled: the run's own objective (distill), or that of the run whose model a
    fine-tuning started from; "-" for a model that was not distilled."""
    for candidate in [path, *([Path(summary.model).parent] if summary and summary.model else [])]:
        run = read_run(candidate)
        settings = run["settings"] if run else {}
        if "objective" in settings:
            objective = " + ".join(settings["objective"])
            if objective == "minilm" and settings.get("value_relation") is False:
                objective = "minilm (no value relation)"
            return objective + (" (task-specific)" if settings.get("task") else "")
    return "-"


SQUAD_COLUMNS = (("f1", "F1"), ("exact", "EM"), ("HasAns_f1", "HasAns F1"), ("NoAns_f1", "NoAns F1"))


def table(runs: list[dict], teacher: dict | None) -> str:
    """Markdown table: model, objective, layers x hidden, parameters, dev score(s), retention, examples/s,
    speed-up. SQuAD runs show F1, EM and the HasAns/NoAns F1 (retention is of F1)."""
    metric = runs[0]["summary"].metric
    scores = SQUAD_COLUMNS if metric == "squad" else (("main", f"dev {metric}"),)
    lines = ["| model | objective | layers x hidden | parameters | " + " | ".join(name for _, name in scores)
             + " | retention | examples/s | speed-up |",
             "|---|---|---|---:|" + "---:|" * len(scores) + "---:|---:|---:|"]
    for run in runs:
        s = run["summary"]
        retention = speedup = "-"
        if teacher is not None:
            t = teacher["summary"]
            retention = f"{100 * s.best['main'] / t.best['main']:.1f}%"
            speedup = f"{s.examples_per_s / t.examples_per_s:.2f}x"
        values = " | ".join(f"{s.best.get(key, float('nan')):.2f}" for key, _ in scores)
        lines.append(f"| {run['name']} | {run['objective']} | {s.layers}x{s.hidden} | "
                     f"{s.parameters / 1e6:.1f}M | {values} | {retention} | {s.examples_per_s:,.0f} | {speedup} |")
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


def measure_speeds(runs: list[dict], cfg: ReportConfig) -> None:
    """Re-measure each run's best model on the same inputs, one after another in this process: sentence-task
    runs on the texts of `speed_data`, SQuAD runs on their task's dev questions (in the windows they were
    trained with).

    Speeds written when each run ended were taken under whatever else the machine was doing; a
    comparison needs them measured side by side.
    """
    from itertools import islice

    from minilm.data.corpora import resolve
    from minilm.deploy.layout import is_exported
    from minilm.deploy.runtime import load_inference_model, load_task_model
    from minilm.models.source import resolve_model
    from minilm.tasks import load_task
    from minilm.tasks.kinds import SPAN, kind_named
    from minilm.tasks.scoring import inference_speed, text_speed
    from minilm.train.device_policy import pick_device

    device = pick_device(cfg.device)
    texts = None
    for run in runs:
        best, summary = run["model_dir"], run["summary"]
        kind = kind_named(summary.kind)
        source = resolve_model(best)  # a PyTorch checkpoint, or an export directory's copy of one
        pytorch = None if is_exported(best) else source
        if kind is SPAN:
            data = load_task(summary.task_settings(), "dev").head(cfg.speed_examples)
            model = load_task_model(best, data, source=pytorch).to(device)
            speed = inference_speed(model, source.tokenizer, data, summary.max_length, device, qa=summary.windows())
        else:
            if texts is None:
                require(cfg.speed_data is not None, f"{run['dir']} is a sentence-task run: pass --speed-data TEXTS "
                                                    "to time it on")
                every_text = (text for source in resolve([cfg.speed_data]) for text in source.texts(None))
                texts = [(t,) for t in islice(every_text, cfg.speed_examples)]
                require(len(texts) > 0, f"no texts in {cfg.speed_data}")
            labels = source.config.num_labels if kind.head == "classification" else None
            model = load_inference_model(best, kind.head, labels, source=pytorch)
            speed = text_speed(model, source.tokenizer, texts, summary.max_length, device)
        summary.examples_per_s, summary.speed_batch_size = speed["examples_per_s"], speed["speed_batch_size"]


def report(cfg: ReportConfig) -> Path:
    require(len(cfg.runs) > 0, "no runs given: pass run directories with --runs")
    check_writable(cfg.output, "--output")
    every = [load_run(r) for r in cfg.runs]
    runs = [r for r in every if r["summary"] is not None]  # scored runs: the table
    metrics = {r["summary"].metric for r in runs}
    require(len(metrics) <= 1, f"the runs use different metrics ({', '.join(sorted(metrics))}); report one task at a time")
    teacher = load_run(cfg.teacher_run) if cfg.teacher_run else None
    if teacher is not None:
        require(teacher["summary"] is not None, f"teacher run {cfg.teacher_run} has no dev score (metrics.json)")
        teacher = next((r for r in runs if r["dir"] == teacher["dir"]), teacher)
    if cfg.exported:
        require(runs, "--exported rows are scored on the runs' task: give at least one run with a dev score")
        runs += [load_exported(directory, runs[0]["summary"]) for directory in cfg.exported]
    if cfg.speed_data or cfg.remeasure or cfg.exported:
        measure_speeds(runs if teacher is None or teacher in runs else runs + [teacher], cfg)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    text = ["# Runs", "", table(runs, teacher) if runs else "(no run has a dev score yet)", ""]
    if plot(every, "loss", "training loss", out / "loss.png"):
        text.append("![training loss](loss.png)")
    if runs and plot(runs, "dev_main", f"dev {runs[0]['summary'].metric}", out / "dev.png"):
        text.append("![dev metric](dev.png)")
    (out / "report.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return out / "report.md"
