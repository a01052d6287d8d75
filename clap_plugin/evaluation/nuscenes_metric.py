"""mmdet3d's NuScenesMetric, scoring a prediction set with no box in range as zero instead of failing.

nuscenes-devkit raises ("Invalid box type: None") when, after its class-range filter, not one predicted box
is left in the whole evaluation set, which happens with an untrained model or a very short schedule. The
metric is then defined: every AP is 0 and every true-positive error is 1, so mAP = NDS = 0.
"""
from typing import Dict, List, Optional

from mmdet3d.evaluation import NuScenesMetric
from mmdet3d.registry import METRICS
from mmengine.logging import MMLogger

_TP_ERRORS = ('trans_err', 'scale_err', 'orient_err', 'vel_err', 'attr_err')
_DISTANCES = ('0.5', '1.0', '2.0', '4.0')


@METRICS.register_module()
class CLAPNuScenesMetric(NuScenesMetric):
    """``NuScenesMetric`` (same arguments and keys) that returns zeros when no prediction is in range.

    Args:
        max_range: if given, every class's evaluation range (the devkit's ``class_range``, metres from the ego
            in BEV: 50 m for cars, 30 m for cones, ...) is clipped to at most this, for a model whose BEV covers
            less than the devkit's ranges (boxes it cannot see would otherwise count as misses). Both the
            predictions and the ground truth are filtered with the clipped ranges. None keeps the devkit's.
        **kwargs: the arguments of mmdet3d's ``NuScenesMetric``.
    """

    def __init__(self, *args, max_range: Optional[float] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_range = max_range
        if max_range is not None:
            if not float(max_range) > 0:
                raise ValueError(f'CLAPNuScenesMetric max_range must be > 0 metres, got {max_range}')
            ranges = self.eval_detection_configs.class_range
            self.eval_detection_configs.class_range = {k: min(float(v), float(max_range)) for k, v in ranges.items()}

    def _evaluate_single(self, result_path: str, classes: Optional[List[str]] = None,
                         result_name: str = 'pred_instances_3d') -> Dict[str, float]:
        try:
            return super()._evaluate_single(result_path, classes, result_name)
        except Exception as err:  # the devkit raises a bare Exception
            if 'Invalid box type' not in str(err):
                raise
            MMLogger.get_current_instance().warning(
                f'no predicted box lies within the nuScenes class ranges in {result_path}: mAP = NDS = 0')
            return self.empty_result(classes or [], result_name)

    def empty_result(self, classes: List[str], result_name: str = 'pred_instances_3d') -> Dict[str, float]:
        """The metric keys of ``NuScenesMetric`` for a prediction set with no box: AP 0, errors 1."""
        prefix = f'{result_name}_NuScenes'
        detail: Dict[str, float] = {}
        for name in classes:
            for k in _DISTANCES:
                detail[f'{prefix}/{name}_AP_dist_{k}'] = 0.0
            for k in _TP_ERRORS:
                detail[f'{prefix}/{name}_{k}'] = 1.0
        for k in _TP_ERRORS:
            detail[f'{prefix}/{self.ErrNameMapping[k]}'] = 1.0
        detail[f'{prefix}/NDS'] = 0.0
        detail[f'{prefix}/mAP'] = 0.0
        return detail
