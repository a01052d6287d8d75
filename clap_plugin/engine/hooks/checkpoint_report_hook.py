"""Report what ``load_from`` / ``--resume`` really put into the model, tensor by tensor.

mmengine's loader logs missing and unexpected keys, but a tensor whose values are changed on the way in
(mmdet3d's spconv 2 loader permutes sparse-conv kernels saved without ``_metadata`` module versions) passes
without a word, and shape mismatches are one more line in a long warning. Before the first training or test
iteration this hook re-reads the loaded file and compares every tensor with the model's, then logs one summary
line (``checkpoint FILE: N of M tensors loaded unchanged; ...``) and, when anything did not arrive unchanged,
the names, at WARNING level. ``tools/train.py`` and ``tools/test.py`` add it whenever a checkpoint is loaded.
"""
import logging
from typing import Optional, Sequence

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ...utils.state_dicts import CheckpointError, LoadReport, compare_loaded, load_state_dict


@HOOKS.register_module()
class CheckpointLoadReportHook(Hook):
    """Compare the loaded checkpoint with the model once, before training / testing starts.

    Args:
        ignore_missing_prefixes: top-level modules whose absence from the file is expected (counted apart in
            the summary), e.g. the detection head when fine-tuning from pre-trained encoders.
        raise_on_change: raise instead of warning when a tensor arrived permuted, changed or with a
            different shape.
    """
    priority = 'VERY_HIGH'

    def __init__(self, ignore_missing_prefixes: Sequence[str] = ('bbox_head', ),
                 raise_on_change: bool = False) -> None:
        self.ignore_missing_prefixes = tuple(ignore_missing_prefixes)
        self.raise_on_change = raise_on_change
        self.report: Optional[LoadReport] = None

    def _check(self, runner) -> None:
        if self.report is not None:
            return
        path = getattr(runner, '_load_from', None)
        if not path and getattr(runner, '_resume', False):  # --resume without a path: the latest checkpoint
            from mmengine.runner import find_latest_checkpoint
            path = find_latest_checkpoint(runner.work_dir)
        if not path:
            return
        try:
            source, _ = load_state_dict(path)
        except CheckpointError as err:
            print_log(f'CheckpointLoadReportHook: cannot re-read {err}', logger='current', level=logging.WARNING)
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.report = compare_loaded(model.state_dict(), source, name=path)
        print_log(self.report.summary(self.ignore_missing_prefixes), logger='current')
        bad = not self.report.ok
        for line in self.report.details():
            print_log('  ' + line, logger='current', level=logging.WARNING if bad else logging.INFO)
        if bad and self.raise_on_change:
            raise RuntimeError(f'checkpoint {path} did not load unchanged: ' + '; '.join(self.report.details()))

    def before_train(self, runner) -> None:
        self._check(runner)

    def before_test(self, runner) -> None:
        self._check(runner)

    def before_val(self, runner) -> None:
        self._check(runner)
