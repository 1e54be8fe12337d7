"""Selective scan (Mamba S6) with interchangeable backends; see ``interface`` and ``backends``."""
from .backends import SCAN_FORWARD_OPS, available_backends, resolve_backend
from .interface import selective_scan, selective_scan_states

__all__ = [
    'selective_scan', 'selective_scan_states', 'available_backends', 'resolve_backend',
    'SCAN_FORWARD_OPS'
]
