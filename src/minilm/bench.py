"""`minilm bench`: the distillation step, ours versus a faithful naive one, measured in one run.

Rows:
* matrix-multiply peak (float32 and bf16), measured here, so step rates can be put against it;
* distillation step (batch x seq of random tokens, no padding) at each `seq_lengths`, and on real
  SST-2 batches (naive: padded to 128 as the original project did; ours: dynamic padding with
  length grouping), for `naive` (HF models called with output_attentions=True and
  output_hidden_states=True, eager attention, float32, teacher under no_grad, loss from the returned
  probabilities) and `fast` (our training step: truncated SDPA runs, bf16 autocast, float32 KL);
* inference: teacher vs student examples/s at batch 32 and latency at batch 1 on SST-2 dev.

Each step row runs in its own spawned process, so that its peak memory (the kernel's high-water mark of
the resident set above the level before the first warm-up step, see `PeakMemory`; `max_memory_allocated`
on CUDA) is its own.
Every CPU row runs with `keep_freed_memory` (what our training does), naive rows included, so that
the ratios measure the code; one extra naive row shows glibc's default allocator. Rates are medians
of per-step rates. A shared machine's speed drifts by tens of percent over minutes, so each setting's
rows run `rounds` times in turn (naive, fast, naive, fast, ...) and a row's rate is the median over
all its rounds' steps: rows compared with each other saw the same drift.
Useful FLOPs count the matrix multiplies the fast step cannot avoid (see `fast_step_flops`).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import threading
import time
from pathlib import Path
from queue import Empty

import numpy as np
import torch

from minilm.config import DATA_ROOT, BenchConfig, DistillConfig
from minilm.errors import require


def matmul_tflops(dtype: torch.dtype, device: torch.device, n: int = 2048, seconds: float = 1.5) -> float:
    """Best sustained n x n x n matmul rate, in TFLOP/s."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        _sync(device)
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        _sync(device)
        best = max(best, 3 * 2 * n ** 3 / (time.perf_counter() - start) / 1e12)
    return best


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def fast_step_flops(t_cfg, s_cfg, batch: int, seq: int, relations: int = 2) -> float:
    """Matmul FLOPs of one fast step: what L_AT + L_VR cannot do without.

    Teacher forward: (L_t - 1) blocks + the last block's Q/K/V projections. Student: (L_s - 1) blocks +
    Q/K/V, forward and backward (backward = 2 x forward). Relations: (seq x seq) logits per relation,
    teacher once, student three times. A block: Q/K/V/O projections 8 T H^2, scores and context
    4 T^2 H, feed-forward 4 T H F.
    """
    def block(h, f):
        return 8 * seq * h * h + 4 * seq * seq * h + 4 * seq * h * f

    def qkv(h):
        return 6 * seq * h * h

    teacher = (t_cfg.num_hidden_layers - 1) * block(t_cfg.hidden_size, t_cfg.intermediate_size) + qkv(t_cfg.hidden_size)
    student = (s_cfg.num_hidden_layers - 1) * block(s_cfg.hidden_size, s_cfg.intermediate_size) + qkv(s_cfg.hidden_size)
    rel = relations * 2 * seq * seq * (t_cfg.hidden_size + 3 * s_cfg.hidden_size)
    return float(batch * (teacher + 3 * student + rel))


def naive_losses(teacher, student, batch: dict) -> dict[str, torch.Tensor]:
    """The usual implementation: full eager forwards returning every layer's maps and states."""
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        t_out = teacher(**inputs, output_attentions=True, output_hidden_states=True)
    s_out = student(**inputs, output_attentions=True, output_hidden_states=True)
    mask = batch["attention_mask"].bool()
    heads = teacher.config.num_attention_heads

    def value_relation(model, hidden):
        v = model.encoder.layer[-1].attention.self.value(hidden)
        v = v.view(*v.shape[:2], heads, -1).transpose(1, 2)
        scores = v @ v.transpose(-1, -2) / math.sqrt(v.shape[-1])
        return torch.softmax(scores.masked_fill(~mask[:, None, None, :], -1e9), -1)

    def kl_of_probs(p, q):
        terms = p * (torch.log(p.clamp_min(1e-30)) - torch.log(q.clamp_min(1e-30)))
        rows = terms.sum(-1).sum(1)  # (batch, seq)
        return ((rows * mask).sum(-1) / (heads * mask.sum(-1))).mean()

    return {"attention": kl_of_probs(t_out.attentions[-1], s_out.attentions[-1]),
            "value": kl_of_probs(value_relation(teacher, t_out.hidden_states[-2]),
                                 value_relation(student, s_out.hidden_states[-2]))}


