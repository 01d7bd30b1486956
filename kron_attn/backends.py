"""The backends of kron_attn, one record each.

A record says which tensors a backend takes, what it covers (dtypes, head dims, frames), the op
pair it runs (``kron_attn::<op>_fwd`` / ``<op>_bwd``, declared with one schema for all in
csrc/kron_attn.cpp) and why it cannot run where it cannot. :func:`choose` (``kron_attn.attention``'s
backend choice) and :func:`available` ask the records; the fake kernels and autograd of every op
pair are registered from them (kron_attn/ops.py); the tests read what each covers here. Adding a
backend is adding a record to :data:`BACKENDS`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import torch

from . import _C, cuda_emu, ops, reference
from . import triton as triton_package

# The widest head the ops take (csrc/checks.h): the Triton kernels' widest tile, the CPU kernel's
# row buffers.
MAX_HEAD_DIM: int = _C.max_head_dim
ANY_HEAD_DIM = range(1, MAX_HEAD_DIM + 1)
FLOATS = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


@dataclasses.dataclass(frozen=True)
class Backend:
    """One backend. ``devices()``: the device types of the tensors it takes in this process (the
    first is the one tests run it on; empty: any device). ``problem(device, fake)``: '' when it
    can run on ``device`` (on some device, for None), else the reason; ``fake``: the tensors are
    fake (tracing), and the question is whether a GPU that runs this build could run it."""

    name: str
    dtypes: tuple[torch.dtype, ...]
    head_dims: Sequence[int]
    max_frames: int | None
    op: str | None  # its op pair kron_attn::<op>_fwd / _bwd; None: plain PyTorch, differentiated by autograd
    devices: Callable[[], tuple[str, ...]]
    problem: Callable[[torch.device | None, bool], str]
    float32_in_bf16: Callable[[], bool] = lambda: False  # whether float32 inputs are computed in bfloat16
    load: Callable[[], object] = lambda: None  # imports what registers its kernels (Triton's: on first use)
    device_note: str = ""  # added to the error for tensors on a device it does not take

    def covers(self, dtype: torch.dtype, head_dim: int, frames: int) -> bool:
        """Whether its kernels handle this dtype, head dim and frame count (wherever they run)."""
        return dtype in self.dtypes and head_dim in self.head_dims and frames <= (self.max_frames or frames)

    def compute_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """The dtype it computes inputs of ``dtype`` in."""
        return torch.bfloat16 if dtype == torch.float32 and self.float32_in_bf16() else dtype

    def device(self) -> str:
        """The device type its tests run it on."""
        return (self.devices() or ("cpu",))[0]

    def device_error(self, device: torch.device) -> str:
        """'' when it takes tensors on ``device``, else the error saying which it takes."""
        if not self.devices() or device.type in self.devices():
            return ""
        kinds = " or ".join(d.upper() for d in self.devices())
        return f"backend={self.name!r} needs {kinds} tensors, got tensors on {device}{self.device_note}"

    def why_unavailable(self, device: torch.device | None = None, fake: bool = False) -> str:
        """'' when it can run tensors on ``device`` (on some device, for None), else why not."""
        return (device is not None and self.device_error(device)) or self.problem(device, fake)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: torch.Tensor, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(out (B, H, N, D) in q's dtype, lse (B, H, N) float32, float64 for float64)`` of the
        frame tokens; differentiable in both."""
        if self.op is None:
            return reference.attention(q, k, v, layout.shape[0], layout, scale, return_lse=True)
        self.load()
        return getattr(torch.ops.kron_attn, f"{self.op}_fwd").default(q, k, v, layout, scale)


def _always(device: torch.device | None, fake: bool) -> str:
    return ""


@functools.cache
def _cuda_device_problem(index: int) -> str:
    return _C.cuda_device_problem(index)


def _cuda_problem(device: torch.device | None, fake: bool) -> str:
    if not _C.has_cuda():
        return (
            "this kron_attn build has no CUDA kernel; reinstall with a CUDA build of torch and nvcc "
            "(KRON_ATTN_CUDA=1), or use backend='reference'"
        )
    if fake:
        return ""
    if device is None:
        if not torch.cuda.is_available():
            return "no CUDA GPU is visible"
        problems = [_cuda_device_problem(i) for i in range(torch.cuda.device_count())]
        return "" if "" in problems else problems[0]
    return _cuda_device_problem(torch.cuda.current_device() if device.index is None else device.index)


