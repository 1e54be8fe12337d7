"""YOLOv8's close_mosaic with MixDatasetPipelineSwitchHook: every config that trains with
Mosaic switches to a letterbox pipeline for its last 10 epochs; in a real training run the
data of those epochs come without Mosaic and random affine, also from persistent dataloader
workers and after resuming past the switch epoch."""
import copy
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import fusion_mamba  # noqa: F401  registers the components
from fusion_mamba.engine.hooks.pipeline_switch_hook import MixDatasetPipelineSwitchHook
from mmdet.datasets import MultiImageMixDataset
from mmdet.engine.hooks import PipelineSwitchHook
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

CONFIG_ROOT = Path(__file__).resolve().parents[2] / 'configs'
CONFIGS = sorted(p for p in CONFIG_ROOT.rglob('*.py') if '_base_' not in p.parts)
CLOSE_MOSAIC_EPOCHS = 10  # YOLOv8's close_mosaic
SWITCH_HOOKS = ('PipelineSwitchHook', 'MixDatasetPipelineSwitchHook')


def train_pipeline(cfg):
    """The transforms a training sample goes through after loading."""
    dataset = cfg.train_dataloader.dataset
    return dataset.pipeline


def types(pipeline):
    return [t['type'] if isinstance(t, dict) else type(t).__name__ for t in pipeline]


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_ROOT)))
def test_configs_with_mosaic_close_it_for_the_last_10_epochs(path):
    cfg = Config.fromfile(str(path))
    max_epochs = cfg.train_cfg.max_epochs
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] in SWITCH_HOOKS]
    with_mosaic = any('Mosaic' in t for t in types(train_pipeline(cfg)))
    if not with_mosaic or max_epochs <= CLOSE_MOSAIC_EPOCHS:
        # the demo's 5 epochs never reach YOLOv8's closing epoch (epochs - close_mosaic)
        assert not hooks
        return
    assert len(hooks) == 1
    hook = hooks[0]
    assert hook['type'] == 'MixDatasetPipelineSwitchHook'
    assert hook['switch_epoch'] == max_epochs - CLOSE_MOSAIC_EPOCHS
    stage2 = types(hook['switch_pipeline'])
    assert not [t for t in stage2 if 'Mosaic' in t or 'Affine' in t], stage2
    assert stage2[0] == 'PairedLetterResize' and stage2[-1] == 'PackMultiModalDetInputs'
    letterbox = hook['switch_pipeline'][0]
    assert tuple(letterbox['scale']) == tuple(cfg.img_scale)
    # the rest of the pipeline (photometric, flip, filter, pack) is the one of Mosaic epochs
    stage1 = [t for t in train_pipeline(cfg)
              if not any(k in t['type'] for k in ('Mosaic', 'Affine', 'Resize', 'Pad'))]
    assert hook['switch_pipeline'][1:] == stage1


# ------------------------------------------------------------------------------ the switch


class Tag:
    """Records which transforms ran, in the results (survives worker processes)."""

    def __init__(self, name):
        self.name = name

    def __call__(self, results):
        results['ran'] = results.get('ran', ()) + (self.name, )
        return results


def test_mmdet_hook_leaves_stale_transform_types_and_ours_does_not():
    """A switch pipeline longer than the original: mmdet's hook zips the new transforms with
    the old types, so the transforms beyond the old length never run; ours runs them all."""
    init_default_scope('mmdet')
    logger = MMLogger.get_instance(f'switch_{uuid.uuid4().hex}')
    for hook_cls, expected in ((PipelineSwitchHook, ('a', )),
                               (MixDatasetPipelineSwitchHook, ('a', 'b', 'c'))):
        dataset = MultiImageMixDataset(
            dataset=ToyPairs(num_samples=1), pipeline=[dict(type='TestTag', name='old')])
        loader = SimpleNamespace(dataset=dataset, persistent_workers=False)
        hook = hook_cls(switch_epoch=1, switch_pipeline=[
            dict(type='TestTag', name=n) for n in 'abc'])
        hook.before_train_epoch(SimpleNamespace(epoch=1, train_dataloader=loader,
                                                logger=logger))
        assert dataset[0]['ran'] == expected
    assert dataset.pipeline_types == ['TestTag'] * 3