def _models(cfg: BenchConfig, attn: str, device):
    from minilm.models import freeze, load_encoder, student_from_teacher

    teacher = freeze(load_encoder(cfg.teacher, attn_implementation=attn)).to(device)
    student = student_from_teacher(teacher, cfg.student_layers, cfg.student_hidden, cfg.student_heads, seed=0,
                                   attn_implementation=attn)
    return teacher, student.to(device).train()


def _batches(cfg: BenchConfig, tokenizer, seq: int | str, count: int) -> list[dict]:
    """`count` batches: random tokens (batch x seq, no padding), or real SST-2 sentences."""
    from minilm.data import length_grouped_batches, pad_batch

    if isinstance(seq, int):
        g = torch.Generator().manual_seed(0)
        return [{"input_ids": torch.randint(1000, 29000, (cfg.batch_size, seq), generator=g),
                 "attention_mask": torch.ones(cfg.batch_size, seq, dtype=torch.long)} for _ in range(count)]
    from minilm.glue import load_task

    path = Path(cfg.sst2 or DATA_ROOT / "glue" / "SST-2" / "train.tsv")
    sentences = [t[0] for t in load_task("sst2", "train", str(path.parent)).texts[:cfg.batch_size * 50]]
    ids = tokenizer(sentences, truncation=True, max_length=128)["input_ids"]
    if seq == "sst2-padded":  # the original project: every batch padded to 128
        return [pad_batch(ids[i * cfg.batch_size:(i + 1) * cfg.batch_size], 0, min_width=128) for i in range(count)]
    order = length_grouped_batches(np.asarray([len(x) for x in ids]), cfg.batch_size, seed=0, epoch=0)
    return [pad_batch([ids[j] for j in order[i]], 0) for i in range(count)]


class PeakMemory:
    """Peak memory above the level at entry (bytes): on CUDA the allocator's peak; on Linux CPU the kernel's
    own high-water mark of the resident set (VmHWM, reset at entry through /proc/self/clear_refs), which
    costs nothing while the steps run; elsewhere the resident set sampled every millisecond by a thread.

    The sampling thread is the fallback only: on a 2-core machine its wake-ups preempt a compute thread
    and its GIL requests stall the Python between kernels, which slowed the timed steps it watched.
    """

    def __init__(self, device):
        self.device, self.peak, self._stop, self.thread = device, 0, threading.Event(), None

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    @staticmethod
    def _reset_high_water_mark() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # Linux >= 4.0: VmHWM := the current resident set
            return True
        except OSError:
            return False

    @staticmethod
    def _high_water_mark() -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self.peak = self.rss()
        if not self._reset_high_water_mark():
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        elif self.thread is None:
            self.peak = self._high_water_mark()
        else:
            self._stop.set()
            self.thread.join()
        self.used = max(self.peak - self.base, 0)


