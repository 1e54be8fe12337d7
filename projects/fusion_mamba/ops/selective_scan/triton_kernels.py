"""Triton selective-scan kernels (CUDA), forward and backward, for 1D scans and fused SS2D.

Two families. The chunked kernels (``_scan_fwd_kernel``, ``_scan_bwd_kernel``) read
contiguous channel-major inputs and serve every scan. The sequential kernels
(``_scan_fwd_seq_kernel``, ``_scan_bwd_seq_kernel``) read strided channels-last inputs, as
SS2D makes them on CUDA, and walk the tokens one by one with each channel's states in one
thread's registers; they serve d_state >= 8 on any grid, the default launch cutting the
sequences of a small grid into segments, forward and backward (:func:`_sequential`). The
rest of this note is about the chunked kernels.

One program owns (channel block, batch, direction). It walks the sequence chunk by chunk,
keeping the (channels, d_state) state in registers. A chunk is a (tokens, channels, states)
tile with the tokens first, so Triton lays the channels x states over the threads and the
tokens in each thread's registers: ``tl.associative_scan`` over
``(a, b) -> (a1 a2, a2 b1 + b2)`` then runs sequentially in registers (no shuffles) and only
the sums over states (the output) or over channels (dB, dC) cross threads. When the
channels x states do not fill the threads (d_state 1), the remaining lanes and warps split
the tokens and the scan finishes across them. Everything is accumulated in float32 whatever
the input dtype.

Token ``t`` of direction ``k`` sits at spatial offset ``p_k(t)`` of the flattened (H, W) map:
row-major (k=0), column-major (k=1), and both reversed (k=2, 3). A 1D scan is the case
H = 1, W = L, one direction. The kernels read x / delta / B / C and write the outputs
straight from and to the spatial layout with that addressing, so no cross-scan copy is
made; the directional outputs are summed into the (B, D, L) result with float32 atomics.

Forward saves only the state at the start of every chunk (B, K, D, n_chunks, N). Backward
walks the chunks in reverse, recomputes the chunk's states from the saved one, runs the
adjoint recurrence ``g_t = C_t dy_t + a_{t+1} g_{t+1}`` as a reverse associative scan and
accumulates every gradient (dA, dD, d delta_bias in registers, dB / dC across channel blocks
and dx across directions with atomics; dC only when C needs one).
"""
import os
from typing import List, NamedTuple, Optional, Tuple

import torch
import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)
LN2 = tl.constexpr(0.6931471805599453)
# The step's softplus through the GPU's approximate exp2 / log2 instructions (PTX, which
# Triton's interpreter cannot run): tl.exp / tl.log compile to range checks and a log
# polynomial, about 30 instructions per token in the sequential kernels' loops instead of 4.
FAST_SOFTPLUS = tl.constexpr(os.environ.get('TRITON_INTERPRET', '0') != '1')


