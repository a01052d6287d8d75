"""Prototype EM hook: the bookkeeping around CLAP's gradient-trained prototypes (arXiv 2412.03059).

Design: one owner. The paper's EM is an E-step (softmax assignments) and an M-step that is a loss (assignment
certainty, L_EM); together with the swapped prediction and the Gram regulariser the prototypes are learned by
their gradients, i.e. by the optimizer, and by nothing else. An alternating soft k-means M-step on top of
that (an earlier design of this hook) fights the optimizer for the same parameter, makes the Gram term inert,
and collapses the prototypes whenever the embeddings share a mean component: every soft-weighted mean is then
close to the global mean. So this hook never moves the prototypes towards the embeddings. It talks to the
loss module through the :class:`PrototypeState` that the model exposes (``prototype_state``), and only

* freezes them for the first ``freeze_iters`` iterations (SwAV's trick) by setting ``PrototypeState.frozen``,
  which makes the losses detach them: their gradient is dropped, so neither the weights nor the optimizer
  state (moments, step) change;
* re-normalises them onto the unit sphere after every optimizer step;
* every ``interval`` iterations, re-seeds the prototypes that no cell of either modality picked as its
  argmax (hard counts, summed over ranks) on random embeddings of the current iteration, and clears their
  optimizer moments (the old ones point away from the new location);
* logs the hard-count figures (``proto_dead``, ``proto_reseeded``, ``proto_interval_ppl``) and the
  prototypes' mean off-diagonal cosine, and checks that all ranks hold the same prototypes;
* saves and restores its counters in the checkpoint under ``prototype_em_hook`` (``--resume``).
"""
import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmdet3d.registry import HOOKS
from mmengine.dist import all_reduce, broadcast, is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from clap_plugin.models.prototypes.gram_regularizer import gram_off_diagonal_mean
from clap_plugin.models.prototypes.prototype_state import PrototypeState

CHECKPOINT_KEY = 'prototype_em_hook'


