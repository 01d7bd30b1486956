"""``kron_attn.attention``: input checks, the backend choice (kron_attn/backends.py) and the call
into the chosen backend's op."""

from __future__ import annotations

import torch

from . import backends
from .layouts import LayoutLike, check_frames, resolve


def available_backends() -> list[str]:
    """Backends this build can run: ``"cpu"`` and ``"reference"`` always, ``"cuda"`` when the CUDA
    kernel was compiled and a GPU that can run it is visible, ``"triton"`` when Triton is installed
    and a GPU is visible (or ``TRITON_INTERPRET=1`` is set), ``"cuda_emu"`` (the CUDA kernels on
    CPU tensors, emulated) when the emulator module was built."""
    return backends.available()


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    frames: int,
    layout: LayoutLike = "kmt",
    scale: float | None = None,
    backend: str = "auto",
    return_lse: bool = False,
    prefix_tokens: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Exact Kronecker-mask attention.

    Args:
        q, k, v: ``(B, H, N, D)`` tensors of one dtype (float32, float64, bfloat16, float16) and
            device, ``N = prefix_tokens + frames * L`` tokens, the frame tokens laid out
            frame-major, ``1 <= D <= 256``. Only the last dimension needs to be contiguous.
        frames: T, the number of frames.
        layout: a preset (``"kmt"``, ``"kmct"``, ``"joint"``, ``"frame"``), a ``(T, T)`` bool
            tensor or a :class:`kron_attn.Layout`; frame token ``i`` attends frame token ``j`` iff
            ``layout[frame(i), frame(j)] or i == j``.
        scale: score scale, ``1 / sqrt(D)`` by default.
        return_lse: also return the row log-sum-exp of the allowed scaled scores, ``(B, H, N)``,
            natural log, float32 (float64 for float64 inputs), differentiable.
        prefix_tokens: P global tokens (a class token, registers) before the frame tokens: they
            attend to every token and every token attends to them.
        backend: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"triton"``, ``"reference"``, or
            ``"cuda_emu"`` (the CUDA kernels run on CPU tensors by the SIMT emulator: slow, for
            testing them without a GPU; never chosen by ``"auto"``).

    Returns ``(B, H, N, D)`` in the input dtype (and the LSE with ``return_lse``); softmax
    statistics are kept in float32 (float64 for float64 inputs). Differentiable in q, k, v. Under
    ``torch.autocast`` the inputs are cast to the autocast dtype first.
    """
    check_frames(frames)
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"{name} must be 4-D (B, H, N, D), got shape {tuple(x.shape)}")
    for name, x in (("k", k), ("v", v)):
        if x.shape != q.shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)} but q has {tuple(q.shape)}")
        if x.device != q.device:
            raise ValueError(f"{name} is on {x.device} but q is on {q.device}")
    if not isinstance(prefix_tokens, int) or isinstance(prefix_tokens, bool) or prefix_tokens < 0:
        raise ValueError(f"prefix_tokens must be an int >= 0, got {prefix_tokens!r}")
    frame_tokens = q.shape[2] - prefix_tokens
    if frame_tokens < frames or frame_tokens % frames:
        tokens = f"N = {q.shape[2]}" + (f" less prefix_tokens = {prefix_tokens}" if prefix_tokens else "")
        raise ValueError(f"sequence length {tokens} is not a positive multiple of frames = {frames}")
    if q.shape[3] not in backends.ANY_HEAD_DIM:
        raise ValueError(f"head dim D = {q.shape[3]} is out of range [1, {backends.MAX_HEAD_DIM}]")

    if torch.is_autocast_enabled(q.device.type):
        dt = torch.get_autocast_dtype(q.device.type)
        q, k, v = q.to(dt), k.to(dt), v.to(dt)
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype:
            raise TypeError(f"{name} is {x.dtype} but q is {q.dtype}")
    lay = resolve(layout, frames)
    if scale is None:
        scale = q.shape[3] ** -0.5

    fake = isinstance(q, torch._subclasses.FakeTensor)
    chosen = backends.choose(backend, q.device, q.dtype, q.shape[3], frames, fake)
    kernel = lambda q, k, v: chosen.forward(q, k, v, lay, float(scale))  # noqa: E731
    out, lse = _with_prefix(kernel, q, k, v, prefix_tokens, float(scale)) if prefix_tokens else kernel(q, k, v)
    return (out, lse) if return_lse else out


def _with_prefix(kernel, q, k, v, prefix: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention with ``prefix`` global tokens before the frame tokens, composed exactly: the
    kernel's attention of the frame tokens among themselves and the (small, dense) attention of
    the frame tokens to the prefix keys merged through their log-sum-exps; the prefix queries
    attend densely to every key. Differentiable through both outputs of the kernel."""
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    kp, vp = k[:, :, :prefix].to(acc), v[:, :, :prefix].to(acc)
    out_k, lse_k = kernel(q[:, :, prefix:], k[:, :, prefix:], v[:, :, prefix:])
    s = q[:, :, prefix:].to(acc) @ kp.transpose(-1, -2) * scale  # frame queries x prefix keys
    lse_p = s.logsumexp(-1)
    lse_f = torch.logaddexp(lse_k.to(acc), lse_p)
    w_k, w_p = (lse_k - lse_f).exp()[..., None], (lse_p - lse_f).exp()[..., None]  # the two parts' shares
    out_f = w_k * out_k.to(acc) + w_p * (torch.softmax(s, -1) @ vp)
    s = q[:, :, :prefix].to(acc) @ k.to(acc).transpose(-1, -2) * scale  # prefix queries x every key
    out_q = torch.softmax(s, -1) @ v.to(acc)
    return torch.cat([out_q, out_f], 2).to(q.dtype), torch.cat([s.logsumexp(-1), lse_f], 2)
