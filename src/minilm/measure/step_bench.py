"""The distillation-step benchmark's machinery: one row (a step setting) in a process of its own, rounds merged,
the fast step's losses checked against the naive step's, and teacher-against-student inference.

A row is (MiniLM version, sequence setting, mode naive|fast, precision, allocator). `run_isolated` runs it in a
spawned process, so that its peak memory (`peak.PeakMemory`) and its own matmul peak are its own; `merge_rounds`
makes one row of the same row's rounds. The fast step is `minilm distill`'s (the objective, the device step
policy, `train.loop.loss_terms` and the optimizer step); the naive step is `naive_step.py`'s.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass, replace
from pathlib import Path
from queue import Empty
from types import SimpleNamespace

import numpy as np
import torch

from minilm.config.sections import (DEFAULT_STUDENT_HIDDEN, DEFAULT_STUDENT_LAYERS, Objective, Relations, Student,
                                    Training)
from minilm.errors import require
from minilm.measure.naive_step import naive_loss_terms, naive_losses, naive_outputs
from minilm.measure.peak import PeakMemory, fast_step_flops, matmul_tflops, sync

PRESETS = {"bert-base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                             intermediate_size=3072, max_position_embeddings=512)}
# (layers, hidden): the default student of the packaged teacher, and the paper's 6x768 of the BERT-base preset
STUDENT_SHAPES = {None: (DEFAULT_STUDENT_LAYERS, DEFAULT_STUDENT_HIDDEN), "bert-base": (6, 768)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
NAIVE_PADDING = 128  # the original project padded every SST-2 batch to 128 tokens


@dataclass
class StepSetup:
    """What every row of one benchmark shares. student: its layers and width decided (`with_preset_shape`)."""

    teacher: str
    preset: str | None
    student: Student
    relations: Relations
    batch_size: int
    steps: int
    sst2: Path
    compile: bool = False

    @property
    def relation_heads(self) -> int:
        width = self.student.student_hidden
        return self.relations.heads_for(width, width)  # the same heads for our step and the naive one


def with_preset_shape(student: Student, preset: str | None) -> Student:
    """The student's layers and width where they were left out: the packaged teacher's 3x384, a preset's shape."""
    layers, hidden = STUDENT_SHAPES[preset]
    return replace(student, student_layers=student.student_layers or layers,
                   student_hidden=student.student_hidden or hidden)


def step_objective(setup: StepSetup, version: str) -> Objective:
    return Objective(objective=["minilmv2" if version == "v2" else "minilm"])


def bench_models(setup: StepSetup, attn: str | None, device):
    """(frozen teacher, student in training mode) on `device`, the same weights for the same settings."""
    from minilm.models.loading import freeze, load_encoder
    from minilm.models.students import student_from_teacher

    if setup.preset:
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        teacher = BertModel(BertConfig(**PRESETS[setup.preset], attn_implementation=attn or "sdpa"))
    else:
        teacher = load_encoder(setup.teacher, attn_implementation=attn)
    freeze(teacher).to(device)
    student = student_from_teacher(teacher, setup.student, seed=0, attn_implementation=attn)
    return teacher, student.to(device).train()


