"""Exact resume: a run killed and restarted with ``--resume`` ends where the uninterrupted run ends.

mmengine's resume restores the weights, the optimizer, the schedulers, the message hub and the seed, but not
the random streams: after a restart, masking, ray selection, sweep choice and augmentation draw other numbers
than the uninterrupted run drew, so the two runs part at the first draw (bit-for-bit, the BN statistics
first). This hook makes the random streams a function of the training position:

* It keeps a snapshot of every stream (:class:`~clap_plugin.utils.random_state.RandomState`) as it stands
  at the end of each finished unit (an epoch for ``EpochBasedTrainLoop``, an iteration for
  ``IterBasedTrainLoop``), writes it with each checkpoint (``before_save_checkpoint``) and reads it back on
  ``--resume`` (``after_load_checkpoint``).
* It puts the snapshot back where the next unit starts, in the uninterrupted run as in the resumed one, so
  that what happens between two units (validation, a restarted data iterator) leaves no trace:
  epoch-based, in ``before_train_epoch``; iteration-based, after validation (``after_val``) and, on resume,
  right after mmengine's ``IterBasedTrainLoop`` has re-read the batches already trained (the data position:
  the data iterator is then where it was when the checkpoint was written, which is checked).
* Epoch-based with dataloader workers: each epoch gets new workers seeded from (seed, epoch). Otherwise
  persistent workers would carry their streams across epochs, which a restart cannot reproduce (and
  non-persistent ones would repeat the same augmentation every epoch, mmengine's worker seeds having no
  epoch in them).

A resumed run whose world size or seed differs from the checkpoint's says so in one line: it then continues
but is not exact. Exactness also needs deterministic kernels (``randomness.deterministic=True``; on CPU the
kernels this package uses are deterministic); non-deterministic CUDA kernels (atomics in scatter and
sparse convolution) make two uninterrupted GPU runs differ already.
"""
import logging
from functools import partial
from typing import Optional

from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop

from ...utils.random_state import RandomState

CHECKPOINT_KEY = 'exact_resume'
# the workers of epoch e are seeded from seed + e * EPOCH_SEED_STRIDE (mmengine adds rank and worker id)
EPOCH_SEED_STRIDE = 100_003


def _log(msg: str, level: int = logging.INFO) -> None:
    print_log(msg, logger='current', level=level)


