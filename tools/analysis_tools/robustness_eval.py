"""Robustness of a paired detector to a missing modality: bbox mAP with both images, with the
visible image blanked, and with the infrared image blanked.

    python tools/analysis_tools/robustness_eval.py CONFIG CHECKPOINT [--mode zero|mean|noise]
        [--work-dir DIR] [--out robustness.json] [--seed 0] [--cfg-options key=value ...]

For each condition the checkpoint is evaluated on the config's test set with mmengine's
Runner (as ``tools/test.py`` does); for ``visible blanked`` / ``infrared blanked``,
``RandomModalityDropout(prob=1.0, modalities=(m,), mode=MODE)`` is inserted into the test
pipeline right before ``PackMultiModalDetInputs``: every image of that modality becomes all
zeros (``zero``), its mean value per channel (``mean``) or uniform noise (``noise``, drawn
from ``--seed``). Each condition logs into ``DIR/<condition>/``. The table gives bbox mAP
and mAP50 per condition and their change against both modalities; the JSON (default
``DIR/robustness_<mode>.json``) holds the same numbers.
"""
import argparse
import copy
import json
import os
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from fusion_mamba.utils import load_runner_config

# condition name -> modality blanked (None: both modalities kept)
CONDITIONS = {'both': None, 'visible blanked': 'visible', 'infrared blanked': 'infrared'}
PACK = 'PackMultiModalDetInputs'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--mode', choices=('zero', 'mean', 'noise'), default='zero',
                        help='what replaces the blanked modality (default zero)')
    parser.add_argument('--work-dir', help='logs of each condition go to WORK_DIR/<condition> '
                        '(default ./work_dirs/<config name>/robustness)')
    parser.add_argument('--out', help='JSON file of the results (default '
                        'WORK_DIR/robustness_<mode>.json)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (noise mode)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def with_dropout(cfg: Config, modality: Optional[str], mode: str) -> Config:
    """A copy of ``cfg`` whose test pipeline blanks ``modality`` (None: unchanged)."""
    cfg = copy.deepcopy(cfg)
    if modality is None:
        return cfg
    pipeline = cfg.test_dataloader.dataset.get('pipeline')
    if pipeline is None:
        raise KeyError('test_dataloader.dataset has no pipeline to insert '
                       'RandomModalityDropout into')
    index = next((i for i, t in enumerate(pipeline) if t['type'].split('.')[-1] == PACK), None)
    if index is None:
        raise ValueError(f'test_dataloader.dataset.pipeline has no {PACK}; got '
                         f'{[t["type"] for t in pipeline]}')
    pipeline.insert(index, dict(type='RandomModalityDropout', prob=1.0,
                                modalities=(modality, ), mode=mode))
    return cfg


def bbox_metrics(metrics: Dict[str, float]) -> Dict[str, float]:
    """``bbox_mAP`` and ``bbox_mAP_50`` from the evaluator's metrics (any prefix)."""
    found = {}
    for key in ('bbox_mAP', 'bbox_mAP_50'):
        matches = [v for k, v in metrics.items() if k.split('/')[-1] == key]
        if not matches:
            raise KeyError(f'the test evaluator gave no {key}; got {sorted(metrics)} (use a '
                           'COCO bbox metric)')
        found[key] = float(matches[0])
    return found


def evaluate(cfg: Config, name: str, work_dir: str) -> Dict[str, float]:
    """Run the test loop of ``cfg`` logging into ``work_dir/<name>``; returns bbox metrics."""
    cfg.work_dir = osp.join(work_dir, name.replace(' ', '_'))
    cfg.experiment_name = f'robustness_{name.replace(" ", "_")}'
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    return bbox_metrics(runner.test())


def markdown_table(results: Dict[str, Dict[str, float]]) -> str:
    """One row per condition (``results`` values as :func:`with_deltas` gives them)."""
    lines = ['| condition | bbox mAP | Δ mAP vs both | bbox mAP50 | Δ mAP50 vs both |',
             '|---|---:|---:|---:|---:|']
    for name, r in results.items():
        lines.append(f'| {name} | {r["bbox_mAP"]:.3f} | {r["delta_mAP"]:+.3f} | '
                     f'{r["bbox_mAP_50"]:.3f} | {r["delta_mAP_50"]:+.3f} |')
    return '\n'.join(lines)


def with_deltas(results: Dict[str, Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """Add ``delta_mAP`` / ``delta_mAP_50``: each condition minus ``both`` (negative: a
    drop)."""
    both = results['both']
    return {name: dict(r, delta_mAP=r['bbox_mAP'] - both['bbox_mAP'],
                       delta_mAP_50=r['bbox_mAP_50'] - both['bbox_mAP_50'])
            for name, r in results.items()}


def main(argv=None):
    args = parse_args(argv)
    base = load_runner_config(args.config, args.cfg_options, args.work_dir)
    if args.work_dir is None:
        base.work_dir = osp.join(base.work_dir, 'robustness')
    base.load_from = args.checkpoint
    base.randomness = dict(base.get('randomness', {}), seed=args.seed)
    results = {}
    for i, (name, modality) in enumerate(CONDITIONS.items(), 1):
        print(f'[{i}/{len(CONDITIONS)}] evaluating: {name}'
              + (f' (mode {args.mode})' if modality else ''), flush=True)
        results[name] = evaluate(with_dropout(base, modality, args.mode), name, base.work_dir)
    results = with_deltas(results)
    print(f'\nmissing-modality robustness, mode {args.mode!r}, checkpoint {args.checkpoint}')
    print(markdown_table(results))
    out = args.out or osp.join(base.work_dir, f'robustness_{args.mode}.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint, mode=args.mode,
                       seed=args.seed, conditions=results), f, indent=2)
    print(f'results written to {out}')


if __name__ == '__main__':
    main()
