"""Triton kernels of Kronecker-mask attention (forward; backward over keys for dK, dV; over
queries for dQ).

Tiles are fixed (BLOCK_M queries x BLOCK_N keys) and may straddle frames. Which column tiles a row
tile visits, and which of them need an element mask, comes from the shared block schedule
(``torch.ops.kron_attn.block_schedule``, csrc/schedule.h) as small int32 tensors: FULL tiles run
unmasked, PARTIAL tiles (kind ``PARTIAL``, the op's constant, passed in by the launcher) mask by
frame boundaries (``_mask_partial``), SKIP tiles are never loaded.

The self term of a row whose frame pair is blocked is merged analytically: the forward folds it
into the online softmax after the loop, the backward kernels start their accumulators from it.
Scores are kept in base 2 (``qk_scale = scale * LOG2E``). The backward over keys computes
transposed (rows are keys: Sᵀ = K Qᵀ), so no register tile is ever transposed.
"""

import triton
import triton.language as tl

# log2 e: the launcher scales scores by it (qk_scale) and the backward converts lse with it.
LOG2E = tl.constexpr(1.4426950408889634)


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
def _program(H, N, L, T, D, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """A program's (b, h) (int64, for base offsets), its flat index bh, and its row tile: offsets,
    in-range flags and frames (rows past N in frame T - 1), with the head-dim offsets and the
    (rows x head dim) load mask."""
    bh = tl.program_id(1)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < N
    frames = tl.minimum(offs // L, T - 1)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    return (
        (bh // H).to(tl.int64),
        (bh % H).to(tl.int64),
        bh,
        offs,
        ok,
        frames,
        offs_d,
        d_ok,
        ok[:, None] & d_ok[None, :],
    )


@triton.jit
def _needs_self(layout, frames, ok, T):
    return (tl.load(layout + frames * T + frames, mask=ok, other=1) == 0) & ok


@triton.jit
def _column_tile(TILES, KINDS, max_tiles, i, N, BLOCK: tl.constexpr):
    """Step i of this program's walk over column tiles: the tile, its kind, its column offsets and
    their in-range flags."""
    pid = tl.program_id(0)
    tile = tl.load(TILES + pid * max_tiles + i)
    kind = tl.load(KINDS + pid * max_tiles + i)
    offs = tile * BLOCK + tl.arange(0, BLOCK)
    return tile, kind, offs, offs < N


@triton.jit
def _load_rows(base, stride, offs, offs_d, mask):
    return tl.load(base + offs[:, None] * stride + offs_d[None, :], mask=mask, other=0.0)


@triton.jit
def _load_row_pair(a, sa, b, sb, offs, ok, offs_d, d_ok):
    """Rows offs of two (N, D) slices (K and V, or Q and dO), 0 past N and past D."""
    mask = ok[:, None] & d_ok[None, :]
    return _load_rows(a, sa, offs, offs_d, mask), _load_rows(b, sb, offs, offs_d, mask)


@triton.jit
def _stats(LSE, DELTA, stat, offs, mask):
    """lse · log2 e (base 2, as the scores) and delta of the rows offs."""
    return tl.load(LSE + stat + offs, mask=mask, other=0.0) * LOG2E, tl.load(DELTA + stat + offs, mask=mask, other=0.0)


@triton.jit
def _self_grad(
    q, sqn, k, skn, v, svn, do, sdn, offs, need, lse2, delta, qk_scale, D, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr
):
    """The self term of the rows offs where need (0 elsewhere): P_ii and dS_ii = P_ii (dO_i·v_i - Δ_i)."""
    p = tl.where(need, tl.math.exp2(_row_dot(q, sqn, k, skn, offs, need, D, BLOCK, BLOCK_D) * qk_scale - lse2), 0.0)
    return p, p * (_row_dot(do, sdn, v, svn, offs, need, D, BLOCK, BLOCK_D) - delta)


@triton.jit
def fwd_kernel(
    Q, K, V, O, LSE, LAYOUT, CNT, TILES, KINDS,
    sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sob, soh, son,
    H, N, T, L, D, max_tiles, qk_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PARTIAL: tl.constexpr,
):  # fmt: skip
    b, h, bh, offs_m, row_ok, qf, offs_d, d_ok, md = _program(H, N, L, T, D, BLOCK_M, BLOCK_D)
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    q = _load_rows(q_base, sqn, offs_m, offs_d, md)
    # The self score q_i·k_i of rows whose frame pair is blocked, before the loop (so no tile of it
    # is live there); its value v_i joins the softmax after the loop.
    need = _needs_self(LAYOUT, qf, row_ok, T)
    s_self = _row_dot(q_base, sqn, k_base, skn, offs_m, need, D, BLOCK_M, BLOCK_D) * qk_scale

    m_i = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    for i in range(0, tl.load(CNT + tl.program_id(0))):
        n_tile, kind, offs_n, col_ok = _column_tile(TILES, KINDS, max_tiles, i, N, BLOCK_N)
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
        v = _load_rows(v_base, svn, offs_n, offs_d, col_ok[:, None] & d_ok[None, :])
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    m_new = tl.where(need, tl.maximum(m_i, s_self), m_i)
    alpha = tl.math.exp2(m_i - tl.where(m_new == float("-inf"), 0.0, m_new))
    beta = tl.where(need, tl.math.exp2(s_self - m_new), 0.0)
    v_self = _load_rows(v_base, svn, offs_m, offs_d, md & need[:, None])
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
    Q, K, V, DO, LSE, DELTA, DK, DV, LAYOUT, CNT, TILES, KINDS,
    sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sdb, sdh, sdn,
    H, N, T, L, D, max_tiles, qk_scale, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PARTIAL: tl.constexpr,
):  # fmt: skip
    """One key tile: dV = Σ Pᵀ dO, dK = scale Σ dSᵀ Q over the query tiles that see it, computed
    transposed (rows are keys). DK, DV are contiguous (B, H, N, D) float32."""
    b, h, bh, offs_n, key_ok, kf, offs_d, d_ok, nd = _program(H, N, L, T, D, BLOCK_N, BLOCK_D)
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    do_base = DO + b * sdb + h * sdh
    stat = bh.to(tl.int64) * N

    # The self term of keys whose frame pair is blocked starts the accumulators: p_jj, ds_jj from
    # row j's own statistics.
    need = _needs_self(LAYOUT, kf, key_ok, T)
    lse2, delta = _stats(LSE, DELTA, stat, offs_n, need)
    p_s, ds_s = _self_grad(
        q_base, sqn, k_base, skn, v_base, svn, do_base, sdn, offs_n, need, lse2, delta, qk_scale, D, BLOCK_N, BLOCK_D
    )
    sn = nd & need[:, None]
    dv = p_s[:, None] * _load_rows(do_base, sdn, offs_n, offs_d, sn).to(tl.float32)
    dk = ds_s[:, None] * _load_rows(q_base, sqn, offs_n, offs_d, sn).to(tl.float32)

    k, v = _load_row_pair(k_base, skn, v_base, svn, offs_n, key_ok, offs_d, d_ok)
    for i in range(0, tl.load(CNT + tl.program_id(0))):
        m_tile, kind, offs_m, row_ok = _column_tile(TILES, KINDS, max_tiles, i, N, BLOCK_M)
        q, do = _load_row_pair(q_base, sqn, do_base, sdn, offs_m, row_ok, offs_d, d_ok)
        lse2_m, delta_m = _stats(LSE, DELTA, stat, offs_m, row_ok)
        st = tl.dot(k, tl.trans(q)) * qk_scale  # Sᵀ: keys x queries
        pt = tl.math.exp2(st - lse2_m[None, :])
        if kind == PARTIAL:
            pt = _mask_partial(pt, 0.0, LAYOUT, kf, m_tile * BLOCK_M, offs_m, N, L, T, BLOCK_M, True)
        dpt = tl.dot(v, tl.trans(do))
        dst = pt * (dpt - delta_m[None, :])
        dv += tl.dot(pt.to(do.dtype), do)
        dk += tl.dot(dst.to(q.dtype), q)

    out = stat * D + offs_n[:, None] * D + offs_d[None, :]
    tl.store(DK + out, dk * scale, mask=nd)
    tl.store(DV + out, dv, mask=nd)


@triton.jit
def bwd_dq_kernel(
    Q, K, V, DO, LSE, DELTA, DQ, LAYOUT, CNT, TILES, KINDS,
    sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sdb, sdh, sdn,
    H, N, T, L, D, max_tiles, qk_scale, scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PARTIAL: tl.constexpr,
):  # fmt: skip
    """One query tile: dQ = scale Σ dS K over its key tiles. DQ is contiguous (B, H, N, D) float32."""
    b, h, bh, offs_m, row_ok, qf, offs_d, d_ok, md = _program(H, N, L, T, D, BLOCK_M, BLOCK_D)
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    stat = bh.to(tl.int64) * N
    lse2, delta = _stats(LSE, DELTA, stat, offs_m, row_ok)

    # The self term of rows whose frame pair is blocked starts the accumulator.
    need = _needs_self(LAYOUT, qf, row_ok, T)
    q_base = Q + b * sqb + h * sqh
    do_base = DO + b * sdb + h * sdh
    _, ds_s = _self_grad(
        q_base, sqn, k_base, skn, v_base, svn, do_base, sdn, offs_m, need, lse2, delta, qk_scale, D, BLOCK_M, BLOCK_D
    )
    dq = ds_s[:, None] * _load_rows(k_base, skn, offs_m, offs_d, md & need[:, None]).to(tl.float32)

    q, do = _load_row_pair(q_base, sqn, do_base, sdn, offs_m, row_ok, offs_d, d_ok)
    for i in range(0, tl.load(CNT + tl.program_id(0))):
        n_tile, kind, offs_n, col_ok = _column_tile(TILES, KINDS, max_tiles, i, N, BLOCK_N)
        k, v = _load_row_pair(k_base, skn, v_base, svn, offs_n, col_ok, offs_d, d_ok)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        p = tl.math.exp2(s - lse2[:, None])
        if kind == PARTIAL:
            p = _mask_partial(p, 0.0, LAYOUT, qf, n_tile * BLOCK_N, offs_n, N, L, T, BLOCK_N, False)
        dp = tl.dot(do, tl.trans(v))
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k)

    tl.store(DQ + stat * D + offs_m[:, None] * D + offs_d[None, :], dq * scale, mask=md)
