"""The parameters every selective-scan module shares: projections, A, D and their init."""
import math
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn


def resolve_dt_rank(dt_rank: Union[int, str], d_model: int) -> int:
    """``'auto'`` gives VMamba's ``ceil(d_model / 16)``; an int is used as is."""
    if dt_rank == 'auto':
        return math.ceil(d_model / 16)
    if not isinstance(dt_rank, int) or dt_rank < 1:
        raise ValueError(f"dt_rank must be 'auto' or a positive int, got {dt_rank!r}")
    return dt_rank


class SelectiveScanModule(nn.Module):
    """Base of SS2D, SASF and Cross SS2D: Mamba's per-token projections and scan parameters.

    With R = dt_rank, N = d_state, D = d_inner, ``proj_groups`` the leading shape of the
    projections (one projection per scan direction, and per modality for Cross SS2D) and S
    the number of scans (``num_scans``) sharing the step bias, A and D:

    - ``x_proj_weight`` (*proj_groups, R + 2N, D): token -> (dt, B, C);
    - ``dt_proj_weight`` (*proj_groups, D, R), ``dt_proj_bias`` (S, D): dt -> step;
    - ``A_log`` (S * D, N), ``D`` (S * D,): scan ``k`` uses rows ``k * D ... (k + 1) * D - 1``.

    Args:
        d_inner (int): Channels D of the scanned map.
        d_state (int): State size N per channel.
        dt_rank (int | str): Rank R of the dt projection; ``'auto'`` is ceil(d_model / 16).
        d_model (int): Width of the block's input, used by ``dt_rank='auto'``.
        dt_min, dt_max, dt_init_floor (float): Range of the initial step sizes (Mamba's).
        backend (str): Scan backend, see :func:`fusion_mamba.ops.selective_scan`.
        proj_groups (Sequence[int]): Leading shape of the projection weights.
        num_scans (int): S.
    """

    def __init__(self,
                 d_inner: int,
                 d_state: int,
                 dt_rank: Union[int, str],
                 d_model: int,
                 dt_min: float,
                 dt_max: float,
                 dt_init_floor: float,
                 backend: str,
                 proj_groups: Sequence[int],
                 num_scans: int):
        super().__init__()
        self.d_inner = d_inner
        self.d_state = d_state
        self.dt_rank = resolve_dt_rank(dt_rank, d_model or d_inner)
        self.backend = backend
        d, n, r = d_inner, d_state, self.dt_rank
        self.x_proj_weight = nn.Parameter(torch.empty(*proj_groups, r + 2 * n, d))
        self.dt_proj_weight = nn.Parameter(torch.empty(*proj_groups, d, r))
        self.dt_proj_bias = nn.Parameter(torch.empty(num_scans, d))
        self.A_log = nn.Parameter(torch.empty(num_scans * d, n))
        self.D = nn.Parameter(torch.empty(num_scans * d))
        self._dt_range = (dt_min, dt_max, dt_init_floor)

    def reset_parameters(self) -> None:
        """Mamba's initialisation: S4D-real A, D = 1, dt log-uniform in [dt_min, dt_max]; A_log,
        D and the step bias are flagged ``_no_weight_decay`` (as in Mamba-2 and VMamba; read
        by ``StateSpaceOptimWrapperConstructor``)."""
        dt_min, dt_max, dt_floor = self._dt_range
        bound = self.d_inner**-0.5
        nn.init.uniform_(self.x_proj_weight, -bound, bound)
        nn.init.uniform_(self.dt_proj_weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)
        dt = torch.exp(
            torch.rand_like(self.dt_proj_bias) * (math.log(dt_max) - math.log(dt_min))
            + math.log(dt_min)).clamp(min=dt_floor)
        with torch.no_grad():
            # inverse of softplus, so that softplus(bias) == dt
            self.dt_proj_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            a = torch.arange(1, self.d_state + 1, dtype=torch.float32)
            self.A_log.copy_(torch.log(a).expand_as(self.A_log))
            self.D.fill_(1.0)
        for param in (self.A_log, self.D, self.dt_proj_bias):
            param._no_weight_decay = True

    def token_parameters(self, x: torch.Tensor, x_proj_weight: torch.Tensor,
                         dt_proj_weight: torch.Tensor
                         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token (delta, B, C) of a (B, D, H, W) map for K projections: delta (B, K, D,
        H, W) before bias and softplus, B and C (B, K, N, H, W). See
        :meth:`grouped_token_parameters` (one group)."""
        delta, B, C = self.grouped_token_parameters([x], [x_proj_weight], [dt_proj_weight])
        return delta, B.squeeze(2), C.squeeze(2)

    def grouped_token_parameters(self, maps: Sequence[torch.Tensor],
                                 x_proj_weights: Sequence[torch.Tensor],
                                 dt_proj_weights: Sequence[torch.Tensor]
                                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token (delta, B, C) of G maps of one shape and layout, map g with its own
        projections, laid out for one grouped scan of the maps concatenated along the
        channels (:func:`fusion_mamba.ops.ss2d_selective_scan` with G groups).

        The projections run in the maps' dtype (bf16 / fp16 activations under autocast with
        fp32 weights): the scan wants delta in u's dtype and accumulates in fp32. For
        channels-last 16-bit maps B and C come out in float32 (see below), else in the
        maps' dtype.

        The products come out in the layout the scan reads best, with no copy of a map: for
        channels-last maps (channel stride 1, D > 1) token-major, each token's channels (and
        states) contiguous; otherwise channel-major, each channel's tokens contiguous. The
        step projection of all groups is one batched matmul with a block-diagonal (G R, G D)
        weight per direction, so that delta comes out in one piece.

        Args:
            maps: G maps (B, D, H, W).
            x_proj_weights: G weights (K, R + 2N, D). dt_proj_weights: G weights (K, D, R).

        Returns:
            delta (B, K, G * D, H, W) before bias and softplus, channel g * D + d from map
            g; B and C (B, K, G, N, H, W), float32 for channels-last 16-bit maps.
        """
        n, r = self.d_state, self.dt_rank
        batch, dim, height, width = maps[0].shape
        k = x_proj_weights[0].shape[0]
        dtype = maps[0].dtype
        w_proj = [w.reshape(-1, dim).to(dtype) for w in x_proj_weights]
        w_dt = _block_diagonal([w.to(dtype).transpose(1, 2) for w in dt_proj_weights])
        groups = len(maps)
        # explicit sizes, not unflatten: a traced export keeps the batch dynamic
        shape = (batch, k, groups, n, height, width)
        if dim > 1 and maps[0].stride(1) == 1:
            # per map (B, L, D) @ (D, K (R + 2N)), then per direction (B L, G R) @ (G R, G D):
            # delta is (K, B, L, G D) in memory, B and C are views of the stacked products
            tokens = _stack([torch.matmul(x.permute(0, 2, 3, 1).reshape(batch, -1, dim),
                                          w.t()).view(batch, -1, k, r + 2 * n)
                             for x, w in zip(maps, w_proj)], dim=3)
            dt, states = tokens.split([r, 2 * n], dim=4)
            if dtype in (torch.float16, torch.bfloat16):
                # B and C in float32 (token-major, each token's states contiguous): the
                # sequential scan kernels then convert none of them per token, about a
                # fifth of their forward's instructions at d_state 16 on sm_90
                states = states.float()
            B, C = states.split([n, n], dim=4)
            dt = dt.permute(2, 0, 1, 3, 4).reshape(k, -1, groups * r)
            delta = torch.matmul(dt, w_dt).view(k, batch, height, width, -1)
            return (delta.permute(1, 0, 4, 2, 3), B.permute(0, 2, 3, 4, 1).reshape(shape),
                    C.permute(0, 2, 3, 4, 1).reshape(shape))
        # per map (K (R + 2N), D) @ (B, D, HW), then (K, G D, G R) @ (B, K, G R, HW): both
        # products come out contiguous in the layout the scan reads (an einsum left delta
        # permuted, copied before every scan), and no map is expanded over K (autograd would
        # keep the copy)
        proj = _stack([torch.matmul(w, x.reshape(batch, dim, -1)).view(batch, k, r + 2 * n, -1)
                       for x, w in zip(maps, w_proj)], dim=2)
        dt, B, C = torch.split(proj, [r, n, n], dim=3)
        delta = torch.matmul(w_dt.transpose(1, 2), dt.reshape(batch, k, groups * r, -1))
        return (delta.view(batch, k, groups * dim, height, width), B.reshape(shape),
                C.reshape(shape))

    def scan_constants(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A = -exp(A_log) (S * D, N), D (S * D,) and the step bias (S * D,), in float32."""
        return (-torch.exp(self.A_log.float()), self.D.float(),
                self.dt_proj_bias.flatten().float())

    def extra_repr(self) -> str:
        return (f'd_inner={self.d_inner}, d_state={self.d_state}, dt_rank={self.dt_rank}, '
                f'backend={self.backend!r}')


def _stack(tensors: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    """torch.stack, without a copy for one tensor."""
    return tensors[0].unsqueeze(dim) if len(tensors) == 1 else torch.stack(tensors, dim)


def _block_diagonal(blocks: Sequence[torch.Tensor]) -> torch.Tensor:
    """G (K, R, D) blocks -> (K, G R, G D), block g on the diagonal and zeros elsewhere."""
    if len(blocks) == 1:
        return blocks[0]
    k, r, d = blocks[0].shape
    out = blocks[0].new_zeros(k, len(blocks) * r, len(blocks) * d)
    for g, block in enumerate(blocks):
        out[:, g * r:(g + 1) * r, g * d:(g + 1) * d] = block
    return out