def _step_worker(cfg: BenchConfig, mode: str, seq, device_name: str, precision: str, allocator: str,
                 queue) -> None:
    """One row: build models and batches, warm up, time `cfg.steps` optimizer steps one by one.

    allocator: "kept" applies `keep_freed_memory` (what `minilm distill` does on CPU), so that fast/naive
    ratios measure the code alone; "default" leaves glibc's settings, for naive rows (the fast row takes
    the device step policy of `minilm distill`, which keeps freed memory on CPU in any case).
    """
    from minilm.models import load_tokenizer
    from minilm.objectives import build_objective, distill_losses
    from minilm.policy import apply_step_policy, keep_freed_memory
    from minilm.training import make_accelerator, make_optimizer, optimizer_step

    torch.manual_seed(0)
    device = torch.device(device_name)
    if device.type == "cpu" and allocator == "kept":
        keep_freed_memory()
    teacher, student = _models(cfg, "eager" if mode == "naive" else "sdpa", device)
    tokenizer = load_tokenizer(cfg.teacher)
    warmup = 2
    batches = [{k: v.to(device) for k, v in b.items()} for b in _batches(cfg, tokenizer, seq, cfg.steps + warmup)]
    dcfg = DistillConfig(precision=precision)
    if mode == "fast":  # the training step itself: the policy, losses and optimizer step `minilm distill` runs
        objective = build_objective(dcfg, teacher, student)
        apply_step_policy(device.type, precision, cfg.compile, [student], teacher)
        model = torch.compile(objective.student_view) if cfg.compile else objective.student_view
        accelerator = make_accelerator(DistillConfig(precision=precision, device=device.type))
        optimizer, scheduler = make_optimizer(student, DistillConfig(lr=1e-5), 100)

        def step(b):
            loss = sum(distill_losses(objective, model, b, dcfg, device.type).values())
            optimizer_step(accelerator, student, optimizer, scheduler, loss, grad_clip=1.0)
            return float(loss.detach())
    else:  # what a plain training loop does
        optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5)

        def step(b):
            loss = sum(naive_losses(teacher, student, b).values())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss.detach())

    # This process's own bf16 matmul peak, before and after its steps: on a shared machine the rate a
    # row could reach drifts between rows, and each row's fraction of peak is against its own.
    row_peak = matmul_tflops(torch.bfloat16, device, seconds=1.0)
    # Peak memory from before the first step: with freed memory kept, the warm-up steps already hold
    # the step's peak, so measuring only the timed steps would show nothing.
    with PeakMemory(device) as memory:
        for b in batches[:warmup]:  # warm-up: allocator, kernel choice, compilation
            step(b)
        seconds = []
        for b in batches[warmup:]:
            _sync(device)
            start = time.perf_counter()
            step(b)
            _sync(device)
            seconds.append(time.perf_counter() - start)
    row_peak = max(row_peak, matmul_tflops(torch.bfloat16, device, seconds=1.0))
    batches = batches[warmup:]
    tokens = [int(b["attention_mask"].sum()) for b in batches]
    flops = [fast_step_flops(teacher.config, student.config, *b["input_ids"].shape) for b in batches]
    padded = sum(b["attention_mask"].numel() for b in batches)
    # Medians of per-step rates: one step slowed by another tenant of a shared machine moves a mean.
    queue.put({"mode": mode, "seq": seq, "precision": precision, "allocator": allocator,
               "step_tokens": tokens, "step_flops": flops,
               "tokens_per_s": float(np.median([n / t for n, t in zip(tokens, seconds)])),
               "tokens_per_s_mean": sum(tokens) / sum(seconds), "step_s": seconds,
               "peak_mem_mb": memory.used / 2 ** 20, "padding": 1 - sum(tokens) / padded,
               "batch_shape": list(batches[0]["input_ids"].shape),
               "flops": float(np.median([f / t for f, t in zip(flops, seconds)])), "row_peak_bf16_tflops": row_peak})


def merge_rounds(runs: list[dict]) -> dict:
    """One row from the same row's runs in several rounds: rates are medians over all their steps,
    peak memory and the matmul peak the largest seen; `rounds_tokens_per_s` keeps each round's rate."""
    seconds = [t for r in runs for t in r["step_s"]]
    tokens = [n for r in runs for n in r["step_tokens"]]
    flops = [f for r in runs for f in r["step_flops"]]
    row = dict(runs[0], step_s=seconds, step_tokens=tokens, step_flops=flops, rounds=len(runs),
               rounds_tokens_per_s=[r["tokens_per_s"] for r in runs],
               tokens_per_s=float(np.median([n / t for n, t in zip(tokens, seconds)])),
               tokens_per_s_mean=sum(tokens) / sum(seconds),
               flops=float(np.median([f / t for f, t in zip(flops, seconds)])),
               peak_mem_mb=max(r["peak_mem_mb"] for r in runs),
               row_peak_bf16_tflops=max(r["row_peak_bf16_tflops"] for r in runs))
    row["peak_fraction_bf16"] = row["flops"] / 1e12 / row["row_peak_bf16_tflops"]
    return row


