"""SS2D: VMamba's 2D selective scan as a module with its own parameters."""
from typing import Union

import torch
from mmdet.registry import MODELS

from fusion_mamba.ops import ss2d_prefers_channels_last, ss2d_selective_scan
from .selective_scan_module import SelectiveScanModule, resolve_dt_rank

NUM_DIRECTIONS = 4

__all__ = ['NUM_DIRECTIONS', 'SS2D', 'resolve_dt_rank']


@MODELS.register_module()
class SS2D(SelectiveScanModule):
    """Four-direction selective scan over a (B, D, H, W) map (VMamba's SS2D core).

    Each direction k (row-major, column-major and both reversed) has its own input
    projection to (dt, B, C), its own dt projection, A and D (``proj_groups = (4,)``, four
    scans, see :class:`SelectiveScanModule`). The per-token projections are computed in the
    spatial layout (a per-token linear commutes with the scan order), and the scan operator
    merges the four directional outputs. Channels-last maps are scanned in place and give a
    channels-last result (:meth:`prefers_channels_last` says when that is the faster layout).

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
        super().__init__(d_inner, d_state, dt_rank, d_model, dt_min, dt_max, dt_init_floor,
                         backend, proj_groups=(NUM_DIRECTIONS, ), num_scans=NUM_DIRECTIONS)
        self.reset_parameters()

    def prefers_channels_last(self, batch: int, device: torch.device,
                              needs_grad: bool = True) -> bool:
        """Whether a batch of ``batch`` maps on ``device`` is scanned fastest channels-last
        (Triton's sequential kernels: without a backward always, with one on large enough
        grids)."""
        return ss2d_prefers_channels_last(batch, self.d_inner, self.d_state, device,
                                          self.backend, needs_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scan a (B, D, H, W) map in four directions; returns the merged (B, D, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.d_inner:
            raise ValueError(f'SS2D expects (B, {self.d_inner}, H, W), got {tuple(x.shape)}')
        delta, B, C = self.token_parameters(x, self.x_proj_weight, self.dt_proj_weight)
        A, D, delta_bias = self.scan_constants()
        return ss2d_selective_scan(x, delta, A, B, C, D, delta_bias=delta_bias,
                                   delta_softplus=True, backend=self.backend)
