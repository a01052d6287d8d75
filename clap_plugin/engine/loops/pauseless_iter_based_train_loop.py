"""An ``IterBasedTrainLoop`` whose dataloader restarts at once when it runs in the main process.

mmengine's ``IterBasedTrainLoop`` cycles its dataloader through a private iterator that sleeps 2 s at every pass
over the data, a guard against worker-process deadlocks at the epoch change. A dataloader with
``num_workers=0`` has no worker process to guard, yet pays the 2 s all the same: on a 20-sample labelled subset
at batch 2 that is 2 s every 10 iterations, a quarter of a CPU fine-tune's time.

:class:`PauselessIterBasedTrainLoop` restarts such a dataloader without the pause and keeps everything else as
mmengine does: the sampler's ``set_epoch`` call at each restart (so the shuffled order is the same), the
iteration count, validation, hooks and resume. A dataloader with worker processes keeps mmengine's iterator, the
pause included. Training with either loop reads the same batches in the same order and draws the same random
numbers, so it trains the same weights.
"""
import logging
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmdet3d.registry import LOOPS
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader


def _set_sampler_epoch(dataloader: DataLoader, epoch: int) -> None:
    """Tell the dataloader's sampler (or its batch sampler's sampler) which pass over the data begins."""
    sampler = getattr(dataloader, 'sampler', None)
    if hasattr(sampler, 'set_epoch'):
        sampler.set_epoch(epoch)
        return
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    inner = getattr(batch_sampler, 'sampler', None)
    if hasattr(inner, 'set_epoch'):
        inner.set_epoch(epoch)


class CyclingDataloaderIterator:
    """Yields batches from ``dataloader`` without end, starting a new pass (``set_epoch(k)``, ``k`` = 1, 2, ...)
    each time one ends, with no pause. ``_epoch`` (the name mmengine's iterator uses, read by
    ``ExactResumeHook``) is the current pass, so also the number of restarts."""

    def __init__(self, dataloader: DataLoader) -> None:
        self._dataloader = dataloader
        self._iterator = iter(dataloader)
        self._epoch = 0

    @property
    def restarts(self) -> int:
        """Passes begun after the first."""
        return self._epoch

    def __iter__(self) -> Iterator[Sequence[dict]]:
        return self

    def __next__(self) -> Sequence[dict]:
        try:
            return next(self._iterator)
        except StopIteration:
            self._epoch += 1
            if self._epoch == 1:
                print_log('The dataloader reached its end and restarts (no pause: it has no worker processes); '
                          'later restarts are not logged.', logger='current', level=logging.INFO)
            _set_sampler_epoch(self._dataloader, self._epoch)
            self._iterator = iter(self._dataloader)
            return next(self._iterator)


@LOOPS.register_module()
class PauselessIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` (same arguments) that restarts a worker-less dataloader without mmengine's 2 s pause.

    Args:
        runner: the runner.
        dataloader: a dataloader or its config.
        max_iters: total training iterations.
        val_begin: the iteration that begins validating.
        val_interval: the validation interval in iterations.
        dynamic_intervals: ``(milestone, interval)`` pairs, as in mmengine.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_iters: int,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        super().__init__(runner, dataloader, max_iters, val_begin, val_interval, dynamic_intervals)
        if getattr(self.dataloader, 'num_workers', 0) == 0:
            # mmengine's __init__ has started its iterator already, drawing its base seed from torch's generator
            # (or the dataloader's); starting ours draws once more. Put the generators back as mmengine's start
            # left them, so training draws the same random numbers (augmentation, dropout) as with its loop.
            generator = getattr(self.dataloader, 'generator', None)
            states = (torch.get_rng_state(), generator.get_state() if generator is not None else None)
            self.dataloader_iterator = CyclingDataloaderIterator(self.dataloader)
            torch.set_rng_state(states[0])
            if generator is not None:
                generator.set_state(states[1])
