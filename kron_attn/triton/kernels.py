"""Triton kernels of Kronecker-mask attention (forward; backward over keys for dK, dV; over
queries for dQ).

Tiles are fixed (BLOCK_M queries x BLOCK_N keys) and may straddle frames. Which column tiles a row
tile visits, and which of them need an element mask, comes from the shared block schedule
(``torch.ops.kron_attn.block_schedule``, csrc/schedule.h) as small int32 tensors: FULL tiles run
unmasked, PARTIAL tiles (kind ``PARTIAL``, the op's constant, passed in by the launcher) mask by
frame boundaries (``_mask_partial``), SKIP tiles are never loaded.

The self term of a row whose frame pair is blocked is merged analytically: the forward folds it
into the online softmax after the loop, the backward kernels start their accumulators from it.
Scores are kept in base 2 (``qk_scale = scale * log2 e``). The backward over keys computes
transposed (rows are keys: Sᵀ = K Qᵀ), so no register tile is ever transposed.
"""

import triton
import triton.language as tl


@triton.jit
def _mask_partial(x, fill, layout, row_frames, c0, offs_c, N, L, T, BLOCK_C: tl.constexpr, TRANSPOSED: tl.constexpr):
    """x (rows x columns of a PARTIAL tile) with ``fill`` where the pair does not attend: columns
    past N, and, column frame by column frame (one or two when a frame has more tokens than the
    tile has columns), the columns between that frame's boundaries in the rows whose frame pair
    with it is blocked (one layout byte per row and frame). x is updated in place: no mask tile."""
    first = c0 // L
    last = (tl.minimum(c0 + BLOCK_C, N) - 1) // L
    x = tl.where((offs_c < N)[None, :], x, fill)
    for u in range(first, last + 1):
        blocked = tl.load(layout + ((u * T + row_frames) if TRANSPOSED else (row_frames * T + u))) == 0
        in_frame = (offs_c >= u * L) & (offs_c < u * L + L)
        x = tl.where(blocked[:, None] & in_frame[None, :], fill, x)
    return x


