"""Selective-scan operators: 1D scan, hidden states, SS2D and the cross-modal interleaved scan.

Depends on torch alone; Triton and mamba-ssm are imported only when their backend is used.
"""
from .cross_modal import cross_modal_ss2d_scan, deinterleave_tokens, interleave_tokens
from .selective_scan import (SCAN_FORWARD_OPS, available_backends, resolve_backend,
                             selective_scan, selective_scan_states)
from .ss2d import (cross_merge, cross_scan, ss2d_prefers_channels_last, ss2d_scans_group,
                   ss2d_selective_scan)

__all__ = [
    'selective_scan', 'selective_scan_states', 'ss2d_selective_scan',
    'ss2d_prefers_channels_last', 'ss2d_scans_group', 'cross_scan',
    'cross_merge', 'interleave_tokens', 'deinterleave_tokens', 'cross_modal_ss2d_scan',
    'available_backends', 'resolve_backend', 'SCAN_FORWARD_OPS'
]
