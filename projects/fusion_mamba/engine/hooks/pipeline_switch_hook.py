"""Pipeline switch (YOLOv8's close_mosaic) that also works on MultiImageMixDataset."""
from mmdet.datasets import MultiImageMixDataset
from mmdet.engine.hooks import PipelineSwitchHook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class MixDatasetPipelineSwitchHook(PipelineSwitchHook):
    """mmdet's :class:`PipelineSwitchHook`, for datasets wrapped in ``MultiImageMixDataset``.

    From the first epoch ``>= switch_epoch`` the training dataset runs ``switch_pipeline``
    (YOLOv8 uses it to train the last 10 epochs without Mosaic). mmdet's hook assigns a
    ``Compose`` to ``dataset.pipeline``, and a dataloader with persistent workers is
    restarted so that its workers see the new pipeline; a run resumed after the switch epoch
    switches at its first epoch.

    ``MultiImageMixDataset`` keeps the transform types beside the transforms
    (``pipeline_types``, zipped with ``pipeline``, read by ``skip_type_keys``): after mmdet's
    assignment they still name the old transforms and a switch pipeline longer than the old
    one loses its last transforms in the zip. This hook sets both, as the wrapper's
    constructor does.

    Args:
        switch_epoch (int): First epoch (0-based) that runs ``switch_pipeline``.
        switch_pipeline (list[dict]): The pipeline switched to. For a
            ``MultiImageMixDataset`` it replaces the wrapper's pipeline, not the loading
            pipeline of the wrapped dataset.
    """

    def before_train_epoch(self, runner) -> None:
        switching = runner.epoch >= self.switch_epoch and not self._has_switched
        super().before_train_epoch(runner)
        dataset = runner.train_dataloader.dataset
        if switching and isinstance(dataset, MultiImageMixDataset):
            dataset.pipeline = list(dataset.pipeline)
            dataset.pipeline_types = [
                t['type'] if isinstance(t, dict) else type(t).__name__
                for t in self.switch_pipeline
            ]
