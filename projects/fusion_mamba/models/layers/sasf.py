"""SASF: Spatial-Mamba's structure-aware state fusion (arXiv 2410.15091) as an SS2D replacement."""
from typing import Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS

from fusion_mamba.ops import selective_scan_states
from .selective_scan_module import SelectiveScanModule


@MODELS.register_module()
class SASF(SelectiveScanModule):
    """One raster-order selective scan whose hidden states are fused over the 2D neighbourhood.

    With per-token ``(dt, B, C)`` projected from the input u (B, D, H, W):

    1. ``h = scan(u)``: all hidden states of one row-major scan, (B, D, N, H, W);
    2. ``h' = sum_k DWConv3x3_{dil_k}(h)`` (structure-aware state fusion; replicate padding,
       learnable kernels, one per channel d shared by its N states; the paper's scalar
       weights a_k are absorbed into the learnable kernels);
    3. ``y = C . h' + D * u`` (observation equation).

    The call convention is SS2D's, so ``ssm_cfg=dict(type='SASF', ...)`` swaps it in wherever
    SS2D is used (VSS blocks, DSSF); the surrounding branch does the norm, gate and projection.

    In training the three dilated convolutions run separately; in eval mode they are merged
    into one (2 * max(dilations) + 1)-sized depthwise kernel, which is exact because replicate
    padding clamps indices whatever the padding width. The merged kernel is cached for
    gradient-free eval forwards and rebuilt whenever the kernels may have changed: at every
    switch between train and eval mode (optimizer steps and mmengine's EMA updates happen in
    train mode; EMA's swap for validation precedes ``eval()``), after in-place updates
    (version counter), and when the storage is replaced (``.data`` assignment). An in-place
    update through ``.data`` while the module stays in eval mode is not seen: call
    ``train(False)`` again after one.

    Args:
        d_inner (int): Channels D of the scanned map.
        d_state (int): State size N per channel (Spatial-Mamba: 1).
        dt_rank (int | str): Rank of the dt projection; ``'auto'`` is ceil(d_model / 16).
        d_model (int): Width of the block's input, used by ``dt_rank='auto'``.
        dt_min, dt_max, dt_init_floor (float): Range of the initial step sizes (Mamba's).
        dilations (Sequence[int]): Dilations of the 3x3 state-fusion kernels.
        backend (str): Scan backend, see :func:`fusion_mamba.ops.selective_scan_states`.
    """

    def __init__(self,
                 d_inner: int,
                 d_state: int = 1,
                 dt_rank: Union[int, str] = 'auto',
                 d_model: int = None,
                 dt_min: float = 0.001,
                 dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4,
                 dilations: Sequence[int] = (1, 3, 5),
                 backend: str = 'auto'):
        if not dilations or any(not isinstance(d, int) or d < 1 for d in dilations):
            raise ValueError(f'SASF: dilations must be positive ints, got {dilations!r}')
        # one raster scan: a single projection group and one set of A / D
        super().__init__(d_inner, d_state, dt_rank, d_model, dt_min, dt_max, dt_init_floor,
                         backend, proj_groups=(1, ), num_scans=1)
        self.dilations = tuple(dilations)
        self.fusion_kernels = nn.Parameter(torch.empty(len(self.dilations), d_inner, 1, 3, 3))
        self._merged_cache = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Mamba's initialisation of the scan; the fusion kernels start as the identity
        (centre tap 1 of the first kernel), i.e. as a plain scan."""
        super().reset_parameters()
        with torch.no_grad():
            self.fusion_kernels.zero_()
            self.fusion_kernels[0, :, 0, 1, 1] = 1.0

    @property
    def merged_kernel_size(self) -> int:
        return 2 * max(self.dilations) + 1

    def merged_kernel(self) -> torch.Tensor:
        """The dilated kernels summed into one (D, 1, K, K) kernel, K = 2 * max(dilation) + 1.

        Kernel i lands on the taps ``offset + j * dilation`` (j = 0, 1, 2) of the K x K grid,
        written as ``P_i @ w_i @ P_i^T`` with a constant (K, 3) placement matrix P_i: no
        in-place writes, so the kernel traces (ONNX export) and differentiates as products.
        """
        size = self.merged_kernel_size
        merged = 0
        for weight, dilation in zip(self.fusion_kernels, self.dilations):
            offset = size // 2 - dilation
            place = torch.tensor([[1.0 if row == offset + j * dilation else 0.0 for j in range(3)]
                                  for row in range(size)], dtype=weight.dtype,
                                 device=weight.device)
            merged = merged + place @ weight @ place.T
        return merged

    def train(self, mode: bool = True) -> 'SASF':
        self._merged_cache = None  # the kernels may have changed since the last switch
        return super().train(mode)

    def _per_state(self, kernel: torch.Tensor) -> torch.Tensor:
        """A (D, 1, K, K) kernel repeated for the N states of each channel: (D * N, 1, K, K),
        row d * N + s holding kernel d."""
        return kernel.repeat_interleave(self.d_state, dim=0)

    def _eval_kernel(self) -> torch.Tensor:
        """The merged kernel per state (D * N, 1, K, K), cached while the fusion kernels are
        unchanged and no gradient is wanted (a constant of the graph when traced for
        export)."""
        weights = self.fusion_kernels
        if torch.is_grad_enabled() and weights.requires_grad:
            return self._per_state(self.merged_kernel())
        key = (weights._version, weights.data_ptr(), weights.device, weights.dtype)
        if self._merged_cache is None or self._merged_cache[0] != key:
            with torch.no_grad():
                self._merged_cache = (key, self._per_state(self.merged_kernel()))
        return self._merged_cache[1]

    def fuse_states(self, h: torch.Tensor, merged: bool) -> torch.Tensor:
        """Structure-aware state fusion of h (B, D, N, H, W) -> (B, D, N, H, W).

        ``merged`` runs the single merged kernel, otherwise one convolution per dilation.
        """
        batch, dim, n, height, width = h.shape
        h = h.reshape(batch, dim * n, height, width)  # channel d * N + s

        def conv(x, weight, dilation):
            pad = dilation * (weight.shape[-1] // 2)
            x = F.pad(x, [pad] * 4, mode='replicate')
            return F.conv2d(x, weight.to(x.dtype), dilation=dilation, groups=dim * n)

        if merged:
            out = conv(h, self._eval_kernel(), 1)
        else:
            out = sum(conv(h, self._per_state(w), d)
                      for w, d in zip(self.fusion_kernels, self.dilations))
        return out.view(batch, dim, n, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scan a (B, D, H, W) map in raster order, fuse the states; returns (B, D, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.d_inner:
            raise ValueError(f'SASF expects (B, {self.d_inner}, H, W), got {tuple(x.shape)}')
        batch, dim, height, width = x.shape
        delta, B, C = self.token_parameters(x, self.x_proj_weight, self.dt_proj_weight)
        A, D, delta_bias = self.scan_constants()
        h = selective_scan_states(x.flatten(2), delta[:, 0].flatten(2), A, B[:, 0].flatten(2),
                                  delta_bias=delta_bias, delta_softplus=True,
                                  backend=self.backend)
        h = h.reshape(batch, dim, self.d_state, height, width)
        h = self.fuse_states(h, merged=not self.training)
        y = torch.einsum('bdnhw,bnhw->bdhw', h, C[:, 0].to(h.dtype))
        return (y + D[:, None, None] * x).to(x.dtype)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, dilations={self.dilations}'
