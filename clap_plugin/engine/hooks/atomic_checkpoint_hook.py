"""Checkpoints that are never half-written: mmengine's ``CheckpointHook`` with atomic writes.

mmengine's hook writes ``epoch_N.pth`` in place, writes ``last_checkpoint`` in place, and deletes the oldest
kept checkpoint *before* it writes the new one. A kill during a save can therefore leave a truncated
checkpoint under its final name, an empty ``last_checkpoint`` (``--resume`` then finds nothing), or, with
``max_keep_ckpts=1``, no loadable checkpoint at all. This hook

* writes every checkpoint through :class:`~clap_plugin.engine.atomic_local_backend.AtomicLocalBackend`
  (a hidden temporary file, fsync, rename), best checkpoints included;
* writes ``last_checkpoint`` the same way, after the checkpoint it names is complete;
* deletes the checkpoint that falls out of ``max_keep_ckpts`` only after that;
* removes, before training, the temporary files that a killed save left behind (and logs them).

So a kill at any point of a save leaves the previous checkpoint loadable and named by ``last_checkpoint``,
which is what ``--resume`` picks. Remote ``out_dir`` (``s3://`` ...) keeps mmengine's behaviour.
"""
import os
import os.path as osp

from mmdet3d.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from ...utils.atomic_write import stale_temporaries, write_text_atomic
from ..atomic_local_backend import BACKEND_NAME


def _is_local(path) -> bool:
    return path is None or '://' not in str(path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose saves cannot leave a half-written file behind."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.atomic = (self.file_client_args is None and self.backend_args is None
                       and _is_local(self.out_dir))
        if self.atomic:
            self.backend_args = dict(backend=BACKEND_NAME)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.atomic and is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                for path in stale_temporaries(folder):
                    runner.logger.warning(f'removing {path}: a checkpoint save that was interrupted')
                    os.remove(path)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not self.atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        evicted = None
        if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                evicted = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, ckpt_filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if evicted is not None and evicted != step:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(evicted))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)
