"""Triton kernels of Kronecker-mask attention (forward; backward over keys for dK, dV; over
queries for dQ).

Tiles are fixed (BLOCK_M queries x BLOCK_N keys) and may straddle frames. Which key tiles a
query tile visits, and which of them need an element mask, comes from the shared block schedule
(``torch.ops.kron_attn.block_schedule``, csrc/schedule.h) as small int32 tensors: FULL tiles
run unmasked, PARTIAL tiles (kind ``PARTIAL``, the op's constant, passed in by the launcher) mask
by ``layout[q // L, k // L]``, SKIP tiles are never loaded.
The self term of a row whose frame pair is blocked is merged analytically: the online softmax
starts from it. Scores are kept in base 2 (``qk_scale = scale * log2 e``).
"""

import triton
import triton.language as tl


@triton.jit
def _frame_allowed(layout, qf, kf, T, ok):
    return (tl.load(layout + qf[:, None] * T + kf[None, :], mask=ok, other=0) != 0) & ok


@triton.jit
def _probs_and_grads(q, k, v, do, lse2, delta, ok, qk_scale, PRECISION: tl.constexpr):
    """P = exp2(S - lse2) on the allowed pairs and dS = P (dO Vᵀ - Δ) for a (query, key) tile."""
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale
    p = tl.where(ok, tl.math.exp2(s - lse2[:, None]), 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
    return p, p * (dp - delta[:, None])


@triton.jit
def _self_probs_and_grads(q, k, v, do, lse2, delta, need, qk_scale):
    """The same for the diagonal pairs i == j, row by row (float32 rows of one token each)."""
    p = tl.where(need, tl.math.exp2(tl.sum(q * k, 1) * qk_scale - lse2), 0.0)
    return p, p * (tl.sum(do * v, 1) - delta)


@triton.jit
def fwd_kernel(
    Q,
    K,
    V,
    O,
    LSE,
    LAYOUT,
    CNT,
    TILES,
    KINDS,
    sqb,
    sqh,
    sqn,
    skb,
    skh,
    skn,
    svb,
    svh,
    svn,
    sob,
    soh,
    son,
    H,
    N,
    T,
    L,
    D,
    max_tiles,
    qk_scale,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    PRECISION: tl.constexpr,
    PARTIAL: tl.constexpr,
):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    row_ok = offs_m < N
    d_ok = offs_d < D
    md = row_ok[:, None] & d_ok[None, :]
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    q = tl.load(q_base + offs_m[:, None] * sqn + offs_d[None, :], mask=md, other=0.0)
    qf = offs_m // L

    # Self term: the starting point of the online softmax of rows whose frame pair is blocked.
    need_self = (tl.load(LAYOUT + qf * T + qf, mask=row_ok, other=1) == 0) & row_ok
    k_self = tl.load(k_base + offs_m[:, None] * skn + offs_d[None, :], mask=md, other=0.0).to(tl.float32)
    v_self = tl.load(v_base + offs_m[:, None] * svn + offs_d[None, :], mask=md, other=0.0).to(tl.float32)
    s_self = tl.sum(q.to(tl.float32) * k_self, 1) * qk_scale
    m_i = tl.where(need_self, s_self, float("-inf"))
    l_i = tl.where(need_self, 1.0, 0.0)
    acc = tl.where(need_self[:, None], v_self, 0.0)

    count = tl.load(CNT + pid_m)
    for i in range(0, count):
        n_tile = tl.load(TILES + pid_m * max_tiles + i)
        kind = tl.load(KINDS + pid_m * max_tiles + i)
        offs_n = n_tile * BLOCK_N + offs_n0
        col_ok = offs_n < N
        kt = tl.load(k_base + offs_n[None, :] * skn + offs_d[:, None], mask=d_ok[:, None] & col_ok[None, :], other=0.0)
        s = tl.dot(q, kt, input_precision=PRECISION) * qk_scale
        ok = row_ok[:, None] & col_ok[None, :]
        if kind == PARTIAL:
            ok = _frame_allowed(LAYOUT, qf, offs_n // L, T, ok)
        s = tl.where(ok, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing yet: no NaN
        alpha = tl.math.exp2(m_i - m_safe)
        p = tl.math.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + offs_n[:, None] * svn + offs_d[None, :], mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new

    l_i = tl.where(row_ok, l_i, 1.0)  # rows past N hold nothing; keep them finite
    out = acc / l_i[:, None]
    tl.store(O + b * sob + h * soh + offs_m[:, None] * son + offs_d[None, :], out.to(O.dtype.element_ty), mask=md)
    lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453
    tl.store(LSE + bh.to(tl.int64) * N + offs_m, lse, mask=row_ok)


@triton.jit
def bwd_dkdv_kernel(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DK,
    DV,
    LAYOUT,
    CNT,
    TILES,
    KINDS,
    sqb,
    sqh,
    sqn,
    skb,
    skh,
    skn,
    svb,
    svh,
    svn,
    sdb,
    sdh,
    sdn,
    H,
    N,
    T,
    L,
    D,
    max_tiles,
    qk_scale,
    scale,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    PRECISION: tl.constexpr,
    PARTIAL: tl.constexpr,
):
    """One key tile: dV = Σ Pᵀ dO, dK = scale Σ dSᵀ Q over the query tiles that see it. DK, DV
    are contiguous (B, H, N, D) float32."""
    pid_n = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_m0 = tl.arange(0, BLOCK_M)
    col_ok = offs_n < N
    d_ok = offs_d < D
    nd = col_ok[:, None] & d_ok[None, :]
    q_base = Q + b * sqb + h * sqh
    do_base = DO + b * sdb + h * sdh
    stat = bh.to(tl.int64) * N
    k = tl.load(K + b * skb + h * skh + offs_n[:, None] * skn + offs_d[None, :], mask=nd, other=0.0)
    v = tl.load(V + b * svb + h * svh + offs_n[:, None] * svn + offs_d[None, :], mask=nd, other=0.0)
    kf = offs_n // L
    dk = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    dv = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)

    count = tl.load(CNT + pid_n)
    for i in range(0, count):
        m_tile = tl.load(TILES + pid_n * max_tiles + i)
        kind = tl.load(KINDS + pid_n * max_tiles + i)
        offs_m = m_tile * BLOCK_M + offs_m0
        row_ok = offs_m < N
        md = row_ok[:, None] & d_ok[None, :]
        q = tl.load(q_base + offs_m[:, None] * sqn + offs_d[None, :], mask=md, other=0.0)
        do = tl.load(do_base + offs_m[:, None] * sdn + offs_d[None, :], mask=md, other=0.0)
        lse2 = tl.load(LSE + stat + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
        delta = tl.load(DELTA + stat + offs_m, mask=row_ok, other=0.0)
        ok = row_ok[:, None] & col_ok[None, :]
        if kind == PARTIAL:
            ok = _frame_allowed(LAYOUT, offs_m // L, kf, T, ok)
        p, ds = _probs_and_grads(q, k, v, do, lse2, delta, ok, qk_scale, PRECISION)
        dv += tl.dot(tl.trans(p).to(do.dtype), do, input_precision=PRECISION)
        dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision=PRECISION)

    # Self term of keys whose frame pair is blocked: p_jj, ds_jj from row j's own statistics.
    need_self = (tl.load(LAYOUT + kf * T + kf, mask=col_ok, other=1) == 0) & col_ok
    q_s = tl.load(q_base + offs_n[:, None] * sqn + offs_d[None, :], mask=nd, other=0.0).to(tl.float32)
    do_s = tl.load(do_base + offs_n[:, None] * sdn + offs_d[None, :], mask=nd, other=0.0).to(tl.float32)
    lse2_s = tl.load(LSE + stat + offs_n, mask=col_ok, other=0.0) * 1.4426950408889634
    delta_s = tl.load(DELTA + stat + offs_n, mask=col_ok, other=0.0)
    p_s, ds_s = _self_probs_and_grads(
        q_s, k.to(tl.float32), v.to(tl.float32), do_s, lse2_s, delta_s, need_self, qk_scale
    )
    dv += p_s[:, None] * do_s
    dk += ds_s[:, None] * q_s

    out = stat * D + offs_n[:, None] * D + offs_d[None, :]
    tl.store(DK + out, dk * scale, mask=nd)
    tl.store(DV + out, dv, mask=nd)


@triton.jit
def bwd_dq_kernel(
    Q,
    K,
    V,
    DO,
    LSE,
    DELTA,
    DQ,
    LAYOUT,
    CNT,
    TILES,
    KINDS,
    sqb,
    sqh,
    sqn,
    skb,
    skh,
    skn,
    svb,
    svh,
    svn,
    sdb,
    sdh,
    sdn,
    H,
    N,
    T,
    L,
    D,
    max_tiles,
    qk_scale,
    scale,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    PRECISION: tl.constexpr,
    PARTIAL: tl.constexpr,
):
    """One query tile: dQ = scale Σ dS K over its key tiles. DQ is contiguous (B, H, N, D) float32."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    row_ok = offs_m < N
    d_ok = offs_d < D
    md = row_ok[:, None] & d_ok[None, :]
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    stat = bh.to(tl.int64) * N
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqn + offs_d[None, :], mask=md, other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdn + offs_d[None, :], mask=md, other=0.0)
    lse2 = tl.load(LSE + stat + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
    delta = tl.load(DELTA + stat + offs_m, mask=row_ok, other=0.0)
    qf = offs_m // L
    dq = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)

    count = tl.load(CNT + pid_m)
    for i in range(0, count):
        n_tile = tl.load(TILES + pid_m * max_tiles + i)
        kind = tl.load(KINDS + pid_m * max_tiles + i)
        offs_n = n_tile * BLOCK_N + offs_n0
        col_ok = offs_n < N
        nd = col_ok[:, None] & d_ok[None, :]
        k = tl.load(k_base + offs_n[:, None] * skn + offs_d[None, :], mask=nd, other=0.0)
        v = tl.load(v_base + offs_n[:, None] * svn + offs_d[None, :], mask=nd, other=0.0)
        ok = row_ok[:, None] & col_ok[None, :]
        if kind == PARTIAL:
            ok = _frame_allowed(LAYOUT, qf, offs_n // L, T, ok)
        _, ds = _probs_and_grads(q, k, v, do, lse2, delta, ok, qk_scale, PRECISION)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)

    need_self = (tl.load(LAYOUT + qf * T + qf, mask=row_ok, other=1) == 0) & row_ok
    k_s = tl.load(k_base + offs_m[:, None] * skn + offs_d[None, :], mask=md, other=0.0).to(tl.float32)
    v_s = tl.load(v_base + offs_m[:, None] * svn + offs_d[None, :], mask=md, other=0.0).to(tl.float32)
    _, ds_s = _self_probs_and_grads(q.to(tl.float32), k_s, v_s, do.to(tl.float32), lse2, delta, need_self, qk_scale)
    dq += ds_s[:, None] * k_s

    tl.store(DQ + stat * D + offs_m[:, None] * D + offs_d[None, :], dq * scale, mask=md)
