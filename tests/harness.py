"""One list of cases and one check for every backend (the rule of conftest.py).

Each backend's tests (CPU, Triton, CUDA on a GPU, CUDA emulated on the CPU) run the cases of
:data:`CASES` the backend covers, through :func:`check`: ``kron_attn.attention(...,
return_lse=True)`` with the backend named, its output, LSE and the three gradients of a random
linear function of both (so the LSE's gradient is checked too) against float64, each within 2 x
the error of the reference computed in the dtype the backend computes in, + 1e-5.
"""

from __future__ import annotations

import dataclasses
import itertools

import torch
from conftest import assert_close_by_rule

import kron_attn
from kron_attn import backends
from kron_attn.layouts import PRESETS, resolve

LOW = (torch.bfloat16, torch.float16)


@dataclasses.dataclass(frozen=True)
class Case:
    b: int
    h: int
    t: int
    l: int
    d: int
    layout: str  # a preset, or "random<seed>": each frame pair allowed with probability 0.4
    dtype: torch.dtype = torch.bfloat16
    scale: float | None = None
    prefix: int = 0  # global tokens before the frame tokens

    @property
    def n(self) -> int:
        return self.prefix + self.t * self.l

    def layout_tensor(self) -> torch.Tensor:
        if self.layout.startswith("random"):
            g = torch.Generator().manual_seed(int(self.layout.removeprefix("random")))
            return torch.rand(self.t, self.t, generator=g) < 0.4
        return resolve(self.layout, self.t)

    def __str__(self) -> str:
        scale = "" if self.scale is None else f"-s{self.scale}"
        prefix = f"-p{self.prefix}" if self.prefix else ""
        dt = str(self.dtype).removeprefix("torch.")
        return f"b{self.b}h{self.h}-t{self.t}l{self.l}d{self.d}-{self.layout}-{dt}{scale}{prefix}"


def _grid(shapes, layouts, dtypes, b=1, h=2, scale=None, prefix=0):
    grid = itertools.product(shapes, layouts, dtypes)
    return [Case(b, h, t, l, d, lay, dt, scale, prefix) for (t, l, d), lay, dt in grid]


CASES: list[Case] = [
    # Small clips, every preset and a random layout (within reach of Triton's interpreter).
    *_grid(itertools.product((1, 2, 3), (1, 7, 33), (16, 64)), [*PRESETS, "random3"], [torch.float32]),
    # Head dims that are no tensor-core size (padded inside the Triton kernel).
    *_grid([(3, 5, 8), (3, 5, 80)], ["kmct"], [torch.float32]),
    # Reduced precision on every head dim the CUDA kernel has.
    *_grid([(2, 9, 32), (3, 37, 64), (4, 20, 96), (3, 21, 128)], PRESETS, LOW),
    # Tiles: one token, L = 1, T = 1, L below and above every tile size (16 to 128 rows), N a
    # multiple of no tile, row tiles spanning many frames.
    *_grid(
        [(1, 1, 64), (4, 1, 32), (1, 197, 64), (8, 50, 64), (5, 50, 128), (3, 70, 32), (16, 9, 128)],
        ["kmt", "kmct"],
        [torch.bfloat16],
    ),  # fmt: skip
    *_grid([(2, 257, 96), (7, 33, 32)], ["joint", "frame"], [torch.float16]),
    # Random layouts at every CUDA head dim, with a scale of one's own.
    *_grid([(6, 37, 32), (11, 20, 64), (6, 23, 96), (5, 19, 128)], ["random1", "random2"], [torch.bfloat16], scale=0.3),
    # Global tokens (a class token, registers) before the frame tokens.
    *[c for p in (1, 4) for c in _grid([(3, 7, 32), (4, 20, 64)], ["kmt", "kmct"], [torch.float32, *LOW], prefix=p)],
    # Long clips: up to the CUDA kernel's 128 frames.
    Case(1, 1, 128, 2, 64, "kmt"),
    Case(1, 1, 128, 3, 32, "random7", torch.float16),
    Case(1, 1, 100, 5, 128, "kmct"),
    # Larger shapes, head dims off the CUDA list, float32 (GPU, CPU).
    *_grid([(8, 197, 64), (3, 50, 80), (16, 20, 128), (2, 13, 8)], PRESETS, [torch.float32, *LOW]),
]


# ---- what each backend covers ----------------------------------------------------------------

EMULATED_WORK = 2 * 128 * 128  # per case: B·H·N, so the emulated suite stays within minutes
INTERPRETED_TOKENS = 99  # N, for Triton's interpreter


