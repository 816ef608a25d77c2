"""Median forward+backward time of the gate MLP: plain eager, chunked eager, C++ kernel."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from spd.decomp.causal_importance import fused_gate_mlp, plain_gate_mlp
from spd.kernels import compiled_gate_mlp, compiled_kernel_available

GateFn = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


def median_ms(fn: GateFn, B: int, C: int, K: int, reps: int = 30) -> float:
    torch.manual_seed(0)
    params = [torch.randn(C, K, requires_grad=True) for _ in range(3)]
    b2 = torch.zeros(C, requires_grad=True)
    h = torch.randn(B, C, requires_grad=True)
    grad = torch.randn(B, C)
    times = []
    for i in range(reps + 3):
        start = time.perf_counter()
        fn(h, *params, b2).backward(grad)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()  # no options; answers --help
    start = time.perf_counter()
    available = compiled_kernel_available()
    print(f"kernel available: {available} (load/build {time.perf_counter() - start:.1f} s)")
    print(f"threads: {torch.get_num_threads()}")
    fns: dict[str, GateFn] = {"plain": plain_gate_mlp, "eager-fused": fused_gate_mlp}
    if available:
        fns["compiled"] = compiled_gate_mlp
    B, K = 4096, 16
    for C in (20, 200):
        row = ", ".join(f"{name} {median_ms(fn, B, C, K):7.2f} ms" for name, fn in fns.items())
        print(f"B={B} C={C:3d} K={K}: {row}")


if __name__ == "__main__":
    main()
