"""`minilm distill`: deep self-attention distillation, one readable loop.

Task-agnostic (MiniLM Sec. 3): unlabeled text, loss L = L_AT + L_VR (v1) or the sum of the chosen
Q-Q/K-K/V-V relation losses (v2), teacher layer -> student's last layer.
Task-specific (`task` set, MiniLM Sec. 4.3): a fine-tuned teacher on the task's training split,
L = (L_AT + L_VR) + output_weight * L_OUT (+ hard_label_weight * CE), the dev split evaluated
every `eval_every` steps and the best student kept in `output_dir/best`.

Per step: the teacher runs under `inference_mode` only up to the chosen layer (task-agnostic), the
student up to its last layer's Q/K/V projections, both in bf16 autocast by default; the relation KL
is formed in float32. Runs under `torchrun`/`accelerate launch` with one slice of every global batch
per rank; the main process alone writes.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from minilm.config import DistillConfig
from minilm.data import StepBatches, build_token_cache
from minilm.errors import require
from minilm.finetune import best_so_far, evaluate_and_keep_best, write_summary
from minilm.kernels import use_cpu_kernels
from minilm.losses import attention_relation_losses, output_kl
from minilm.models import (cast_linears, check_same_tokenizer, freeze, load_encoder, load_model_config,
                           load_tokenizer, save_model, student_from_teacher)
from minilm.relations import QKV, RelationModel, unused_by_relations
from minilm.training import (MetricsLog, WallClock, autocast, check_finite, check_run_dir, load_checkpoint,
                             make_accelerator, make_optimizer, optimizer_step, save_checkpoint,
                             start_run_dir)


def check_loss_setup(cfg: DistillConfig, teacher_config, student_config) -> None:
    """Fail before training on settings the loss cannot honour."""
    require(cfg.version in ("v1", "v2"), f"version must be v1 or v2, got '{cfg.version}'")
    if cfg.version == "v1":
        require(teacher_config.num_attention_heads == student_config.num_attention_heads,
                f"MiniLM v1 needs equal attention head counts (teacher {teacher_config.num_attention_heads}, "
                f"student {student_config.num_attention_heads}); use --version v2 with --relation-heads")
        return
    for who, hidden in (("teacher", teacher_config.hidden_size), ("student", student_config.hidden_size)):
        require(hidden % cfg.relation_heads == 0,
                f"relation_heads {cfg.relation_heads} does not divide the {who} hidden size {hidden}")
    unknown = [r for r in cfg.relations if r not in ("qq", "kk", "vv")]
    require(cfg.relations and not unknown, f"relations must be chosen from qq, kk, vv, got {cfg.relations}")


def build_student(cfg: DistillConfig, teacher, tokenizer, num_labels: int | None):
    """A new student (random or teacher-layer init) or one loaded from `student_init` (a directory)."""
    if cfg.student_init in ("random", "teacher"):
        return student_from_teacher(teacher, cfg.student_layers, cfg.student_hidden, cfg.student_heads,
                                    cfg.student_ffn, cfg.dropout, cfg.student_init, cfg.student_init_layers,
                                    num_labels, cfg.seed)
    check_same_tokenizer(tokenizer, load_tokenizer(cfg.student_init))
    return load_encoder(cfg.student_init, num_labels=num_labels)


def task_batches(cfg: DistillConfig, tokenizer, teacher, accelerator):
    """Task-specific data: (training batches, dev examples, label names)."""
    from minilm.glue import encode_task, load_task

    train = load_task(cfg.task, "train", cfg.task_dir)
    dev = load_task(cfg.task, "dev", cfg.task_dir, label_names=train.label_names)
    require(teacher.config.num_labels == train.num_labels,
            f"teacher has {teacher.config.num_labels} outputs but task {cfg.task} has {train.num_labels}")
    examples = encode_task(train, tokenizer, cfg.max_length)
    batches = StepBatches(examples, cfg.batch_size, tokenizer.pad_token_id, cfg.seed,
                          accelerator.process_index, accelerator.num_processes)
    return batches, dev, train.label_names


def use_step_kernels(teacher, student, precision: str, device_type: str, compile: bool = False) -> None:
    """What the training step runs with, beyond SDPA: for bf16, the frozen teacher's projections stored
    in bf16 (`cast_linears`: autocast re-cast them every step); on CPU, `minilm.kernels` for both
    models (the student's dropout drawn from 16-bit random integers, as `bernoulli_` cost more than its
    matmuls; the plain attention path where it is faster), except under torch.compile, which
    generates its own kernels.
    """
    if precision == "bf16":
        cast_linears(teacher, torch.bfloat16)
    if device_type == "cpu" and not compile:
        use_cpu_kernels(teacher)
        use_cpu_kernels(student)


def distill_losses(teacher_view: RelationModel, model, batch: dict, cfg: DistillConfig, heads: dict,
                   device_type: str) -> dict[str, torch.Tensor]:
    """The named losses of one step: one teacher pass (no autograd), one student pass, the relation KLs.

    `heads` holds the keyword arguments of `attention_relation_losses` (version, head counts, ...).
    """
    inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  token_type_ids=batch.get("token_type_ids"))
    with torch.inference_mode(), autocast(device_type, cfg.precision):
        t_qkv, t_logits = teacher_view(**inputs)
    # Inference tensors cannot enter autograd; a copy of Q/K/V (and logits) can, and is cheap.
    t_qkv = QKV(*(x.clone() for x in t_qkv))
    with autocast(device_type, cfg.precision):
        s_qkv, s_logits = model(**inputs)
    losses = attention_relation_losses(t_qkv, s_qkv, batch["attention_mask"], **heads)
    if cfg.task:
        losses["output"] = cfg.output_weight * output_kl(t_logits.clone(), s_logits, cfg.temperature)
        if cfg.hard_label_weight > 0:
            hard = (F.mse_loss(s_logits.float().squeeze(-1), batch["labels"].float()) if s_logits.shape[-1] == 1
                    else F.cross_entropy(s_logits.float(), batch["labels"]))
            losses["hard"] = cfg.hard_label_weight * hard
    return losses


def distill(cfg: DistillConfig) -> Path:
    """Run (or resume) a distillation; returns the directory of the final student."""
    from accelerate.utils import set_seed

    require(cfg.max_steps >= 1, f"max_steps must be at least 1, got {cfg.max_steps}")
    accelerator = make_accelerator(cfg)
    resume_from = check_run_dir(cfg)
    set_seed(cfg.seed)
    out, main = Path(cfg.output_dir), accelerator.is_main_process
    tokenizer = load_tokenizer(cfg.teacher)

    num_labels = None
    if cfg.task:
        teacher_config = load_model_config(cfg.teacher)
        arch = " ".join(teacher_config.architectures or [])
        require("ForSequenceClassification" in arch,
                f"task-specific distillation needs a teacher fine-tuned on {cfg.task} "
                f"(run: minilm finetune --model {cfg.teacher} --task {cfg.task})")
        num_labels = teacher_config.num_labels
        teacher = load_encoder(cfg.teacher, num_labels=num_labels)
    else:
        teacher = load_encoder(cfg.teacher)
    require(cfg.max_length <= teacher.config.max_position_embeddings,
            f"max_length {cfg.max_length} exceeds the teacher's {teacher.config.max_position_embeddings} positions")
    freeze(teacher).to(accelerator.device)
    student = build_student(cfg, teacher, tokenizer, num_labels)
    check_loss_setup(cfg, teacher.config, student.config)
    require(cfg.max_length <= student.config.max_position_embeddings,
            f"max_length {cfg.max_length} exceeds the student's {student.config.max_position_embeddings} positions")

    if cfg.task:
        batches, dev, label_names = task_batches(cfg, tokenizer, teacher, accelerator)
        student.config.id2label = dict(enumerate(label_names or ["score"]))
        student.config.label2id = {v: k for k, v in student.config.id2label.items()}
    else:
        with accelerator.main_process_first():
            cache = build_token_cache(cfg.data, tokenizer, cfg.max_length, cfg.cache_dir, cfg.text_column,
                                      progress=main)
        batches = StepBatches(cache, cfg.batch_size, tokenizer.pad_token_id, cfg.seed,
                              accelerator.process_index, accelerator.num_processes)
        for p in unused_by_relations(student):  # no gradient from L_AT + L_VR reaches them
            p.requires_grad_(False)

    use_step_kernels(teacher, student, cfg.precision, accelerator.device.type, cfg.compile)  # after any layer copy
    teacher_view = RelationModel(teacher, cfg.teacher_layer, full=bool(cfg.task))
    model = RelationModel(student, -1, full=bool(cfg.task))
    start_run_dir(cfg, accelerator)  # every check passed: only now write to output_dir
    optimizer, scheduler = make_optimizer(model, cfg, cfg.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    start = load_checkpoint(accelerator, resume_from)["step"] if resume_from else 0
    if resume_from and main:
        print(f"resuming from {resume_from} (step {start})")
    log = MetricsLog(out, main, start)
    heads = dict(teacher_heads=teacher.config.num_attention_heads, student_heads=student.config.num_attention_heads,
                 num_relation_heads=cfg.relation_heads, relations=cfg.relations, version=cfg.version,
                 query_chunk=cfg.query_chunk)
    best = best_so_far(out) if resume_from else None
    clock, tokens = WallClock(cfg.max_minutes), 0
    with tqdm(total=cfg.max_steps, initial=start, desc="distill", disable=not main, dynamic_ncols=True) as bar:
        model.train()
        step = start
        while step < cfg.max_steps:
            batch = {k: v.to(accelerator.device) for k, v in batches[step].items()}
            losses = distill_losses(teacher_view, model, batch, cfg, heads, accelerator.device.type)
            loss = sum(losses.values())
            check_finite(loss, step + 1, out)
            optimizer_step(accelerator, model, optimizer, scheduler, loss, cfg.grad_clip)
            step += 1
            tokens += int(batch["attention_mask"].sum()) * accelerator.num_processes
            bar.update(1)

            if step % cfg.log_every == 0 or step == cfg.max_steps:
                values = {k: accelerator.reduce(v.detach(), reduction="mean").item() for k, v in losses.items()}
                values["loss"] = sum(values.values())
                rate = tokens / max(clock.elapsed(), 1e-9)
                bar.set_postfix(loss=f"{values['loss']:.4f}", tok_s=f"{rate:,.0f}")
                log.write({"step": step, **values, "lr": scheduler.get_last_lr()[0], "tokens_per_s": rate,
                           "elapsed_s": clock.elapsed(), "processes": accelerator.num_processes})
            stop = clock.spent(accelerator)
            if cfg.task and (step % cfg.eval_every == 0 or step == cfg.max_steps or stop):
                if main:
                    best, _ = evaluate_and_keep_best(student, tokenizer, dev, cfg.max_length, accelerator.device,
                                                     out, step, best, log)
                accelerator.wait_for_everyone()
            if (cfg.save_every and step % cfg.save_every == 0) or step == cfg.max_steps or stop:
                save_checkpoint(accelerator, student, tokenizer, out, step, cfg.keep)
            if stop:
                if main:
                    print(f"wall-clock budget of {cfg.max_minutes} min spent at step {step}")
                break
    final = out / "model"
    if main:
        save_model(student, tokenizer, final)
        if cfg.task and best is not None:
            write_summary(out, cfg.teacher, cfg.task, dev, best, step, clock.elapsed(), cfg.max_length,
                          accelerator.device)
    accelerator.wait_for_everyone()
    return final

