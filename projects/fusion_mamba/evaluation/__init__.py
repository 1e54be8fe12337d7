"""Evaluation: the KAIST log-average miss rate (MR^-2).

``functional`` holds the protocol core in plain numpy; ``metrics`` the mmdet metric on top
of it. Importing this package registers ``KAISTMissRateMetric`` in mmdet's ``METRICS``;
without mmdet installed it registers nothing and ``functional`` still imports.
"""
import importlib.util

_HAS_MMDET = importlib.util.find_spec('mmdet') is not None

if _HAS_MMDET:
    from .metrics import KAISTMissRateMetric  # noqa: F401

__all__ = ['KAISTMissRateMetric'] if _HAS_MMDET else []