@HOOKS.register_module()
class PrototypeEMHook(Hook):
    """Freezing, normalisation, dead-prototype re-seeding, rank checks and logging of the prototypes.

    Args:
        module_name: dotted name of the module exposing the :class:`PrototypeState` (``prototype_state``)
            inside the (unwrapped) model; default: the first module that exposes one.
        interval: iterations over which hard counts are accumulated before re-seeding.
        freeze_iters: iterations during which the prototypes get no gradient.
        dead_threshold: a prototype whose hard count over the interval is at most this share of the uniform
            count (cells / N_K) is dead (0: only prototypes that nobody picked).
        reseed_noise: std of the noise added to a re-seeded prototype before normalisation.
        check_ranks: assert after every step that all ranks hold identical prototypes (cheap: one
            all-reduce of a checksum).
        seed: seed of the re-seeding draws (combined with the update counter, same on all ranks).
    """

    priority = 'NORMAL'

    def __init__(self, module_name: Optional[str] = None, interval: int = 50, freeze_iters: int = 0,
                 dead_threshold: float = 0.0, reseed_noise: float = 0.01, check_ranks: bool = True,
                 seed: int = 0) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        if freeze_iters < 0:
            raise ValueError(f'freeze_iters must be >= 0, got {freeze_iters}')
        if not 0.0 <= dead_threshold < 1.0:
            raise ValueError(f'dead_threshold must be in [0, 1), got {dead_threshold}')
        self.module_name = module_name
        self.interval = int(interval)
        self.freeze_iters = int(freeze_iters)
        self.dead_threshold = float(dead_threshold)
        self.reseed_noise = float(reseed_noise)
        self.check_ranks = bool(check_ranks)
        self.seed = int(seed)
        self.counts: Optional[Tensor] = None  # (N_K,) hard counts of this rank since the last check
        self.num_updates = 0  # interval checks done
        self.num_reseeded = 0

    # ------------------------------------------------------------------ model access
    def prototype_state(self, model: nn.Module) -> PrototypeState:
        """The :class:`PrototypeState` that the (possibly wrapped) model exposes as ``prototype_state``."""
        if is_model_wrapper(model):
            model = model.module
        if self.module_name is not None:
            state = getattr(model.get_submodule(self.module_name), 'prototype_state', None)
            if not isinstance(state, PrototypeState):
                raise AttributeError(f'module_name={self.module_name!r} exposes no PrototypeState as '
                                     '"prototype_state"')
            return state
        for mod in model.modules():
            state = getattr(mod, 'prototype_state', None)
            if isinstance(state, PrototypeState):
                return state
        raise AttributeError('no module of the model exposes a PrototypeState as "prototype_state"; set '
                             'module_name')

    # ------------------------------------------------------------------ pieces
    def count(self, assignments: Dict[str, Tensor], num_prototypes: int) -> None:
        """Add the (M,) argmax assignments of every modality to the hard counts."""
        for a in assignments.values():
            if not isinstance(a, Tensor) or a.numel() == 0:
                continue
            c = torch.bincount(a.reshape(-1).long(), minlength=num_prototypes).cpu()
            self.counts = c if self.counts is None else self.counts + c

    @torch.no_grad()
    def reseed(self, prototypes: Tensor, embeddings: Tensor, counts: Tensor,
               optimizer: Optional[torch.optim.Optimizer] = None) -> int:
        """Re-seed the dead rows of the (N_K, d_K) ``prototypes`` parameter (by ``counts``, (N_K,)) on random
        rows of (M, d_K) ``embeddings``.

        Identical on all ranks: the draws are seeded by the update counter and rank 0's prototypes are
        broadcast. The optimizer moments of the re-seeded rows are cleared. Returns the number re-seeded.
        """
        n_k = prototypes.shape[0]
        total = float(counts.sum())
        dead = counts.float() <= self.dead_threshold * total / n_k
        n_dead = int(dead.sum())
        if n_dead == 0 or embeddings.numel() == 0:
            return 0
        gen = torch.Generator().manual_seed(self.seed * 1000003 + self.num_updates)
        pick = torch.randint(embeddings.shape[0], (n_dead, ), generator=gen)
        noise = torch.randn(n_dead, embeddings.shape[1], generator=gen) * self.reseed_noise
        seeds = F.normalize(embeddings[pick.to(embeddings.device)].float().cpu() + noise, dim=-1)
        idx = torch.nonzero(dead)[:, 0].to(prototypes.device)
        prototypes.data[idx] = seeds.to(prototypes)
        if is_distributed():
            broadcast(prototypes.data, src=0)
        state = optimizer.state.get(prototypes, {}) if optimizer is not None else {}
        for value in state.values():  # AdamW's exp_avg / exp_avg_sq rows of the re-seeded prototypes
            if isinstance(value, Tensor) and value.shape == prototypes.shape:
                value[idx] = 0
        return n_dead

    @staticmethod
    def _check_identical(prototypes: Tensor) -> None:
        if not is_distributed():
            return
        mine = prototypes.detach().double().sum().reshape(1)
        lo, hi = mine.clone(), mine.clone()
        all_reduce(lo, op='min')
        all_reduce(hi, op='max')
        if float(lo) != float(hi):
            raise RuntimeError(f'prototypes differ between ranks (checksums {float(lo)} .. {float(hi)})')

    # ------------------------------------------------------------------ hook points
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.prototype_state(runner.model).frozen = runner.iter < self.freeze_iters

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        state = self.prototype_state(runner.model)
        protos = state.prototypes
        if not state.frozen:  # frozen: nothing moved them, leave them bit-exact
            with torch.no_grad():
                protos.data.copy_(F.normalize(protos.data, dim=-1))
        self.count(state.assignments, protos.shape[0])
        if (runner.iter + 1) % self.interval != 0 or runner.iter + 1 <= self.freeze_iters:
            if self.check_ranks:
                self._check_identical(protos.data)
            return
        counts = self.counts if self.counts is not None else torch.zeros(protos.shape[0], dtype=torch.long)
        all_reduce(counts)  # summed over the ranks (mmengine moves it to the backend's device and back)
        emb = torch.cat(list(state.embeddings.values())) if state.embeddings \
            else protos.new_zeros(0, protos.shape[1])
        optimizer = getattr(getattr(runner, 'optim_wrapper', None), 'optimizer', None)
        n_dead = self.reseed(protos, emb, counts, optimizer)
        self.num_updates += 1
        self.num_reseeded += n_dead
        usage = counts.float() / counts.sum().clamp(min=1)
        ppl = math.exp(float(-(usage * usage.clamp(min=1e-12).log()).sum()))
        hub = runner.message_hub
        hub.update_scalar('train/proto_dead', float(n_dead))
        hub.update_scalar('train/proto_reseeded', float(self.num_reseeded))
        hub.update_scalar('train/proto_interval_ppl', ppl)
        hub.update_scalar('train/proto_gram_offdiag', float(gram_off_diagonal_mean(protos.detach())))
        self.counts = None
        if self.check_ranks:
            self._check_identical(protos.data)

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict:
        """The hook's resumable state."""
        return dict(counts=None if self.counts is None else self.counts.clone(), num_updates=self.num_updates,
                    num_reseeded=self.num_reseeded)

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output."""
        missing = {'counts', 'num_updates', 'num_reseeded'} - set(state)
        if missing:
            raise KeyError(f'{CHECKPOINT_KEY} state lacks {sorted(missing)} (a checkpoint of an older hook?)')
        self.counts = None if state['counts'] is None else state['counts'].clone()
        self.num_updates = int(state['num_updates'])
        self.num_reseeded = int(state['num_reseeded'])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY in checkpoint:
            self.load_state_dict(checkpoint[CHECKPOINT_KEY])
