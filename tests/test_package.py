"""The package installs, registers its components and is usable from any directory."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import fusion_mamba
from fusion_mamba.version import __version__

REPO_ROOT = Path(__file__).resolve().parents[1]

EXPECTED_MODELS = [
    'SS2D', 'FusionMambaBlock', 'AddFusion', 'ConcatConvFusion', 'DualStreamBackbone',
    'MultiModalDetDataPreprocessor', 'MultiModalDetector',
]


def test_version_and_mmdet_detected():
    assert fusion_mamba.__version__ == __version__
    assert fusion_mamba.MMDET_AVAILABLE


@pytest.mark.parametrize('name', EXPECTED_MODELS)
def test_import_registers_models(name):
    from mmdet.registry import MODELS
    assert MODELS.get(name) is not None, f'{name} is not in mmdet MODELS'


def test_custom_imports_build_from_another_directory(tmp_path):
    """A config naming only ``custom_imports`` builds our model in a foreign cwd."""
    cfg = tmp_path / 'fusion_cfg.py'
    cfg.write_text(textwrap.dedent("""
        custom_imports = dict(imports=['fusion_mamba'], allow_failed_imports=False)
        model = dict(type='FusionMambaBlock', in_channels=8, num_dssf=1,
                     ssm_cfg=dict(type='SS2D', d_state=4, backend='torch'))
    """))
    script = textwrap.dedent("""
        import sys, torch
        from mmengine.config import Config
        from mmdet.registry import MODELS
        cfg = Config.fromfile(sys.argv[1])
        block = MODELS.build(cfg.model)
        fused, _, _ = block(torch.randn(1, 8, 5, 6), torch.randn(1, 8, 5, 6))
        print('built', type(block).__name__, tuple(fused.shape))
    """)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    out = subprocess.run([sys.executable, '-c', script, str(cfg)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert 'built FusionMambaBlock (1, 8, 5, 6)' in out.stdout


def test_mmengine_checkpoint_loads_with_weights_only_default(tmp_path):
    """mmengine checkpoints (HistoryBuffer, numpy arrays in the message hub) load with
    torch's default ``weights_only=True`` once fusion_mamba is imported."""
    import numpy as np
    from mmengine.logging import HistoryBuffer, MessageHub
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint

    hub = MessageHub.get_instance('fm_ckpt_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('np_value', np.float64(1.5))
    model = torch.nn.Linear(2, 3)
    ckpt = {'state_dict': model.state_dict(), 'message_hub': hub.state_dict(),
            'meta': {'epoch': 1, 'dataset_meta': {'classes': ('person',)},
                     'hist': HistoryBuffer([1.0, 2.0], [1, 1])}}
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(ckpt, str(path))
    loaded = torch.load(path)  # default weights_only
    assert loaded['meta']['dataset_meta']['classes'] == ('person',)
    target = torch.nn.Linear(2, 3)
    load_checkpoint(target, str(path), map_location='cpu')
    assert torch.equal(target.weight, model.weight)


def _env_made_by_setup_script():
    return (Path(sys.prefix) / '.fusion_mamba_env').is_file()


@pytest.mark.skipif(not _env_made_by_setup_script(),
                    reason='this environment was not made by tools/setup_env.sh')
def test_setup_env_is_idempotent():
    env = dict(os.environ, FM_VENV=sys.prefix)
    out = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'setup_env.sh')], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'is up to date' in out.stdout
    assert 'installing' not in out.stdout


@pytest.mark.skipif(not _env_made_by_setup_script(),
                    reason='this environment was not made by tools/setup_env.sh')
def test_mmcv_wheel_cached_per_torch_version():
    import mmcv
    import mmcv.ops  # noqa: F401  compiled ops are present
    cache = Path(os.environ.get('FM_CACHE_DIR') or Path(
        os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'fusion_mamba')
    flavour = 'cuda' if torch.cuda.is_available() or os.environ.get('FORCE_CUDA') == '1' \
        else 'cpu'
    wheels = list((cache / 'wheels' / f'torch-{torch.__version__}-{flavour}ops').glob(
        f'mmcv-{mmcv.__version__}-*.whl'))
    assert wheels, f'no mmcv wheel cached for torch {torch.__version__} under {cache}'
