"""Model components, registered in mmdet's ``MODELS`` / ``TASK_UTILS`` on import."""
from . import (backbones, data_preprocessors, dense_heads, detectors, fusion,  # noqa: F401
               layers, losses, necks, task_modules)