@triton.jit
def _row_dot(a, sa, b, sb, offs, need, D, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """Σ_d a[i, d] b[i, d] in float32 for the rows offs where need (0 elsewhere), from global memory
    in 32-wide chunks, so that no (BLOCK x BLOCK_D) float32 tile is ever live."""
    CHUNK: tl.constexpr = 32 if BLOCK_D > 32 else BLOCK_D
    acc = tl.zeros((BLOCK,), tl.float32)
    for d0 in tl.static_range(0, BLOCK_D, CHUNK):
        offs_d = d0 + tl.arange(0, CHUNK)
        m = need[:, None] & (offs_d < D)[None, :]
        x = tl.load(a + offs[:, None] * sa + offs_d[None, :], mask=m, other=0.0).to(tl.float32)
        y = tl.load(b + offs[:, None] * sb + offs_d[None, :], mask=m, other=0.0).to(tl.float32)
        acc += tl.sum(x * y, 1)
    return acc


@triton.jit
def _rows(pid, N, L, T, BLOCK: tl.constexpr):
    """A program's row tile: offsets, in-range flags and frames (rows past N in frame T - 1)."""
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    ok = offs < N
    return offs, ok, tl.minimum(offs // L, T - 1)


@triton.jit
def _needs_self(layout, frames, ok, T):
    return (tl.load(layout + frames * T + frames, mask=ok, other=1) == 0) & ok


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
    PARTIAL: tl.constexpr,
):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m, row_ok, qf = _rows(pid_m, N, L, T, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    d_ok = offs_d < D
    md = row_ok[:, None] & d_ok[None, :]
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    q = tl.load(q_base + offs_m[:, None] * sqn + offs_d[None, :], mask=md, other=0.0)
    # The self score q_i·k_i of rows whose frame pair is blocked, before the loop (so no tile of it
    # is live there); its value v_i joins the softmax after the loop.
    need = _needs_self(LAYOUT, qf, row_ok, T)
    s_self = _row_dot(q_base, sqn, k_base, skn, offs_m, need, D, BLOCK_M, BLOCK_D) * qk_scale

    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    count = tl.load(CNT + pid_m)
    for i in range(0, count):
        n_tile = tl.load(TILES + pid_m * max_tiles + i)
        kind = tl.load(KINDS + pid_m * max_tiles + i)
        offs_n = n_tile * BLOCK_N + offs_n0
        col_ok = offs_n < N
        kt = tl.load(k_base + offs_n[None, :] * skn + offs_d[:, None], mask=d_ok[:, None] & col_ok[None, :], other=0.0)
        s = tl.dot(q, kt) * qk_scale
        if kind == PARTIAL:
            s = _mask_partial(s, float("-inf"), LAYOUT, qf, n_tile * BLOCK_N, offs_n, N, L, T, BLOCK_N, False)
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing yet: no NaN
        else:
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = m_new
        alpha = tl.math.exp2(m_i - m_safe)
        p = tl.math.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + offs_n[:, None] * svn + offs_d[None, :], mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    m_new = tl.where(need, tl.maximum(m_i, s_self), m_i)
    alpha = tl.math.exp2(m_i - tl.where(m_new == float("-inf"), 0.0, m_new))
    beta = tl.where(need, tl.math.exp2(s_self - m_new), 0.0)
    v_self = tl.load(v_base + offs_m[:, None] * svn + offs_d[None, :], mask=md & need[:, None], other=0.0)
    acc = acc * alpha[:, None] + beta[:, None] * v_self.to(tl.float32)
    l_i = l_i * alpha + beta
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
    PARTIAL: tl.constexpr,
):
    """One key tile: dV = Σ Pᵀ dO, dK = scale Σ dSᵀ Q over the query tiles that see it, computed
    transposed (rows are keys). DK, DV are contiguous (B, H, N, D) float32."""
    pid_n = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_n, key_ok, kf = _rows(pid_n, N, L, T, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_m0 = tl.arange(0, BLOCK_M)
    d_ok = offs_d < D
    nd = key_ok[:, None] & d_ok[None, :]
    q_base = Q + b * sqb + h * sqh
    do_base = DO + b * sdb + h * sdh
    stat = bh.to(tl.int64) * N

    # The self term of keys whose frame pair is blocked starts the accumulators: p_jj, ds_jj from
    # row j's own statistics.
    need = _needs_self(LAYOUT, kf, key_ok, T)
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    lse2_s = tl.load(LSE + stat + offs_n, mask=need, other=0.0) * 1.4426950408889634
    delta_s = tl.load(DELTA + stat + offs_n, mask=need, other=0.0)
    qk_s = _row_dot(q_base, sqn, k_base, skn, offs_n, need, D, BLOCK_N, BLOCK_D)
    p_s = tl.where(need, tl.math.exp2(qk_s * qk_scale - lse2_s), 0.0)
    ds_s = p_s * (_row_dot(do_base, sdn, v_base, svn, offs_n, need, D, BLOCK_N, BLOCK_D) - delta_s)
    sn = nd & need[:, None]
    dv = p_s[:, None] * tl.load(do_base + offs_n[:, None] * sdn + offs_d[None, :], mask=sn, other=0.0).to(tl.float32)
    dk = ds_s[:, None] * tl.load(q_base + offs_n[:, None] * sqn + offs_d[None, :], mask=sn, other=0.0).to(tl.float32)

    k = tl.load(k_base + offs_n[:, None] * skn + offs_d[None, :], mask=nd, other=0.0)
    v = tl.load(v_base + offs_n[:, None] * svn + offs_d[None, :], mask=nd, other=0.0)
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
        st = tl.dot(k, tl.trans(q)) * qk_scale  # Sᵀ: keys x queries
        pt = tl.math.exp2(st - lse2[None, :])
        if kind == PARTIAL:
            pt = _mask_partial(pt, 0.0, LAYOUT, kf, m_tile * BLOCK_M, offs_m, N, L, T, BLOCK_M, True)
        dpt = tl.dot(v, tl.trans(do))
        dst = pt * (dpt - delta[None, :])
        dv += tl.dot(pt.to(do.dtype), do)
        dk += tl.dot(dst.to(q.dtype), q)

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
    PARTIAL: tl.constexpr,
):
    """One query tile: dQ = scale Σ dS K over its key tiles. DQ is contiguous (B, H, N, D) float32."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m, row_ok, qf = _rows(pid_m, N, L, T, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    d_ok = offs_d < D
    md = row_ok[:, None] & d_ok[None, :]
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    stat = bh.to(tl.int64) * N
    lse2 = tl.load(LSE + stat + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
    delta = tl.load(DELTA + stat + offs_m, mask=row_ok, other=0.0)

    # The self term of rows whose frame pair is blocked starts the accumulator.
    need = _needs_self(LAYOUT, qf, row_ok, T)
    q_base = Q + b * sqb + h * sqh
    do_base = DO + b * sdb + h * sdh
    qk_s = _row_dot(q_base, sqn, k_base, skn, offs_m, need, D, BLOCK_M, BLOCK_D)
    p_s = tl.where(need, tl.math.exp2(qk_s * qk_scale - lse2), 0.0)
    ds_s = p_s * (_row_dot(do_base, sdn, v_base, svn, offs_m, need, D, BLOCK_M, BLOCK_D) - delta)
    sm = md & need[:, None]
    dq = ds_s[:, None] * tl.load(k_base + offs_m[:, None] * skn + offs_d[None, :], mask=sm, other=0.0).to(tl.float32)

    q = tl.load(q_base + offs_m[:, None] * sqn + offs_d[None, :], mask=md, other=0.0)
    do = tl.load(do_base + offs_m[:, None] * sdn + offs_d[None, :], mask=md, other=0.0)
    count = tl.load(CNT + pid_m)
    for i in range(0, count):
        n_tile = tl.load(TILES + pid_m * max_tiles + i)
        kind = tl.load(KINDS + pid_m * max_tiles + i)
        offs_n = n_tile * BLOCK_N + offs_n0
        col_ok = offs_n < N
        nd = col_ok[:, None] & d_ok[None, :]
        k = tl.load(k_base + offs_n[:, None] * skn + offs_d[None, :], mask=nd, other=0.0)
        v = tl.load(v_base + offs_n[:, None] * svn + offs_d[None, :], mask=nd, other=0.0)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        p = tl.math.exp2(s - lse2[:, None])
        if kind == PARTIAL:
            p = _mask_partial(p, 0.0, LAYOUT, qf, n_tile * BLOCK_N, offs_n, N, L, T, BLOCK_N, False)
        dp = tl.dot(do, tl.trans(v))
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k)

    tl.store(DQ + stat * D + offs_m[:, None] * D + offs_d[None, :], dq * scale, mask=md)
