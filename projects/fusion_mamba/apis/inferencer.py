"""Detection on visible + infrared pairs from a config and a checkpoint, mmdet-style."""
import itertools
import os.path as osp
import sys
from typing import Iterator, List, NamedTuple, Optional, Union

import mmcv
import mmengine
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from fusion_mamba.datasets.transforms.loading import convert_color, read_image
from fusion_mamba.engine import AMP_DTYPES, checkpoint_score_thresholds, resolve_amp_dtype
from fusion_mamba.visualization import (draw_paired_detections, per_label_thresholds,
                                        select_detections)
from .inputs import ImagePair, collect_pairs
from .model_loading import build_detector, find_config, inference_pipeline

_VISUALIZER_IDS = itertools.count()


class PairPrediction(NamedTuple):
    """One pair's images (as loaded: visible (H, W, 3) BGR, infrared (H, W, C)) and its
    prediction (``pred_instances`` in visible-image pixels)."""
    name: str
    visible: np.ndarray
    infrared: np.ndarray
    data_sample: DetDataSample


class FusionMambaInferencer:
    """Detect objects in visible + infrared image pairs, following mmdet's
    ``DetInferencer``: ``FusionMambaInferencer(config, checkpoint)(inputs)``.

    Inputs (:mod:`fusion_mamba.apis.inputs`): a ``(visible, infrared)`` pair of image
    files, of numpy arrays (BGR), of folders (paired by file stem) or of videos (frame by
    frame), or a list of such pairs. Each pair goes through the config's test pipeline
    (loading from memory, without annotations) and the detector's ``test_step``.

    Drawn detections are those scoring above ``pred_score_thr``, or, when it is None, above
    the checkpoint's per-class thresholds chosen on the validation set
    (``meta['score_thresholds']``, :class:`ScoreThresholdHook`; 0.3 for other classes).

    Args:
        model (str | Config): Config file, config name under ``configs/`` (e.g.
            ``'fm-yolov8_demo_1xb8-5e_demo-pairs'``) or a loaded ``Config``.
        weights (str, optional): Checkpoint file; None keeps random weights (warned).
        device (str, optional): Default ``'cuda:0'`` when available, else ``'cpu'``.
        amp (str, optional): None (float32), ``'bf16'`` or ``'fp16'``: the network runs under
            ``torch.autocast`` with that dtype (boxes are decoded and NMS'ed in float32).
        cuda_graph (bool): Replay the network as CUDA graphs
            (``MultiModalDetector.use_cuda_graphs``); CUDA devices only.
        show_progress (bool): Show a progress bar while ``__call__`` runs.
    """

    def __init__(self, model: Union[str, Config], weights: Optional[str] = None,
                 device: Optional[str] = None, amp: Optional[str] = None,
                 cuda_graph: bool = False, show_progress: bool = True) -> None:
        cfg = model if isinstance(model, Config) else Config.fromfile(find_config(model))
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        self.device = torch.device(
            device or ('cuda:0' if torch.cuda.is_available() else 'cpu'))
        if amp is not None and amp not in AMP_DTYPES:
            raise ValueError(f'amp must be None or one of {sorted(AMP_DTYPES)}, got {amp!r}')
        self.amp = None if amp is None else resolve_amp_dtype(amp, self.device)
        if cuda_graph and self.device.type != 'cuda':
            raise ValueError(f'cuda_graph=True needs a CUDA device, got {self.device}')
        self.model, checkpoint = build_detector(cfg, weights)
        self.model.to(self.device)
        if cuda_graph:
            if not hasattr(self.model, 'use_cuda_graphs'):
                raise TypeError(f'{type(self.model).__name__} cannot replay CUDA graphs '
                                '(no use_cuda_graphs method)')
            self.model.use_cuda_graphs()
        #: ``{class name: threshold}`` chosen on the validation set, or None.
        self.score_thresholds = checkpoint_score_thresholds(checkpoint)
        self.pipeline, self.loader = inference_pipeline(cfg)
        from mmdet.registry import VISUALIZERS
        self.visualizer = VISUALIZERS.build(dict(
            cfg.visualizer, name=f'fusion_mamba_inferencer_{next(_VISUALIZER_IDS)}',
            vis_backends=None, save_dir=None))
        self.visualizer.dataset_meta = self.model.dataset_meta
        self.show_progress = show_progress

    @property
    def classes(self) -> tuple:
        return tuple(self.model.dataset_meta['classes'])

    def drawing_thresholds(self, pred_score_thr: Optional[float] = None
                           ) -> Union[float, np.ndarray]:
        """``pred_score_thr`` if given, else the (C,) per-label thresholds of the
        checkpoint (0.3 for classes without one)."""
        if pred_score_thr is not None:
            return pred_score_thr
        return per_label_thresholds(self.classes, self.score_thresholds)

    def _load(self, pair: ImagePair) -> dict:
        """The pipeline input of a pair: both images as arrays (files read with the
        config loader's colour types), their paths when they are files."""
        results = {}
        for key, path_key, source, color_type in (
                ('img', 'img_path', pair.visible, self.loader.color_type),
                ('ir_img', 'ir_path', pair.infrared, self.loader.ir_color_type)):
            if isinstance(source, np.ndarray):
                results[key] = source
            else:
                results[path_key] = source
                results[key] = read_image(source, color_type, self.loader.imdecode_backend,
                                          self.loader.backend_args)
        return results

    def _predict(self, batch: List[dict]) -> List[DetDataSample]:
        dtype = AMP_DTYPES[self.amp] if self.amp else None
        with torch.no_grad(), torch.autocast(self.device.type, dtype=dtype,
                                             enabled=self.amp is not None):
            return self.model.test_step(pseudo_collate(batch))

    def iter_predictions(self, inputs, batch_size: int = 1) -> Iterator[PairPrediction]:
        """Predict pair after pair (``batch_size`` at a time), in input order, without
        keeping past pairs: for long videos. ``inputs`` as for ``__call__``, or a
        :class:`PairStream`."""
        pairs = iter(collect_pairs(inputs))
        while True:
            chunk = list(itertools.islice(pairs, batch_size))
            if not chunk:
                return
            loaded, packed = [], []
            for pair in chunk:
                results = self._load(pair)
                loaded.append((results['img'], results['ir_img']))
                try:
                    packed.append(self.pipeline(dict(results, img_id=len(packed))))
                except ValueError as err:
                    raise ValueError(f'pair {pair.name!r}: {err}') from err
            for pair, (visible, infrared), sample in zip(chunk, loaded,
                                                         self._predict(packed)):
                yield PairPrediction(pair.name, visible, infrared, sample)

    def visualize(self, prediction: PairPrediction, pred_score_thr: Optional[float] = None
                  ) -> np.ndarray:
        """(H, 2W, 3) RGB ``[visible | infrared]`` with the detections above
        :meth:`drawing_thresholds` drawn on both."""
        return draw_paired_detections(
            self.visualizer,
            convert_color(prediction.visible, 'color')[..., ::-1],
            convert_color(prediction.infrared, 'color')[..., ::-1],
            select_detections(prediction.data_sample.pred_instances,
                              self.drawing_thresholds(pred_score_thr)))

    def pred2dict(self, data_sample: DetDataSample) -> dict:
        """All predictions of a pair (json-serialisable): ``bboxes`` [[x1, y1, x2, y2], ...]
        in visible-image pixels, ``scores``, ``labels`` (class indices) and
        ``label_names``."""
        pred = data_sample.pred_instances.cpu().numpy()
        labels = pred.labels.tolist()
        return dict(bboxes=pred.bboxes.tolist(), scores=pred.scores.tolist(), labels=labels,
                    label_names=[self.classes[label] for label in labels])

    def __call__(self, inputs, batch_size: int = 1, return_vis: bool = False,
                 no_save_vis: bool = False, draw_pred: bool = True,
                 pred_score_thr: Optional[float] = None, return_datasamples: bool = False,
                 print_result: bool = False, no_save_pred: bool = True,
                 out_dir: str = '') -> dict:
        """Detect on every pair of ``inputs``.

        Args:
            inputs: a ``(visible, infrared)`` pair of files, arrays, folders or videos, or
                a list of pairs (:mod:`fusion_mamba.apis.inputs`).
            batch_size (int): Pairs per forward pass.
            return_vis (bool): Return the drawings.
            no_save_vis (bool): Do not write the drawings to ``out_dir/vis/<name>.jpg``.
            draw_pred (bool): Draw the predictions (False: the bare pair).
            pred_score_thr (float, optional): Draw detections scoring above this; None:
                the checkpoint's per-class thresholds (:meth:`drawing_thresholds`).
            return_datasamples (bool): Return ``DetDataSample`` s instead of dicts.
            print_result (bool): Print each prediction dict.
            no_save_pred (bool): Do not write ``out_dir/preds/<name>.json`` (default True,
                as in mmdet).
            out_dir (str): Output folder; '' writes nothing.

        Returns:
            ``{'predictions': [dict or DetDataSample per pair], 'visualization': [(H, 2W, 3)
            RGB per pair] or []}``. The dicts are :meth:`pred2dict`'s, holding every
            prediction of the model (its ``test_cfg`` score threshold), not only the drawn
            ones.
        """
        pairs = collect_pairs(inputs)
        save_vis = bool(out_dir) and not no_save_vis
        save_pred = bool(out_dir) and not no_save_pred
        results = dict(predictions=[], visualization=[])
        progress = ProgressBar(len(pairs), file=sys.stdout) if self.show_progress else None
        for prediction in self.iter_predictions(pairs, batch_size):
            if return_vis or save_vis:
                drawing = self.visualize(prediction, pred_score_thr if draw_pred else np.inf)
                if save_vis:
                    mmcv.imwrite(drawing[..., ::-1],
                                 osp.join(out_dir, 'vis', f'{prediction.name}.jpg'))
                if return_vis:
                    results['visualization'].append(drawing)
            as_dict = self.pred2dict(prediction.data_sample)
            if save_pred:
                mmengine.dump(as_dict, osp.join(out_dir, 'preds', f'{prediction.name}.json'))
            if print_result:
                print(as_dict)
            results['predictions'].append(
                prediction.data_sample if return_datasamples else as_dict)
            if progress is not None:
                progress.update()
        return results