class _RestoreAfterReplay:
    """The train loop's data iterator; calls ``on_replayed`` once the ``replay`` batches that
    ``IterBasedTrainLoop`` re-reads on resume have been read."""

    def __init__(self, inner, replay: int, on_replayed) -> None:
        self.inner = inner
        self.remaining = int(replay)
        self.on_replayed = on_replayed
        if self.remaining == 0:
            on_replayed(inner)

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.inner)
        if self.remaining > 0:
            self.remaining -= 1
            if self.remaining == 0:
                self.on_replayed(self.inner)
        return batch

    def __getattr__(self, name):
        return getattr(self.inner, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Save the random streams and the data position with each checkpoint; restore them on ``--resume``.

    Args:
        reseed_workers: epoch-based loops with dataloader workers start new workers each epoch, seeded from
            (seed, epoch) (see the module docstring); False keeps mmengine's workers (not exact with
            persistent workers).
    """

    priority = 'LOW'  # after the NORMAL hooks of an iteration, before CheckpointHook (VERY_LOW) saves

    def __init__(self, reseed_workers: bool = True) -> None:
        self.reseed_workers = bool(reseed_workers)
        self._snapshot: Optional[RandomState] = None  # streams at the end of the last finished unit
        self._pending: Optional[RandomState] = None  # streams of the resumed checkpoint, not yet restored
        self._pending_info: Optional[dict] = None
        self._base_worker_seed: Optional[int] = None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    @staticmethod
    def _iter_based(runner) -> bool:
        return isinstance(runner.train_loop, IterBasedTrainLoop)

    def _data_epoch(self, runner) -> int:
        """The epoch of the data order: the sampler's pass for iteration-based loops."""
        if self._iter_based(runner):
            return int(getattr(runner.train_loop.dataloader_iterator, '_epoch', 0))
        return int(runner.epoch)

    # ------------------------------------------------------------------ snapshots
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._iter_based(runner):
            self._snapshot = RandomState.capture(self._model(runner))

    def after_train_epoch(self, runner) -> None:
        if not self._iter_based(runner):
            self._snapshot = RandomState.capture(self._model(runner))

    def after_val(self, runner) -> None:
        # validation between two training iterations must not move the training streams
        if self._snapshot is not None and runner._train_loop is not None and self._iter_based(runner):
            self._snapshot.restore(self._model(runner))

    # ------------------------------------------------------------------ checkpoint
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self._snapshot if self._snapshot is not None else RandomState.capture(self._model(runner))
        meta = checkpoint.get('meta', {})
        checkpoint[CHECKPOINT_KEY] = dict(
            random_state=state.to_checkpoint(), world_size=int(runner.world_size), seed=runner.seed,
            loop='iter' if self._iter_based(runner) else 'epoch', epoch=int(meta.get('epoch', runner.epoch)),
            iter=int(meta.get('iter', runner.iter)), data_epoch=self._data_epoch(runner),
            iters_per_epoch=len(runner.train_loop.dataloader))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from: weights only, the run starts fresh
        info = checkpoint.get(CHECKPOINT_KEY)
        if info is None:
            _log('resume: the checkpoint carries no random state (written without ExactResumeHook); the run '
                 'continues, but not bit-identical to an uninterrupted one', logging.WARNING)
            return
        notes = []
        if int(info['world_size']) != int(runner.world_size):
            notes.append(f"world size {runner.world_size} (checkpoint: {info['world_size']})")
        cfg_seed = runner._randomness_cfg.get('seed', None)
        if cfg_seed is not None and info['seed'] is not None and int(cfg_seed) != int(info['seed']):
            notes.append(f"seed {cfg_seed} (checkpoint: {info['seed']}; mmengine resumes with the checkpoint's)")
        if info['loop'] == 'epoch' and int(info['iter']) != int(info['epoch']) * int(info['iters_per_epoch']):
            notes.append(f"a checkpoint saved inside epoch {info['epoch'] + 1} (the epoch restarts)")
        if notes:
            _log('resume is not exact: ' + '; '.join(notes), logging.WARNING)
        self._pending = RandomState.from_checkpoint(info['random_state'])
        self._pending_info = info

    # ------------------------------------------------------------------ restoring
    def before_train_epoch(self, runner) -> None:
        model = self._model(runner)
        if self._iter_based(runner):
            if self._pending is not None:
                loop = runner.train_loop
                loop.dataloader_iterator = _RestoreAfterReplay(loop.dataloader_iterator, runner.iter,
                                                               partial(self._restore_after_replay, runner))
            return
        state = self._pending if self._pending is not None else self._snapshot
        if state is not None:
            state.restore(model)
        self._pending = self._pending_info = None
        if self.reseed_workers:
            self._reseed_workers(runner)

    def _restore_after_replay(self, runner, data_iterator) -> None:
        info = self._pending_info
        data_epoch = int(getattr(data_iterator, '_epoch', 0))
        if data_epoch != int(info['data_epoch']):
            _log(f"resume is not exact: the data iterator is in pass {data_epoch} after re-reading "
                 f"{runner.iter} batches, the checkpoint was written in pass {info['data_epoch']}", logging.WARNING)
        self._pending.restore(self._model(runner))
        self._snapshot = self._pending
        self._pending = self._pending_info = None
        _log(f'resume: random streams restored at iteration {runner.iter} (data pass {data_epoch})')

    def _reseed_workers(self, runner) -> None:
        loader = runner.train_loop.dataloader
        if loader.num_workers == 0:
            return
        fn = loader.worker_init_fn
        if not (isinstance(fn, partial) and 'seed' in fn.keywords):
            if self._base_worker_seed is None:
                _log('ExactResumeHook: the train dataloader has a custom worker_init_fn; its workers are not '
                     're-seeded per epoch and a resumed run may draw other augmentations', logging.WARNING)
                self._base_worker_seed = -1
            return
        if self._base_worker_seed is None:
            self._base_worker_seed = int(fn.keywords['seed'])
        if self._base_worker_seed < 0:
            return
        seed = (self._base_worker_seed + EPOCH_SEED_STRIDE * int(runner.epoch)) % (2**31)
        loader.worker_init_fn = partial(fn.func, *fn.args, **dict(fn.keywords, seed=seed))
        iterator = getattr(loader, '_iterator', None)
        if iterator is not None:  # persistent workers: stop them, the next epoch starts new ones
            iterator._shutdown_workers()
            loader._iterator = None
