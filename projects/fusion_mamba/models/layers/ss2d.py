"""SS2D: VMamba's 2D selective scan as a module with its own parameters."""
from typing import List, Sequence, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from fusion_mamba.ops import ss2d_prefers_channels_last, ss2d_scans_group, ss2d_selective_scan
from .selective_scan_module import SelectiveScanModule, resolve_dt_rank

NUM_DIRECTIONS = 4

__all__ = ['NUM_DIRECTIONS', 'SS2D', 'grouped_ss2d', 'maps_group', 'resolve_dt_rank']


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
        return grouped_ss2d([self], x)[0]

    def same_configuration(self, other: nn.Module) -> bool:
        """Whether ``other`` is an SS2D of the same shapes and backend (:func:`grouped_ss2d`
        can scan both in one call)."""
        return isinstance(other, SS2D) and all(
            getattr(self, name) == getattr(other, name)
            for name in ('d_inner', 'd_state', 'dt_rank', 'backend'))

    def groups_with(self, other: nn.Module, device: torch.device) -> bool:
        """Whether this module and ``other`` should scan their maps on ``device`` in one
        call (:func:`grouped_ss2d`): same configuration, and one call is faster there
        (:func:`~fusion_mamba.ops.ss2d_scans_group`: on the Triton backend, one launch of
        twice the grid fills the GPU better; the CPU backends gain nothing)."""
        return (self.same_configuration(other)
                and ss2d_scans_group(self.d_inner, self.d_state, device, self.backend))


def grouped_ss2d(modules: Sequence[SS2D], x: torch.Tensor) -> List[torch.Tensor]:
    """G SS2D modules of one configuration, each on its own map, in one scan call: x holds
    the G maps concatenated along the channels, module g's projections, A, D and step bias
    on channel group g. One launch of G times the grid fills the GPU better than G (the
    RGB and IR branches of a DSSF module); the result equals each module's own scan.

    Args:
        modules: G modules, ``modules[0].same_configuration(m)`` for each other one.
        x: (B, G D, H, W), map g in channels g D ... (g + 1) D - 1.

    Returns:
        G scanned maps (B, D, H, W), views of one (B, G D, H, W) result.
    """
    first = modules[0]
    width = len(modules) * first.d_inner
    if x.dim() != 4 or x.shape[1] != width:
        maps = f' ({len(modules)} maps of {first.d_inner})' if len(modules) > 1 else ''
        raise ValueError(f'SS2D expects (B, {width}, H, W){maps}, got {tuple(x.shape)}')
    if not all(first.same_configuration(m) for m in modules[1:]):
        raise ValueError('grouped_ss2d needs modules of one configuration '
                         '(SS2D.same_configuration)')
    # the projections read channel slices of x, so that autograd keeps one copy of the maps
    # for them and the scan
    delta, B, C = first.grouped_token_parameters(
        x.chunk(len(modules), dim=1), [m.x_proj_weight for m in modules],
        [m.dt_proj_weight for m in modules])
    A, D, delta_bias = (_direction_major(group)
                        for group in zip(*(m.scan_constants() for m in modules)))
    y = ss2d_selective_scan(x, delta, A, B, C, D, delta_bias=delta_bias, delta_softplus=True,
                            backend=first.backend)
    return list(y.chunk(len(modules), dim=1))


def maps_group(maps: Sequence[torch.Tensor]) -> bool:
    """Whether maps can be concatenated along the channels for one :func:`grouped_ss2d`
    call: one shape, layout and dtype."""
    return all(x.shape == maps[0].shape and x.stride() == maps[0].stride()
               and x.dtype == maps[0].dtype for x in maps)


def _direction_major(per_module: Sequence[torch.Tensor]) -> torch.Tensor:
    """G (K D, ...) scan constants -> (K G D, ...): direction k's rows of every module
    together, as the channels of the concatenated maps."""
    if len(per_module) == 1:
        return per_module[0]
    return torch.cat([t.unflatten(0, (NUM_DIRECTIONS, -1)) for t in per_module],
                     dim=1).flatten(0, 1)
