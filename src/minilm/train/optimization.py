"""The optimisation of a run: accelerate (one process or DDP), bf16 autocast, AdamW with its schedule, one step."""

from __future__ import annotations

import torch


def make_accelerator(device: str, compile: bool = False):
    """An `Accelerator` for `device` (auto, cpu, cuda): one process, or DDP under torchrun/accelerate launch.

    Mixed precision is not delegated to it: the loops open `autocast` themselves around the model
    code only, so that the relation softmax/KL visibly stays in float32.
    """
    from accelerate import Accelerator

    from minilm.train.device_policy import pick_device

    # accelerate only forms a multi-process CPU group (gloo) when told cpu=True.
    cpu = pick_device(device).type == "cpu"
    return Accelerator(cpu=cpu, mixed_precision="no", dynamo_backend="inductor" if compile else "no")


def autocast(device_type: str, precision: str):
    """bf16 autocast for model code (projections, attention); the losses cast to float32 themselves.
    `precision` is a resolved one (bf16 or fp32: `device_policy.resolve_precision`)."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(model: torch.nn.Module, training, total_steps: int, lr: float | None = None):
    """AdamW (no decay on biases and LayerNorm) with linear warm-up then linear decay to zero; at `lr`, else the
    training section's."""
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": training.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    lr = lr if lr is not None else training.lr
    try:  # the fused kernel (CPU and CUDA in recent torch) is several times faster than the loop
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=tuple(training.betas), fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=tuple(training.betas))
    warmup = training.warmup_steps if training.warmup_steps >= 0 else total_steps // 10
    warmup = min(warmup, max(total_steps - 1, 0))
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def optimizer_step(accelerator, model, optimizer, scheduler, loss: torch.Tensor, grad_clip: float) -> None:
    """Backward (DDP averages gradients across ranks), clip, AdamW step, schedule step, clear gradients."""
    accelerator.backward(loss)
    if grad_clip > 0:
        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