def _triton_devices() -> tuple[str, ...]:
    return ("cpu", "cuda") if triton_package.interpreting() else ("cuda",)


def _triton_problem(device: torch.device | None, fake: bool) -> str:
    if not triton_package.installed():
        return "the triton backend needs the 'triton' package: pip install triton"
    if fake or triton_package.interpreting() or torch.cuda.is_available():
        return ""
    return f"no CUDA GPU is visible ({triton_package.ON_CPU})"


def _emulator_problem(device: torch.device | None, fake: bool) -> str:
    return cuda_emu.problem()


@functools.cache
def cuda_coverage() -> dict:
    """What the CUDA kernels cover, as the extension states it (csrc/cuda/coverage.h): head dims,
    max frames, dtypes (float32 computed in bfloat16), minimum compute capability, built archs."""
    return _C.cuda_coverage()


def _cuda_record(name: str, op: str, devices: tuple[str, ...], problem, note: str) -> Backend:
    cov = cuda_coverage()
    return Backend(
        name, tuple(getattr(torch, d) for d in cov["dtypes"]), tuple(cov["head_dims"]), cov["max_frames"], op,
        lambda: devices, problem, float32_in_bf16=lambda: True, device_note=note,
    )  # fmt: skip


BACKENDS: tuple[Backend, ...] = (
    # The C++ kernel: every dtype and head dim, any frame count.
    Backend("cpu", FLOATS, ANY_HEAD_DIM, None, "attention", lambda: ("cpu",), _always),
    # The hand-written CUDA kernel: the head dims it was compiled for, sm_80 or newer.
    _cuda_record("cuda", "attention", ("cuda",), _cuda_problem, ""),
    # The Triton kernels: on GPUs, float32 runs on the tensor cores in bfloat16 (the interpreter
    # keeps float32); imported on first use, since importing Triton takes seconds.
    Backend(
        "triton",
        (torch.float16, torch.bfloat16, torch.float32),
        ANY_HEAD_DIM,
        None,
        "triton",
        _triton_devices,
        _triton_problem,
        float32_in_bf16=lambda: not triton_package.interpreting(),
        load=triton_package.load_ops,
        device_note=" (CPU tensors run under TRITON_INTERPRET=1, set before triton is imported)",
    ),  # fmt: skip
    # Dense PyTorch: the semantics every backend must match, on any device.
    Backend("reference", FLOATS, ANY_HEAD_DIM, None, None, lambda: (), _always),
    # The CUDA kernels run on CPU tensors by the SIMT emulator: slow, for testing them without a GPU.
    _cuda_record("cuda_emu", "cuda_emu", ("cpu",), _emulator_problem, " (it emulates the CUDA kernels on the CPU)"),
)
NAMES = tuple(b.name for b in BACKENDS)
# backend="auto" takes the first of these that can run the tensors and covers the case. Triton
# before the CUDA kernel until the CUDA kernel has been measured on real hardware; the emulator
# never (it is a test instrument).
AUTO = ("cpu", "triton", "cuda", "reference")


def get(name: str) -> Backend:
    """The record of backend ``name``; ValueError naming the choices for an unknown name."""
    for b in BACKENDS:
        if b.name == name:
            return b
    raise ValueError(f"unknown backend {name!r}; expected one of auto, {', '.join(NAMES)}")


def available() -> list[str]:
    """The backends this build can run in this process."""
    return [b.name for b in BACKENDS if not b.why_unavailable()]


def choose(
    name: str, device: torch.device, dtype: torch.dtype, head_dim: int, frames: int, fake: bool = False
) -> Backend:
    """The backend that runs tensors of this device, dtype, head dim and frame count: ``name``
    itself (ValueError for tensors on a device it does not take, RuntimeError when it cannot run
    here; its ops check the rest), or for ``"auto"`` the first of :data:`AUTO` that can run them
    and covers the case."""
    if name == "auto":
        return next(
            b for b in map(get, AUTO) if not b.why_unavailable(device, fake) and b.covers(dtype, head_dim, frames)
        )
    b = get(name)
    if error := b.device_error(device):
        raise ValueError(error)
    if reason := b.problem(device, fake):
        raise RuntimeError(f"backend={name!r}: {reason}")
    return b


for _op in dict.fromkeys(b.op for b in BACKENDS if b.op is not None):  # the CPU and CUDA kernels share one pair
    ops.register(_op)