@triton.jit
def _combine(a1, b1, a2, b2):
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _token_offsets(t, L, H, W, k):
    """Spatial offset (in the flattened H x W map) of token t of direction k."""
    tt = tl.where(k >= 2, L - 1 - t, t)
    return tl.where((k % 2) == 1, (tt % H) * W + tt // H, tt)


@triton.jit
def _softplus(x):
    """log(1 + exp(x)), x itself above 20; in float32 (x float32)."""
    if FAST_SOFTPLUS:
        e = tl.inline_asm_elementwise('ex2.approx.ftz.f32 $0, $1;', '=r,r', [x * LOG2E],
                                      dtype=tl.float32, is_pure=True, pack=1)
        log = tl.inline_asm_elementwise('lg2.approx.ftz.f32 $0, $1;', '=r,r', [1.0 + e],
                                        dtype=tl.float32, is_pure=True, pack=1) * LN2
    else:
        log = tl.log(1.0 + tl.exp(x))
    return tl.where(x <= 20.0, log, x)


@triton.jit
def _program_channels(A, DS, BIAS, sat, Dm, N, Dg, G,
                      HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr,
                      NP: tl.constexpr, BD: tl.constexpr, STATES_FIRST: tl.constexpr = False,
                      segments=1):
    """What one program owns: batch b, direction k, channels d (BD,) and states n (NP,) with
    their masks, the B / C group, and the channels' parameters: A * log2(e), D and
    delta_bias (BD,; zeros when absent). A is (K * Dm, N) and its tile (BD, NP); with
    ``STATES_FIRST`` A comes transposed, (N, K * Dm) with row stride ``sat``, and its tile
    and mask are (NP, BD) (the sequential kernels' layout). The grid is (channel blocks,
    batch x ``segments``, K)."""
    pid_d = tl.program_id(0)
    b = (tl.program_id(1) // segments).to(tl.int64)
    k = tl.program_id(2)
    d = pid_d * BD + tl.arange(0, BD)
    dm = d < Dm
    n = tl.arange(0, NP)
    nm = n < N
    grp = k * G + (pid_d * BD) // Dg
    row = k * Dm + d
    if STATES_FIRST:
        mask = nm[:, None] & dm[None, :]
        A2 = tl.load(A + n[:, None] * sat + row[None, :], mask=mask, other=0.0) * LOG2E
    else:
        mask = dm[:, None] & nm[None, :]
        A2 = tl.load(A + row[:, None] * N + n[None, :], mask=mask, other=0.0) * LOG2E
    Dv = tl.zeros((BD, ), dtype=tl.float32)
    bias = tl.zeros((BD, ), dtype=tl.float32)
    if HAS_D:
        Dv = tl.load(DS + row, mask=dm, other=0.0)
    if HAS_BIAS:
        bias = tl.load(BIAS + row, mask=dm, other=0.0)
    return b, k, d, dm, n, nm, grp, row, mask, A2, Dv, bias


@triton.jit
def _load_step(dt_ptr, p, mask, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """The (T, BD) tile of delta at offsets ``p``: (pre-activation with delta_bias, step);
    the step is 0 outside ``mask``."""
    pre = tl.load(dt_ptr + p, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        pre += bias[None, :]
    dt = pre
    if SOFTPLUS:
        dt = _softplus(pre)
    return pre, tl.where(mask, dt, 0.0)


@triton.jit
def _fwd_tiles(c, x_ptr, dt_ptr, BM, CM, bc_off, j, L, H, W, k, dm, nm, bias,
               HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, T: tl.constexpr):
    """Chunk c's token offsets (T, 1), mask (T, BD), x / step tiles (T, BD) and B / C tiles
    (T, NP) in float32 (zeros past the sequence end)."""
    t = c * T + j
    tm = t < L
    p = _token_offsets(t, L, H, W, k)[:, None]
    m2 = tm[:, None] & dm[None, :]
    mnt = tm[:, None] & nm[None, :]
    u = tl.load(x_ptr + p, mask=m2, other=0.0).to(tl.float32)
    _, dt = _load_step(dt_ptr, p, m2, bias, HAS_BIAS, SOFTPLUS)
    Bt = tl.load(BM + bc_off + p, mask=mnt, other=0.0).to(tl.float32)
    Ct = tl.load(CM + bc_off + p, mask=mnt, other=0.0).to(tl.float32)
    return p, m2, u, dt, Bt, Ct


@triton.jit(do_not_specialize=['L', 'H', 'W', 'n_chunks'])
def _scan_fwd_kernel(X, DT, A, BM, CM, DS, BIAS, Y, HS, LAST,
                     Dm, L, H, W, N, Dg, G, K, n_chunks,
                     HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                     ATOMIC: tl.constexpr, STORE_LAST: tl.constexpr, SAVE_STATES: tl.constexpr,
                     PREFETCH: tl.constexpr, NP: tl.constexpr, BD: tl.constexpr,
                     T: tl.constexpr):
    b, k, d, dm, n, nm, grp, row, mdn, A2, Dv, bias = _program_channels(
        A, DS, BIAS, 0, Dm, N, Dg, G, HAS_D, HAS_BIAS, NP, BD)
    j = tl.arange(0, T)
    # (T, BD) tiles of x / delta / y, (T, NP) tiles of B / C, (T, BD, NP) scan tensors
    x_ptr = X + b * Dm * L + d[None, :] * L
    dt_ptr = DT + ((b * K + k) * Dm + d[None, :]) * L
    bc_off = (b * K * G + grp) * N * L + n[None, :] * L
    y_ptr = Y + b * Dm * L + d[None, :] * L
    hs_ptr = HS + (((b * K + k) * Dm + d[:, None]) * n_chunks) * NP + n[None, :]
    first = (j == 0)[:, None, None]
    last = (j == T - 1)[:, None, None]
    h = tl.zeros((BD, NP), dtype=tl.float32)
    if PREFETCH:  # chunk c + 1's loads are issued before chunk c's scan
        tiles = _fwd_tiles(0, x_ptr, dt_ptr, BM, CM, bc_off, j, L, H, W, k, dm, nm, bias,
                           HAS_BIAS, SOFTPLUS, T)
    for c in range(n_chunks):
        if PREFETCH:
            p, m2, u, dt, Bt, Ct = tiles
            tiles = _fwd_tiles(c + 1, x_ptr, dt_ptr, BM, CM, bc_off, j, L, H, W, k, dm, nm,
                               bias, HAS_BIAS, SOFTPLUS, T)
        else:
            p, m2, u, dt, Bt, Ct = _fwd_tiles(c, x_ptr, dt_ptr, BM, CM, bc_off, j, L, H, W, k,
                                              dm, nm, bias, HAS_BIAS, SOFTPLUS, T)
        if SAVE_STATES:
            tl.store(hs_ptr + c * NP, h, mask=dm[:, None])
        a = tl.exp2(dt[:, :, None] * A2[None, :, :])
        drive = (dt * u)[:, :, None] * Bt[:, None, :]
        drive = tl.where(first, drive + a * h[None, :, :], drive)
        _, hh = tl.associative_scan((a, drive), 0, _combine)
        y = tl.sum(hh * Ct[:, None, :], axis=2)
        if HAS_D:
            y += Dv[None, :] * u
        if ATOMIC:
            tl.atomic_add(y_ptr + p, y, mask=m2, sem='relaxed')
        else:
            tl.store(y_ptr + p, y, mask=m2)
        h = tl.sum(tl.where(last, hh, 0.0), axis=0)
    if STORE_LAST:
        tl.store(LAST + (b * Dm + d[:, None]) * N + n[None, :], h, mask=mdn)


@triton.jit
def _step(pre, valid, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """(pre-activation with delta_bias, step) in float32 (BD,) of a sequential kernel's
    token; the step is 0 unless ``valid``."""
    pre = pre.to(tl.float32)
    if HAS_BIAS:
        pre += bias
    dt = pre
    if SOFTPLUS:
        dt = _softplus(pre)
    return pre, tl.where(valid, dt, 0.0)


@triton.jit
def _token_walk(t, L, H, W, k):
    """Where token t of direction k sits, for walking the tokens after it without a division
    per token: (spatial offset, index r along its run, step s of r per token, run length,
    offset stride along a run). A run is a column (H tokens, stride W) of the column-major
    directions and the whole sequence (stride 1) of the row-major ones; s is -1 for the
    reversed directions. See :func:`_walk_next`."""
    col_major = (k % 2) == 1
    tt = tl.where(k >= 2, L - 1 - t, t)
    run = tl.where(col_major, H, L)
    return (_token_offsets(t, L, H, W, k), tl.where(col_major, tt % H, tt),
            tl.where(k >= 2, -1, 1), run, tl.where(col_major, W, 1))


@triton.jit
def _walk_next(q, r, s, run, stride):
    """The (offset, run index) of the token after the one at (q, r) (see :func:`_token_walk`):
    one stride along the run, or at its end to the next run's first token (past the last
    token of a sequence the offset is meaningless and must not be read)."""
    r_next = r + s
    wrap = (r_next == run) | (r_next < 0)
    q_next = tl.where(wrap, q + s * (1 - (run - 1) * stride), q + s * stride)
    return q_next, tl.where(wrap, r_next - s * run, r_next)


@triton.jit
def _offset(q, valid, WIDE: tl.constexpr):
    """The offset q where ``valid``, else 0; int64 with ``WIDE`` (an offset times a token
    stride may pass 2**31), else int32 (cheaper address arithmetic every token)."""
    p = tl.where(valid, q, 0)
    if WIDE:
        p = p.to(tl.int64)
    return p


@triton.jit
def _token_loads(p, x_ptr, dt_ptr, b_ptr, c_ptr, b_off, c_off, sxl, sdl, sbl, scl, dm, nm,
                 MASKED: tl.constexpr, WITH_C: tl.constexpr):
    """The loads of the token at spatial offset p (:func:`_offset`) in the sequential
    forward: p, x and pre-activation delta (BD,) and B, C (NP,) (each thread's copy); C is B
    again without ``WITH_C``. The kernel passes offset 0 past the sequence end (a prefetch
    after the last token), whose loads are never used."""
    if MASKED:  # channels past Dm or states past N
        u = tl.load(x_ptr + p * sxl, mask=dm, other=0.0)
        pre = tl.load(dt_ptr + p * sdl, mask=dm, other=0.0)
        Bv = tl.load(b_ptr + p * sbl + b_off, mask=nm, other=0.0)
        Cv = Bv
        if WITH_C:
            Cv = tl.load(c_ptr + p * scl + c_off, mask=nm, other=0.0)
    else:
        u = tl.load(x_ptr + p * sxl)
        pre = tl.load(dt_ptr + p * sdl)
        Bv = tl.load(b_ptr + p * sbl + b_off)
        Cv = Bv
        if WITH_C:
            Cv = tl.load(c_ptr + p * scl + c_off)
    return p, u, pre, Bv, Cv


@triton.jit
def _fwd_token(t, valid, loads, h, steps, A2, Dv, bias, y_ptr, syl, hs_ptr, shn, dm,
               HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
               ATOMIC: tl.constexpr, SAVE_STATES: tl.constexpr, SUMMARY: tl.constexpr,
               NP: tl.constexpr, T: tl.constexpr):
    """One token of :func:`_scan_fwd_seq_kernel`: stores the state before it at a chunk
    start (``SAVE_STATES``), steps the state h (NP, BD) and writes the output (or sums the
    step into ``steps`` (BD,) with ``SUMMARY``). An invalid token (past the segment end)
    leaves h and ``steps`` as they are and writes nothing. Returns (h, steps)."""
    p, u, pre, Bv, Cv = loads
    if SAVE_STATES and not SUMMARY:
        if valid & (t % T == 0):
            tl.store(hs_ptr + (t // T) * NP * shn, h, mask=dm[None, :])
    u = u.to(tl.float32)
    _, dt = _step(pre, valid, bias, HAS_BIAS, SOFTPLUS)
    h = tl.exp2(A2 * dt[None, :]) * h + Bv.to(tl.float32)[:, None] * (dt * u)[None, :]
    if SUMMARY:
        steps += dt
    else:
        y = tl.sum(h * Cv.to(tl.float32)[:, None], axis=0)
        if HAS_D:
            y += Dv * u
        if ATOMIC:
            tl.atomic_add(y_ptr + p * syl, y, mask=dm & valid, sem='relaxed')
        else:
            tl.store(y_ptr + p * syl, y, mask=dm & valid)
    return h, steps


@triton.jit(do_not_specialize=['L', 'H', 'W', 'n_chunks', 'sat', 'shn', 'seg_len',
                               'n_summaries'])
def _scan_fwd_seq_kernel(X, DT, AT, BM, CM, DS, BIAS, Y, HS, SUMH, SUMDT,
                         sxb, sxd, sxl, sdb, sdk, sdd, sdl, sat, shn, sbb, sbg, sbn, sbl,
                         scb, scg, scn, scl, syb, syd, syl,
                         Dm, L, H, W, N, Dg, G, K, n_chunks, seg_len, n_summaries,
                         HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                         ATOMIC: tl.constexpr, SAVE_STATES: tl.constexpr,
                         SUMMARY: tl.constexpr, MASKED: tl.constexpr, NP: tl.constexpr,
                         BD: tl.constexpr, T: tl.constexpr, WIDE: tl.constexpr = True):
    """The forward as a token-by-token recurrence: each thread owns one channel and keeps
    its states in registers (the (NP, BD) state tile has the channels on the lanes, and with
    BD < 32 the states on the remaining lanes), so the output's sum over states stays within
    the thread or a few lanes. Strided inputs: with channels-last maps (channel stride 1)
    every per-token load and the output's atomic add are coalesced whatever the scan
    direction. Each token's loads are issued before the token before it is computed; the
    loop takes two tokens (:func:`_fwd_token`) per iteration, so that the prefetched values
    need no copies between iterations. The token offsets are walked without a division per
    token (:func:`_walk_next`), in int32 unless ``WIDE`` (:func:`_offset`). With
    ``SAVE_STATES`` the state at the start of every T-token chunk is stored for
    :func:`_scan_bwd_seq_kernel`, as (B, K, n_chunks, NP, Dm) with state stride ``shn`` (Dm,
    not specialised, like ``sat``). ``MASKED``: Dm is not a multiple of BD or N is not NP.

    Sequence parallelism: each sequence is cut into ``n_summaries + 1`` segments of
    ``seg_len`` tokens (a multiple of T), one program each. With ``SUMMARY`` a program runs
    its segment (not the last) from a zero state and stores the end state to SUMH (B, K,
    n_summaries, NP, Dm) and the segment's summed step to SUMDT (B, K, n_summaries, Dm); the
    output pass then starts segment s from ``h = exp2(A log2(e) sum(dt)) h + h_end`` over the
    segments before it. One segment (``n_summaries`` 0) is the plain recurrence.

    A comes transposed, AT (N, K * Dm) with row stride ``sat``: its (NP, BD) tile, the one
    two-dimensional load, then is contiguous along the channels only, and with ``sat`` not
    specialised Triton cannot vectorise it, so its coalescing pass puts the channels on the
    lanes and the states in registers, the layout every op of the loop then takes (a tile
    contiguous along the states would spread them over the lanes and convert layouts every
    token). Each thread reads B and C (NP,) itself, broadcast over the channels."""
    segments = n_summaries + (0 if SUMMARY else 1)  # programs per sequence
    b, k, d, dm, n, nm, grp, row, mnd, A2, Dv, bias = _program_channels(
        AT, DS, BIAS, sat, Dm, N, Dg, G, HAS_D, HAS_BIAS, NP, BD, STATES_FIRST=True,
        segments=segments)
    seg = tl.program_id(1) % segments
    x_ptr = X + b * sxb + d * sxd
    dt_ptr = DT + b * sdb + k.to(tl.int64) * sdk + d * sdd  # K B L D can pass 2**31
    b_ptr = BM + b * sbb + grp * sbg
    c_ptr = CM + b * scb + grp * scg
    b_off, c_off = n * sbn, n * scn
    y_ptr = Y + b * syb + d * syd
    hs_ptr = HS + (b * K + k) * n_chunks * NP * shn + n[:, None] * shn + d[None, :]
    summaries = (b * K + k) * n_summaries  # this sequence's first summary
    sumh_ptr = SUMH + summaries * NP * shn + n[:, None] * shn + d[None, :]
    sumdt_ptr = SUMDT + summaries * Dm + d
    h = tl.zeros((NP, BD), dtype=tl.float32)
    if not SUMMARY:
        for i in range(seg):  # the state at the segment start, from the earlier segments
            steps = tl.load(sumdt_ptr + i * Dm, mask=dm, other=0.0)
            h_end = tl.load(sumh_ptr + i * NP * shn, mask=dm[None, :], other=0.0)
            h = tl.exp2(A2 * steps[None, :]) * h + h_end
    steps = tl.zeros((BD, ), dtype=tl.float32)
    start = seg * seg_len
    stop = tl.minimum(start + seg_len, L)
    # two tokens per iteration, each token's loads issued before the token before it is
    # computed; q, r: the next token to load (see _token_walk)
    q, r, s, run, stride = _token_walk(start, L, H, W, k)
    loads = _token_loads(_offset(q, start < L, WIDE), x_ptr, dt_ptr, b_ptr, c_ptr, b_off,
                         c_off, sxl, sdl, sbl, scl, dm, nm, MASKED, not SUMMARY)
    for t in range(start, stop, 2):
        q, r = _walk_next(q, r, s, run, stride)
        ahead = _token_loads(_offset(q, t + 1 < L, WIDE), x_ptr, dt_ptr, b_ptr, c_ptr, b_off,
                             c_off, sxl, sdl, sbl, scl, dm, nm, MASKED, not SUMMARY)
        h, steps = _fwd_token(t, t < stop, loads, h, steps, A2, Dv, bias, y_ptr, syl, hs_ptr,
                              shn, dm, HAS_D, HAS_BIAS, SOFTPLUS, ATOMIC, SAVE_STATES,
                              SUMMARY, NP, T)
        q, r = _walk_next(q, r, s, run, stride)
        loads = _token_loads(_offset(q, t + 2 < L, WIDE), x_ptr, dt_ptr, b_ptr, c_ptr, b_off,
                             c_off, sxl, sdl, sbl, scl, dm, nm, MASKED, not SUMMARY)
        h, steps = _fwd_token(t + 1, t + 1 < stop, ahead, h, steps, A2, Dv, bias, y_ptr, syl,
                              hs_ptr, shn, dm, HAS_D, HAS_BIAS, SOFTPLUS, ATOMIC, SAVE_STATES,
                              SUMMARY, NP, T)
    if SUMMARY:
        tl.store(sumh_ptr + seg * NP * shn, h, mask=dm[None, :])
        tl.store(sumdt_ptr + seg * Dm, steps, mask=dm)


@triton.jit
def _bwd_token_loads(q, valid, x_ptr, dt_ptr, b_ptr, c_ptr, dy_ptr, sxl, sdl, sbl, scl, syl,
                     dm, nm, MASKED: tl.constexpr, WITH_GRAD: tl.constexpr,
                     WIDE: tl.constexpr):
    """The loads in the sequential backward of the token at spatial offset q, ``valid`` when
    0 <= t < L: its offset p (:func:`_offset`), ``valid``, x and the pre-activation delta
    (BD,), B (NP,) and, with ``WITH_GRAD``, dy (BD,; 0 for an invalid token) and C (NP,)
    (else x and B again). The loops issue them one token ahead of the arithmetic (an
    invalid token, a prefetch past a segment end, reads token 0 and is never used)."""
    p = _offset(q, valid, WIDE)
    if MASKED:
        u = tl.load(x_ptr + p * sxl, mask=dm, other=0.0)
        pre = tl.load(dt_ptr + p * sdl, mask=dm, other=0.0)
        Bv = tl.load(b_ptr + p * sbl, mask=nm, other=0.0)
    else:
        u = tl.load(x_ptr + p * sxl)
        pre = tl.load(dt_ptr + p * sdl)
        Bv = tl.load(b_ptr + p * sbl)
    dy, Cv = u, Bv
    if WITH_GRAD:
        dy = tl.load(dy_ptr + p * syl, mask=dm & valid, other=0.0)
        Cv = tl.load(c_ptr + p * scl, mask=nm, other=0.0)
    return p, valid, u, pre, Bv, dy, Cv


@triton.jit
def _walk_back(q, r, s, run, stride, move):
    """:func:`_walk_next` towards the sequence start where ``move``, else (q, r) as they
    are."""
    q_back, r_back = _walk_next(q, r, -s, run, stride)
    return tl.where(move, q_back, q), tl.where(move, r_back, r)


@triton.jit(do_not_specialize=['L', 'H', 'W', 'sat', 'shn', 'seg_len', 'n_summaries'])
def _scan_bwd_seq_summary_kernel(X, DT, AT, BM, CM, BIAS, DY, SUMG, SUMDT,
                                 sxb, sxd, sxl, sdb, sdk, sdd, sdl, sat, shn, sbb, sbg, sbn,
                                 sbl, scb, scg, scn, scl, syb, syd, syl,
                                 Dm, L, H, W, N, Dg, G, K, seg_len, n_summaries,
                                 HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                                 MASKED: tl.constexpr, NP: tl.constexpr, BD: tl.constexpr,
                                 WIDE: tl.constexpr = True):
    """Segment summaries of :func:`_scan_bwd_seq_kernel`'s adjoint recurrence. Each sequence
    is cut into ``n_summaries + 1`` segments of ``seg_len`` tokens; program i walks segment
    i + 1 backwards from a zero carry and stores what it hands the segment before it,
    ``a_s g_s`` at its first token s, to SUMG (B, K, n_summaries, NP, Dm), and its summed
    step to SUMDT (B, K, n_summaries, Dm). The carry is linear: with a carry c from the
    segments after it the segment hands on ``a_s g_s + exp2(A log2(e) sum(dt)) c``."""
    b, k, d, dm, n, nm, grp, row, mnd, A2, _, bias = _program_channels(
        AT, BIAS, BIAS, sat, Dm, N, Dg, G, False, HAS_BIAS, NP, BD, STATES_FIRST=True,
        segments=n_summaries)
    i = tl.program_id(1) % n_summaries
    x_ptr = X + b * sxb + d * sxd
    dt_ptr = DT + b * sdb + k.to(tl.int64) * sdk + d * sdd
    b_ptr = BM + b * sbb + grp * sbg + n * sbn
    c_ptr = CM + b * scb + grp * scg + n * scn
    dy_ptr = DY + b * syb + d * syd
    start = (i + 1) * seg_len
    stop = tl.minimum(start + seg_len, L)
    ag = tl.zeros((NP, BD), dtype=tl.float32)
    steps = tl.zeros((BD, ), dtype=tl.float32)
    q, r, s, run, stride = _token_walk(stop - 1, L, H, W, k)  # tokens stop - 1 down to start
    loads = _bwd_token_loads(q, stop > 0, x_ptr, dt_ptr, b_ptr, c_ptr, dy_ptr, sxl, sdl, sbl,
                             scl, syl, dm, nm, MASKED, True, WIDE)
    for tt in range(start, stop):
        t = start + stop - 1 - tt
        _, valid, _, pre, _, dy, Cv = loads
        q, r = _walk_next(q, r, -s, run, stride)
        loads = _bwd_token_loads(q, t > 0, x_ptr, dt_ptr, b_ptr, c_ptr, dy_ptr, sxl, sdl, sbl,
                                 scl, syl, dm, nm, MASKED, True, WIDE)
        _, dt = _step(pre, valid, bias, HAS_BIAS, SOFTPLUS)
        ag = tl.exp2(A2 * dt[None, :]) * (Cv.to(tl.float32)[:, None]
                                          * dy.to(tl.float32)[None, :] + ag)
        steps += dt
    summary = (b * K + k) * n_summaries + i
    tl.store(SUMG + summary * NP * shn + n[:, None] * shn + d[None, :], ag, mask=dm[None, :])
    tl.store(SUMDT + summary * Dm + d, steps, mask=dm)


@triton.jit
def _bwd_recompute_token(loads, h, scratch_ptr, A2, bias, HAS_BIAS: tl.constexpr,
                         SOFTPLUS: tl.constexpr):
    """One token of the backward's forward pass: stores the state h (NP, BD) before the
    token to ``scratch_ptr`` and returns the state after it."""
    _, valid, u, pre, Bv, _, _ = loads
    _, dt = _step(pre, valid, bias, HAS_BIAS, SOFTPLUS)
    tl.store(scratch_ptr, h)
    return (tl.exp2(A2 * dt[None, :]) * h
            + Bv.to(tl.float32)[:, None] * (dt * u.to(tl.float32))[None, :])


@triton.jit
def _bwd_reverse_token(loads, h_prev, ag, dA_acc, dD_acc, dbias_acc, A2, Dv, bias, dm, nm,
                       ddt_ptr, sel, dx_ptr, sgl, DBM, DCM, bc_grad, HAS_D: tl.constexpr,
                       HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, ATOMIC: tl.constexpr,
                       NEED_DC: tl.constexpr):
    """One token of the backward's reverse pass, given the state before it h_prev (NP, BD)
    and ``ag`` = a_{t+1} g_{t+1} of the token after it: writes its ddelta, dx, dB (and dC)
    and returns (a_t g_t, and the dA (NP, BD), dD (BD,) and d delta_bias (BD,) sums with
    its terms added). An invalid token (past the sequence end) adds and writes nothing."""
    p, valid, u, pre, Bv, dy, Cv = loads
    pre, dt = _step(pre, valid, bias, HAS_BIAS, SOFTPLUS)
    m = dm & valid
    u, Bv = u.to(tl.float32), Bv.to(tl.float32)
    dy, Cv = dy.to(tl.float32), Cv.to(tl.float32)
    a = tl.exp2(A2 * dt[None, :])
    dtu = dt * u
    drive = Bv[:, None] * dtu[None, :]
    g = Cv[:, None] * dy[None, :] + ag
    gah = g * (a * h_prev)  # dL/d(dt A) per state
    dA_acc += gah * dt[None, :]
    gb = tl.sum(g * Bv[:, None], axis=0)
    ddt = tl.sum(gah * A2, axis=0) * LN2 + u * gb
    du = dt * gb
    if HAS_D:
        du += Dv * dy
        dD_acc += dy * u
    if SOFTPLUS:  # softplus' = sigmoid = exp(pre - softplus(pre)): one exp2
        ddt = ddt * tl.exp2((pre - dt) * LOG2E)
    ddt = tl.where(m, ddt, 0.0)
    dbias_acc += ddt
    tl.store(ddt_ptr + p * sel, ddt, mask=m)
    if ATOMIC:
        tl.atomic_add(dx_ptr + p * sgl, du, mask=m, sem='relaxed')
    else:
        tl.store(dx_ptr + p * sgl, du, mask=m)
    mn = nm & valid
    tl.atomic_add(DBM + bc_grad + p, tl.sum(g * dtu[None, :], axis=1), mask=mn, sem='relaxed')
    if NEED_DC:
        dC = tl.sum((a * h_prev + drive) * dy[None, :], axis=1)
        tl.atomic_add(DCM + bc_grad + p, dC, mask=mn, sem='relaxed')
    return a * g, dA_acc, dD_acc, dbias_acc


@triton.jit(do_not_specialize=['L', 'H', 'W', 'n_chunks', 'sat', 'sst', 'shn', 'seg_chunks',
                               'n_summaries'])
def _scan_bwd_seq_kernel(X, DT, AT, BM, CM, DS, BIAS, HS, DY, SCRATCH, SUMG, SUMDT,
                         DX, DDT, DA, DBM, DCM, DDS, DBIAS,
                         sxb, sxd, sxl, sdb, sdk, sdd, sdl, sat, sst, shn, sbb, sbg, sbn,
                         sbl, scb, scg, scn, scl, syb, syd, syl, sgb, sgd, sgl,
                         seb, sek, sed, sel,
                         Dm, L, H, W, N, Dg, G, K, n_chunks, seg_chunks, n_summaries,
                         HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                         ATOMIC: tl.constexpr, NEED_DC: tl.constexpr, MASKED: tl.constexpr,
                         NP: tl.constexpr, BD: tl.constexpr, S: tl.constexpr,
                         WIDE: tl.constexpr = True):
    """Gradients of :func:`_scan_fwd_seq_kernel` token by token, in reverse.

    Sequence parallelism: each sequence is cut into ``n_summaries + 1`` segments of
    ``seg_chunks`` S-token chunks, one program each; a program starts from the carry that
    the segments after it hand on, combined from their summaries
    (:func:`_scan_bwd_seq_summary_kernel`). One segment (``n_summaries`` 0) is the whole
    sequence.

    For every S-token chunk of the segment, last first: the forward is recomputed from the
    chunk's saved start state, the state before each token going to this program's scratch (S, NP,
    BD) (it stays in L2); then the tokens are walked backwards with the adjoint
    ``g_t = C_t dy_t + a_{t+1} g_{t+1}``, each token's state before it read back. Both loops
    issue the next token's loads (and the reverse loop its scratch read) before the current
    token's arithmetic, which would otherwise wait on them every token. Up to 16
    channels the (NP, BD) tiles take A's layout (see the forward): with BD = 16 one warp
    holds 16 channels on 16 lanes and the 16 states as 8 registers x 2 lanes (BD = 8: 4 x
    4); with BD = 32 the scratch's aligned reads give the tiles 4 channels per thread
    (see below), so the sums over states (dx, ddelta) and over channels (dB, dC, then one
    atomic add per state and token for the program) cross few lanes. Gradient inputs: dy
    (B, Dm, L) with strides (syb, syd, syl); dx has (sgb, sgd, sgl), ddelta (seb, sek, sed,
    sel); dB / dC (B, K * G, N, L) contiguous float32; dA transposed like A, (N, K * Dm) with
    row stride ``sat``; the scratch holds (S, NP, BD) float32 per program."""
    segments = n_summaries + 1
    b, k, d, dm, n, nm, grp, row, mnd, A2, Dv, bias = _program_channels(
        AT, DS, BIAS, sat, Dm, N, Dg, G, HAS_D, HAS_BIAS, NP, BD, STATES_FIRST=True,
        segments=segments)
    seg = tl.program_id(1) % segments
    x_ptr = X + b * sxb + d * sxd
    dt_ptr = DT + b * sdb + k.to(tl.int64) * sdk + d * sdd  # K B L D can pass 2**31
    b_ptr = BM + b * sbb + grp * sbg + n * sbn
    c_ptr = CM + b * scb + grp * scg + n * scn
    dy_ptr = DY + b * syb + d * syd
    dx_ptr = DX + b * sgb + d * sgd
    ddt_ptr = DDT + b * seb + k.to(tl.int64) * sek + d * sed
    bc_grad = (b * K * G + grp) * N * L + n * L  # (NP,): dB / dC are contiguous
    # The (NP, BD) tiles' layout follows from how the scratch tile can be read. With 16
    # channels its stride ``sst`` (= BD) stays unspecialised, as unaligned as A's and the
    # saved states' (``sat``, ``shn``): the channels lie on the lanes, the states in
    # registers, and no tile changes layout. With 32 channels the stride is the constexpr
    # BD: aligned, the scratch reads and writes take 4 channels per thread, and every tile
    # of the loops takes that layout (states over 4 lanes x 4 registers, channels over 8
    # lanes x 4 registers), so the dB / dC sums over the channels cross 8 lanes instead of
    # 32 (offline SASS, sm_90, Triton 3.8: reverse loop 853 -> 452 instructions per token,
    # recompute loop 233 -> 122; with 16 channels the same change saves nothing in reverse
    # and costs 40 % in the recompute loop)
    if BD >= 32:
        tile_stride = BD
    else:
        tile_stride = sst
    hs_ptr = HS + (b * K + k) * n_chunks * NP * shn + n[:, None] * shn + d[None, :]
    program = (tl.program_id(1) * K + k) * tl.num_programs(0) + tl.program_id(0)
    scratch = (SCRATCH + program * (S * NP * tile_stride) + n[:, None] * tile_stride
               + tl.arange(0, BD)[None, :])
    summaries = (b * K + k) * n_summaries  # this sequence's first summary
    ag = tl.zeros((NP, BD), dtype=tl.float32)  # a_{t+1} g_{t+1} of the token after t
    for ii in range(seg, n_summaries):  # the carry from the later segments, last first
        i = n_summaries - 1 - ii + seg
        steps = tl.load(SUMDT + (summaries + i) * Dm + d, mask=dm, other=0.0)
        handed = tl.load(SUMG + (summaries + i) * NP * shn + n[:, None] * shn + d[None, :],
                         mask=dm[None, :], other=0.0)
        ag = handed + tl.exp2(A2 * steps[None, :]) * ag
    dA_acc = tl.zeros((NP, BD), dtype=tl.float32)
    dD_acc = tl.zeros((BD, ), dtype=tl.float32)
    dbias_acc = tl.zeros((BD, ), dtype=tl.float32)
    first = seg * seg_chunks
    stop = tl.minimum(first + seg_chunks, n_chunks)
    for ci in range(first, stop):
        t0 = (first + stop - 1 - ci) * S
        h = tl.load(hs_ptr + (t0 // S) * NP * shn, mask=dm[None, :], other=0.0)
        # the forward again, keeping the state before each token; two tokens per iteration
        q, r, s, run, stride = _token_walk(t0, L, H, W, k)
        loads = _bwd_token_loads(q, t0 < L, x_ptr, dt_ptr, b_ptr, c_ptr, dy_ptr, sxl, sdl,
                                 sbl, scl, syl, dm, nm, MASKED, False, WIDE)
        for j in range(0, S, 2):
            q, r = _walk_next(q, r, s, run, stride)
            ahead = _bwd_token_loads(q, t0 + j + 1 < L, x_ptr, dt_ptr, b_ptr, c_ptr, dy_ptr, sxl,
                                     sdl, sbl, scl, syl, dm, nm, MASKED, False, WIDE)
            h = _bwd_recompute_token(loads, h, scratch + j * (NP * BD), A2, bias, HAS_BIAS,
                                     SOFTPLUS)
            q, r = _walk_next(q, r, s, run, stride)
            loads = _bwd_token_loads(q, t0 + j + 2 < L, x_ptr, dt_ptr, b_ptr, c_ptr, dy_ptr,
                                     sxl, sdl, sbl, scl, syl, dm, nm, MASKED, False, WIDE)
            h = _bwd_recompute_token(ahead, h, scratch + (j + 1) * (NP * BD), A2, bias,
                                     HAS_BIAS, SOFTPLUS)
        # then backwards, two tokens per iteration; the walk stays on the last valid token
        # while the chunk's tokens lie past the sequence end
        q, r, s, run, stride = _token_walk(tl.minimum(t0 + S - 1, L - 1), L, H, W, k)
        loads = _bwd_token_loads(q, t0 + S - 1 < L, x_ptr, dt_ptr, b_ptr, c_ptr, dy_ptr, sxl,
                                 sdl, sbl, scl, syl, dm, nm, MASKED, True, WIDE)
        h_next = tl.load(scratch + (S - 1) * (NP * BD))  # the state before the next token
        for jj in range(0, S, 2):
            j = S - 1 - jj
            t = t0 + j
            q, r = _walk_back(q, r, s, run, stride, t < L)
            ahead = _bwd_token_loads(q, (t >= 1) & (t - 1 < L), x_ptr, dt_ptr, b_ptr, c_ptr,
                                     dy_ptr, sxl, sdl, sbl, scl, syl, dm, nm, MASKED, True,
                                     WIDE)
            h_prev = h_next
            h_next = tl.load(scratch + (j - 1) * (NP * BD))
            ag, dA_acc, dD_acc, dbias_acc = _bwd_reverse_token(
                loads, h_prev, ag, dA_acc, dD_acc, dbias_acc, A2, Dv, bias, dm, nm, ddt_ptr,
                sel, dx_ptr, sgl, DBM, DCM, bc_grad, HAS_D, HAS_BIAS, SOFTPLUS, ATOMIC, NEED_DC)
            q, r = _walk_back(q, r, s, run, stride, t - 1 < L)
            loads = _bwd_token_loads(q, (t >= 2) & (t - 2 < L), x_ptr, dt_ptr, b_ptr, c_ptr,
                                     dy_ptr, sxl, sdl, sbl, scl, syl, dm, nm, MASKED, True,
                                     WIDE)
            h_prev = h_next
            h_next = tl.load(scratch + tl.maximum(j - 2, 0) * (NP * BD))
            ag, dA_acc, dD_acc, dbias_acc = _bwd_reverse_token(
                ahead, h_prev, ag, dA_acc, dD_acc, dbias_acc, A2, Dv, bias, dm, nm, ddt_ptr,
                sel, dx_ptr, sgl, DBM, DCM, bc_grad, HAS_D, HAS_BIAS, SOFTPLUS, ATOMIC, NEED_DC)
    tl.atomic_add(DA + n[:, None] * sat + row[None, :], dA_acc, mask=mnd, sem='relaxed')
    if HAS_D:
        tl.atomic_add(DDS + row, dD_acc, mask=dm, sem='relaxed')
    if HAS_BIAS:
        tl.atomic_add(DBIAS + row, dbias_acc, mask=dm, sem='relaxed')


@triton.jit(do_not_specialize=['L', 'H', 'W', 'n_chunks'])
def _scan_bwd_kernel(X, DT, A, BM, CM, DS, BIAS, HS, DY,
                     DX, DDT, DA, DBM, DCM, DDS, DBIAS,
                     Dm, L, H, W, N, Dg, G, K, n_chunks,
                     HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                     ATOMIC: tl.constexpr, NEED_DC: tl.constexpr,
                     NP: tl.constexpr, BD: tl.constexpr, T: tl.constexpr):
    b, k, d, dm, n, nm, grp, row, mdn, A2, Dv, bias = _program_channels(
        A, DS, BIAS, 0, Dm, N, Dg, G, HAS_D, HAS_BIAS, NP, BD)
    j = tl.arange(0, T)
    x_ptr = X + b * Dm * L + d[None, :] * L
    dx_ptr = DX + b * Dm * L + d[None, :] * L
    dy_ptr = DY + b * Dm * L + d[None, :] * L
    dt_ptr = DT + ((b * K + k) * Dm + d[None, :]) * L
    ddt_ptr = DDT + ((b * K + k) * Dm + d[None, :]) * L
    bc_off = (b * K * G + grp) * N * L + n[None, :] * L
    hs_ptr = HS + (((b * K + k) * Dm + d[:, None]) * n_chunks) * NP + n[None, :]
    first = (j == 0)[:, None, None]
    last = (j == T - 1)[:, None, None]
    g_next = tl.zeros((BD, NP), dtype=tl.float32)  # dL/dh at the next chunk's first token
    dA_acc = tl.zeros((BD, NP), dtype=tl.float32)
    dD_acc = tl.zeros((BD, ), dtype=tl.float32)
    dbias_acc = tl.zeros((BD, ), dtype=tl.float32)
    for ci in range(n_chunks):
        c = n_chunks - 1 - ci
        t = c * T + j
        tm = t < L
        tnm = (t + 1) < L
        p = _token_offsets(t, L, H, W, k)[:, None]
        pn = _token_offsets(t + 1, L, H, W, k)[:, None]
        m2 = tm[:, None] & dm[None, :]
        mn2 = tnm[:, None] & dm[None, :]
        mnt = tm[:, None] & nm[None, :]
        u = tl.load(x_ptr + p, mask=m2, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + p, mask=m2, other=0.0).to(tl.float32)
        pre, dt = _load_step(dt_ptr, p, m2, bias, HAS_BIAS, SOFTPLUS)
        _, dt_n = _load_step(dt_ptr, pn, mn2, bias, HAS_BIAS, SOFTPLUS)
        Bt = tl.load(BM + bc_off + p, mask=mnt, other=0.0).to(tl.float32)
        Ct = tl.load(CM + bc_off + p, mask=mnt, other=0.0).to(tl.float32)
        # recompute the chunk's states from the saved start state
        a = tl.exp2(dt[:, :, None] * A2[None, :, :])
        du_dt = dt * u
        drive = du_dt[:, :, None] * Bt[:, None, :]
        h0 = tl.load(hs_ptr + c * NP, mask=dm[:, None], other=0.0)
        _, hh = tl.associative_scan((a, tl.where(first, drive + a * h0[None, :, :], drive)), 0,
                                    _combine)
        # adjoint: g_t = C_t dy_t + a_{t+1} g_{t+1}
        a_n = tl.exp2(dt_n[:, :, None] * A2[None, :, :])
        src = dy[:, :, None] * Ct[:, None, :]
        src = tl.where(last, src + a_n * g_next[None, :, :], src)
        _, g = tl.associative_scan((a_n, src), 0, _combine, reverse=True)
        g_next = tl.sum(tl.where(first, g, 0.0), axis=0)
        grad_pre = g * (hh - drive)  # dL/d(dt A) = g_t * a_t * h_{t-1}
        dA_acc += tl.sum(grad_pre * dt[:, :, None], axis=0)
        gb = tl.sum(g * Bt[:, None, :], axis=2)
        ddt = tl.sum(grad_pre * A2[None, :, :], axis=2) * LN2 + u * gb
        du = dt * gb
        if HAS_D:
            du += Dv[None, :] * dy
            dD_acc += tl.sum(dy * u, axis=0)
        if SOFTPLUS:
            ddt = ddt * tl.sigmoid(pre)
        ddt = tl.where(m2, ddt, 0.0)
        dbias_acc += tl.sum(ddt, axis=0)
        tl.store(ddt_ptr + p, ddt, mask=m2)
        if ATOMIC:
            tl.atomic_add(dx_ptr + p, du, mask=m2, sem='relaxed')
        else:
            tl.store(dx_ptr + p, du, mask=m2)
        if NEED_DC:
            dC = tl.sum(dy[:, :, None] * hh, axis=1)
            tl.atomic_add(DCM + bc_off + p, dC, mask=mnt, sem='relaxed')
        dB = tl.sum(g * du_dt[:, :, None], axis=1)
        tl.atomic_add(DBM + bc_off + p, dB, mask=mnt, sem='relaxed')
    tl.atomic_add(DA + row[:, None] * N + n[None, :], dA_acc, mask=mdn, sem='relaxed')
    if HAS_D:
        tl.atomic_add(DDS + row, dD_acc, mask=dm, sem='relaxed')
    if HAS_BIAS:
        tl.atomic_add(DBIAS + row, dbias_acc, mask=dm, sem='relaxed')


class LaunchConfig(NamedTuple):
    """How the kernels are launched: d_state padded to a power of two, chunk length (shared by
    both passes: the backward restarts from the states saved at chunk starts), the channel
    block and warps of the forward and of the backward program, whether the forward
    issues the next chunk's loads before scanning the current one, and the chunk of a
    forward that saves no states (no gradient wanted) on a grid of at least
    ``NOGRAD_CHUNK_MIN_PROGRAMS`` programs (0: ``chunk``), and for channels-last inputs the
    sequential kernels (:func:`_scan_fwd_seq_kernel`, :func:`_scan_bwd_seq_kernel`): the
    channels of a one-warp forward program (0: the sequential kernels are never used), the
    tokens between saved states, the channels of a one-warp backward program, and the
    number of programs below which a gradient-free forward cuts each sequence into
    segments (sequence parallelism; 0: never), and the same for a training pass, the
    backward and the forward that saves states for it (0: never; then training needs a
    grid of at least ``SEQ_MIN_PROGRAMS`` warps to run the sequential kernels), and
    a cap on the sequential backward's registers per thread (0: the compiler's choice, about
    220 at d_state 16 on sm_90, room for 8 one-warp programs per SM; a cap trades spills
    for occupancy), and the channels of a backward program on grids that hold at least
    ``seq_bwd_programs`` programs of that many channels (0: always ``seq_bwd_block``; see
    :func:`backward_block`)."""
    padded_states: int
    chunk: int
    fwd_block: int
    fwd_warps: int
    bwd_block: int
    bwd_warps: int
    fwd_prefetch: bool = False
    nograd_chunk: int = 0
    seq_fwd_block: int = 0
    seq_chunk: int = 32
    seq_bwd_block: int = 16
    seq_fwd_programs: int = 0
    seq_bwd_programs: int = 0
    seq_bwd_maxnreg: int = 0
    seq_bwd_wide_block: int = 0


def default_config(d_state: int, per_block: int, length: int) -> LaunchConfig:
    """The launch of a scan with ``d_state`` states, ``per_block`` channels per B / C group
    (every channel block must lie in one group) and sequence length ``length``.

    With d_state 16 a warp holds 2 channels x 16 states and each thread the whole 16-token
    chunk of its pair; the backward is fastest with one warp per program (no cross-warp sums
    for dB / dC). With d_state 1 the channels x states cannot fill the threads, so the chunk
    is long (256 tokens) and spread over lanes and warps as well. Measured with
    ``tools/analysis_tools/tune_scan.py`` on an H200 at the SS2D shapes of FM-YOLOv8-l
    (docs/benchmarks.md); other GPUs can use their own table through ``launch_config``.

    At d_state 16 the forward loads the next chunk before scanning the current one, and
    without gradients on a full grid it walks 32-token chunks: on the H200 (bf16, SS2D
    forward at P3 / P4 / P5) that took batch 16 from 14.50 / 4.32 / 1.14 ms to 10.69 / 2.84 /
    0.68 ms; at batch 1 (256 / 512 / 512 programs) prefetching alone took 1.05 / 0.46 / 0.24
    ms to 0.78 / 0.40 / 0.16 ms, where 32-token chunks gave 0.88 / 0.29 / 0.31 ms.

    Channels-last SS2D inputs on a large enough grid (``SEQ_MIN_PROGRAMS``) run the
    sequential kernels instead: 32 channels per forward program, states saved every 32
    tokens, 16 channels per backward program. On the H200 (bf16, batch 16, SS2D forward /
    forward+backward at P3 / P4 / P5): 4.15 / 34.6, 1.41 / 17.1, 0.52 / 4.90 ms with 8
    backward channels, 4.35 / 34.5, 1.54 / 14.4, 0.49 / 4.52 ms with 16; the chunked kernels
    11.19 / 62.4, 3.14 / 25.1, 0.84 / 7.54 ms. Prefetching the backward's loads one token
    ahead took its P3 kernel at batch 8 from 14.3 to 9.9 ms (Nsight Compute: the warps had
    spent half their cycles waiting on those loads). A forward of fewer than 2048 programs
    cuts its sequences into segments (``seq_fwd_programs``): an FM-YOLOv8-l pair at batch 1
    (bf16, CUDA graph) went from 34.1 to 28.0 ms, and the gradient-free forward at batch 8
    from 5.7 to 4.6 ms over the three levels (``tune_scan.py --sequential``). A backward of
    fewer than 1024 programs (``seq_bwd_programs``; about one wave at the backward's 8
    one-warp programs per SM) cuts its sequences into segments as well, so that training
    on any grid runs the sequential kernels: one fusion block at 1280x1024 (batch 1, P3,
    forward+backward, bf16) went from 265.9 to 136.9 ms with 2048 in one run, and took
    144.1 / 148.0 / 142.2 ms with 1024 / 2048 / 4096 in the next; an FM-YOLOv8-l training
    step at batch 4 went from 0.563 to 0.501 s. Cutting a full grid costs time: at batch 8 (1024
    programs at P3) two segments took the P3 forward+backward from 13.8 to 15.4 ms. The
    forward that saves states for a backward follows the backward's ``seq_bwd_programs``
    (about one wave at its 232 registers): at batch 8 with both DSSF branches in one call
    (1024 programs at P3) ``seq_fwd_programs`` had cut it into two segments; whole, the SS2D
    forward+backward at P3 took 16.2 instead of 17.7 ms and an FM-YOLOv8-l training step
    (bf16) 0.507 / 0.506 s instead of 0.600 / 0.583 s (two runs each, alternating); at
    batch 4 (2 segments instead of 4) 0.360 / 0.402 s instead of 0.371 / 0.407 s. Where a
    grid holds 1024 backward programs of 32 channels (batch 8 with the two branches of a
    DSSF module in one call, batch 16 alone), they take 32 channels (``seq_bwd_wide_block``):
    32 instead of 16 took the batch-16 SS2D backward from 36.0 to 30.1 ms (P3 + P4 + P5),
    and an FM-YOLOv8-l training step at batch 8 from 0.707 to 0.643 s (one run each; the
    model before the grouped DSSF call took 0.697 s in that run). Timed at d_state 16 only;
    above 16 states the backward keeps 16 channels."""
    np_ = triton.next_power_of_2(d_state)
    prefetch, nograd_chunk, seq, wide = False, 0, (0, 32, 16, 0, 0), 0
    if np_ >= 8:
        chunk, fwd, bwd = 16, (8, 4), (2, 1)
        prefetch, nograd_chunk, seq = True, 32, (32, 32, 16, 2048, 1024)
        wide = 32 if np_ <= 16 else 0  # 32 x 32 states would spill (255 registers at 16)
    else:
        chunk, fwd, bwd = 256, (4, 8), (4, 4)
    short = max(8, triton.next_power_of_2(length))
    chunk, nograd_chunk = min(chunk, short), min(nograd_chunk, short)
    fwd_block, bwd_block = (_divisor_block(block, per_block) for block in (fwd[0], bwd[0]))
    return LaunchConfig(np_, chunk, fwd_block, fwd[1], bwd_block, bwd[1], prefetch,
                        nograd_chunk, *seq, seq_bwd_wide_block=wide)


def _divisor_block(block: int, per_block: int) -> int:
    """The largest power of two <= ``block`` that divides ``per_block``."""
    while per_block % block:
        block //= 2
    return block


NOGRAD_CHUNK_MIN_PROGRAMS = 2048  # batch 16 at P3: 4096; batch 1: 256 to 512
# The sequential kernels want at least this many warps of 32 channels: at FM-YOLOv8-l's SS2D
# shapes (4 directions, 512 / 1024 channels) batch 4 at P3 and batch 2 at P4 / P5. On the
# H200 at batch 1 (64 warps at P3) the unsegmented forward walked 6400 tokens per warp and
# took an FM-YOLOv8-l pair from 35 to 85 ms; at batch 16 the forward at P3 takes 4.2 ms
# against the chunked 11.2. A forward without gradients whose launch cuts sequences into
# segments (``seq_fwd_programs``) fills any grid and runs them on small grids too.
SEQ_MIN_PROGRAMS = 256


# Tuning tools replace this to time other launches (tools/analysis_tools/tune_scan.py).
launch_config = default_config
SEQ_FWD_BLOCKS = (0, 8, 16, 32)  # channels of a one-warp sequential forward program (0: off)


def use_launch_table(path) -> dict:
    """Launch the kernels as the JSON file ``path`` says: ``{"d_state": fields}`` where the
    fields are a whole :class:`LaunchConfig` as a list (``tune_scan.py --out``) or a dict of
    the fields that differ from the default launch (e.g. ``{"16": {"seq_fwd_programs":
    2048}}``); other d_states keep the default. Returns the table."""
    import json
    from pathlib import Path
    global launch_config
    table = json.loads(Path(path).read_text())
    unknown = [k for v in table.values() if isinstance(v, dict) for k in v
               if k not in LaunchConfig._fields]
    if unknown:
        raise ValueError(f'{path}: unknown launch fields {unknown}; the fields are '
                         f'{LaunchConfig._fields}')
    table = {int(d): fields if isinstance(fields, dict) else LaunchConfig(*fields)
             for d, fields in table.items()}
    for fields in table.values():
        given = fields if isinstance(fields, dict) else fields._asdict()
        block = given.get('seq_fwd_block', 0)
        if block not in SEQ_FWD_BLOCKS:
            raise ValueError(f'{path}: seq_fwd_block must be one of {SEQ_FWD_BLOCKS}, got '
                             f'{block} (a table from before seq_warps became seq_fwd_block? '
                             'run tune_scan.py again)')
        chunk = given.get('seq_chunk', 0)
        if chunk % 2:
            raise ValueError(f'{path}: seq_chunk must be even (the sequential backward walks '
                             f'two tokens per iteration), got {chunk}')

    def configured(d_state, per_block, length):
        fields = table.get(d_state)
        if isinstance(fields, dict):
            return default_config(d_state, per_block, length)._replace(**fields)
        return fields or default_config(d_state, per_block, length)

    launch_config = configured
    return table


def _shapes(x, delta, A, Bm, save_states=True):
    """(batch, Dm, L, K, G, N, launch config, chunk, number of chunks) of a scan's inputs;
    the chunk is the launch's ``nograd_chunk`` for a forward that saves no states on a
    large grid."""
    batch, dm, length = x.shape
    k_dirs = delta.shape[1]
    groups = Bm.shape[1] // k_dirs
    d_state = A.shape[1]
    cfg = launch_config(d_state, dm // groups, length)
    programs = batch * k_dirs * triton.cdiv(dm, cfg.fwd_block)
    long_chunk = (not save_states and cfg.nograd_chunk
                  and programs >= NOGRAD_CHUNK_MIN_PROGRAMS)
    chunk = cfg.nograd_chunk if long_chunk else cfg.chunk
    return (batch, dm, length, k_dirs, groups, d_state, cfg, chunk,
            triton.cdiv(length, chunk))


def _states_shape(x, delta, A, Bm, save_states, sequential):
    """Shape of the saved chunk-start states: (B, K, Dm, chunks, NP) for the chunked kernels,
    (B, K, chunks, NP, Dm) for the sequential ones; a placeholder without ``save_states``."""
    batch, dm, length, k_dirs, _, _, cfg, _, n_chunks = _shapes(x, delta, A, Bm)
    if not save_states:
        return (1, )
    if sequential:
        return (batch, k_dirs, triton.cdiv(length, cfg.seq_chunk), cfg.padded_states, dm)
    return (batch, k_dirs, dm, n_chunks, cfg.padded_states)


def _forward_is_sequential(x, delta, A, Bm, store_last, save_states):
    """:func:`_sequential` for a forward's inputs; the backward is told the answer (the
    tensors it gets back may have other strides, e.g. from saved-tensor hooks)."""
    _, dm, _, _, groups, _, cfg, _, _ = _shapes(x, delta, A, Bm)
    return _sequential(x, delta, cfg, dm // groups, store_last, save_states)


def _sequential(x, delta, cfg: LaunchConfig, per_group: int, store_last: bool,
                save_states: bool) -> bool:
    """Whether a scan runs the sequential kernels: its launch allows them, x is channels-last
    (channel stride 1, where their per-token loads are coalesced; channel-major inputs go to
    the chunked kernels), every channel block of both passes lies in one B / C group and
    the grid has at least ``SEQ_MIN_PROGRAMS`` warps of 32 channels (the kernels walk whole
    sequences: a small grid leaves most of the GPU idle; the chunked kernels then run on
    contiguous copies), unless no backward will run (no ``save_states``) and the launch
    cuts the forward's sequences into segments, or a backward will run and the launch cuts
    the backward's (``seq_bwd_programs``)."""
    batch, dim, _ = x.shape
    return (x.stride(1) == 1 and not store_last
            and _sequential_launch(cfg, batch, delta.shape[1], dim, save_states)
            and (_blocks_fit(cfg, per_group) or per_group == dim))


def _blocks_fit(cfg: LaunchConfig, per_group: int) -> bool:
    """Whether every channel block of the sequential kernels lies within one group of
    ``per_group`` channels."""
    blocks = (cfg.seq_fwd_block, cfg.seq_bwd_block, cfg.seq_bwd_wide_block)
    return all(per_group % block == 0 for block in blocks if block)


def groups_keep_sequential(d_state: int, per_group: int) -> bool:
    """Whether scans of several channel groups of ``per_group`` channels in one call keep the
    sequential kernels that one group alone would run (their channel blocks must not
    straddle two groups)."""
    cfg = launch_config(d_state, per_group, 1)
    return not cfg.seq_fwd_block or _blocks_fit(cfg, per_group)


def _sequential_launch(cfg: LaunchConfig, batch: int, k_dirs: int, dim: int,
                       needs_grad: bool) -> bool:
    segmented = (cfg.seq_bwd_programs if needs_grad else cfg.seq_fwd_programs) > 0
    return cfg.seq_fwd_block > 0 and (
        segmented or batch * k_dirs * triton.cdiv(dim, 32) >= SEQ_MIN_PROGRAMS)


def sequential_scan(batch: int, k_dirs: int, dim: int, d_state: int, needs_grad: bool,
                    cfg: Optional[LaunchConfig] = None) -> bool:
    """Whether channels-last scans of ``batch`` x ``k_dirs`` sequences of ``dim`` channels
    (one B / C group per direction) run the sequential kernels, with or without a
    backward, under the launch ``cfg`` (default: this d_state's current launch)."""
    cfg = cfg or launch_config(d_state, dim, 1)
    return _sequential_launch(cfg, batch, k_dirs, dim, needs_grad)


def backward_block(cfg: LaunchConfig, batch: int, k_dirs: int, dim: int) -> int:
    """Channels per program of a sequential backward over ``batch`` x ``k_dirs`` sequences
    of ``dim`` channels: ``seq_bwd_wide_block`` where a grid of such programs still holds
    ``seq_bwd_programs`` (a wave of the GPU, no sequence cut), else ``seq_bwd_block``."""
    wide = cfg.seq_bwd_wide_block
    if wide and cfg.seq_bwd_programs and (
            batch * k_dirs * triton.cdiv(dim, wide) >= cfg.seq_bwd_programs):
        return wide
    return cfg.seq_bwd_block


def sequence_segments(cfg: LaunchConfig, programs: int, length: int,
                      training: bool = False) -> Tuple[int, int]:
    """(tokens per segment, segments per sequence) of a sequential launch of ``programs``
    programs over ``length`` tokens: enough segments, of a multiple of ``seq_chunk``
    tokens, for ``seq_fwd_programs`` programs in a gradient-free forward, for
    ``seq_bwd_programs`` in a ``training`` pass (the backward, and the forward that saves
    states for it: both hold about one wave of programs at their register counts)."""
    target = cfg.seq_bwd_programs if training else cfg.seq_fwd_programs
    if not target or programs >= target:
        return length, 1
    wanted = min(triton.cdiv(target, programs), triton.cdiv(length, cfg.seq_chunk))
    seg_len = triton.cdiv(triton.cdiv(length, wanted), cfg.seq_chunk) * cfg.seq_chunk
    return seg_len, triton.cdiv(length, seg_len)


def _summary_buffers(segments, batch, k_dirs, cfg, dm, placeholder):
    """The segment summaries of a sequential launch that cuts each sequence into
    ``segments``: a state tile (B, K, segments - 1, NP, Dm) and a summed step (B, K,
    segments - 1, Dm), float32; ``placeholder`` twice for one segment."""
    if segments == 1:
        return placeholder, placeholder
    f32 = dict(device=placeholder.device, dtype=torch.float32)
    return (torch.empty((batch, k_dirs, segments - 1, cfg.padded_states, dm), **f32),
            torch.empty((batch, k_dirs, segments - 1, dm), **f32))


def _wide_offsets(length: int, *tensors) -> bool:
    """Whether a token's offset times one of the tensors' token strides (their last) can
    pass int32 (the kernels then compute these offsets in int64)."""
    return length * max(t.stride(-1) for t in tensors) >= 2 ** 31


def _forward_sequential(x, delta, A, Bm, Cm, Ds, bias, softplus, height, width, save_states,
                        cfg, hs):
    """y (B, Dm, L) of :func:`_scan_fwd_seq_kernel` in x's dtype and strides; fills ``hs``
    (the chunk-start states) when ``save_states``. On a small grid a first launch writes the
    segment summaries and a second the output."""
    batch, dm, length = x.shape
    k_dirs = delta.shape[1]
    groups = Bm.shape[1] // k_dirs
    d_state = A.shape[1]
    block = cfg.seq_fwd_block
    y = torch.zeros_like(x, dtype=torch.float32) if k_dirs > 1 else torch.empty_like(
        x, dtype=torch.float32)
    at = A.t().contiguous()  # (N, K * Dm): see the kernel's docstring
    blocks = triton.cdiv(dm, block)
    seg_len, segments = sequence_segments(cfg, blocks * batch * k_dirs, length,
                                          training=save_states)
    sum_h, sum_dt = _summary_buffers(segments, batch, k_dirs, cfg, dm, y)
    args = (x, delta, at, Bm, Cm, Ds if Ds is not None else A, bias if bias is not None else A,
            y, hs, sum_h, sum_dt, *x.stride(), *delta.stride(), at.stride(0), dm,
            *Bm.stride(), *Cm.stride(), *y.stride(), dm, length, height, width, d_state,
            dm // groups, groups, k_dirs, triton.cdiv(length, cfg.seq_chunk), seg_len,
            segments - 1)
    meta = dict(HAS_D=Ds is not None, HAS_BIAS=bias is not None, SOFTPLUS=softplus,
                ATOMIC=k_dirs > 1, SAVE_STATES=save_states,
                MASKED=dm % block != 0 or d_state != cfg.padded_states,
                NP=cfg.padded_states, BD=block, T=cfg.seq_chunk,
                WIDE=_wide_offsets(length, x, delta, Bm, Cm, y), num_warps=1)
    if segments > 1:
        _scan_fwd_seq_kernel[(blocks, batch * (segments - 1), k_dirs)](
            *args, SUMMARY=True, **meta)
    _scan_fwd_seq_kernel[(blocks, batch * segments, k_dirs)](*args, SUMMARY=False, **meta)
    return y.to(x.dtype)


def _backward_sequential(x, delta, A, Bm, Cm, Ds, bias, hs, grad_y, softplus, height, width,
                         need_dc, cfg):
    """:func:`_scan_bwd_seq_kernel`'s gradients, as :func:`scan_backward` returns them; dx
    and ddelta keep x's and delta's strides. On a small grid a first launch writes the
    segment summaries (:func:`_scan_bwd_seq_summary_kernel`)."""
    batch, dm, length = x.shape
    k_dirs = delta.shape[1]
    groups = Bm.shape[1] // k_dirs
    d_state = A.shape[1]
    block, chunk = backward_block(cfg, batch, k_dirs, dm), cfg.seq_chunk
    f32 = dict(device=x.device, dtype=torch.float32)
    dx = torch.zeros_like(x, dtype=torch.float32)
    ddelta = torch.empty_like(delta)
    dAt = torch.zeros(A.shape[::-1], **f32)  # transposed, like A (see the forward)
    dB = torch.zeros(Bm.shape, **f32)
    dC = torch.zeros(Cm.shape if need_dc else (0, ), **f32)
    dD = torch.zeros(Ds.shape if Ds is not None else (0, ), **f32)
    dbias = torch.zeros(bias.shape if bias is not None else (0, ), **f32)
    at = A.t().contiguous()
    blocks = triton.cdiv(dm, block)
    seg_len, segments = sequence_segments(cfg, blocks * batch * k_dirs, length, training=True)
    sum_g, sum_dt = _summary_buffers(segments, batch, k_dirs, cfg, dm, dAt)
    if chunk % 2:
        raise ValueError(f'seq_chunk must be even (the backward walks two tokens per '
                         f'iteration), got {chunk}')
    masked = dm % block != 0 or d_state != cfg.padded_states
    bias_arg = bias if bias is not None else A
    shapes = (dm, length, height, width, d_state, dm // groups, groups, k_dirs)
    wide = _wide_offsets(length, x, delta, Bm, Cm, grad_y, dx, ddelta)
    if segments > 1:
        _scan_bwd_seq_summary_kernel[(blocks, batch * (segments - 1), k_dirs)](
            x, delta, at, Bm, Cm, bias_arg, grad_y, sum_g, sum_dt, *x.stride(),
            *delta.stride(), at.stride(0), dm, *Bm.stride(), *Cm.stride(), *grad_y.stride(),
            *shapes, seg_len, segments - 1, HAS_BIAS=bias is not None, SOFTPLUS=softplus,
            MASKED=masked, NP=cfg.padded_states, BD=block, WIDE=wide, num_warps=1)
    grid = (blocks, batch * segments, k_dirs)
    scratch = torch.empty(blocks * batch * segments * k_dirs * chunk * cfg.padded_states * block,
                          **f32)
    _scan_bwd_seq_kernel[grid](
        x, delta, at, Bm, Cm, Ds if Ds is not None else A, bias_arg,
        hs, grad_y, scratch, sum_g, sum_dt, dx, ddelta, dAt, dB, dC if need_dc else dB,
        dD if Ds is not None else dAt, dbias if bias is not None else dAt,
        *x.stride(), *delta.stride(), at.stride(0), block, dm, *Bm.stride(), *Cm.stride(),
        *grad_y.stride(), *dx.stride(), *ddelta.stride(), *shapes,
        triton.cdiv(length, chunk), triton.cdiv(seg_len, chunk), segments - 1,
        HAS_D=Ds is not None, HAS_BIAS=bias is not None, SOFTPLUS=softplus,
        ATOMIC=k_dirs > 1, NEED_DC=need_dc, MASKED=masked, NP=cfg.padded_states,
        BD=block, S=chunk, WIDE=wide, num_warps=1, maxnreg=cfg.seq_bwd_maxnreg or None)
    return [dx.to(x.dtype), ddelta, dAt.t().contiguous(), dB.to(Bm.dtype),
            dC.to(Cm.dtype) if need_dc else dC, dD, dbias]


@torch.library.custom_op('fusion_mamba::triton_scan_forward', mutates_args=())
def scan_forward(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor,
                 Cm: torch.Tensor, Ds: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                 softplus: bool, height: int, width: int, store_last: bool,
                 save_states: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Selective scan of K directions over a flattened (H, W) map, summed into one output.

    Inputs (same device; any strides, where L = H * W must be one flattened axis of each):
    x (B, Dm, L); delta (B, K, Dm, L);
    A (K * Dm, N) float32; Bm, Cm (B, K * G, N, L) (G groups per direction, group of channel d
    in direction k is k * G + d // (Dm // G)); Ds, bias (K * Dm,) float32 or None.

    Channels-last inputs (x's channel stride 1) run the sequential kernel and y has x's
    strides; the others run the chunked kernel on contiguous copies.

    Returns y (B, Dm, L) in x's dtype; the final state (B, Dm, N) float32 with
    ``store_last`` (K == 1 only; else an empty tensor), not differentiable; and the
    chunk-start states the backward restarts from (``save_states``; else a placeholder).
    """
    batch, dm, length, k_dirs, groups, d_state, cfg, chunk, n_chunks = _shapes(
        x, delta, A, Bm, save_states)
    atomic = k_dirs > 1
    sequential = _sequential(x, delta, cfg, dm // groups, store_last, save_states)
    hs = torch.empty(_states_shape(x, delta, A, Bm, save_states, sequential), device=x.device,
                     dtype=torch.float32)
    if sequential:
        y = _forward_sequential(x, delta, A, Bm, Cm, Ds, bias, softplus, height, width,
                                save_states, cfg, hs)
        return y, x.new_empty((0, ), dtype=torch.float32), hs
    x, delta, Bm, Cm = (t.contiguous() for t in (x, delta, Bm, Cm))
    y = torch.zeros(x.shape, device=x.device, dtype=torch.float32) if atomic \
        else torch.empty_like(x)
    last = torch.empty((batch, dm, d_state) if store_last else (0, ), device=x.device,
                       dtype=torch.float32)
    grid = (triton.cdiv(dm, cfg.fwd_block), batch, k_dirs)
    _scan_fwd_kernel[grid](
        x, delta, A, Bm, Cm, Ds if Ds is not None else A, bias if bias is not None else A,
        y, hs, last if store_last else hs,
        dm, length, height, width, d_state, dm // groups, groups, k_dirs, n_chunks,
        HAS_D=Ds is not None, HAS_BIAS=bias is not None, SOFTPLUS=softplus, ATOMIC=atomic,
        STORE_LAST=store_last, SAVE_STATES=save_states, PREFETCH=cfg.fwd_prefetch,
        NP=cfg.padded_states, BD=cfg.fwd_block, T=chunk, num_warps=cfg.fwd_warps)
    return y.to(x.dtype), last, hs


@scan_forward.register_fake
def _(x, delta, A, Bm, Cm, Ds, bias, softplus, height, width, store_last, save_states):
    batch, dm, _, _, _, d_state, _, _, _ = _shapes(x, delta, A, Bm)
    f32 = dict(device=x.device, dtype=torch.float32)
    sequential = _forward_is_sequential(x, delta, A, Bm, store_last, save_states)
    y = torch.empty_like(x) if sequential else x.new_empty(x.shape)
    return (y, torch.empty((batch, dm, d_state) if store_last else (0, ), **f32),
            torch.empty(_states_shape(x, delta, A, Bm, save_states, sequential), **f32))


@torch.library.custom_op('fusion_mamba::triton_scan_backward', mutates_args=())
def scan_backward(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor,
                  Cm: torch.Tensor, Ds: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                  hs: torch.Tensor, grad_y: torch.Tensor, softplus: bool, height: int,
                  width: int, need_dc: bool, sequential: bool) -> List[torch.Tensor]:
    """Gradients of :func:`scan_forward` (saved with ``save_states``) for grad_y (B, Dm, L):
    dx, ddelta, dA, dB, dC, dD, dbias (with ``sequential``, the forward having run the
    sequential kernels, dx and ddelta are laid out as ``torch.empty_like`` lays out x and
    delta, else contiguous; the rest contiguous); dC (unless ``need_dc``), dD and dbias (for
    absent Ds / bias) are empty tensors."""
    batch, dm, length, k_dirs, groups, _, cfg, chunk, n_chunks = _shapes(x, delta, A, Bm)
    if sequential:  # the forward's kernels, whatever strides the saved tensors came back with
        return _backward_sequential(x, delta, A, Bm, Cm, Ds, bias, hs, grad_y, softplus,
                                    height, width, need_dc, cfg)
    x, delta, Bm, Cm = (t.contiguous() for t in (x, delta, Bm, Cm))
    atomic = k_dirs > 1
    f32 = dict(device=x.device, dtype=torch.float32)
    dx = torch.zeros(x.shape, **f32) if atomic else torch.empty_like(x)
    ddelta = torch.empty_like(delta)
    dA = torch.zeros(A.shape, **f32)
    dB = torch.zeros(Bm.shape, **f32)
    # absent gradients are distinct empty tensors (the outputs of an operator may not alias)
    dC = torch.zeros(Cm.shape if need_dc else (0, ), **f32)
    dD = torch.zeros(Ds.shape if Ds is not None else (0, ), **f32)
    dbias = torch.zeros(bias.shape if bias is not None else (0, ), **f32)
    grid = (triton.cdiv(dm, cfg.bwd_block), batch, k_dirs)
    _scan_bwd_kernel[grid](
        x, delta, A, Bm, Cm, Ds if Ds is not None else A, bias if bias is not None else A,
        hs, grad_y.contiguous(),
        dx, ddelta, dA, dB, dC if need_dc else dB, dD if Ds is not None else dA,
        dbias if bias is not None else dA,
        dm, length, height, width, A.shape[1], dm // groups, groups, k_dirs, n_chunks,
        HAS_D=Ds is not None, HAS_BIAS=bias is not None, SOFTPLUS=softplus, ATOMIC=atomic,
        NEED_DC=need_dc, NP=cfg.padded_states, BD=cfg.bwd_block, T=chunk,
        num_warps=cfg.bwd_warps)
    return [dx.to(x.dtype), ddelta, dA, dB.to(Bm.dtype), dC.to(Cm.dtype) if need_dc else dC, dD,
            dbias]


@scan_backward.register_fake
def _(x, delta, A, Bm, Cm, Ds, bias, hs, grad_y, softplus, height, width, need_dc,
      sequential):
    def f32(t, present=True):
        return x.new_empty(t.shape if present else (0, ), dtype=torch.float32)

    def like(t, keep_strides=False):  # as the kernels write them
        return torch.empty_like(t) if keep_strides else t.new_empty(t.shape)

    return [like(x, sequential), like(delta, sequential), f32(A), like(Bm),
            like(Cm) if need_dc else f32(Cm, False), f32(Ds, Ds is not None),
            f32(bias, bias is not None)]


def _setup_context(ctx, inputs, output):
    x, delta, A, Bm, Cm, Ds, bias, softplus, height, width, store_last, save_states = inputs
    if not save_states:
        return  # no gradient was wanted: the forward kept no states
    ctx.save_for_backward(x, delta, A, Bm, Cm, Ds, bias, output[2])
    ctx.meta = (softplus, height, width)
    ctx.sequential = _forward_is_sequential(x, delta, A, Bm, store_last, save_states)
    ctx.mark_non_differentiable(output[1], output[2])


def _backward(ctx, grad_y, _grad_last, _grad_states):
    x, delta, A, Bm, Cm, Ds, bias, hs = ctx.saved_tensors
    # dC is skipped for the constant C = 1 of the states mode
    grads = scan_backward(x, delta, A, Bm, Cm, Ds, bias, hs, grad_y, *ctx.meta,
                          ctx.needs_input_grad[4], ctx.sequential)
    dx, ddelta, dA, dB, dC, dD, dbias = grads
    return (dx, ddelta, dA, dB, dC if ctx.needs_input_grad[4] else None,
            dD if Ds is not None else None, dbias if bias is not None else None,
            None, None, None, None, None)


scan_forward.register_autograd(_backward, setup_context=_setup_context)


def _needs_grad(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _f32(t):
    return None if t is None else t.float().contiguous()


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """1D selective scan on CUDA; returns ``(y (B, D, L) in u's dtype, last_state or None)``.
    Arguments as :func:`fusion_mamba.ops.selective_scan`."""
    batch, dim, length = u.shape
    B = B.unsqueeze(1) if B.dim() == 3 else B
    C = C.unsqueeze(1) if C.dim() == 3 else C
    y, last, _ = scan_forward(
        u.contiguous(), delta.contiguous().unsqueeze(1), _f32(A), B.contiguous(), C.contiguous(),
        _f32(D), _f32(delta_bias), bool(delta_softplus), 1, length, bool(return_last_state),
        _needs_grad(u, delta, A, B, C, D, delta_bias))
    if z is not None:
        y = (y.float() * torch.nn.functional.silu(z.float())).to(u.dtype)
    return y, (last.detach() if return_last_state else None)


def _flat_groups(p, length):
    """(B, 4, [G,] N, H, W) -> (B, 4 * G, N, L): group g of direction k at k * G + g (a
    view for token-major and channel-major layouts alike)."""
    return p.reshape(p.shape[0], -1, p.shape[-3], length)


def ss2d_scan(x, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """Fused SS2D on CUDA; arguments and result as :func:`fusion_mamba.ops.ss2d_selective_scan`.
    Channels-last maps (x's channel stride 1) run the sequential kernels on large grids
    (see :func:`_sequential`), and the result is channels-last as well."""
    batch, dim, height, width = x.shape
    length = height * width
    y, _, _ = scan_forward(
        x.reshape(batch, dim, length), delta.reshape(batch, 4, dim, length),
        _f32(A), _flat_groups(B, length), _flat_groups(C, length), _f32(D),
        _f32(delta_bias), bool(delta_softplus), height, width, False,
        _needs_grad(x, delta, A, B, C, D, delta_bias))
    return y.reshape(batch, dim, height, width)  # a view in either layout
