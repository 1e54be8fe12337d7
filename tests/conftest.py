"""Shared pytest fixtures and markers.

``cuda`` tests are skipped when no CUDA device is visible; ``slow`` tests only run with
``--run-slow``. Real-data tests read ``../shared/data`` (beside the repository) and skip
when it is absent, as it is in a user's fresh clone.
"""
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


def pytest_addoption(parser):
    parser.addoption('--run-slow', action='store_true', default=False,
                     help='also run tests marked slow')


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_cuda = pytest.mark.skip(reason='needs a CUDA GPU')
    skip_slow = pytest.mark.skip(reason='slow: run with --run-slow')
    for item in items:
        if 'cuda' in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)
        if 'slow' in item.keywords and not config.getoption('--run-slow'):
            item.add_marker(skip_slow)


@pytest.fixture
def needs_cpp():
    """Skips when the compiled CPU scan backend cannot be built here."""
    from fusion_mamba.ops.selective_scan import cpp_backend
    reason = cpp_backend.unavailable_reason()
    if reason is not None:
        pytest.skip(f'the cpp backend cannot be built here: {reason}')


@pytest.fixture(scope='session')
def llvip_mini():
    """Path of the real LLVIP sample (official layout); skips when it is absent."""
    path = SHARED_DATA / 'LLVIP_mini'
    if not path.is_dir():
        pytest.skip('../shared/data/LLVIP_mini is not available')
    return path


@pytest.fixture(scope='session')
def coco_eval_fixtures():
    """Path of the COCO evaluation fixtures; skips when they are absent."""
    path = SHARED_DATA / 'coco_eval_fixtures'
    if not path.is_dir():
        pytest.skip('../shared/data/coco_eval_fixtures is not available')
    return path
