"""The fused Triton relation KL against the float64 per-example reference: value and both student gradients.

Without a GPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1, set below before the kernel
module is imported); on a CUDA machine they run on the GPU. Skipped when triton is not installed.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are decorated, i.e. at their module's import
triton = pytest.importorskip("triton")

from helpers.references import plain_autograd_relation_kl as reference  # noqa: E402  (float64, differentiable)

from minilm.losses.chunked_kl import relation_kl  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def inputs(seq, lengths, hidden_t, hidden_s, seed, scale=0.5):
    """Ragged random inputs. Standard deviation 0.5, about that of trained Q/K/V projections: at 1.0 a single
    128-wide head's self relation has diagonal logits near sqrt(128) = 11, so peaked that float32 itself (the
    chunked torch path included) is off the float64 value by about 1e-5 (see the last test)."""
    g = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    t = [scale * torch.randn(batch, seq, hidden_t, generator=g) for _ in range(2)]
    s = [scale * torch.randn(batch, seq, hidden_s, generator=g) for _ in range(2)]
    return t, s, mask


def errors(seq, lengths, heads, hidden_t, hidden_s, same, seed=0, scale=0.5, kernel="triton"):
    """Relative errors against the float64 reference: of the value, and of each student gradient."""
    t, s, mask = inputs(seq, lengths, hidden_t, hidden_s, seed, scale)
    tr = t[0] if same else t[1]
    sl64 = s[0].double().requires_grad_()
    sr64 = sl64 if same else s[1].double().requires_grad_()
    want = reference(t[0].double(), tr.double(), sl64, sr64, mask, heads)
    want_grads = torch.autograd.grad(want, [sl64] if same else [sl64, sr64])
    sl = s[0].to(DEVICE).requires_grad_()
    sr = sl if same else s[1].to(DEVICE).requires_grad_()
    got = relation_kl(t[0].to(DEVICE), tr.to(DEVICE), sl, sr, mask.to(DEVICE), heads, kernel=kernel)
    got_grads = torch.autograd.grad(got, [sl] if same else [sl, sr])
    for g in got_grads:
        assert torch.all(g.cpu()[mask == 0] == 0)  # padded rows get no gradient
    return [abs(got.item() - want.item()) / abs(want.item())] + \
        [((g.double().cpu() - w).norm() / w.norm()).item() for g, w in zip(got_grads, want_grads)]


def check(*args, **kwargs):
    value, *grads = errors(*args, **kwargs)
    assert value <= 1e-5, f"value off by {value:.2e} relative"
    for error in grads:
        assert error <= 1e-5, f"student gradient off by {error:.2e} relative"


# Head sizes 8 (v2: 384 / 48) to 128; teacher and student widths differ; 16-row blocks under the interpreter.
@pytest.mark.parametrize("heads, hidden_t, hidden_s", [(2, 16, 16), (4, 32, 64), (2, 64, 128), (1, 128, 64),
                                                       (6, 48, 96)], ids=lambda v: str(v))
@pytest.mark.parametrize("same", [False, True], ids=["QK", "VV"])
def test_matches_float64_reference_v1_shapes(heads, hidden_t, hidden_s, same):
    check(seq=21, lengths=(21, 13, 2), heads=heads, hidden_t=hidden_t, hidden_s=hidden_s, same=same)


@pytest.mark.parametrize("seq", [15, 16, 17, 32, 33])  # one row short of, at, and one past block edges
def test_block_boundary_lengths(seq):
    check(seq=seq, lengths=(seq, max(1, seq - 7)), heads=4, hidden_t=32, hidden_s=16, same=False, seed=seq)


def test_v2_relation_heads_of_size_8():
    """MiniLMv2 at 384 hidden / 48 relation heads has head size 8: here 96 / 12, teacher 192 / 12."""
    check(seq=18, lengths=(18, 9), heads=12, hidden_t=192, hidden_s=96, same=True, seed=3)


def test_all_v2_relations_through_the_loss_api():
    from minilm.losses.chunked_kl import attention_relation_losses
    from minilm.losses.relations import V2_RELATIONS

    t, s, mask = inputs(19, (19, 11, 4), 48, 24, seed=5)
    teacher = dict(query=t[0], key=t[1], value=t[0] * 0.5)
    student = dict(query=s[0], key=s[1], value=s[0] * 2.0)
    fused = attention_relation_losses(teacher, student, mask, V2_RELATIONS, 6, kernel="triton")
    chunked = attention_relation_losses(teacher, student, mask, V2_RELATIONS, 6, kernel="torch")
    for name in ("qq", "kk", "vv"):
        assert fused[name].item() == pytest.approx(chunked[name].item(), rel=1e-5)


def test_bf16_inputs_stay_close_to_float32():
    t, s, mask = inputs(17, (17, 9), 32, 32, seed=7)
    full = relation_kl(t[0], t[1], s[0], s[1], mask, 4, kernel="triton")
    half = relation_kl(*(x.bfloat16() for x in (t[0], t[1], s[0], s[1])), mask, 4, kernel="triton")
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=5e-2)


def test_as_exact_as_the_torch_path_where_float32_itself_is_strained():
    """Unit-variance inputs, one 128-wide head, V-V: both implementations err by about 1e-5 in the gradient."""
    fused = errors(21, (21, 13, 2), 1, 128, 64, same=True, scale=1.0)
    chunked = errors(21, (21, 13, 2), 1, 128, 64, same=True, scale=1.0, kernel="torch")
    assert fused[0] <= 1e-5 and fused[1] <= 1.5 * chunked[1] + 1e-6


def test_auto_takes_torch_on_cpu_and_triton_needs_cuda_or_the_interpreter(monkeypatch):
    from minilm.errors import MiniLMError
    from minilm.losses.chunked_kl import resolve_kernel

    assert resolve_kernel("auto", torch.device("cpu")) == "torch"
    assert resolve_kernel("auto", torch.device("cuda")) == "triton"
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(MiniLMError, match="runs on CUDA tensors"):
        resolve_kernel("triton", torch.device("cpu"))


def test_head_sizes_past_the_launch_table_fall_back_or_say_so():
    """A relation head wider than 128 (minilmv2 with 4 relation heads on a 768-wide teacher: 192) has no launch
    in the table: auto takes the torch path, and the launch chooser, asked for CUDA on this CPU, says so."""
    from minilm.errors import MiniLMError
    from minilm.losses.chunked_kl import resolve_kernel
    from minilm.losses.triton_kl import _launch, covers

    cuda = torch.device("cuda")
    assert covers(128, ieee=False) and covers(32, ieee=True) and not covers(192, ieee=False)
    assert resolve_kernel("auto", cuda, head=64) == "triton" and resolve_kernel("auto", cuda, head=192) == "torch"
    for kernel in ("forward", "left", "right"):
        assert len(_launch(kernel, False, 128, cuda)) == 3 and len(_launch(kernel, True, 64, cuda)) == 3
        with pytest.raises(MiniLMError, match="relation heads of up to 128 dimensions, not 192; use more"):
            _launch(kernel, False, 192, cuda)


@pytest.mark.parametrize("kind, dtype, head, left", [("forward", "bf16", 32, True), ("gradient", "bf16", 128, True),
                                                      ("gradient", "bf16", 8, False), ("forward", "fp32", 64, True)])
def test_kernels_compile_for_hopper_without_spills(kind, dtype, head, left):
    """What the interpreter cannot check: Triton's code generator and ptxas accept each launch for sm_90 (the
    H100/H200), bf16 products become wgmma instructions, and nothing spills to local memory."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tools.is_file():
        pytest.skip("this triton build carries no NVIDIA tools")
    # In a process of its own: kernels decorated under TRITON_INTERPRET=1 (this one) cannot be compiled.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(repo / "src")
    done = subprocess.run([sys.executable, str(repo / "benchmarks" / "triton_compile_check.py"), "--only", kind, dtype,
                           str(head), "left" if left else "right"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["local_bytes"] == 0 and result["stack_bytes"] == 0
    assert result["wgmma"] == (dtype == "bf16")
    assert result["shared_bytes"] <= 227 * 1024  # what one Hopper block may take