def covers(backend: str, case: Case) -> bool:
    """Whether ``backend`` handles ``case`` (its record in kron_attn/backends.py) and, for the slow
    CPU stand-ins of the GPU kernels, can afford it."""
    if not backends.get(backend).covers(case.dtype, case.d, case.t):
        return False
    if backend == "cuda_emu":
        return case.b * case.h * case.n <= EMULATED_WORK
    if backend == "triton" and backends.get("triton").device() == "cpu":
        # Triton's interpreter gets even a bare 16x16 bfloat16 tl.dot wrong (seen with 3.8).
        return case.n <= INTERPRETED_TOKENS and case.dtype != torch.bfloat16
    return True


def cases_for(backend: str) -> list[Case]:
    return [c for c in CASES if covers(backend, c)]


def device_of(backend: str) -> str:
    return backends.get(backend).device()


def compute_dtype(backend: str, dtype: torch.dtype) -> torch.dtype:
    return backends.get(backend).compute_dtype(dtype)


# ---- the check ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    out: torch.Tensor
    lse: torch.Tensor
    grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def inputs(case: Case, device: str, seed: int):
    """Fresh q, k, v ``(B, H, P + T·L, D)`` of the case (the same numbers for the same seed)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(case.b, case.h, case.n, case.d, generator=g, dtype=torch.float64) for _ in range(3)]


def upstream(out: torch.Tensor, lse: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients that reach ``out`` and ``lse`` (float64, drawn from seed + 1)."""
    g = torch.Generator().manual_seed(seed + 1)
    return (
        torch.randn(out.shape, generator=g, dtype=torch.float64),
        torch.randn(lse.shape, generator=g, dtype=torch.float64),
    )


def attend(case: Case, q, k, v, backend: str | None):
    """``kron_attn.attention`` on ``backend`` (None: the dense reference), with the LSE."""
    scale = case.scale if case.scale is not None else case.d**-0.5
    if backend is None:
        return kron_attn.reference.attention(q, k, v, case.t, case.layout_tensor(), scale, True, case.prefix)
    return kron_attn.attention(
        q, k, v, case.t, case.layout_tensor(), scale, backend, return_lse=True, prefix_tokens=case.prefix
    )


def grads_of(out, lse, qkv, seed):
    g_out, g_lse = upstream(out, lse, seed)
    loss = (out * g_out.to(out.device, out.dtype)).sum() + (lse * g_lse.to(lse.device, lse.dtype)).sum()
    return torch.autograd.grad(loss, qkv)


def run(backend: str, case: Case, seed: int = 0) -> Result:
    """The backend's output, LSE and the gradients of ``<out, g> + <lse, h>`` (g, h random)."""
    q, k, v = (x.to(device_of(backend), case.dtype).requires_grad_() for x in inputs(case, "cpu", seed))
    out, lse = attend(case, q, k, v, backend)
    return Result(out.detach(), lse.detach(), grads_of(out, lse, (q, k, v), seed))


def check(backend: str, case: Case, seed: int = 0) -> Result:
    """Runs ``case`` on ``backend`` and checks it by the rule; returns what the backend gave."""
    ours = run(backend, case, seed)
    device, low = device_of(backend), compute_dtype(backend, case.dtype)
    given = [x.to(device, case.dtype) for x in inputs(case, "cpu", seed)]  # the numbers the backend saw
    qe, ke, ve = (x.double().requires_grad_() for x in given)
    ql, kl, vl = (x.to(low).requires_grad_() for x in given)
    exact, lse_exact = attend(case, qe, ke, ve, None)
    lowp, lse_low = attend(case, ql, kl, vl, None)

    assert ours.out.dtype == case.dtype and ours.out.shape == given[0].shape, (ours.out.dtype, ours.out.shape)
    assert ours.lse.shape == given[0].shape[:3] and ours.lse.dtype in (torch.float32, torch.float64)
    assert torch.isfinite(ours.out).all() and torch.isfinite(ours.lse).all(), "non-finite output or LSE"
    assert_close_by_rule(ours.out, lowp, exact, f"{backend} {case} out")
    assert_close_by_rule(ours.lse, lse_low, lse_exact, f"{backend} {case} lse")

    theirs = grads_of(lowp, lse_low, (ql, kl, vl), seed)
    truth = grads_of(exact, lse_exact, (qe, ke, ve), seed)
    for name, a, b, c in zip("qkv", ours.grads, theirs, truth):
        assert a.dtype == case.dtype, (name, a.dtype)
        assert torch.isfinite(a).all(), f"{backend} {case} d{name} not finite"
        assert_close_by_rule(a, b, c, f"{backend} {case} d{name}")
    return ours
