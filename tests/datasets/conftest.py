"""Fixtures of the dataset tests."""
import pytest
from mmengine.registry import init_default_scope

import fusion_mamba.datasets  # noqa: F401  registers the transforms and datasets


@pytest.fixture(autouse=True, scope='session')
def mmdet_scope():
    """Build configs in mmdet's registry scope, as a config's default_scope does."""
    init_default_scope('mmdet')
