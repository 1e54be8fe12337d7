"""Training-engine helpers: storage backends and hooks."""
from .atomic_local_backend import AtomicLocalBackend, atomic_write_bytes
from .hooks import PairedDetVisualizationHook

__all__ = ['AtomicLocalBackend', 'atomic_write_bytes', 'PairedDetVisualizationHook']
