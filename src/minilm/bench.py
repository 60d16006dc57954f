"""`minilm bench`: the distillation step, ours versus a faithful naive one, measured in one run.

Rows, for each MiniLM version asked for (v1: L_AT + L_VR; v2: Q-Q, K-K, V-V with `relation_heads` heads):
* distillation step at each of `seq_lengths` (batch x seq random tokens, no padding), and for the packaged
  teacher on real SST-2 batches too (naive: padded to 128 as the original project did; ours: dynamic
  padding with length grouping), for `naive` (`minilm.naive`: HF models called with output_attentions and
  output_hidden_states, eager, float32) and `fast` (our training step: objective, device step policy and
  optimizer step as `minilm distill` runs them) in float32 and bf16;
* each row: tokens/s, peak memory, the fraction of the step spent in the loss (the loss terms' forward and
  backward from the models' outputs, timed on their own after the steps), and useful FLOPs as a fraction
  of the matrix-multiply peak of the row's precision, measured in the row's own process (MFU);
* our step's rows run in fp32 and, where the device multiplies bf16 natively (`policy.native_bf16`), bf16;
  on a CPU without native bf16 the bf16 rows are left out (and said so) unless `--precisions` asks;
* the losses of the fast step against the naive step's, same batch and weights;
* inference: teacher vs student examples/s at batch 32 and latency at batch 1.

`--preset bert-base` builds a randomly initialised BERT-base-shaped teacher (12 x 768, 12 heads, FFN 3,072,
vocabulary 30,522, 512 positions) and the seed's 6 x 768 student: the paper's shapes, no weights needed.

Each step row runs in its own spawned process, so that its peak memory (`measure.PeakMemory`) is its own.
Every CPU row runs with `keep_freed_memory` (what our training does), naive rows included, so that the
ratios measure the code; one extra naive row shows glibc's default allocator. Rates are medians of
per-step rates; each setting's rows run `rounds` times in turn (naive, fast, naive, fast, ...) and a row's
rate is the median over all its rounds' steps: rows compared with each other saw the same drift.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path
from queue import Empty
from types import SimpleNamespace

import numpy as np
import torch

from minilm.config import BenchConfig, Objective, Student, Training
from minilm.corpora import data_root
from minilm.errors import require
from minilm.measure import PeakMemory, fast_step_flops, matmul_tflops, sync
from minilm.naive import naive_loss_terms, naive_losses, naive_outputs
from minilm.policy import cpu_features, native_bf16, pick_device
from minilm.rundir import check_writable

PRESETS = {"bert-base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                             intermediate_size=3072, max_position_embeddings=512)}
STUDENT_DEFAULTS = {None: (3, 384), "bert-base": (6, 768)}  # (layers, hidden): packaged teacher, BERT-base preset


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def versions_of(cfg: BenchConfig) -> list[str]:
    return cfg.versions or (["v1", "v2"] if cfg.preset else ["v1"])


def precisions_of(cfg: BenchConfig, device: torch.device) -> tuple[list[str], str | None]:
    """Our step's precisions, and the reason bf16 is left out when it is: asked for, or fp32 and, where the
    device multiplies bf16 natively, bf16."""
    if cfg.precisions:
        return cfg.precisions, None
    native, why = native_bf16(device)
    return (["fp32", "bf16"], None) if native else \
        (["fp32"], f"bf16 rows left out: {why} (--precisions fp32 bf16 runs them anyway)")


def bench_student(cfg: BenchConfig) -> Student:
    layers, hidden = STUDENT_DEFAULTS[cfg.preset]
    return Student(student_layers=cfg.student_layers or layers, student_hidden=cfg.student_hidden or hidden,
                   student_heads=cfg.student_heads, student_init="random")


def bench_models(cfg: BenchConfig, attn: str, device):
    """(frozen teacher, student in training mode) on `device`, the same weights for the same settings."""
    from minilm.models import freeze, load_encoder, student_from_teacher

    if cfg.preset:
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        teacher = BertModel(BertConfig(**PRESETS[cfg.preset], attn_implementation=attn))
    else:
        teacher = load_encoder(cfg.teacher, attn_implementation=attn)
    freeze(teacher).to(device)
    student = student_from_teacher(teacher, bench_student(cfg), seed=0, attn_implementation=attn)
    return teacher, student.to(device).train()


def bench_batches(cfg: BenchConfig, seq: int | str, count: int, ragged: bool = False) -> list[dict]:
    """`count` batches: random tokens (batch x seq; `ragged`: example i keeps a decreasing share of real tokens),
    or real SST-2 sentences tokenized by the teacher's tokenizer ("sst2", "sst2-padded")."""
    from minilm.data import length_grouped_batches, pad_batch

    if isinstance(seq, int):
        g = torch.Generator().manual_seed(0)
        batches = []
        for _ in range(count):
            mask = torch.ones(cfg.batch_size, seq, dtype=torch.long)
            if ragged:
                for i in range(cfg.batch_size):
                    mask[i, max(2, seq - i * seq // (2 * cfg.batch_size)):] = 0
            batches.append({"input_ids": torch.randint(1000, 29000, (cfg.batch_size, seq), generator=g) * mask,
                            "attention_mask": mask})
        return batches
    from minilm.models import load_tokenizer
    from minilm.tasks.glue import read_sentence_task

    path = sst2_path(cfg)
    sentences = [t[0] for t in read_sentence_task("sst2", "train", str(path.parent)).texts[:cfg.batch_size * 50]]
    ids = load_tokenizer(cfg.teacher)(sentences, truncation=True, max_length=128)["input_ids"]
    if seq == "sst2-padded":  # the original project: every batch padded to 128
        return [pad_batch(ids[i * cfg.batch_size:(i + 1) * cfg.batch_size], 0, min_width=128) for i in range(count)]
    order = length_grouped_batches(np.asarray([len(x) for x in ids]), cfg.batch_size, seed=0, epoch=0)
    return [pad_batch([ids[j] for j in order[i]], 0) for i in range(count)]


def sst2_path(cfg: BenchConfig) -> Path:
    return Path(cfg.sst2) if cfg.sst2 else data_root() / "glue" / "SST-2" / "train.tsv"


def bench_objective(cfg: BenchConfig, version: str) -> Objective:
    return Objective(objective="minilmv2" if version == "v2" else "minilm", relation_heads=cfg.relation_heads,
                     relation_kernel=cfg.relation_kernel)


def _fast_step(cfg, version, precision, teacher, student, device):
    """The training step `minilm distill` runs, and a probe timing its loss terms alone (forward + backward)."""
    from minilm.objectives import autograd_copy, build_objective, distill_losses
    from minilm.policy import apply_step_policy
    from minilm.training import autocast, make_accelerator, make_optimizer, optimizer_step

    objective = build_objective(bench_objective(cfg, version), teacher, student)
    apply_step_policy(device.type, precision, cfg.compile, [student], teacher)
    model = torch.compile(objective.student_view) if cfg.compile else objective.student_view
    accelerator = make_accelerator(device.type)
    optimizer, scheduler = make_optimizer(student, Training(lr=1e-5), 100)

    def step(b):
        loss = sum(distill_losses(objective, model, b, precision, device.type).values())
        optimizer_step(accelerator, student, optimizer, scheduler, loss, grad_clip=1.0)

    def loss_probe(b) -> float:
        inputs = objective.inputs(b)
        with torch.inference_mode(), autocast(device.type, precision):
            t, _ = objective.teacher_view(**inputs)
            s, _ = objective.student_view(**inputs)
        t, s = autograd_copy(t), type(s)(*(x.clone().requires_grad_() for x in s))
        sync(device)
        start = time.perf_counter()
        sum(objective.losses(t, s, b).values()).backward()
        sync(device)
        return time.perf_counter() - start
    return step, loss_probe


def _naive_step(version, relation_heads, teacher, student, device):
    """What a plain training loop does, and the same loss probe over its outputs."""
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5)

    def step(b):
        loss = sum(naive_losses(teacher, student, b, version, relation_heads).values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def loss_probe(b) -> float:
        with torch.no_grad():
            t_out, s_out = naive_outputs(teacher, student, b)
        stand_in = SimpleNamespace(attentions=[s_out.attentions[-1].clone().requires_grad_()],
                                   hidden_states=[s_out.hidden_states[-2].clone().requires_grad_(), None])
        sync(device)
        start = time.perf_counter()
        sum(naive_loss_terms(teacher, student, t_out, stand_in, b["attention_mask"], version,
                             relation_heads).values()).backward()
        sync(device)
        student.zero_grad(set_to_none=True)
        return time.perf_counter() - start
    return step, loss_probe


def _step_worker(cfg: BenchConfig, row: dict, queue) -> None:
    """One row: build models and batches, warm up, time `cfg.steps` optimizer steps one by one, then the loss.

    row: mode (naive, fast), precision, seq, allocator, version. allocator "kept" applies
    `keep_freed_memory` (what `minilm distill` does on CPU), so that fast/naive ratios measure the code
    alone; "default" leaves glibc's settings, for naive rows (the fast row takes the device step policy of
    `minilm distill`, which keeps freed memory on CPU in any case).
    """
    from minilm.policy import keep_freed_memory

    torch.manual_seed(0)
    device = torch.device(row["device"])
    if device.type == "cpu" and row["allocator"] == "kept":
        keep_freed_memory()
    teacher, student = bench_models(cfg, "eager" if row["mode"] == "naive" else "sdpa", device)
    warmup = 2
    batches = [{k: v.to(device) for k, v in b.items()} for b in bench_batches(cfg, row["seq"], cfg.steps + warmup)]
    if row["mode"] == "fast":
        step, loss_probe = _fast_step(cfg, row["version"], row["precision"], teacher, student, device)
    else:
        step, loss_probe = _naive_step(row["version"], cfg.relation_heads, teacher, student, device)
    # This process's own matmul peak in the row's precision, before and after its steps: on a shared machine
    # the rate a row could reach drifts between rows, and each row's fraction of peak is against its own.
    dtype = DTYPES[row["precision"]]
    row_peak = matmul_tflops(dtype, device, seconds=1.0)
    # Peak memory from before the first step: with freed memory kept, the warm-up steps already hold
    # the step's peak, so measuring only the timed steps would show nothing.
    with PeakMemory(device) as memory:
        for b in batches[:warmup]:  # warm-up: allocator, kernel choice, compilation
            step(b)
        seconds = []
        for b in batches[warmup:]:
            sync(device)
            start = time.perf_counter()
            step(b)
            sync(device)
            seconds.append(time.perf_counter() - start)
    loss_seconds = [loss_probe(b) for b in batches[warmup:]]
    row_peak = max(row_peak, matmul_tflops(dtype, device, seconds=1.0))
    batches = batches[warmup:]
    tokens = [int(b["attention_mask"].sum()) for b in batches]
    relations = 2 if row["version"] == "v1" else 3
    flops = [fast_step_flops(teacher.config, student.config, *b["input_ids"].shape, relations) for b in batches]
    padded = sum(b["attention_mask"].numel() for b in batches)
    # Medians of per-step rates: one step slowed by another tenant of a shared machine moves a mean.
    queue.put({**row, "step_tokens": tokens, "step_flops": flops, "step_s": seconds, "loss_s": loss_seconds,
               "tokens_per_s": float(np.median([n / t for n, t in zip(tokens, seconds)])),
               "tokens_per_s_mean": sum(tokens) / sum(seconds),
               "loss_fraction": float(np.median(loss_seconds) / np.median(seconds)),
               "peak_mem_mb": memory.used / 2 ** 20, "padding": 1 - sum(tokens) / padded,
               "batch_shape": list(batches[0]["input_ids"].shape),
               "flops": float(np.median([f / t for f, t in zip(flops, seconds)])), "row_peak_tflops": row_peak})


def merge_rounds(runs: list[dict]) -> dict:
    """One row from the same row's runs in several rounds: rates are medians over all their steps,
    peak memory and the matmul peak (of the row's precision) the largest seen; `rounds_tokens_per_s` keeps
    each round's rate."""
    seconds = [t for r in runs for t in r["step_s"]]
    tokens = [n for r in runs for n in r["step_tokens"]]
    flops = [f for r in runs for f in r["step_flops"]]
    loss_seconds = [t for r in runs for t in r["loss_s"]]
    row = dict(runs[0], step_s=seconds, step_tokens=tokens, step_flops=flops, loss_s=loss_seconds, rounds=len(runs),
               rounds_tokens_per_s=[r["tokens_per_s"] for r in runs],
               tokens_per_s=float(np.median([n / t for n, t in zip(tokens, seconds)])),
               tokens_per_s_mean=sum(tokens) / sum(seconds),
               flops=float(np.median([f / t for f, t in zip(flops, seconds)])),
               peak_mem_mb=max(r["peak_mem_mb"] for r in runs),
               row_peak_tflops=max(r["row_peak_tflops"] for r in runs))
    if loss_seconds:
        row["loss_fraction"] = float(np.median(loss_seconds) / np.median(seconds))
    row["peak_fraction"] = row["flops"] / 1e12 / row["row_peak_tflops"]
    return row


def _run_isolated(cfg: BenchConfig, row: dict) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_step_worker, args=(cfg, row, queue))
    process.start()
    while True:  # a worker that dies (out of memory, a crash) must not leave us waiting forever
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            require(process.is_alive(), f"the {row['mode']} {row['version']} {row['precision']} step at {row['seq']} "
                                        f"died (exit code {process.exitcode}); try a smaller --batch-size")
    process.join()
    return result


# Largest relative loss difference, fast step vs naive float32 step, counted as agreement: bf16 rounds the
# projections to 8 significant bits; a teacher whose dropout was left on by mistake (a bug this check
# caught) differs by far more than either bound (docs/performance.md has the measured differences).
AGREEMENT_TOLERANCE = {"fp32": 1e-3, "bf16": 1e-2}


def agreement(cfg: BenchConfig, device, version: str = "v1", precisions: tuple[str, ...] = ("fp32", "bf16")) -> dict:
    """Fast step's losses (its kernels swapped in, as in training) vs the naive float32 step's, same padded
    batch and weights, students in eval mode: {precision: {loss: {fast, naive, rel_diff}}}."""
    from minilm.objectives import build_objective, distill_losses
    from minilm.policy import apply_step_policy

    teacher, student = bench_models(cfg, "eager", device)  # the naive step's models
    student.eval()  # no dropout, so both compute the same function
    seq = 128 if cfg.preset else "sst2"
    batch = {k: v.to(device) for k, v in bench_batches(cfg, seq, 1, ragged=True)[0].items()}
    with torch.no_grad():
        naive = naive_losses(teacher, student, batch, version, cfg.relation_heads)
    result = {}
    for precision in precisions:
        fast_teacher, fast_student = bench_models(cfg, "sdpa", device)  # the same weights (same seed)
        objective = build_objective(bench_objective(cfg, version), fast_teacher, fast_student)
        apply_step_policy(device.type, precision, cfg.compile, [fast_student], fast_teacher)
        fast_student.eval()
        with torch.no_grad():
            fast = distill_losses(objective, objective.student_view, batch, precision, device.type)
        result[precision] = {k: {"fast": float(fast[k]), "naive": float(naive[k]),
                                 "rel_diff": abs(float(fast[k]) - float(naive[k])) / abs(float(naive[k]))}
                             for k in fast}
    return result


def inference(cfg: BenchConfig, device) -> dict:
    """Teacher vs student: examples/s at batch 32 and median latency at batch 1, on SST-2 dev (random
    128-token sequences with a preset). The two models take turns batch by batch (and example by
    example), so that a drift in the shared machine's speed reaches both alike."""
    from minilm.data import pad_batch

    teacher, student = bench_models(cfg, "sdpa", device)
    models = {"teacher": teacher.eval(), "student": student.eval()}
    if cfg.preset:
        g = torch.Generator().manual_seed(1)
        ids = [torch.randint(1000, 29000, (128,), generator=g).tolist() for _ in range(640)]
    else:
        from minilm.models import load_tokenizer
        from minilm.tasks.glue import read_sentence_task

        sentences = [t[0] for t in read_sentence_task("sst2", "dev", str(sst2_path(cfg).parent)).texts]
        ids = load_tokenizer(cfg.teacher)(sentences, truncation=True, max_length=128)["input_ids"]
    batches = [{k: v.to(device) for k, v in pad_batch(ids[i:i + 32], 0).items()} for i in range(0, len(ids), 32)]
    singles = [{k: v.to(device) for k, v in pad_batch([x], 0).items()} for x in ids[:200]]

    def timed(model, batch) -> float:
        sync(device)
        start = time.perf_counter()
        model(**batch)
        sync(device)
        return time.perf_counter() - start

    seconds = {name: 0.0 for name in models}
    latencies: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            model(**batches[0])  # warm-up
        for b in batches:
            for name, model in models.items():
                seconds[name] += timed(model, b)
        for b in singles:
            for name, model in models.items():
                latencies[name].append(timed(model, b))
    result = {name: {"examples_per_s": len(ids) / seconds[name],
                     "latency_ms_b1": 1000 * float(np.median(latencies[name]))} for name in models}
    result["speedup"] = result["student"]["examples_per_s"] / result["teacher"]["examples_per_s"]
    return result


def check_shapes(cfg: BenchConfig, versions: list[str]) -> None:
    """Fail before any row runs on shapes the teacher cannot take: positions, student size, head counts."""
    from transformers import BertConfig

    from minilm.models import load_model_config, student_config
    from minilm.objectives.minilm import check_heads

    teacher = BertConfig(**PRESETS[cfg.preset]) if cfg.preset else load_model_config(cfg.teacher)
    for seq in cfg.seq_lengths:
        require(seq <= teacher.max_position_embeddings,
                f"seq_lengths: {seq} exceeds the teacher's {teacher.max_position_embeddings} positions")
    student = student_config(teacher, bench_student(cfg), 0.1)
    for version in versions:
        check_heads(version, teacher, student, cfg.relation_heads)


def plan_rows(cfg: BenchConfig, device: torch.device, precisions: list[str] = ("fp32", "bf16")) -> list[list[dict]]:
    """The rows to run, grouped by setting (version, sequence): each group's rows run in turn per round."""
    groups = []
    for version in versions_of(cfg):
        settings = [*cfg.seq_lengths] + (["sst2"] if not cfg.preset and version == "v1" else [])
        for seq in settings:
            naive_seq = "sst2-padded" if seq == "sst2" else seq
            base = dict(version=version, device=device.type, allocator="kept")
            group = [dict(base, mode="naive", precision="fp32", seq=naive_seq)]
            group += [dict(base, mode="fast", precision=precision, seq=seq) for precision in precisions]
            if device.type == "cpu" and not groups:  # what a naive loop gets without our allocator setting
                group.insert(0, dict(group[0], allocator="default"))
            groups.append(group)
    return groups


def bench_inference(cfg: BenchConfig) -> dict:
    """`--inference-models`: inference speed of each model, side by side, on SST-2 dev (`minilm.inference`)."""
    from minilm.inference import compare, format_inference
    from minilm.tasks.glue import read_sentence_task

    require(sst2_path(cfg).parent.joinpath("dev.tsv").is_file(),
            f"SST-2 dev.tsv not found beside {sst2_path(cfg)}; pass --sst2 PATH/train.tsv")
    texts = [t[0] for t in read_sentence_task("sst2", "dev", str(sst2_path(cfg).parent)).texts]
    rows = compare(cfg.inference_models, texts, cfg.inference_batch_sizes, cfg.rounds)
    result = {"cpu": cpu_features(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "texts": f"SST-2 dev ({len(texts)} sentences)", "rounds": cfg.rounds, "inference": rows}
    return finish(cfg, result, format_inference(rows))


def finish(cfg: BenchConfig, result: dict, table: str) -> dict:
    """Print the table; write the results to --output."""
    print(table)
    if cfg.output:
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.output).write_text(json.dumps(result, indent=1))
    return result


def bench(cfg: BenchConfig) -> dict:
    if cfg.output:
        check_writable(Path(cfg.output).parent, "the directory of --output")
    if cfg.inference_models:
        return bench_inference(cfg)
    device = pick_device(cfg.device)
    require(cfg.preset or sst2_path(cfg).is_file(), f"SST-2 train.tsv not found at {sst2_path(cfg)}; pass --sst2 PATH")
    versions = versions_of(cfg)
    check_shapes(cfg, versions)
    precisions, left_out = precisions_of(cfg, device)
    if left_out:
        print(left_out)
    peak = {p: matmul_tflops(DTYPES[p], device) for p in precisions}
    print(f"matmul peak on {device}: " + ", ".join(f"{p} {v:.2f} TFLOP/s" for p, v in peak.items())
          + f" ({torch.get_num_threads()} threads)")
    rows = []
    for group in plan_rows(cfg, device, precisions):
        runs: list[list[dict]] = [[] for _ in group]
        for round_ in range(cfg.rounds):
            for i, row in enumerate(group):
                result = _run_isolated(cfg, row)
                runs[i].append(result)
                print(f"  round {round_ + 1}/{cfg.rounds}  {row['version']} {row['mode']:5s} {row['precision']:4s} "
                      f"{str(row['seq']):12s} {row['allocator']:7s} {result['tokens_per_s']:9,.0f} tok/s  "
                      f"{result['peak_mem_mb']:8,.0f} MB  loss {100 * result['loss_fraction']:4.1f}% of step  "
                      f"({row['precision']} peak {result['row_peak_tflops']:.2f} TFLOP/s)", flush=True)
        rows += [merge_rounds(r) for r in runs]
    peak_after = {p: matmul_tflops(DTYPES[p], device) for p in precisions}
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
              "config": {k: v for k, v in vars(cfg).items()}, "matmul_tflops": peak,
              "matmul_tflops_after": peak_after, "steps": rows, "left_out": left_out,
              "agreement": {v: agreement(cfg, device, v, tuple(precisions)) for v in versions},
              "inference": inference(cfg, device)}
    return finish(cfg, result, format_table(result))


