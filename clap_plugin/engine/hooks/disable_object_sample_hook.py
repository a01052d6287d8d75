"""mmdet3d's ``DisableObjectSampleHook`` for datasets inside several wrappers.

The LiDAR-only fine-tune recipe (as mmdet3d's BEVFusion and CenterPoint configs) pastes ground-truth objects
from the GT-sampling database (``ObjectSample``) and stops doing so for the last epochs, so the detector ends on
real scenes. mmdet3d's hook unwraps one dataset wrapper; the fine-tune configs nest two (``CBGSDataset`` ->
``LabelFractionDataset`` -> ``NuScenesDataset``). This hook unwraps all of them, disables every
``ObjectSample`` of the innermost pipeline from ``disable_after_epoch`` on (also after ``--resume`` past that
epoch), and restarts persistent loader workers as mmdet3d's hook does.
"""
from mmdet3d.datasets.transforms import ObjectSample
from mmdet3d.engine.hooks import DisableObjectSampleHook
from mmdet3d.registry import HOOKS
from mmengine.dataset import BaseDataset


def innermost_dataset(dataset):
    seen = 0
    while not isinstance(dataset, BaseDataset) and hasattr(dataset, 'dataset') and seen < 16:
        dataset, seen = dataset.dataset, seen + 1
    if not hasattr(dataset, 'pipeline'):
        raise TypeError(f'{type(dataset).__name__} has no pipeline: cannot disable ObjectSample in it')
    return dataset


def object_samplers(dataset):
    return [t for t in innermost_dataset(dataset).pipeline.transforms if isinstance(t, ObjectSample)]


@HOOKS.register_module()
class CLAPDisableObjectSampleHook(DisableObjectSampleHook):
    """Disable ``ObjectSample`` from epoch ``disable_after_epoch`` on (0-based, as mmdet3d's hook)."""

    def before_train_epoch(self, runner) -> None:
        loader = runner.train_dataloader
        samplers = object_samplers(loader.dataset)
        if runner.epoch >= self.disable_after_epoch and not all(t.disabled for t in samplers):
            runner.logger.info(f'epoch {runner.epoch}: ObjectSample disabled (disable_after_epoch='
                               f'{self.disable_after_epoch})')
            for t in samplers:
                t.disabled = True
            if getattr(loader, 'persistent_workers', False):
                # the pipeline lives in the workers: make the loader start new ones
                loader._DataLoader__initialized = False
                loader._iterator = None
                self._restart_dataloader = True
        elif self._restart_dataloader:
            loader._DataLoader__initialized = True
            self._restart_dataloader = False