def bench_batches(setup: StepSetup, seq: int | str, count: int, ragged: bool = False) -> list[dict]:
    """`count` batches: random tokens (batch x seq; `ragged`: example i keeps a decreasing share of real tokens),
    or real SST-2 sentences tokenized by the teacher's tokenizer ("sst2", "sst2-padded")."""
    from minilm.data.batches import length_grouped_batches, pad_batch

    if isinstance(seq, int):
        g = torch.Generator().manual_seed(0)
        batches = []
        for _ in range(count):
            mask = torch.ones(setup.batch_size, seq, dtype=torch.long)
            if ragged:
                for i in range(setup.batch_size):
                    mask[i, max(2, seq - i * seq // (2 * setup.batch_size)):] = 0
            batches.append({"input_ids": torch.randint(1000, 29000, (setup.batch_size, seq), generator=g) * mask,
                            "attention_mask": mask})
        return batches
    from minilm.models.loading import load_tokenizer
    from minilm.tasks.glue import read_sentence_task

    sentences = [t[0] for t in read_sentence_task("sst2", "train", str(setup.sst2.parent)).texts[:setup.batch_size * 50]]
    ids = load_tokenizer(setup.teacher)(sentences, truncation=True, max_length=NAIVE_PADDING)["input_ids"]
    if seq == "sst2-padded":  # the original project: every batch padded to 128
        return [pad_batch(ids[i * setup.batch_size:(i + 1) * setup.batch_size], 0, min_width=NAIVE_PADDING) for i in range(count)]
    order = length_grouped_batches(np.asarray([len(x) for x in ids]), setup.batch_size, seed=0, epoch=0)
    return [pad_batch([ids[j] for j in order[i]], 0) for i in range(count)]


def _fast_step(setup, version, precision, teacher, student, device):
    """The training step `minilm distill` runs, and a probe timing its loss terms alone (forward + backward)."""
    from minilm.objectives import autograd_copy, build_objective, distill_losses
    from minilm.train.device_policy import apply_step_policy
    from minilm.train.loop import loss_terms
    from minilm.train.optimization import autocast, make_accelerator, make_optimizer, optimizer_step

    objective = build_objective(step_objective(setup, version), teacher, student, relations=setup.relations)
    apply_step_policy(device.type, precision, setup.compile, [student], teacher)
    model = torch.compile(objective.student_view) if setup.compile else objective.student_view
    accelerator = make_accelerator(device.type)
    optimizer, scheduler = make_optimizer(student, Training(lr=1e-5), 100)

    def step(b):
        terms = loss_terms(model, b, lambda m, batch: distill_losses(objective, m, batch), device.type, precision)
        optimizer_step(accelerator, student, optimizer, scheduler, sum(terms.values()), grad_clip=1.0)

    def loss_probe(b) -> float:
        inputs = objective.inputs(b)
        with torch.inference_mode(), autocast(device.type, precision):
            t, _ = objective.teacher_view(**inputs)
            s, _ = objective.student_view(**inputs)
        t = autograd_copy(t)  # MiniLM's one reading of each model: its layer's `QKV`
        s = [r._replace(**{k: getattr(r, k).clone().requires_grad_() for k in ("query", "key", "value")}) for r in s]
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


def step_worker(setup: StepSetup, row: dict, queue) -> None:
    """One row: build models and batches, warm up, time `setup.steps` optimizer steps one by one, then the loss.

    row: mode (naive, fast), precision, seq, allocator, version. allocator "kept" applies
    `keep_freed_memory` (what `minilm distill` does on CPU), so that fast/naive ratios measure the code
    alone; "default" leaves glibc's settings, for naive rows (the fast row takes the device step policy of
    `minilm distill`, which keeps freed memory on CPU in any case).
    """
    from minilm.train.device_policy import keep_freed_memory

    torch.manual_seed(0)
    device = torch.device(row["device"])
    if device.type == "cpu" and row["allocator"] == "kept":
        keep_freed_memory()
    teacher, student = bench_models(setup, "eager" if row["mode"] == "naive" else None, device)
    warmup = 2
    batches = [{k: v.to(device) for k, v in b.items()} for b in bench_batches(setup, row["seq"], setup.steps + warmup)]
    if row["mode"] == "fast":
        step, loss_probe = _fast_step(setup, row["version"], row["precision"], teacher, student, device)
    else:
        step, loss_probe = _naive_step(row["version"], setup.relation_heads, teacher, student, device)
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


def run_isolated(setup: StepSetup, row: dict) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=step_worker, args=(setup, row, queue))
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


def agreement(setup: StepSetup, device, version: str = "v1", precisions: tuple[str, ...] = ("fp32", "bf16")) -> dict:
    """Fast step's losses (its kernels swapped in, as in training) vs the naive float32 step's, same padded
    batch and weights, students in eval mode: {precision: {loss: {fast, naive, rel_diff}}}."""
    from minilm.objectives import build_objective, distill_losses
    from minilm.train.device_policy import apply_step_policy
    from minilm.train.loop import loss_terms

    teacher, student = bench_models(setup, "eager", device)  # the naive step's models
    student.eval()  # no dropout, so both compute the same function
    seq = NAIVE_PADDING if setup.preset else "sst2"
    batch = {k: v.to(device) for k, v in bench_batches(setup, seq, 1, ragged=True)[0].items()}
    with torch.no_grad():
        naive = naive_losses(teacher, student, batch, version, setup.relation_heads)
    result = {}
    for precision in precisions:
        fast_teacher, fast_student = bench_models(setup, None, device)  # the same weights (same seed)
        objective = build_objective(step_objective(setup, version), fast_teacher, fast_student,
                                    relations=setup.relations)
        apply_step_policy(device.type, precision, setup.compile, [fast_student], fast_teacher)
        fast_student.eval()
        with torch.no_grad():
            fast = loss_terms(objective.student_view, batch, lambda m, b: distill_losses(objective, m, b),
                              device.type, precision)
        result[precision] = {k: {"fast": float(fast[k]), "naive": float(naive[k]),
                                 "rel_diff": abs(float(fast[k]) - float(naive[k])) / abs(float(naive[k]))}
                             for k in fast}
    return result


def inference(setup: StepSetup, device) -> dict:
    """Teacher vs student: examples/s at batch 32 and median latency at batch 1, on SST-2 dev (random
    128-token sequences with a preset). The two models take turns batch by batch (and example by
    example), so that a drift in the shared machine's speed reaches both alike."""
    from minilm.data.batches import pad_batch

    teacher, student = bench_models(setup, None, device)
    models = {"teacher": teacher.eval(), "student": student.eval()}
    if setup.preset:
        g = torch.Generator().manual_seed(1)
        ids = [torch.randint(1000, 29000, (128,), generator=g).tolist() for _ in range(640)]
    else:
        from minilm.models.loading import load_tokenizer
        from minilm.tasks.glue import read_sentence_task

        sentences = [t[0] for t in read_sentence_task("sst2", "dev", str(setup.sst2.parent)).texts]
        ids = load_tokenizer(setup.teacher)(sentences, truncation=True, max_length=NAIVE_PADDING)["input_ids"]
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


def check_shapes(setup: StepSetup, versions: list[str], seq_lengths: list[int]) -> None:
    """Fail before any row runs on shapes the teacher cannot take: positions, student size, head counts."""
    from transformers import BertConfig

    from minilm.models.loading import load_model_config
    from minilm.models.plan import student_shape
    from minilm.objectives.minilm import check_heads

    teacher = BertConfig(**PRESETS[setup.preset]) if setup.preset else load_model_config(setup.teacher)
    for seq in seq_lengths:
        require(seq <= teacher.max_position_embeddings,
                f"seq_lengths: {seq} exceeds the teacher's {teacher.max_position_embeddings} positions")
    from minilm.models.architectures import family_of

    student = family_of(teacher).student_config(teacher, student_shape(setup.student, teacher), 0.1)
    for version in versions:
        check_heads(version, teacher, student, setup.relation_heads)


def plan_rows(setup: StepSetup, versions: list[str], seq_lengths: list[int], device: torch.device,
              precisions: list[str] = ("fp32", "bf16")) -> list[list[dict]]:
    """The rows to run, grouped by setting (version, sequence): each group's rows run in turn per round."""
    groups = []
    for version in versions:
        settings = [*seq_lengths] + (["sst2"] if not setup.preset and version == "v1" else [])
        for seq in settings:
            naive_seq = "sst2-padded" if seq == "sst2" else seq
            base = dict(version=version, device=device.type, allocator="kept")
            group = [dict(base, mode="naive", precision="fp32", seq=naive_seq)]
            group += [dict(base, mode="fast", precision=precision, seq=seq) for precision in precisions]
            if device.type == "cpu" and not groups:  # what a naive loop gets without our allocator setting
                group.insert(0, dict(group[0], allocator="default"))
            groups.append(group)
    return groups


