"""Draw detections on the visible and the infrared image of each pair, side by side."""
import os.path as osp
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
from mmdet.engine.hooks import DetVisualizationHook
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmengine.fileio import get
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist

from fusion_mamba.visualization import (draw_paired_detections, per_label_thresholds,
                                        select_detections)
from .score_threshold_hook import SCORE_THRESHOLDS_KEY, checkpoint_score_thresholds


@HOOKS.register_module()
class PairedDetVisualizationHook(DetVisualizationHook):
    """mmdet's ``DetVisualizationHook`` for image pairs.

    Each drawing is ``[visible | infrared]`` (RGB, H x 2W) with the predicted boxes above
    the score threshold on both images; with ``draw_gt=True`` the ground truth is drawn in a
    row above them (2H x 2W). Validation draws the first sample of every ``interval``-th
    batch to the visualizer's backends; testing with ``test_out_dir`` (``tools/test.py
    --show-dir``) writes one ``<visible file name>`` per pair into
    ``<work_dir>/<timestamp>/<test_out_dir>``.

    Args:
        score_thr (float, optional): Draw detections scoring above this. None (default):
            per-class thresholds chosen on the validation set (:class:`ScoreThresholdHook`)
            — those of this run's last validation, else those of the loaded checkpoint — and
            ``DEFAULT_SCORE_THR`` (0.3) for classes without one.
        draw_gt (bool): Also draw the ground truth (``gt_instances``, in original-image
            pixels as the test pipelines load it). Default False.
        **kwargs: the other arguments of ``DetVisualizationHook``.
    """

    def __init__(self, score_thr: Optional[float] = None, draw_gt: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.score_thr = score_thr
        self.draw_gt = draw_gt
        self._checkpoint_thresholds = None

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        self._checkpoint_thresholds = checkpoint_score_thresholds(checkpoint)

    def before_test(self, runner: Runner) -> None:
        # Resolved once here: mmdet's hook joins the work dir on every iteration.
        if self.draw and self.test_out_dir is not None:
            self.test_out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            mkdir_or_exist(self.test_out_dir)

    def score_thresholds(self, runner: Runner) -> Union[float, np.ndarray]:
        """``score_thr`` if given, else (C,) per-label thresholds (see the class doc)."""
        if self.score_thr is not None:
            return self.score_thr
        chosen = runner.message_hub.get_info(SCORE_THRESHOLDS_KEY) or self._checkpoint_thresholds
        return per_label_thresholds(self._visualizer.dataset_meta['classes'], chosen)

    def _read_rgb(self, path: str) -> np.ndarray:
        img = mmcv.imfrombytes(get(path, backend_args=self.backend_args), flag='color',
                               channel_order='rgb')
        if img is None:
            raise FileNotFoundError(f'PairedDetVisualizationHook: cannot read {path}')
        return img

    def draw_pair(self, data_sample: DetDataSample,
                  score_thr: Union[float, np.ndarray]) -> np.ndarray:
        """The (H, 2W, 3) RGB drawing of one sample's predictions scoring above
        ``score_thr`` (one value or (C,) per label) on both modalities; (2H, 2W, 3) with the
        ground truth above them when ``draw_gt``."""
        return draw_paired_detections(
            self._visualizer, self._read_rgb(data_sample.img_path),
            self._read_rgb(data_sample.ir_path),
            select_detections(data_sample.pred_instances, score_thr),
            data_sample.gt_instances if self.draw_gt else None)

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        step = runner.iter + batch_idx
        if self.draw and step % self.interval == 0:
            drawing = self.draw_pair(outputs[0], self.score_thresholds(runner))
            self._visualizer.add_image('val_pair', drawing, step=step)

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        if not self.draw:
            return
        score_thr = self.score_thresholds(runner)
        for data_sample in outputs:
            self._test_index += 1
            drawing = self.draw_pair(data_sample, score_thr)
            if self.test_out_dir is not None:
                out_file = osp.join(self.test_out_dir, osp.basename(data_sample.img_path))
                mmcv.imwrite(drawing[..., ::-1], out_file)
            else:
                self._visualizer.add_image('test_pair', drawing, step=self._test_index)
