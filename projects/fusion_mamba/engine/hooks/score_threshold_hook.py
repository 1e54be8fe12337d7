"""Per-class drawing thresholds chosen on the validation set and stored in checkpoints."""
from collections import defaultdict
from typing import Dict, Optional, Sequence

import numpy as np
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmengine.dist import all_gather_object, master_only
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import CheckpointLoader, Runner, save_checkpoint

from fusion_mamba.evaluation.functional import (ClassMatches, F1Threshold, best_f1_threshold,
                                                match_image_classes)

#: Key of the thresholds (``{class name: score threshold}``) in ``checkpoint['meta']`` and in
#: the runner's message hub.
SCORE_THRESHOLDS_KEY = 'score_thresholds'


def checkpoint_score_thresholds(checkpoint: dict) -> Optional[Dict[str, float]]:
    """The ``{class name: score threshold}`` a checkpoint's meta holds, or None."""
    return checkpoint.get('meta', {}).get(SCORE_THRESHOLDS_KEY)


def format_thresholds(classes: Sequence[str], best: Dict[str, Optional[F1Threshold]]) -> str:
    """A table of the best-F1 cut of every class (``-`` where a class has none)."""
    lines = ['class | gt | kept | score_thr | F1 | precision | recall']
    for name in classes:
        cut = best.get(name)
        lines.append(f'{name} | - | - | - | - | - | -' if cut is None else
                     f'{name} | {cut.num_gt} | {cut.num_kept} | {cut.score_thr:.4f} | '
                     f'{cut.f1:.3f} | {cut.precision:.3f} | {cut.recall:.3f}')
    return '\n'.join(lines)


@HOOKS.register_module()
class ScoreThresholdHook(Hook):
    """Choose a drawing threshold per class at every validation: the score that maximises
    F1 of the validation predictions against the ground truth at IoU >= ``iou_thr``
    (:func:`fusion_mamba.evaluation.functional.best_f1_threshold`).

    After each validation epoch the thresholds are logged as a table and put into the
    message hub under ``SCORE_THRESHOLDS_KEY`` as ``{class name: threshold}`` (classes
    without ground truth or without a true positive are left out); every checkpoint saved
    afterwards carries them in ``checkpoint['meta']['score_thresholds']``. mmengine saves an
    epoch's checkpoint before that epoch's validation, so after training the last checkpoint
    is rewritten once if its thresholds are older than the last validation's.
    :class:`PairedDetVisualizationHook` (``tools/test.py --show-dir``) and
    :class:`FusionMambaInferencer` draw with them when no threshold is given.

    The ground truth is each validation sample's ``gt_instances`` / ``ignored_instances``,
    which must be in original-image pixels like the predictions: the test pipeline loads the
    annotations after resizing, as mmdet's test pipelines do. With several processes the
    matches are gathered from all ranks (images counted once by ``img_id``).

    Args:
        iou_thr (float): IoU for a detection to match a ground-truth box. Default 0.5.
    """

    def __init__(self, iou_thr: float = 0.5) -> None:
        self.iou_thr = iou_thr
        self._matches: Dict[object, Dict[int, ClassMatches]] = {}

    def before_val_epoch(self, runner: Runner) -> None:
        self._matches = {}

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: dict = None,
                       outputs: Sequence[DetDataSample] = None) -> None:
        for sample in outputs:
            pred, gt = sample.pred_instances, sample.gt_instances
            ignored = sample.get('ignored_instances')
            self._matches[sample.metainfo.get('img_id', sample.get('img_path'))] = (
                match_image_classes(
                    pred.bboxes.cpu().numpy(), pred.scores.cpu().numpy(),
                    pred.labels.cpu().numpy(), gt.bboxes.cpu().numpy(),
                    gt.labels.cpu().numpy(),
                    None if ignored is None else ignored.bboxes.cpu().numpy(),
                    None if ignored is None else ignored.labels.cpu().numpy(), self.iou_thr))

    def after_val_epoch(self, runner: Runner, metrics: Optional[dict] = None) -> None:
        images = {}
        for rank_matches in all_gather_object(self._matches):
            images.update(rank_matches)
        classes = runner.val_loop.dataloader.dataset.metainfo['classes']
        best = self.best_thresholds(images.values(), classes)
        runner.logger.info(f'best-F1 score thresholds (IoU {self.iou_thr}, '
                           f'{len(images)} images):\n{format_thresholds(classes, best)}')
        runner.message_hub.update_info(SCORE_THRESHOLDS_KEY, {
            name: cut.score_thr for name, cut in best.items() if cut is not None})

    @staticmethod
    def best_thresholds(images, classes: Sequence[str]) -> Dict[str, Optional[F1Threshold]]:
        """The best-F1 cut of each class over the per-image ``{label: ClassMatches}``."""
        pooled = defaultdict(list)
        for matches in images:
            for label, match in matches.items():
                pooled[label].append(match)
        best = {}
        for label, parts in pooled.items():
            best[classes[label]] = best_f1_threshold(
                np.concatenate([p.scores for p in parts]),
                np.concatenate([p.true_positive for p in parts]), sum(p.num_gt for p in parts))
        return best

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        thresholds = runner.message_hub.get_info(SCORE_THRESHOLDS_KEY)
        if thresholds is not None:
            checkpoint.setdefault('meta', {})[SCORE_THRESHOLDS_KEY] = dict(thresholds)

    @master_only
    def after_train(self, runner: Runner) -> None:
        thresholds = runner.message_hub.get_info(SCORE_THRESHOLDS_KEY)
        path = runner.message_hub.get_info('last_ckpt')
        if thresholds is None or path is None:
            return
        checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        if checkpoint_score_thresholds(checkpoint) == thresholds:
            return
        checkpoint.setdefault('meta', {})[SCORE_THRESHOLDS_KEY] = dict(thresholds)
        backend_args = next((hook.backend_args for hook in runner.hooks
                             if isinstance(hook, CheckpointHook)), None)
        save_checkpoint(checkpoint, path, backend_args=backend_args)
        runner.logger.info(f'score thresholds of the last validation written into {path}')
