"""Prototype EM hook: the schedule of the CLAP prototypes around the loss terms (SPEC 4.5).

After every training iteration (i.e. after the optimizer step):

* the embeddings of the iteration (``last_embeddings`` of the prototype module, both modalities) are
  pushed into a bounded ring buffer;
* during the first ``freeze_iters`` iterations the prototypes are restored to their value before the
  step (frozen; DDP-safe, no change of ``requires_grad``);
* every ``interval`` iterations: E-step A = softmax(E K^T / temperature) over the buffers of all ranks,
  M-step k <- normalise(momentum k + (1 - momentum) normalise(sum_i A_ik e_i)); prototypes whose
  assignment mass is below ``dead_threshold`` times the uniform share are re-seeded on random buffered
  embeddings; usage statistics go to the message hub;
* the prototypes are put back on the unit sphere and broadcast from rank 0 (all ranks identical).

The hook state (buffer, position, counters) is written into the checkpoint under ``prototype_em_hook``
and restored by ``--resume``.
"""
import math
from typing import Dict, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from clap_plugin.models.prototypes.gram_regularizer import gram_off_diagonal_mean

CHECKPOINT_KEY = 'prototype_em_hook'


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@HOOKS.register_module()
class PrototypeEMHook(Hook):
    """EM updates, freezing, normalisation, re-seeding and logging of the prototypes.

    Args:
        module_name: dotted name of the module owning ``prototypes`` and ``last_embeddings`` inside the
            (unwrapped) model; default: the first module that has both.
        interval: iterations between E/M steps.
        freeze_iters: iterations during which the prototypes are kept fixed.
        buffer_size: embeddings kept per rank (both modalities together).
        temperature: temperature of the E-step soft assignments.
        momentum: weight of the old prototype in the M-step (0: jump to the weighted mean).
        dead_threshold: a prototype whose assignment mass is below this fraction of the uniform share
            (buffer size / N_K) is re-seeded.
        reseed_noise: std of the noise added to a re-seeded prototype before normalisation.
        seed: seed of the re-seeding draws (combined with the update counter, same on all ranks).
    """

    priority = 'NORMAL'

    def __init__(self, module_name: Optional[str] = None, interval: int = 50, freeze_iters: int = 0,
                 buffer_size: int = 8192, temperature: float = 0.1, momentum: float = 0.5,
                 dead_threshold: float = 0.05, reseed_noise: float = 0.01, seed: int = 0) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        if buffer_size < 1:
            raise ValueError(f'buffer_size must be >= 1, got {buffer_size}')
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        self.module_name = module_name
        self.interval = int(interval)
        self.freeze_iters = int(freeze_iters)
        self.buffer_size = int(buffer_size)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.dead_threshold = float(dead_threshold)
        self.reseed_noise = float(reseed_noise)
        self.seed = int(seed)
        self.buffer: Optional[Tensor] = None
        self.buffer_pos = 0
        self.buffer_filled = 0
        self.num_updates = 0
        self.num_reseeded = 0
        self._frozen_copy: Optional[Tensor] = None

    # ------------------------------------------------------------------ model access
    def prototype_module(self, model: nn.Module) -> nn.Module:
        """The module holding ``prototypes`` (and ``last_embeddings``)."""
        if is_model_wrapper(model):
            model = model.module
        if self.module_name is not None:
            mod = model.get_submodule(self.module_name)
            if not isinstance(getattr(mod, 'prototypes', None), Tensor):
                raise AttributeError(f'module_name={self.module_name!r} has no "prototypes" tensor')
            return mod
        for mod in model.modules():
            if isinstance(getattr(mod, 'prototypes', None), Tensor) and hasattr(mod, 'last_embeddings'):
                return mod
        raise AttributeError('no module with "prototypes" and "last_embeddings" found in the model; '
                             'set module_name')

    # ------------------------------------------------------------------ buffer
    def push(self, embeddings: Tensor) -> None:
        """Append (M, d_K) detached embeddings to the ring buffer (the newest ``buffer_size`` are kept)."""
        emb = F.normalize(embeddings.detach().float(), dim=-1)
        if self.buffer is None or self.buffer.shape[1] != emb.shape[1]:
            self.buffer = emb.new_zeros(self.buffer_size, emb.shape[1])
            self.buffer_pos = self.buffer_filled = 0
        emb = emb[-self.buffer_size:].to(self.buffer.device)
        m = emb.shape[0]
        idx = (self.buffer_pos + torch.arange(m, device=self.buffer.device)) % self.buffer_size
        self.buffer[idx] = emb
        self.buffer_pos = (self.buffer_pos + m) % self.buffer_size
        self.buffer_filled = min(self.buffer_filled + m, self.buffer_size)

    def _global_buffer(self) -> Optional[Tensor]:
        local = self.buffer[:self.buffer_filled] if self.buffer is not None else None
        if not _distributed():
            return local
        d = local.shape[1] if local is not None else 0
        dims = [torch.zeros(2, dtype=torch.long) for _ in range(dist.get_world_size())]
        mine = torch.tensor([self.buffer_filled if local is not None else 0, d], dtype=torch.long)
        self._all_gather_cpu(dims, mine)
        d = max(int(x[1]) for x in dims)
        n_max = max(int(x[0]) for x in dims)
        if d == 0 or n_max == 0:
            return None
        dev = self._comm_device()
        padded = torch.zeros(n_max, d, device=dev)
        if local is not None and local.numel():
            padded[:local.shape[0]] = local.to(dev)
        parts = [torch.zeros_like(padded) for _ in dims]
        dist.all_gather(parts, padded)
        return torch.cat([p[:int(n[0])] for p, n in zip(parts, dims)]).to(
            self.buffer.device if self.buffer is not None else dev)

    @staticmethod
    def _comm_device() -> torch.device:
        if dist.get_backend() == 'nccl':
            return torch.device('cuda', torch.cuda.current_device())
        return torch.device('cpu')

    def _all_gather_cpu(self, out: list, t: Tensor) -> None:
        dev = self._comm_device()
        tmp = [o.to(dev) for o in out]
        dist.all_gather(tmp, t.to(dev))
        for o, x in zip(out, tmp):
            o.copy_(x.cpu())

    # ------------------------------------------------------------------ EM
    @torch.no_grad()
    def em_step(self, prototypes: Tensor, embeddings: Tensor) -> Dict[str, float]:
        """One E-step + M-step + re-seeding on (N, d_K) ``embeddings``; updates ``prototypes`` in place.

        Returns usage statistics computed from the E-step (before the update).
        """
        k = F.normalize(prototypes.detach().float(), dim=-1)
        e = F.normalize(embeddings.to(k.device).float(), dim=-1)
        assign = torch.softmax(e @ k.t() / self.temperature, dim=-1)  # (N, N_K) E-step
        mass = assign.sum(dim=0)  # (N_K,)
        target = F.normalize(assign.t() @ e, dim=-1)  # M-step: weighted mean direction
        new = F.normalize(self.momentum * k + (1.0 - self.momentum) * target, dim=-1)
        n_k = k.shape[0]
        dead = mass < self.dead_threshold * e.shape[0] / n_k
        n_dead = int(dead.sum())
        if n_dead:
            gen = torch.Generator().manual_seed(self.seed * 1000003 + self.num_updates)
            pick = torch.randint(e.shape[0], (n_dead, ), generator=gen)
            noise = torch.randn(n_dead, e.shape[1], generator=gen) * self.reseed_noise
            new[dead] = F.normalize(e[pick.to(e.device)] + noise.to(e.device), dim=-1)
        prototypes.copy_(new.to(prototypes.dtype))
        self.num_updates += 1
        self.num_reseeded += n_dead
        usage = mass / mass.sum()
        perplexity = math.exp(float(-(usage * usage.clamp(min=1e-12).log()).sum()))
        used = int(torch.bincount(assign.argmax(dim=-1), minlength=n_k).gt(0).sum())
        return dict(perplexity=perplexity, used_prototypes=float(used), reseeded=float(n_dead))

    @torch.no_grad()
    def _sync(self, prototypes: Tensor) -> None:
        prototypes.copy_(F.normalize(prototypes, dim=-1))
        if _distributed():
            dev = self._comm_device()
            t = prototypes.detach().to(dev).contiguous()
            dist.broadcast(t, src=0)
            prototypes.copy_(t.to(prototypes.device))

    # ------------------------------------------------------------------ hook points
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter < self.freeze_iters:
            protos = self.prototype_module(runner.model).prototypes
            self._frozen_copy = protos.detach().clone()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        mod = self.prototype_module(runner.model)
        protos = mod.prototypes
        for emb in getattr(mod, 'last_embeddings', {}).values():
            if isinstance(emb, Tensor) and emb.numel():
                self.push(emb)
        with torch.no_grad():
            if self._frozen_copy is not None:
                protos.copy_(self._frozen_copy)
                self._frozen_copy = None
        stats = None
        if runner.iter + 1 > self.freeze_iters and (runner.iter + 1) % self.interval == 0:
            emb = self._global_buffer()
            if emb is not None and emb.shape[0]:
                stats = self.em_step(protos.data, emb)
        self._sync(protos.data)
        if stats is not None:
            hub = runner.message_hub
            hub.update_scalar('train/proto_perplexity', stats['perplexity'])
            hub.update_scalar('train/proto_used', stats['used_prototypes'])
            hub.update_scalar('train/proto_reseeded', stats['reseeded'])
            hub.update_scalar('train/proto_gram_offdiag', float(gram_off_diagonal_mean(protos.detach())))

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict:
        """The hook's resumable state."""
        return dict(buffer=None if self.buffer is None else self.buffer.detach().cpu().clone(),
                    buffer_pos=self.buffer_pos, buffer_filled=self.buffer_filled,
                    num_updates=self.num_updates, num_reseeded=self.num_reseeded)

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output."""
        missing = {'buffer', 'buffer_pos', 'buffer_filled', 'num_updates', 'num_reseeded'} - set(state)
        if missing:
            raise KeyError(f'{CHECKPOINT_KEY} state lacks {sorted(missing)}')
        self.buffer = None if state['buffer'] is None else state['buffer'].clone()
        self.buffer_pos = int(state['buffer_pos'])
        self.buffer_filled = int(state['buffer_filled'])
        self.num_updates = int(state['num_updates'])
        self.num_reseeded = int(state['num_reseeded'])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = self.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY in checkpoint:
            self.load_state_dict(checkpoint[CHECKPOINT_KEY])