class ToyPairs(BaseDataset):
    """In-memory image pairs of 64 x 80 with one large box each, as after loading."""

    METAINFO = dict(classes=('person', ))

    def __init__(self, num_samples=4, **kwargs):
        self.num_samples = num_samples
        super().__init__(ann_file='', serialize_data=False, **kwargs)

    def load_data_list(self):
        rng = np.random.default_rng(0)
        infos = []
        for i in range(self.num_samples):
            img = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
            infos.append(dict(
                img_id=i, img_path=f'vis_{i}.png', ir_path=f'ir_{i}.png', img=img,
                ir_img=img[..., :1].copy(), img_shape=(64, 80), ori_shape=(64, 80),
                gt_bboxes=HorizontalBoxes(np.array([[4., 4., 76., 60.]], np.float32)),
                gt_bboxes_labels=np.zeros(1, np.int64), gt_ignore_flags=np.zeros(1, bool)))
        return infos

    def prepare_data(self, idx):
        return copy.deepcopy(self.get_data_info(idx))


if 'TestTag' not in TRANSFORMS:
    TRANSFORMS.register_module(name='TestTag', module=Tag)


class ToyDetector(BaseModel):
    """One parameter; the loss ignores the data."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=(self.w - 1).square().sum())


class RecordDataHook(Hook):
    """Per epoch: the wrapper's transform types (main process) and, per sample, whether it
    was letterboxed (``pad_param``, written by PairedLetterResize in the worker)."""

    def __init__(self, log):
        self.log = log

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        epoch = self.log.setdefault(runner.epoch, dict(types=None, letterboxed=[]))
        epoch['types'] = list(runner.train_dataloader.dataset.pipeline_types)
        for sample in data_batch['data_samples']:
            epoch['letterboxed'].append('pad_param' in sample.metainfo)


class StopAfterHook(Hook):

    def __init__(self, epochs):
        self.epochs = epochs

    def after_train_epoch(self, runner):
        if runner.epoch + 1 >= self.epochs:
            runner.train_loop.stop_training = True


def run_llvip_recipe(work_dir, stop_after, resume_from=None, max_epochs=12):
    """Train on toy pairs with the LLVIP config's pipelines and switch hook, one dataloader
    worker kept alive between epochs; switch at max_epochs - 10 as in the config."""
    cfg = Config.fromfile(str(CONFIG_ROOT / 'fusion_mamba/fm-yolov8_l_1xb4-150e_llvip.py'))
    switch = [h for h in cfg.custom_hooks if h['type'] == 'MixDatasetPipelineSwitchHook'][0]
    switch = dict(switch, switch_epoch=max_epochs - CLOSE_MOSAIC_EPOCHS)
    log = {}
    runner = Runner(
        model=ToyDetector(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            batch_size=2, num_workers=1, persistent_workers=True,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type=MultiImageMixDataset, dataset=ToyPairs(num_samples=4),
                         pipeline=train_pipeline(cfg))),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[switch, RecordDataHook(log), StopAfterHook(stop_after)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        env_cfg=dict(mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0)),
        load_from=resume_from, resume=resume_from is not None,
        default_scope='mmdet', experiment_name=f'close_mosaic_{uuid.uuid4().hex}')
    runner.train()
    return log


def assert_stage(epoch_log, closed):
    has_mosaic = 'PairedMosaic' in epoch_log['types']
    has_affine = 'PairedRandomAffine' in epoch_log['types']
    assert (has_mosaic, has_affine) == (not closed, not closed)
    assert epoch_log['letterboxed'] == [closed] * 4


def test_switch_in_training_with_persistent_workers_and_resume(tmp_path):
    init_default_scope('mmdet')
    log = run_llvip_recipe(tmp_path, stop_after=4)  # epochs 0-3 of 12: switch at 2
    assert sorted(log) == [0, 1, 2, 3]
    for epoch, epoch_log in log.items():
        assert_stage(epoch_log, closed=epoch >= 2)
    # a new run resumed at epoch 4 (after the switch epoch) starts with the last pipeline
    resumed = run_llvip_recipe(tmp_path, stop_after=6,
                               resume_from=str(tmp_path / 'epoch_4.pth'))
    assert sorted(resumed) == [4, 5]
    for epoch_log in resumed.values():
        assert_stage(epoch_log, closed=True)