def format_table(result: dict) -> str:
    """Markdown: fast vs naive per (version, sequence setting), then inference and loss agreement."""
    lines = ["| batch | MiniLM | step | precision | malloc | tokens/s | vs naive | peak MB | vs naive | "
             "loss % of step | MFU (% of its precision's peak) | its peak TFLOP/s |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def key(r):
        return r["version"], str(r["seq"]).replace("-padded", "")

    naive = {key(r): r for r in result["steps"] if r["mode"] == "naive" and r["allocator"] == "kept"}
    for r in result["steps"]:
        base = naive[key(r)]
        shape = "x".join(map(str, r["batch_shape"])) + (" SST-2" if "sst2" in str(r["seq"]) else "")
        loss = f"{100 * r['loss_fraction']:.1f}%" if "loss_fraction" in r else "-"
        lines.append(f"| {shape} | {r['version']} | {r['mode']} | {r['precision']} | "
                     f"{r['allocator']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['peak_mem_mb']:,.0f} | "
                     f"{r['peak_mem_mb'] / max(base['peak_mem_mb'], 1e-9):.2f}x | {loss} | "
                     f"{100 * r['peak_fraction']:.1f}% | {r['row_peak_tflops']:.2f} |")
    inf = result["inference"]
    lines += ["", "| model | examples/s (batch 32) | latency ms (batch 1) |", "|---|---:|---:|"]
    for name in ("teacher", "student"):
        lines.append(f"| {name} | {inf[name]['examples_per_s']:,.0f} | {inf[name]['latency_ms_b1']:.1f} |")
    lines.append(f"\nstudent inference speed-up: {inf['speedup']:.2f}x")
    for version, by_precision in result["agreement"].items():
        for precision, agree in by_precision.items():
            ok = all(v["rel_diff"] < AGREEMENT_TOLERANCE[precision] for v in agree.values())
            lines.append(f"{version}: fast ({precision}) vs naive (fp32) loss, same batch and weights: "
                         + ", ".join(f"{k} rel diff {v['rel_diff']:.2e}" for k, v in agree.items())
                         + (f" -> agree (< {AGREEMENT_TOLERANCE[precision]:g})" if ok
                            else f" -> DISAGREE (>= {AGREEMENT_TOLERANCE[precision]:g})"))
    return "\n".join(lines)