def _run_isolated(cfg, mode, seq, device, precision, allocator: str = "kept") -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_step_worker, args=(cfg, mode, seq, device.type, precision, allocator, queue))
    process.start()
    while True:  # a worker that dies (out of memory, a crash) must not leave us waiting forever
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            require(process.is_alive(), f"the {mode} {precision} step at {seq} died (exit code {process.exitcode})")
    process.join()
    return result


# Largest relative loss difference, fast step vs naive float32 step, counted as agreement. Measured on
# the packaged teacher: 7e-8 in float32, 2.4e-4 in bf16 (projections rounded to 8 significant bits),
# and 3.1e-2 in both with the teacher's dropout left on by mistake (a bug this check now catches).
AGREEMENT_TOLERANCE = {"fp32": 1e-3, "bf16": 1e-2}


def agreement(cfg: BenchConfig, device) -> dict:
    """Fast step's losses (its kernels swapped in, as in training) vs the naive float32 step's, same batch
    and weights, students in eval mode: {precision: {loss: {fast, naive, rel_diff}}}."""
    from minilm.models import load_tokenizer
    from minilm.objectives import build_objective, distill_losses
    from minilm.policy import apply_step_policy

    teacher, student = _models(cfg, "eager", device)  # the naive step's models
    student.eval()  # no dropout, so both compute the same function
    batch = {k: v.to(device) for k, v in _batches(cfg, load_tokenizer(cfg.teacher), "sst2", 1)[0].items()}
    with torch.no_grad():
        naive = naive_losses(teacher, student, batch)
    result = {}
    for precision in AGREEMENT_TOLERANCE:
        fast_teacher, fast_student = _models(cfg, "sdpa", device)  # the same weights (same seed)
        dcfg = DistillConfig(precision=precision)
        objective = build_objective(dcfg, fast_teacher, fast_student)
        apply_step_policy(device.type, precision, cfg.compile, [fast_student], fast_teacher)
        fast_student.eval()
        with torch.no_grad():
            fast = distill_losses(objective, objective.student_view, batch, dcfg, device.type)
        result[precision] = {k: {"fast": float(fast[k]), "naive": float(naive[k]),
                                 "rel_diff": abs(float(fast[k]) - float(naive[k])) / abs(float(naive[k]))}
                             for k in fast}
    return result


def inference(cfg: BenchConfig, device) -> dict:
    """Teacher vs student: examples/s at batch 32 and median latency at batch 1 on SST-2 dev.

    The two models take turns batch by batch (and example by example), so that a drift in the shared
    machine's speed reaches both alike.
    """
    from minilm.data import pad_batch
    from minilm.glue import load_task
    from minilm.models import load_tokenizer

    teacher, student = _models(cfg, "sdpa", device)
    models = {"teacher": teacher.eval(), "student": student.eval()}
    tokenizer = load_tokenizer(cfg.teacher)
    path = Path(cfg.sst2 or DATA_ROOT / "glue" / "SST-2" / "train.tsv")
    sentences = [t[0] for t in load_task("sst2", "dev", str(path.parent)).texts]
    ids = tokenizer(sentences, truncation=True, max_length=128)["input_ids"]
    batches = [{k: v.to(device) for k, v in pad_batch(ids[i:i + 32], 0).items()} for i in range(0, len(ids), 32)]
    singles = [{k: v.to(device) for k, v in pad_batch([x], 0).items()} for x in ids[:200]]

    def timed(model, batch) -> float:
        _sync(device)
        start = time.perf_counter()
        model(**batch)
        _sync(device)
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


