"""Draw detections on the visible and the infrared image of each pair, side by side."""
import os.path as osp
from typing import Sequence

import mmcv
import numpy as np
from mmdet.engine.hooks import DetVisualizationHook
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmengine.fileio import get
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist


@HOOKS.register_module()
class PairedDetVisualizationHook(DetVisualizationHook):
    """mmdet's ``DetVisualizationHook`` for image pairs.

    Each drawing is ``[visible | infrared]`` (RGB, H x 2W) with the predicted boxes above
    ``score_thr`` on both images. Validation draws the first sample of every ``interval``-th
    batch to the visualizer's backends; testing with ``test_out_dir`` (``tools/test.py
    --show-dir``) writes one ``<visible file name>`` per pair into
    ``<work_dir>/<timestamp>/<test_out_dir>``. Arguments are those of ``DetVisualizationHook``.
    """

    def before_test(self, runner: Runner) -> None:
        # Resolved once here: mmdet's hook joins the work dir on every iteration.
        if self.draw and self.test_out_dir is not None:
            self.test_out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            mkdir_or_exist(self.test_out_dir)

    def _read_rgb(self, path: str) -> np.ndarray:
        img = mmcv.imfrombytes(get(path, backend_args=self.backend_args), flag='color',
                               channel_order='rgb')
        if img is None:
            raise FileNotFoundError(f'PairedDetVisualizationHook: cannot read {path}')
        return img

    def draw_pair(self, data_sample: DetDataSample) -> np.ndarray:
        """The (H, 2W, 3) RGB drawing of one sample's predictions on both modalities."""
        vis = self._visualizer
        preds = data_sample.pred_instances
        preds = preds[preds.scores > self.score_thr].cpu()
        classes = vis.dataset_meta.get('classes')
        palette = vis.dataset_meta.get('palette')
        panels = []
        for path in (data_sample.img_path, data_sample.ir_path):
            panels.append(vis._draw_instances(self._read_rgb(path), preds, classes, palette))
        if panels[0].shape != panels[1].shape:  # infrared loaded at another size
            h, w = panels[0].shape[:2]
            panels[1] = mmcv.imresize(panels[1], (w, h))
        return np.concatenate(panels, axis=1)

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        step = runner.iter + batch_idx
        if self.draw and step % self.interval == 0:
            self._visualizer.add_image('val_pair', self.draw_pair(outputs[0]), step=step)

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        if not self.draw:
            return
        for data_sample in outputs:
            self._test_index += 1
            drawing = self.draw_pair(data_sample)
            if self.test_out_dir is not None:
                out_file = osp.join(self.test_out_dir, osp.basename(data_sample.img_path))
                mmcv.imwrite(drawing[..., ::-1], out_file)
            else:
                self._visualizer.add_image('test_pair', drawing, step=self._test_index)

