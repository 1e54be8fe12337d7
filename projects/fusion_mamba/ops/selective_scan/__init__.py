"""Selective scan (Mamba S6) with interchangeable backends; see ``interface`` and ``backends``."""
from .backends import (SCAN_FORWARD_OPS, add_launch_config_argument, available_backends,
                       resolve_backend, use_launch_config)
from .interface import selective_scan, selective_scan_states

__all__ = [
    'selective_scan', 'selective_scan_states', 'available_backends', 'resolve_backend',
    'SCAN_FORWARD_OPS', 'add_launch_config_argument', 'use_launch_config'
]