def bench(cfg: BenchConfig) -> dict:
    from minilm.models import pick_device

    device = pick_device(cfg.device)
    require(cfg.steps >= 1 and cfg.batch_size >= 1, "steps and batch_size must be positive")
    sst2 = Path(cfg.sst2 or DATA_ROOT / "glue" / "SST-2" / "train.tsv")
    require(sst2.is_file(), f"SST-2 train.tsv not found at {sst2}; pass --sst2 PATH")
    peak = {"fp32": matmul_tflops(torch.float32, device), "bf16": matmul_tflops(torch.bfloat16, device)}
    print(f"matmul peak on {device}: fp32 {peak['fp32']:.2f} TFLOP/s, bf16 {peak['bf16']:.2f} TFLOP/s "
          f"({torch.get_num_threads()} threads)")
    require(cfg.rounds >= 1, f"rounds must be at least 1, got {cfg.rounds}")
    rows = []
    for seq in [*cfg.seq_lengths, "sst2"]:
        naive_seq = "sst2-padded" if seq == "sst2" else seq
        plan = [("naive", "fp32", naive_seq, "kept"), ("fast", "fp32", seq, "kept"), ("fast", "bf16", seq, "kept")]
        if device.type == "cpu" and seq == (cfg.seq_lengths or [None])[0]:
            # What a naive loop gets without our allocator setting.
            plan.insert(0, ("naive", "fp32", naive_seq, "default"))
        runs: dict[tuple, list[dict]] = {item: [] for item in plan}
        for round_ in range(cfg.rounds):
            for item in plan:
                mode, precision, s, allocator = item
                row = _run_isolated(cfg, mode, s, device, precision, allocator)
                runs[item].append(row)
                print(f"  round {round_ + 1}/{cfg.rounds}  {mode:5s} {precision:4s} {str(s):12s} {allocator:7s} "
                      f"{row['tokens_per_s']:9,.0f} tok/s  {row['peak_mem_mb']:8,.0f} MB  "
                      f"(bf16 peak {row['row_peak_bf16_tflops']:.2f} TFLOP/s)", flush=True)
        rows += [merge_rounds(runs[item]) for item in plan]
    peak_after = {"fp32": matmul_tflops(torch.float32, device), "bf16": matmul_tflops(torch.bfloat16, device)}
    result = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "config": {k: v for k, v in vars(cfg).items()}, "matmul_tflops": peak,
              "matmul_tflops_after": peak_after, "steps": rows,
              "agreement": agreement(cfg, device), "inference": inference(cfg, device)}
    print(format_table(result))
    if cfg.output:
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.output).write_text(json.dumps(result, indent=1))
    return result


def format_table(result: dict) -> str:
    """Markdown: fast vs naive per sequence setting, then inference."""
    lines = ["| batch | step | precision | malloc | tokens/s | vs naive | peak MB | vs naive | % bf16 peak | "
             "its bf16 peak TFLOP/s |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    naive = {str(r["seq"]).replace("-padded", ""): r for r in result["steps"]
             if r["mode"] == "naive" and r.get("allocator", "kept") == "kept"}
    for r in result["steps"]:
        base = naive[str(r["seq"]).replace("-padded", "")]
        shape = "x".join(map(str, r["batch_shape"])) + (" SST-2" if "sst2" in str(r["seq"]) else "")
        lines.append(f"| {shape} | {r['mode']} | {r['precision']} | {r.get('allocator', 'kept')} | "
                     f"{r['tokens_per_s']:,.0f} | "
                     f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['peak_mem_mb']:,.0f} | "
                     f"{r['peak_mem_mb'] / max(base['peak_mem_mb'], 1e-9):.2f}x | "
                     f"{100 * r['peak_fraction_bf16']:.1f}% | {r.get('row_peak_bf16_tflops', float('nan')):.2f} |")
    inf = result["inference"]
    lines += ["", "| model | examples/s (batch 32) | latency ms (batch 1) |", "|---|---:|---:|"]
    for name in ("teacher", "student"):
        lines.append(f"| {name} | {inf[name]['examples_per_s']:,.0f} | {inf[name]['latency_ms_b1']:.1f} |")
    lines.append(f"\nstudent inference speed-up: {inf['speedup']:.2f}x")
    for precision, agree in result["agreement"].items():
        ok = all(v["rel_diff"] < AGREEMENT_TOLERANCE[precision] for v in agree.values())
        lines.append(f"fast ({precision}) vs naive (fp32) loss, same batch and weights: "
                     + ", ".join(f"{k} rel diff {v['rel_diff']:.2e}" for k, v in agree.items())
                     + (f" -> agree (< {AGREEMENT_TOLERANCE[precision]:g})" if ok
                        else f" -> DISAGREE (>= {AGREEMENT_TOLERANCE[precision]:g})"))
    return "\n".join(lines)
