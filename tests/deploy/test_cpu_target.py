"""The int8 target of the running CPU: VNNI (AVX512 or AVX) -> avx512_vnni, ARM -> arm64, anything else -> avx2."""

from __future__ import annotations

import pytest

from minilm.deploy.cpu_target import TARGETS, cpu_flags, host_target, resolve_target


@pytest.mark.parametrize("flags, machine, target", [
    ({"avx2", "fma3", "avx512_f", "avx512_vnni", "amx_int8"}, "x86_64", "avx512_vnni"),  # Sapphire Rapids
    ({"avx2", "fma3", "avx_vnni"}, "x86_64", "avx512_vnni"),  # AVX-VNNI without AVX-512 (Alder Lake)
    ({"avx2", "fma3", "avx512_f", "avx512_bw"}, "x86_64", "avx2"),  # AVX-512 without VNNI (Skylake-SP)
    ({"avx2", "fma3"}, "x86_64", "avx2"),  # AVX2 only (Zen 3)
    (set(), "aarch64", "arm64"), (set(), "arm64", "arm64"),
])
def test_host_target_follows_the_cpus_features(flags, machine, target):
    found, why = host_target(flags, machine)
    assert found == target and why


def test_auto_is_this_cpus_target_and_a_named_one_is_taken_as_given():
    assert host_target()[0] in TARGETS and isinstance(cpu_flags(), set)
    assert resolve_target("auto")[0] == host_target()[0] and resolve_target("auto")[1].startswith("auto: ")
    assert all(resolve_target(t)[0] == t for t in TARGETS)


@pytest.mark.parametrize("target, reduce_range, here, says", [
    ("avx2", True, "avx2", None),
    ("arm64", False, "avx2", "saturate here"),  # --target arm64 checked or evaluated on an AVX2-only CPU
    ("avx512_vnni", False, "avx2", "saturate here"),
    ("avx2", True, "avx512_vnni", "its scores hold, but its speed here is not a avx2 CPU's"),
    ("arm64", False, "avx512_vnni", "its scores hold"),
])
def test_an_int8_graph_of_another_cpu_is_said_when_it_runs_here(target, reduce_range, here, says):
    from minilm.deploy.cpu_target import run_here_note

    note = run_here_note("onnx/model_qint8_x.onnx", {"target": target, "reduce_range": reduce_range}, (here, "why"))
    assert (note is None) if says is None else (says in note and f"built for {target}" in note)
