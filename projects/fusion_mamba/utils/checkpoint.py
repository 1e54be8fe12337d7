"""Let mmengine checkpoints load under torch's ``weights_only=True`` default.

Since torch 2.6 ``torch.load`` only unpickles allow-listed types unless ``weights_only=False``
is passed, and mmengine 0.10.7 calls it without the argument, so ``load_from`` and
``resume`` fail on mmengine's own checkpoints (``HistoryBuffer`` and numpy arrays in the
message hub). Instead of turning the check off, allow-list exactly the types mmengine writes.
"""
import numpy as np
import torch


def _numpy_globals() -> list:
    """numpy's array / scalar reconstruction functions and its dtype classes."""
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    found = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    found += [type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGSUV']
    return found


def allow_mmengine_checkpoints() -> None:
    """Register mmengine's checkpoint types with ``torch.serialization.add_safe_globals``."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 has no weights_only default to satisfy
        return
    from mmengine.logging import HistoryBuffer
    # ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'min')``.
    # Allowing ``getattr`` does not allow calling what it returns: the weights-only
    # unpickler still only calls allow-listed globals.
    safe = [HistoryBuffer, getattr] + _numpy_globals()
    # numpy 2 pickles name its module ``numpy._core``; numpy 1.x pickles ``numpy.core``.
    safe += [(fn, f'numpy.core.multiarray.{fn.__name__}')
             for fn in _numpy_globals()[:2]]
    add_safe_globals(safe)
