"""StateSpaceOptimWrapperConstructor: no weight decay on the parameters flagged
``_no_weight_decay`` (SS2D / SASF / Cross SS2D's A_log and D), the dt bias exempt as a bias,
mmengine's paramwise rules kept, on the paper's FM-YOLOv8-l config and the variants."""
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import fusion_mamba  # noqa: F401  registers the components
from fusion_mamba.engine.optimizers import NO_DECAY_FLAG
from fusion_mamba.models.fusion.cmsa import CrossModalSS2D
from fusion_mamba.models.layers.sasf import SASF
from fusion_mamba.models.layers.ss2d import SS2D
from mmdet.registry import MODELS

CONFIG_ROOT = Path(__file__).resolve().parents[2] / 'configs' / 'fusion_mamba'
BASE_WD = 0.001  # the paper's weight decay
SCAN_MODULES = (SS2D, SASF, CrossModalSS2D)


def build_on_meta(config):
    """The config's model (on the meta device: no memory, no init cost) and optimizer."""
    cfg = Config.fromfile(str(CONFIG_ROOT / config))
    init_default_scope('mmdet')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    return cfg, model, build_optim_wrapper(model, cfg.optim_wrapper).optimizer


def weight_decay_of(optimizer):
    """id(parameter) -> weight decay of its group."""
    decay = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            decay[id(p)] = group.get('weight_decay', optimizer.defaults['weight_decay'])
    return decay


@pytest.fixture(scope='module')
def fm_yolov8_l():
    return build_on_meta('fm-yolov8_l_1xb4-150e_llvip.py')


def test_l_config_exempts_state_space_parameters(fm_yolov8_l):
    cfg, model, optimizer = fm_yolov8_l
    assert cfg.optim_wrapper.optimizer.weight_decay == BASE_WD
    decay = weight_decay_of(optimizer)
    assert set(decay) == {id(p) for p in model.parameters()}
    scans = [m for m in model.modules() if isinstance(m, SS2D)]
    assert len(scans) == 3 * (2 + 8 * 2)  # P3-P5: 2 VSS + 8 DSSF x 2 branches
    flagged = [p for p in model.parameters() if getattr(p, NO_DECAY_FLAG, False)]
    # A_log and D flagged (Mamba's rule); flagging the dt bias too would change nothing
    flagged_ids = {id(p) for p in flagged}
    assert {id(p) for m in scans for p in (m.A_log, m.D)} <= flagged_ids
    assert flagged_ids <= {id(p) for m in scans for p in (m.A_log, m.D, m.dt_proj_bias)}
    assert all(decay[id(p)] == 0 for p in flagged)
    assert all(decay[id(m.dt_proj_bias)] == 0 for m in scans)
    # the scan's projections are weights of linear maps: decayed
    assert all(decay[id(m.x_proj_weight)] == BASE_WD for m in scans)
    assert all(decay[id(m.dt_proj_weight)] == BASE_WD for m in scans)


def test_l_config_keeps_yolov8_decay_rules(fm_yolov8_l):
    _, model, optimizer = fm_yolov8_l
    decay = weight_decay_of(optimizer)
    kinds = dict(conv=0, linear=0, norm=0, bias=0)
    for module in model.modules():
        params = dict(module.named_parameters(recurse=False))
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            key = 'conv' if isinstance(module, nn.Conv2d) else 'linear'
            assert decay[id(module.weight)] == BASE_WD, module
            kinds[key] += 1
        if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
            assert all(decay[id(p)] == 0 for p in params.values()), module
            kinds['norm'] += 1
        if isinstance(params.get('bias'), nn.Parameter):
            assert decay[id(params['bias'])] == 0, module
            kinds['bias'] += 1
    assert min(kinds.values()) > 0, kinds
    stem = model.backbone.rgb_stream.stem.conv.weight
    assert decay[id(stem)] == BASE_WD


@pytest.mark.parametrize('config', [
    'variants/fm-yolov8_demo-sasf_1xb8-5e_demo-pairs.py',
    'variants/cmsa-yolov8_demo_1xb8-5e_demo-pairs.py',
    'fm-yolov8_demo_1xb8-5e_demo-pairs.py',
])
def test_every_scan_module_is_exempt_in_the_variants(config):
    cfg, model, optimizer = build_on_meta(config)
    decay = weight_decay_of(optimizer)
    scans = [m for m in model.modules() if isinstance(m, SCAN_MODULES)]
    assert scans
    for scan in scans:
        for name in ('A_log', 'D', 'dt_proj_bias'):
            assert decay[id(getattr(scan, name))] == 0, (type(scan).__name__, name)
        assert decay[id(scan.x_proj_weight)] == cfg.optim_wrapper.optimizer.weight_decay > 0


class Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.gain = nn.Parameter(torch.ones(4))  # flagged below: name plays no role
        self.scale = nn.Parameter(torch.ones(4))
        setattr(self.gain, NO_DECAY_FLAG, True)


@pytest.mark.parametrize('paramwise_cfg', [
    None,
    dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    dict(custom_keys={'gain': dict(decay_mult=2.0), 'scale': dict(decay_mult=3.0)}),
])
def test_flag_wins_over_every_paramwise_rule(paramwise_cfg):
    model = Toy()
    cfg = dict(constructor='StateSpaceOptimWrapperConstructor',
               optimizer=dict(type='SGD', lr=0.1, weight_decay=0.01))
    if paramwise_cfg is not None:
        cfg['paramwise_cfg'] = paramwise_cfg
    init_default_scope('mmdet')
    optimizer = build_optim_wrapper(model, cfg).optimizer
    decay = weight_decay_of(optimizer)
    assert decay[id(model.gain)] == 0
    rules = paramwise_cfg or {}
    expected_scale = 0.01 * rules.get('custom_keys', {}).get('scale', {}).get('decay_mult', 1)
    assert decay[id(model.scale)] == pytest.approx(expected_scale)
    assert decay[id(model.fc.weight)] == 0.01
    norm_mult = rules.get('norm_decay_mult', 1.0)
    assert decay[id(model.norm.weight)] == pytest.approx(0.01 * norm_mult)
    assert decay[id(model.fc.bias)] == pytest.approx(0.01 * rules.get('bias_decay_mult', 1.0))


def test_a_flagged_parameter_really_does_not_decay():
    """One SGD step with zero gradients: only decay moves a parameter."""
    model = Toy()
    init_default_scope('mmdet')
    optimizer = build_optim_wrapper(model, dict(
        constructor='StateSpaceOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.5, weight_decay=0.1))).optimizer
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(model.gain.detach(), torch.ones(4))
    torch.testing.assert_close(model.scale.detach(), torch.full((4, ), 1 - 0.5 * 0.1))
