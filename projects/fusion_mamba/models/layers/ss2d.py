"""SS2D: VMamba's 2D selective scan as a module with its own parameters."""
import math
from typing import Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from fusion_mamba.ops import ss2d_selective_scan

NUM_DIRECTIONS = 4


def resolve_dt_rank(dt_rank: Union[int, str], d_model: int) -> int:
    """``'auto'`` gives VMamba's ``ceil(d_model / 16)``; an int is used as is."""
    if dt_rank == 'auto':
        return math.ceil(d_model / 16)
    if not isinstance(dt_rank, int) or dt_rank < 1:
        raise ValueError(f"dt_rank must be 'auto' or a positive int, got {dt_rank!r}")
    return dt_rank


@MODELS.register_module()
class SS2D(nn.Module):
    """Four-direction selective scan over a (B, D, H, W) map (VMamba's SS2D core).

    Each direction k (row-major, column-major and both reversed) has its own input
    projection to (dt, B, C), its own dt projection, A and D. The per-token projections are
    computed in the spatial layout (a per-token linear commutes with the scan order), and the
    scan operator merges the four directional outputs.

    Args:
        d_inner (int): Channels D of the scanned map.
        d_state (int): State size N per channel.
        dt_rank (int | str): Rank R of the dt projection; ``'auto'`` is ceil(d_model / 16).
        d_model (int): Width of the block's input, used by ``dt_rank='auto'``.
        dt_min, dt_max, dt_init_floor (float): Range of the initial step sizes (Mamba's).
        backend (str): Scan backend, see :func:`fusion_mamba.ops.selective_scan`.
    """

    def __init__(self,
                 d_inner: int,
                 d_state: int = 16,
                 dt_rank: Union[int, str] = 'auto',
                 d_model: int = None,
                 dt_min: float = 0.001,
                 dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4,
                 backend: str = 'auto'):
        super().__init__()
        self.d_inner = d_inner
        self.d_state = d_state
        self.dt_rank = resolve_dt_rank(dt_rank, d_model or d_inner)
        self.backend = backend
        k, d, n, r = NUM_DIRECTIONS, d_inner, d_state, self.dt_rank
        self.x_proj_weight = nn.Parameter(torch.empty(k, r + 2 * n, d))
        self.dt_proj_weight = nn.Parameter(torch.empty(k, d, r))
        self.dt_proj_bias = nn.Parameter(torch.empty(k, d))
        self.A_log = nn.Parameter(torch.empty(k * d, n))
        self.D = nn.Parameter(torch.empty(k * d))
        self._dt_range = (dt_min, dt_max, dt_init_floor)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Mamba's initialisation: S4D-real A, D = 1, dt log-uniform in [dt_min, dt_max]."""
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
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scan a (B, D, H, W) map in four directions; returns the merged (B, D, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.d_inner:
            raise ValueError(f'SS2D expects (B, {self.d_inner}, H, W), got {tuple(x.shape)}')
        n, r = self.d_state, self.dt_rank
        # Projections in the input's dtype (bf16 / fp16 activations with fp32 weights);
        # the scan accumulates in fp32 whatever it is given.
        proj = torch.einsum('bdhw,kcd->bkchw', x, self.x_proj_weight.to(x.dtype))
        dt, B, C = torch.split(proj, [r, n, n], dim=2)
        delta = torch.einsum('bkrhw,kdr->bkdhw', dt, self.dt_proj_weight.to(x.dtype))
        return ss2d_selective_scan(
            x, delta, -torch.exp(self.A_log.float()), B.contiguous(), C.contiguous(),
            self.D.float(), delta_bias=self.dt_proj_bias.flatten().float(),
            delta_softplus=True, backend=self.backend)

    def extra_repr(self) -> str:
        return (f'd_inner={self.d_inner}, d_state={self.d_state}, dt_rank={self.dt_rank}, '
                f'backend={self.backend!r}')
